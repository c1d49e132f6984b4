"""Authentication and RBAC of `quiver standalone --auth`, from outside:

- the access matrix: every served Milvus RPC and every admin RPC x {no credentials, wrong
  password, unknown user, read-only user, read-write user, admin user, root} gets exactly the
  expected answer: UNAUTHENTICATED ("auth check failure ...") without valid credentials,
  PERMISSION_DENIED ("Privilege<X>: permission deny to <user> ...") without the privilege,
  anything else (the call ran) with it;
- refused writes change nothing; pymilvus's user/role/grant API round-trips; passwords change;
- the status page and HTTP API: credentials, the flip needs the admin privilege, foreign Host
  and cross-origin POSTs are refused; `/metrics` stays open unless protected.

The module runs its own server (the shared one has auth off), from QUIVER_SERVER_BIN."""

import base64
import json
import os
import tempfile
import urllib.error
import urllib.request

import grpc
import pytest
from pymilvus import MilvusClient, MilvusException
from pymilvus.grpc_gen import milvus_pb2

import standalone_proc

ROOT_PASSWORD = "Root-pass-1"
DIM = 4


@pytest.fixture(scope="module")
def server():
    binary = os.environ.get("QUIVER_SERVER_BIN")
    if not binary:
        pytest.skip("QUIVER_SERVER_BIN is not set: run tests/pymilvus/run.sh")
    tmp = tempfile.mkdtemp(prefix="quiver-auth-")
    log_path = os.path.join(tmp, "server.log")
    env = dict(os.environ, QUIVER_ROOT_PASSWORD=ROOT_PASSWORD, QUIVER_AUTH="true")
    proc, port = standalone_proc.start(binary, os.path.join(tmp, "data"), log_path, env=env)
    yield f"127.0.0.1:{port}", log_path
    standalone_proc.stop(proc)
    with open(log_path) as log:
        assert ROOT_PASSWORD not in log.read(), "the root password was logged"


def vec(i):
    return [float(i), 1.0, 0.0, 0.0]


def client(addr, token):
    return MilvusClient(uri=f"http://{addr}", token=token)


@pytest.fixture(scope="module")
def people(server):
    """Users for each tier, and a collection with an alias and rows."""
    addr, _ = server
    root = client(addr, f"root:{ROOT_PASSWORD}")
    root.create_collection("books", dimension=DIM)
    root.insert("books", [{"id": i, "vector": vec(i)} for i in range(10)])
    root.create_alias("books", "shelf")
    tiers = {"reader": "CollectionReadOnly", "writer": "CollectionReadWrite"}
    for user, group in tiers.items():
        root.create_user(user, f"{user}-pass")
        root.create_role(f"{user}_role")
        root.grant_privilege_v2(f"{user}_role", group, "*")
        root.grant_role(user, f"{user}_role")
    root.create_user("boss", "boss-pass")
    root.grant_role("boss", "admin")
    yield {
        "none": None,
        "wrong_password": f"root:{ROOT_PASSWORD}x",
        "unknown_user": "ghost:ghost-pass",
        "reader": "reader:reader-pass",
        "writer": "writer:writer-pass",
        "boss": "boss:boss-pass",
        "root": f"root:{ROOT_PASSWORD}",
    }
    root.close()


