"""Shared fixtures and helpers of the pymilvus suite (run by run.sh, once per pymilvus version)."""

import os
import time
import uuid

import grpc
import pytest
from pymilvus import MilvusClient, MilvusException
from pymilvus.grpc_gen import milvus_pb2_grpc

# pymilvus retries a failed call up to 75 times with back-off (~3 minutes) when the answer
# looks retriable. A bad request must be refused at once: an error is expected well within
# this bound, which is far below the retry budget and far above one round trip.
FAIL_FAST_S = 10.0


@pytest.fixture(scope="session")
def uri():
    uri = os.environ.get("QUIVER_URI")
    if not uri:
        pytest.skip("QUIVER_URI is not set: run tests/pymilvus/run.sh")
    return uri


@pytest.fixture
def client(uri):
    c = MilvusClient(uri=uri)
    yield c
    c.close()


@pytest.fixture(scope="module")
def mclient(uri):
    """A client shared by a module's tests (for module-scoped collections)."""
    c = MilvusClient(uri=uri)
    yield c
    c.close()


def fresh_name(prefix="c"):
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def name():
    return fresh_name()


@pytest.fixture(scope="session")
def stub(uri):
    """The raw MilvusService stub, to send requests pymilvus would refuse to build."""
    target = uri.split("://", 1)[-1]
    channel = grpc.insecure_channel(target)
    yield milvus_pb2_grpc.MilvusServiceStub(channel)
    channel.close()


def expect_error(fn, code, *words):
    """Calls `fn`, which must fail at once with a MilvusException carrying the Milvus
    error `code` and naming each of `words` in its message; returns the exception."""
    start = time.monotonic()
    with pytest.raises(MilvusException) as info:
        fn()
    elapsed = time.monotonic() - start
    err = info.value
    assert err.code == code, f"expected code {code}, got {err.code}: {err.message}"
    for w in words:
        assert w in err.message, f"{w!r} not in {err.message!r}"
    # pymilvus prefixes "Retry run out of N retry times" when it retried until it gave up.
    assert "retry" not in err.message.lower(), err.message
    assert elapsed < FAIL_FAST_S, f"took {elapsed:.1f}s: the client retried"
    return err


def expect_status(status, code, *words):
    """A raw `common.Status` is the failure `code` (with both codes set) naming `words`."""
    assert status.code == code, status
    assert status.error_code != 0, status
    for w in words:
        assert w in status.reason, f"{w!r} not in {status.reason!r}"


def compact_and_wait(client, collection, timeout_s=60):
    """Runs a manual compaction of `collection` and waits until it completed."""
    job = client.compact(collection)
    deadline = time.monotonic() + timeout_s
    while str(client.get_compaction_state(job)) != "Completed":
        assert time.monotonic() < deadline, "compaction did not complete"
        time.sleep(0.1)
    return job


def count(client, collection):
    """Rows in a collection, read with Strong consistency."""
    res = client.query(
        collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
    )
    return res[0]["count(*)"]
