import os
import uuid

import pytest
from pymilvus import MilvusClient


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


@pytest.fixture
def name():
    return "c_" + uuid.uuid4().hex[:12]