# The least tier each RPC needs: "any" (any valid credentials), "public" (what every user
# holds), "reader", "writer", "admin".
MILVUS = {
    "Connect": "any", "GetVersion": "any", "CheckHealth": "any", "AllocTimestamp": "any",
    "GetCompactionState": "any", "GetCompactionStateWithPlans": "any",
    "ShowCollections": "public", "DescribeCollection": "public", "HasCollection": "public",
    "DescribeIndex": "public",
    "Search": "reader", "HybridSearch": "reader", "Query": "reader", "GetCollectionStatistics": "reader",
    "HasPartition": "reader", "ShowPartitions": "reader", "GetLoadingProgress": "reader",
    "GetLoadState": "reader", "GetReplicas": "reader", "DescribeAlias": "reader", "ListAliases": "reader",
    "GetFlushState": "reader", "GetPartitionStatistics": "reader",
    "Insert": "writer", "Delete": "writer", "Upsert": "writer", "LoadCollection": "writer",
    "ReleaseCollection": "writer", "LoadPartitions": "writer", "ReleasePartitions": "writer",
    "Flush": "writer", "ManualCompaction": "writer", "CreateIndex": "writer",
    "DropIndex": "writer", "CreatePartition": "writer", "DropPartition": "writer",
    "CreateCollection": "admin", "DropCollection": "admin", "AlterCollection": "admin",
    "AlterCollectionField": "admin", "AlterIndex": "writer",
    "CreateAlias": "admin",
    "DropAlias": "admin", "AlterAlias": "admin", "CreateCredential": "admin",
    "UpdateCredential": "admin", "DeleteCredential": "admin", "ListCredUsers": "admin",
    "CreateRole": "admin", "DropRole": "admin", "OperateUserRole": "admin",
    "SelectRole": "admin", "SelectUser": "admin", "OperatePrivilege": "admin",
    "OperatePrivilegeV2": "admin", "SelectGrant": "admin", "ListPrivilegeGroups": "admin",
    "CreateDatabase": "admin", "DropDatabase": "admin", "AlterDatabase": "admin",
    "DescribeDatabase": "admin", "ListDatabases": "public", "RenameCollection": "admin",
    "CreateResourceGroup": "admin", "DropResourceGroup": "admin",
    "UpdateResourceGroups": "admin", "TransferNode": "admin", "TransferReplica": "admin",
    "ListResourceGroups": "admin", "DescribeResourceGroup": "admin",
}
ADMIN = {
    "MirrorAlias": "admin", "AlterAlias": "admin", "FlipAlias": "admin", "PinAlias": "admin",
    "ShowAlias": "reader", "ListAliases": "reader", "VerifyAlias": "reader",
    "CollectionStorage": "reader",
}
TIERS = ["any", "public", "reader", "writer", "admin"]
HOLDS = {"reader": "reader", "writer": "writer", "boss": "admin", "root": "admin"}


def expected(identity, tier):
    if identity in ("none", "wrong_password", "unknown_user"):
        return grpc.StatusCode.UNAUTHENTICATED
    held = HOLDS[identity]
    # writer holds reader's privileges too; "any" and "public" are everyone's.
    if TIERS.index(tier) <= TIERS.index(held) or tier in ("any", "public"):
        return None
    return grpc.StatusCode.PERMISSION_DENIED


def call(addr, path, token):
    """Sends an empty request (every field default) to `path` as `token`: the gate and the
    privilege check answer before the request is looked at."""
    channel = grpc.insecure_channel(addr)
    try:
        fn = channel.unary_unary(path, request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
        md = [("authorization", base64.b64encode(token.encode()).decode())] if token else []
        try:
            fn(b"", metadata=md, timeout=10)
            return None, ""
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
    finally:
        channel.close()


def test_every_rpc_answers_each_identity_as_expected(server, people):
    addr, _ = server
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    served = {m.name for m in service.methods} & set(MILVUS)
    assert served == set(MILVUS), set(MILVUS) - served
    cases = [(f"/milvus.proto.milvus.MilvusService/{m}", t) for m, t in MILVUS.items()]
    cases += [(f"/quiver.admin.v1.AdminService/{m}", t) for m, t in ADMIN.items()]
    wrong = []
    for path, tier in cases:
        for identity, token in people.items():
            code, details = call(addr, path, token)
            want = expected(identity, tier)
            if want is None:
                ok = code not in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED)
            else:
                ok = code == want
                if want == grpc.StatusCode.UNAUTHENTICATED:
                    ok = ok and ("auth check failure" in details
                                 or "missing authorization" in details)
                if want == grpc.StatusCode.PERMISSION_DENIED:
                    user = token.split(":")[0]
                    ok = ok and f"permission deny to {user}" in details
            if not ok:
                wrong.append(f"{path} as {identity}: got {code} {details!r}, want {want}")
    assert not wrong, "\n".join(wrong)


def test_an_unserved_rpc_still_needs_credentials(server, people):
    addr, _ = server
    path = "/milvus.proto.milvus.MilvusService/Import"
    assert call(addr, path, None)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert call(addr, path, people["reader"])[0] == grpc.StatusCode.UNIMPLEMENTED


def test_refused_writes_change_nothing(server, people):
    addr, _ = server
    root = client(addr, people["root"])
    before = root.query("books", filter="id >= 0", output_fields=["count(*)"])
    reader = client(addr, people["reader"])
    for write in (
        lambda: reader.insert("books", [{"id": 100, "vector": [1.0] * DIM}]),
        lambda: reader.delete("books", ids=[1, 2]),
        lambda: reader.upsert("shelf", [{"id": 3, "vector": [9.0] * DIM}]),
        lambda: reader.drop_alias("shelf"),
        lambda: reader.drop_collection("books"),
        lambda: reader.create_user("sneaky", "sneaky-pass"),
    ):
        with pytest.raises(Exception) as info:
            write()
        assert "permission deny" in str(info.value), info.value
    assert root.query("books", filter="id >= 0", output_fields=["count(*)"]) == before
    assert root.query("books", ids=[3], output_fields=["vector"])[0]["vector"] == vec(3)
    assert "sneaky" not in root.list_users()
    assert root.describe_alias("shelf")["collection_name"] == "books"
    # The reader reads, through the alias too.
    hits = reader.search("shelf", [vec(3)], limit=1)
    assert hits[0][0]["id"] == 3
    reader.close()
    root.close()


