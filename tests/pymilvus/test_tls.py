"""TLS on the front door of `quiver standalone`, through unchanged pymilvus:

- one-way TLS (`--tls-cert/--tls-key`): pymilvus verifies the server with `server_pem_path`
  (the CA) and `server_name`; create, insert, search, query, alias create and alter work;
- mutual TLS (`--tls-ca` too): the same with `client_pem_path/client_key_path/ca_pem_path`;
- a plain-text client is refused by a TLS server; a mutual-TLS server refuses a client that
  has no certificate, or one signed by another CA;
- the status page's `/metrics` answers HTTP/1.1 over TLS.

Each test module server is its own `quiver standalone` (the shared one runs without TLS) on a
fresh data dir, from the binary run.sh passes in QUIVER_SERVER_BIN. Certificates are made
with `openssl` for the test."""

import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest
import pymilvus
from pymilvus import DataType, MilvusClient, MilvusException

from conftest import fresh_name
from standalone_proc import free_port

DIM = 4
ROOT_PASSWORD = "tls-root-pass"
START_TIMEOUT_S = 60.0
# How long a refused client may take to give up (pymilvus waits for the channel to be ready).
REFUSED_WITHIN_S = 3


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
            cwd=d)
    return os.path.join(d, f"{name}.crt")


def issue(d, ca, name, ext):
    """A certificate `name` signed by `ca` with the extensions `ext`; returns (cert, key)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


@pytest.fixture(scope="module")
def certs():
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    with tempfile.TemporaryDirectory() as d:
        ca = make_ca(d, "ca")
        server = issue(d, "ca", "server",
                       "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        client = issue(d, "ca", "client", "extendedKeyUsage=clientAuth\n")
        make_ca(d, "other")
        stranger = issue(d, "other", "stranger", "extendedKeyUsage=clientAuth\n")
        yield {"ca": ca, "server": server, "client": client, "stranger": stranger}


class TlsServer:
    """`quiver standalone` with TLS flags, on a fresh data dir and a free port."""

    def __init__(self, binary, tmp, flags):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "standalone", "--data-dir", os.path.join(tmp, "data"),
             "--listen", f"127.0.0.1:{self.port}", *flags],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, QUIVER_ROOT_PASSWORD=ROOT_PASSWORD))
        deadline = time.monotonic() + START_TIMEOUT_S
        while "listening on" not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, f"server did not start:\n{self.text()}"
            time.sleep(0.05)

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_server(certs, mutual, auth=False):
    binary = os.environ.get("QUIVER_SERVER_BIN")
    if not binary:
        pytest.skip("QUIVER_SERVER_BIN is not set: run tests/pymilvus/run.sh")
    cert, key = certs["server"]
    flags = ["--tls-cert", cert, "--tls-key", key] + (["--tls-ca", certs["ca"]] if mutual else [])
    if auth:
        flags.append("--auth")
    tmp = tempfile.TemporaryDirectory()
    return tmp, TlsServer(binary, tmp.name, flags)


@pytest.fixture(scope="module")
def one_way(certs):
    tmp, s = start_server(certs, mutual=False)
    yield s
    s.stop()
    tmp.cleanup()


@pytest.fixture(scope="module")
def mutual(certs):
    tmp, s = start_server(certs, mutual=True)
    yield s
    s.stop()
    tmp.cleanup()


def exercise(client):
    """Create, insert, search, query, alias create and alter over `client`."""
    a, b, alias = fresh_name(), fresh_name(), fresh_name("alias")
    for name in (a, b):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        index = client.prepare_index_params()
        index.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        client.create_collection(name, schema=schema, index_params=index)
    rows = [{"id": i, "vec": [float(i), 0.0, 0.0, 1.0]} for i in range(10)]
    assert client.insert(a, rows)["insert_count"] == 10
    client.insert(b, [{"id": 100, "vec": [0.0, 0.0, 0.0, 1.0]}])

    hits = client.search(a, data=[[3.0, 0.0, 0.0, 1.0]], limit=3, consistency_level="Strong")
    assert hits[0][0]["id"] == 3
    got = client.query(a, filter="id in [2, 7]", output_fields=["id"], consistency_level="Strong")
    assert sorted(r["id"] for r in got) == [2, 7]

    client.create_alias(a, alias)
    assert client.describe_alias(alias)["collection_name"] == a
    client.alter_alias(b, alias)
    assert client.describe_alias(alias)["collection_name"] == b
    hits = client.search(alias, data=[[0.0, 0.0, 0.0, 1.0]], limit=1, consistency_level="Strong")
    assert hits[0][0]["id"] == 100


def test_one_way_tls_serves_pymilvus(one_way, certs):
    client = MilvusClient(uri=f"https://127.0.0.1:{one_way.port}", server_pem_path=certs["ca"],
                          server_name="localhost")
    try:
        exercise(client)
    finally:
        client.close()


def test_mutual_tls_serves_pymilvus_with_a_client_certificate(mutual, certs):
    cert, key = certs["client"]
    client = MilvusClient(uri=f"https://127.0.0.1:{mutual.port}", client_pem_path=cert,
                          client_key_path=key, ca_pem_path=certs["ca"], server_name="localhost")
    try:
        exercise(client)
    finally:
        client.close()


# pymilvus 3 shares one connection per address and token, whatever the TLS settings: a
# client that must not reuse an earlier client's TLS connection asks for its own.
OWN_CONNECTION = {"dedicated": True} if int(pymilvus.__version__.split(".")[0]) >= 3 else {}


@pytest.fixture(scope="module")
def mutual_with_auth(certs):
    tmp, s = start_server(certs, mutual=True, auth=True)
    yield s
    s.stop()
    tmp.cleanup()


def test_mutual_tls_and_a_token_serve_pymilvus(mutual_with_auth, certs):
    """Auth and mutual TLS together: the certificate gets the client in, the token says who
    it is; a wrong token over a good certificate is still refused."""
    cert, key = certs["client"]
    tls = dict(uri=f"https://127.0.0.1:{mutual_with_auth.port}", client_pem_path=cert,
               client_key_path=key, ca_pem_path=certs["ca"], server_name="localhost")
    client = MilvusClient(token=f"root:{ROOT_PASSWORD}", **tls)
    try:
        exercise(client)
    finally:
        client.close()
    # pymilvus 2.5 shows the server's UNAUTHENTICATED; 3.x reports the connection failed.
    with pytest.raises(Exception, match="auth check failure|Fail connecting"):
        MilvusClient(token="root:not-the-password", **tls, **OWN_CONNECTION).list_collections()




def refused(**kwargs):
    """Connecting with `kwargs` fails (pymilvus reports the channel never became ready)."""
    kwargs.update(OWN_CONNECTION)
    start = time.monotonic()
    with pytest.raises(MilvusException) as info:
        c = MilvusClient(timeout=REFUSED_WITHIN_S, **kwargs)
        # Some releases connect lazily: the first call must fail then.
        c.list_collections(timeout=REFUSED_WITHIN_S)
    assert time.monotonic() - start < REFUSED_WITHIN_S + 10
    return info.value


def test_a_plain_text_client_is_refused_by_a_tls_server(one_way):
    refused(uri=f"http://127.0.0.1:{one_way.port}")


def test_mutual_tls_refuses_clients_without_a_certificate_of_its_ca(mutual, certs):
    refused(uri=f"https://127.0.0.1:{mutual.port}", server_pem_path=certs["ca"],
            server_name="localhost")
    cert, key = certs["stranger"]
    refused(uri=f"https://127.0.0.1:{mutual.port}", client_pem_path=cert, client_key_path=key,
            ca_pem_path=certs["ca"], server_name="localhost")
    # The right certificate still gets in.
    cert, key = certs["client"]
    ok = MilvusClient(uri=f"https://127.0.0.1:{mutual.port}", client_pem_path=cert,
                      client_key_path=key, ca_pem_path=certs["ca"], server_name="localhost",
                      **OWN_CONNECTION)
    ok.list_collections()
    ok.close()


def test_metrics_answer_http1_over_tls(one_way, certs):
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.set_alpn_protocols(["http/1.1"])  # as Prometheus and urllib3 send it
    with urllib.request.urlopen(f"https://localhost:{one_way.port}/metrics", context=ctx,
                                timeout=10) as r:
        assert r.status == 200
        assert "quiver_alias_propagation_seconds" in r.read().decode()
