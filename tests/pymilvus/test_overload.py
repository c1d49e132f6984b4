"""Admission control seen from pymilvus: a server whose memory limit is below what it holds
refuses writes with Milvus's rate limit (code 8, which pymilvus retries with backoff until the
call's timeout), changes nothing, and keeps answering searches and queries.

The module runs its own server (`--max-memory-mib 1`), from QUIVER_SERVER_BIN."""

import os
import tempfile
import time

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

import standalone_proc

DIM = 4


@pytest.fixture(scope="module")
def uri():
    binary = os.environ.get("QUIVER_SERVER_BIN")
    if not binary:
        pytest.skip("QUIVER_SERVER_BIN is not set: run tests/pymilvus/run.sh")
    tmp = tempfile.mkdtemp(prefix="quiver-overload-")
    proc, port = standalone_proc.start(binary, os.path.join(tmp, "data"),
                                       os.path.join(tmp, "server.log"),
                                       args=["--max-memory-mib", "1"])
    yield f"http://127.0.0.1:{port}"
    standalone_proc.stop(proc)


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