def test_users_roles_and_grants_round_trip(server, people):
    addr, _ = server
    root = client(addr, people["root"])
    assert {"root", "reader", "writer", "boss"} <= set(root.list_users())
    assert "reader_role" in root.list_roles()
    role = root.describe_role("reader_role")
    assert any(p["privilege"] == "CollectionReadOnly" for p in role["privileges"]), role
    assert root.describe_user("reader")["roles"] == ("reader_role",) or \
        list(root.describe_user("reader")["roles"]) == ["reader_role"]
    # A grant on one collection only.
    root.create_user("carol", "carol-pass")
    root.create_role("books_inserter")
    root.grant_privilege("books_inserter", "Collection", "Insert", "books")
    root.grant_role("carol", "books_inserter")
    carol = client(addr, "carol:carol-pass")
    carol.insert("books", [{"id": 50, "vector": [5.0] * DIM}])
    # A grant on the collection covers the alias that names it.
    carol.insert("shelf", [{"id": 52, "vector": [5.0] * DIM}])
    with pytest.raises(Exception, match="permission deny"):
        carol.delete("books", ids=[50])
    # Revoked: refused at once.
    root.revoke_privilege("books_inserter", "Collection", "Insert", "books")
    with pytest.raises(Exception, match="permission deny"):
        carol.insert("books", [{"id": 51, "vector": [5.0] * DIM}])
    # Own password change; the old one stops working.
    carol.update_password("carol", "carol-pass", "carol-pass-2")
    with pytest.raises(Exception, match="auth check failure"):
        client(addr, "carol:carol-pass").list_collections()
    assert "books" in client(addr, "carol:carol-pass-2").list_collections()
    # Another user's password needs the old one (or root).
    with pytest.raises(Exception, match="permission deny"):
        client(addr, "carol:carol-pass-2").update_password("reader", "nope-nope", "x-x-x-x-x")
    # Bad input names the rule.
    with pytest.raises(MilvusException, match="6 to 256"):
        root.create_user("shorty", "abc")
    with pytest.raises(MilvusException, match="root user cannot be deleted"):
        root.drop_user("root")
    root.drop_user("carol")
    root.drop_user("carol")  # already gone: success, as Milvus
    with pytest.raises(Exception, match="auth check failure"):
        client(addr, "carol:carol-pass-2").list_collections()
    root.close()


def http(addr, path, token=None, method="GET", body=None, headers=None):
    req = urllib.request.Request(f"http://{addr}{path}", method=method, data=body)
    if token:
        req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_status_page_needs_credentials_and_the_admin_privilege_to_flip(server, people):
    addr, _ = server
    status, _ = http(addr, "/api/status")
    assert status == 401
    status, _ = http(addr, "/api/status", people["wrong_password"])
    assert status == 401
    status, body = http(addr, "/api/status", people["reader"])
    assert status == 200 and "books" in body.decode()
    # The charts' data and the page's assets pass the same gate as the page.
    for path in ("/api/history", "/static/uplot.min.js", "/static/charts.js", "/"):
        assert http(addr, path)[0] == 401, path
        assert http(addr, path, people["reader"])[0] == 200, path
    # /metrics is open by default (Prometheus scrapes it without credentials).
    assert http(addr, "/metrics")[0] == 200
    flip = dict(method="POST", body=json.dumps({"expect": "books"}).encode(),
                headers={"Content-Type": "application/json"})
    status, body = http(addr, "/api/aliases/shelf/flip", people["reader"], **flip)
    assert status == 403 and b"permission deny" in body, body
    # DNS rebinding: a foreign Host is refused before anything else.
    status, _ = http(addr, "/api/status", people["root"], headers={"Host": "evil.example"})
    assert status == 403
    # Cross-origin POST refused even with credentials.
    cross = dict(flip, headers={**flip["headers"], "Origin": "http://evil.example"})
    status, _ = http(addr, "/api/aliases/shelf/flip", people["root"], **cross)
    assert status == 403
    # The admin may flip (the alias is not mirrored: refused for that reason, not for rights).
    status, body = http(addr, "/api/aliases/shelf/flip", people["boss"], **flip)
    assert status == 400 and b"not mirrored" in body, body
