"""kill -9 of `quiver standalone` while a pymilvus client writes, then a restart on the same
data directory: every acknowledged insert, upsert and delete is back (vectors byte for byte),
the alias still names its collection, and search works through it.

The test runs its own server (the shared one must not be killed): run.sh passes the binary
in QUIVER_SERVER_BIN."""

import os
import signal
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.client.types import LoadState

from conftest import fresh_name
from standalone_proc import free_port

DIM = 8
BATCH = 50
START_TIMEOUT_S = 60.0


class Server:
    """`quiver standalone` on a data dir and port, started and killed by the test."""

    def __init__(self, binary, tmp, port):
        self.binary, self.tmp, self.port = binary, tmp, port
        self.data_dir = os.path.join(tmp, "data")
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.tmp, f"server-{time.monotonic_ns()}.log"), "w+")
        self.proc = subprocess.Popen(
            [self.binary, "standalone", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.log.seek(0)
            if "listening on" in self.log.read():
                return
            assert self.proc.poll() is None, self.tail()
            time.sleep(0.05)
        pytest.fail(f"server did not start within {START_TIMEOUT_S}s:\n{self.tail()}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self):
        self.log.seek(0)
        return "".join(self.log.readlines()[-30:])


@pytest.fixture
def server():
    binary = os.environ.get("QUIVER_SERVER_BIN")
    if not binary:
        pytest.skip("QUIVER_SERVER_BIN is not set: run tests/pymilvus/run.sh")
    with tempfile.TemporaryDirectory() as tmp:
        s = Server(binary, tmp, free_port())
        s.start()
        yield s
        s.stop()


def vectors(ids, round_):
    """Distinct float32 vectors per (id, round); exactly representable values."""
    ids = np.asarray(ids, dtype=np.float32)[:, None]
    cols = np.arange(DIM, dtype=np.float32)[None, :]
    return (ids * 0.5 + cols * 0.25 + round_ * 1000.0).astype(np.float32)


class Writer(threading.Thread):
    """Inserts batches of new keys, upserts older keys and deletes some, recording what
    was acknowledged (the call returned) until told to stop. A call running when the server
    dies either fails (pymilvus 3.0 gives up) or, retried by pymilvus (2.5), succeeds against
    the restarted server, which then acknowledges it."""

    def __init__(self, uri, alias):
        super().__init__(daemon=True)
        self.client = MilvusClient(uri=uri, timeout=5)
        self.alias = alias
        self.expected = {}  # id -> vector bytes of the last acknowledged write
        self.deleted = set()  # acknowledged deletes (not re-inserted since)
        self.in_flight = set()  # ids of the write that was running when the server died
        self.acked_batches = 0
        self.stop = threading.Event()
        self.error = None

    def run(self):
        next_id, round_ = 0, 0
        try:
            while not self.stop.is_set():
                round_ += 1
                ids = list(range(next_id, next_id + BATCH))
                self.write("insert", ids, round_)
                next_id += BATCH
                if round_ % 3 == 0:  # rewrite a few older keys (replaces the row)
                    self.write("upsert", list(range(next_id - 2 * BATCH, next_id - 2 * BATCH + 10)), round_)
                if round_ % 4 == 0:  # delete a few older keys
                    gone = list(range(next_id - 3 * BATCH + 20, next_id - 3 * BATCH + 25))
                    self.in_flight = set(gone)
                    self.client.delete(self.alias, ids=gone)
                    for i in gone:
                        self.expected.pop(i, None)
                        self.deleted.add(i)
                    self.in_flight = set()
                if round_ == 20:  # part of the data sealed into a segment, the rest in the WAL
                    self.client.flush(self.alias)
                self.acked_batches += 1
        except MilvusException as e:  # the server was killed and the client gave up
            self.error = e
        finally:
            self.client.close()

    def write(self, op, ids, round_):
        vecs = vectors(ids, round_)
        rows = [{"id": i, "vec": v.tolist(), "tag": f"r{round_}"} for i, v in zip(ids, vecs)]
        self.in_flight = set(ids)
        getattr(self.client, op)(self.alias, rows)
        for i, v in zip(ids, vecs):
            self.expected[i] = v.tobytes()
            self.deleted.discard(i)
        self.in_flight = set()


def answers(client, alias):
    """Whether `client` reaches the server (an unreachable one raises code 2)."""
    try:
        client.describe_alias(alias)
        return True
    except MilvusException as e:
        if e.code == 2:
            return False
        raise


def wait_until(what, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def all_rows(client, name):
    rows = client.query(name, filter="id >= 0", output_fields=["id", "vec", "tag"], limit=16384,
                        consistency_level="Strong")
    return {r["id"]: r for r in rows}


def test_kill9_and_restart_keeps_everything_acknowledged(server):
    uri = f"http://127.0.0.1:{server.port}"
    name, alias = fresh_name(), fresh_name("alias")
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=index)
    client.create_alias(name, alias)
    client.close()

    writer = Writer(uri, alias)
    writer.start()
    # Enough acknowledged work (inserts, upserts and deletes) before the crash.
    wait_until("40 acknowledged rounds", lambda: writer.acked_batches >= 40 or not writer.is_alive())
    assert writer.is_alive(), f"writer stopped early: {writer.error}"
    server.kill9()
    writer.stop.set()
    server.start()
    writer.join(timeout=120)
    assert not writer.is_alive(), "the writer's last call neither failed nor succeeded"
    client = MilvusClient(uri=uri)
    try:
        # pymilvus 3.0 may hand back the channel it had to the killed
        # process: until gRPC's reconnect backoff ends, calls on it fail
        # with "connection refused" although the new server listens.
        wait_until("the restarted server to answer this client", lambda: answers(client, alias))
        assert client.describe_alias(alias)["collection_name"] == name
        assert client.list_aliases(name)["aliases"] == [alias]
        client.load_collection(alias)
        got = all_rows(client, alias)
        missing = [i for i in writer.expected if i not in got and i not in writer.in_flight]
        assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {missing[:10]}"
        wrong = [i for i, v in writer.expected.items()
                 if i not in writer.in_flight and np.asarray(got[i]["vec"], dtype=np.float32).tobytes() != v]
        assert not wrong, f"{len(wrong)} rows with other vector bytes, e.g. {wrong[:10]}"
        back = [i for i in writer.deleted if i in got and i not in writer.in_flight]
        assert not back, f"deleted rows came back: {back[:10]}"
        unknown = [i for i in got if i not in writer.expected and i not in writer.in_flight]
        assert not unknown, f"rows that were never written: {unknown[:10]}"
        # Nothing is half-applied: a row of the write in flight is all there or not at all.
        for i in writer.in_flight & set(got):
            assert len(got[i]["vec"]) == DIM

        # Search through the alias finds a surviving row as its own nearest neighbour.
        some = next(iter(sorted(i for i in writer.expected if i not in writer.in_flight)))
        vec = np.frombuffer(writer.expected[some], dtype=np.float32).tolist()
        hits = client.search(alias, data=[vec], limit=1, search_params={"params": {"ef": 64}},
                             consistency_level="Strong")
        assert hits[0][0]["id"] == some
        # And the restarted server takes writes again.
        client.insert(alias, [{"id": 10**9, "vec": [0.0] * DIM, "tag": "after"}])
        assert client.get(alias, ids=[10**9], output_fields=["tag"])[0]["tag"] == "after"
    finally:
        client.close()


def test_release_and_consistency_level_survive_a_restart(server):
    uri = f"http://127.0.0.1:{server.port}"
    released, served = fresh_name("released"), fresh_name("served")
    client = MilvusClient(uri=uri)
    client.create_collection(released, dimension=4, consistency_level="Eventually")
    client.create_collection(served, dimension=4, consistency_level="Strong")
    for n in (released, served):
        client.insert(n, [{"id": i, "vector": [float(i), 1.0, 0.0, 1.0]} for i in range(5)])
    client.release_collection(released)
    client.close()

    server.kill9()
    server.start()
    client = MilvusClient(uri=uri)
    try:
        assert client.get_load_state(released)["state"] == LoadState.NotLoad
        assert client.get_load_state(served)["state"] == LoadState.Loaded
        assert client.describe_collection(released)["consistency_level"] == 3
        assert client.describe_collection(served)["consistency_level"] == 0
        with pytest.raises(MilvusException) as info:
            client.search(released, data=[[1.0, 1.0, 0.0, 1.0]], limit=1)
        assert info.value.code == 101, info.value
        client.load_collection(released)
        for n in (released, served):
            got = client.query(n, filter="id >= 0", consistency_level="Strong")
            assert sorted(r["id"] for r in got) == list(range(5)), n
    finally:
        client.close()
