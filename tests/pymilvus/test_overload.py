"""Admission control seen from pymilvus: a server whose memory limit is below what it holds
refuses writes with Milvus's rate limit (code 8, which pymilvus retries with backoff until the
call's timeout), changes nothing, and keeps answering searches and queries.

The module runs its own server (`--max-memory-mib 1`), from QUIVER_SERVER_BIN."""

import os
import socket
import subprocess
import tempfile
import time

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

DIM = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def uri():
    binary = os.environ.get("QUIVER_SERVER_BIN")
    if not binary:
        pytest.skip("QUIVER_SERVER_BIN is not set: run tests/pymilvus/run.sh")
    tmp = tempfile.mkdtemp(prefix="quiver-overload-")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w+")
    proc = subprocess.Popen(
        [binary, "standalone", "--data-dir", os.path.join(tmp, "data"), "--listen",
         f"127.0.0.1:{port}", "--max-memory-mib", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        log.seek(0)
        text = log.read()
        if "listening on" in text:
            break
        assert proc.poll() is None, text
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_writes_over_the_memory_limit_get_the_rate_limit_code_and_reads_go_on(uri):
    c = MilvusClient(uri)
    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection("overload", schema=schema, index_params=index)
    rows = [{"id": i, "vec": [float(i)] * DIM} for i in range(10)]
    started = time.monotonic()
    with pytest.raises(MilvusException) as refused:
        c.insert("overload", rows, timeout=3)
    assert refused.value.code == 8, refused.value
    assert "max_memory_bytes" in str(refused.value)
    # pymilvus backed off and retried (a refusal it does not retry ends at once).
    assert "retry" in str(refused.value).lower() or time.monotonic() - started >= 2.5
    # Nothing of the refused write landed, and reads are answered.
    got = c.query("overload", filter="id >= 0", output_fields=["id"],
                  consistency_level="Strong")
    assert got == []
    hits = c.search("overload", data=[[0.0] * DIM], limit=3, consistency_level="Strong")
    assert len(hits) == 1 and len(hits[0]) == 0
