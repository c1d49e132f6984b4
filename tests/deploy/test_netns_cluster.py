"""The chart's cluster mode forms a serving cluster across a network.

The chart is rendered by helm with cluster values; every StatefulSet's pods
run as processes of the quiver binary (the image's entrypoint), each in its
own network namespace with its own address, its name and every other pod's
resolved as cluster DNS would (/etc/hosts per namespace), its environment,
volumes and user as the kubelet would give them (netns.py). The object store
is a real S3 server (s3s-fs) in a pod of its own, its credentials from the
Secret the chart renders. Then: every pod becomes ready by its own readiness
probe, pymilvus creates, inserts and searches through the proxy's address,
every pod serves /metrics, and readiness is real: with the coords gone a
datanode's /readyz says so, and the cluster serves again once they are back.

Needs root (network namespaces, bind mounts), iproute2, util-linux and
s3s-fs (`.ci/run` installs it; S3S_FS names another binary)."""

import os
import random
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import netns
from conftest import ROOT, by_kind, docs, render

NAMESPACE = "quiver-test"
KEY, SECRET, BUCKET = "quiver-ak", "quiver-sk", "quiver"
S3_HOST = f"s3.{NAMESPACE}.svc.cluster.local"


def s3s_fs() -> Path:
    for cand in (os.environ.get("S3S_FS"), shutil.which("s3s-fs"), Path.home() / ".cargo/bin/s3s-fs"):
        if cand and Path(cand).is_file():
            return Path(cand)
    pytest.fail("s3s-fs is needed (cargo install s3s-fs@0.14.1 --features binary --locked)")


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("setpriv"):
        pytest.fail("the network-namespace test needs root, iproute2 and util-linux (DEPLOY_NETNS=0 skips it)")
    binary = Path(os.environ["QUIVER_BIN"]).resolve()
    # Not under /tmp: every pod mounts its own /tmp over it.
    work = Path(tempfile.mkdtemp(prefix="deploy-pods-", dir=ROOT / "target"))
    os.chmod(work, 0o755)
    # The "image": the binary where the pods' user can run it.
    image = work / "quiver"
    shutil.copy2(binary, image)
    os.chmod(image, 0o755)
    manifests = docs(
        render(
            "mode=cluster",
            f"objectStore.endpoint=http://{S3_HOST}:9000",
            "objectStore.allowHttp=true",
            f"objectStore.bucket={BUCKET}",
            f"objectStore.accessKeyId={KEY}",
            f"objectStore.secretAccessKey={SECRET}",
            "proxy.replicas=1",
            # The test's processes share 2 cores: keep each node small.
            "datanode.config.index_threads=1",
            "querynode.config.search_threads=2",
            namespace=NAMESPACE,
        )
    )
    configmaps = by_kind(manifests, "ConfigMap")
    secrets = by_kind(manifests, "Secret")
    sets = by_kind(manifests, "StatefulSet")
    pods, index = {}, 10
    for role in ("coord", "datanode", "querynode", "proxy"):
        sts = sets[f"q-quiver-{role}"]
        pods[role] = netns.pods_of(sts, index, NAMESPACE)
        index += 10
    everyone = [p for ps in pods.values() for p in ps]
    service = by_kind(manifests, "Service")
    hosts = "".join(f"{p.ip} {p.name}.{p.name.rsplit('-', 1)[0]}.{NAMESPACE}.svc.cluster.local\n" for p in everyone)
    hosts += f"{netns.SUBNET}.2 {S3_HOST}\n"
    # The client Service (a ClusterIP in Kubernetes): here, the proxy's address.
    hosts += f"{pods['proxy'][0].ip} {next(iter(n for n in service if n == 'q-quiver'))}.{NAMESPACE}.svc.cluster.local\n"
    net = netns.Network()
    try:
        s3 = net.add(2, hosts)
        objects = work / "s3"
        (objects / BUCKET).mkdir(parents=True)
        s3_proc = netns.run_in(
            s3, [], None, {"PATH": "/usr/bin:/bin"},
            [str(s3s_fs()), "--host", "0.0.0.0", "--port", "9000", "--access-key", KEY, "--secret-key", SECRET, str(objects)],
            work / "s3.log",
        )
        for p in everyone:
            net.add(p.index, hosts)
        # Nodes first: they wait for the coords (a pod that starts early must
        # not crash-loop), then the coords.
        for role in ("datanode", "querynode", "proxy", "coord"):
            for p in pods[role]:
                netns.start_pod(p, image, work, configmaps, secrets)
        yield {"pods": pods, "all": everyone, "work": work, "image": image, "configmaps": configmaps, "secrets": secrets}
    finally:
        for p in everyone:
            netns.stop_pod(p)
        if "s3_proc" in locals():
            os.killpg(s3_proc.pid, signal.SIGKILL)
        net.close()
        for f in sorted(work.glob("*.log")):
            print(f"--- {f.name} (tail)\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)


def wait_ready(c, timeout=120):
    for p in c["all"]:
        netns.wait_until(f"{p.name} ready (its readinessProbe)", lambda p=p: netns.probe(p)[0], timeout, c["all"])


def test_every_pod_becomes_ready_by_its_own_probe(cluster):
    wait_ready(cluster)
    for p in cluster["all"]:
        ok, answer = netns.probe(p, "livenessProbe")
        assert ok, f"{p.name}: {answer}"


def test_pymilvus_creates_inserts_and_searches_through_the_proxy(cluster):
    from pymilvus import DataType, MilvusClient

    wait_ready(cluster)
    proxy = cluster["pods"]["proxy"][0]
    client = MilvusClient(uri=f"http://{proxy.ip}:{proxy.port}")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    client.create_collection("items", schema=schema, index_params=index)
    rng = random.Random(7)
    rows = [{"id": i, "v": [rng.random() for _ in range(8)]} for i in range(500)]
    assert client.insert("items", rows)["insert_count"] == 500
    client.load_collection("items")
    hits = client.search("items", data=[rows[123]["v"]], limit=3, consistency_level="Strong")
    assert hits[0][0]["id"] == 123, hits
    count = client.query("items", filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert count[0]["count(*)"] == 500
    client.close()


def test_every_pod_serves_metrics(cluster):
    wait_ready(cluster)
    for p in cluster["all"]:
        status, body = netns.http_get(p.ip, p.port, "/metrics")
        assert status == 200 and "quiver_process_resident_memory_bytes" in body, f"{p.name}: {status}"
    proxy = cluster["pods"]["proxy"][0]
    _, body = netns.http_get(proxy.ip, proxy.port, "/metrics")
    assert 'quiver_rpc_requests_total{code="0",method="Insert",service="MilvusService"}' in body


def test_readiness_is_real_coords_gone_then_back(cluster):
    wait_ready(cluster)
    coords = cluster["pods"]["coord"]
    datanode = cluster["pods"]["datanode"][0]
    for p in coords:
        netns.stop_pod(p, signal.SIGKILL)
    proxy = cluster["pods"]["proxy"][0]
    for pod, reason in ((datanode, "heartbeats to coord"), (proxy, "coord's metadata")):
        netns.wait_until(
            f"{pod.name} not ready without coords",
            lambda pod=pod, reason=reason: (lambda r: not r[0] and reason in r[1])(netns.probe(pod)),
            30,
        )
    for p in coords:
        netns.start_pod(p, cluster["image"], cluster["work"], cluster["configmaps"], cluster["secrets"])
    wait_ready(cluster)
    from pymilvus import MilvusClient

    client = MilvusClient(uri=f"http://{proxy.ip}:{proxy.port}")
    count = client.query("items", filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert count[0]["count(*)"] == 500
    client.close()
