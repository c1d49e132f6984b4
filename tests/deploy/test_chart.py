"""The Helm chart, rendered by the real helm and checked against the Kubernetes
API schemas (kubernetes-validate, offline), and the Dockerfile, linted.

What is asserted: every manifest of every supported combination of values is
valid for the oldest (1.28, the chart's kubeVersion) and a current Kubernetes;
the role configs the chart renders are the TOML the binary reads; bad values
fail the render with a message naming the value."""

import subprocess
import tomllib

import pytest

from conftest import BIN, CHART, ROOT, RenderError, by_kind, docs, helm, render

CLUSTER = CHART / "ci" / "cluster-values.yaml"
SECURE = (
    "tls.enabled=true",
    "tls.secretName=quiver-front-tls",
    "tls.clientCa=true",
    "auth.enabled=true",
    "auth.rootPasswordSecret=quiver-root",
)
CASES = {
    "standalone": ((), []),
    "standalone-secure": (SECURE, []),
    "cluster": ((), [CLUSTER]),
    "cluster-secure": (SECURE + ("clusterTls.enabled=true", "clusterTls.secretName=quiver-cluster-tls"), [CLUSTER]),
    "cluster-inline-credentials": (
        ("mode=cluster", "objectStore.accessKeyId=AK", "objectStore.secretAccessKey=SK", "podDisruptionBudget.enabled=false"),
        [],
    ),
}


@pytest.mark.parametrize("values", [[], [CLUSTER]], ids=["default", "cluster"])
def test_helm_lint(values):
    args = ["lint", str(CHART), "--strict"]
    for v in values:
        args += ["-f", str(v)]
    out = helm(*args, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("k8s", ["1.28.0", "1.31.0"])
def test_every_manifest_is_valid_kubernetes(case, k8s, tmp_path):
    sets, values = CASES[case]
    stream = render(*sets, values=values)
    f = tmp_path / "manifests.yaml"
    f.write_text(stream)
    out = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", k8s, "--quiet", str(f)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    kinds = {d["kind"] for d in docs(stream)}
    assert {"Service", "StatefulSet"} <= kinds, kinds


def test_standalone_is_one_pod_with_a_volume_and_real_probes():
    m = docs(render())
    (sts,) = by_kind(m, "StatefulSet").values()
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][0] == "standalone"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    env = {e["name"]: e.get("value") for e in c["env"]}
    # 85% of the 4Gi memory limit: writes are refused before the kernel kills the pod.
    assert env["QUIVER_MAX_MEMORY_MIB"] == str(4096 * 85 // 100)
    svc = by_kind(m, "Service")["q-quiver"]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "standalone"


def test_cluster_roles_read_the_toml_the_binary_reads():
    m = docs(render(values=[CLUSTER]))
    cm = by_kind(m, "ConfigMap")["q-quiver-config"]["data"]
    configs = {k.removesuffix(".toml"): tomllib.loads(v) for k, v in cm.items()}
    assert set(configs) == {"coord", "datanode", "querynode", "proxy"}
    coord = configs["coord"]
    assert [x["id"] for x in coord["members"]] == [1, 2, 3]
    assert coord["members"][0]["addr"] == "q-quiver-coord-1.q-quiver-coord.default.svc.cluster.local:7100"
    for role in ("datanode", "querynode", "proxy"):
        assert configs[role]["coords"] == [x["addr"] for x in coord["members"]], role
    store = configs["datanode"]["store"]
    assert store == {
        "kind": "s3",
        "bucket": "quiver",
        "region": "us-east-1",
        "endpoint": "http://minio.storage.svc.cluster.local:9000",
        "allow_http": True,
    }
    assert "access_key_id" not in store  # credentials come from the Secret, not the ConfigMap
    assert configs["datanode"]["datanode"]["max_memory_mib"] == 4096 * 85 // 100
    sts = by_kind(m, "StatefulSet")
    starts = {n: s["spec"]["ordinals"]["start"] for n, s in sts.items()}
    assert starts == {"q-quiver-coord": 1, "q-quiver-datanode": 100, "q-quiver-querynode": 200, "q-quiver-proxy": 300}
    dn = sts["q-quiver-datanode"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in dn["env"]}
    assert env["QUIVER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "quiver-object-store"
    assert env["QUIVER_ADVERTISE"]["value"] == "$(POD_NAME).q-quiver-datanode.$(POD_NAMESPACE).svc.cluster.local:7200"
    pdb = by_kind(m, "PodDisruptionBudget")
    assert pdb["q-quiver-coord"]["spec"]["minAvailable"] == 2  # a quorum of 3
    assert all(p["spec"].get("maxUnavailable") == 1 for n, p in pdb.items() if n != "q-quiver-coord")
    headless = by_kind(m, "Service")["q-quiver-coord"]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True


def test_cluster_tls_mounts_the_secret_and_probes_the_port():
    sets, values = CASES["cluster-secure"]
    m = docs(render(*sets, values=values))
    cm = by_kind(m, "ConfigMap")["q-quiver-config"]["data"]
    dn = tomllib.loads(cm["datanode.toml"])
    assert dn["cluster_tls"] == {
        "cert": "/etc/quiver/cluster-tls/tls.crt",
        "key": "/etc/quiver/cluster-tls/tls.key",
        "ca": "/etc/quiver/cluster-tls/ca.crt",
    }
    proxy = tomllib.loads(cm["proxy.toml"])
    assert proxy["tls"]["ca"] == "/etc/quiver/tls/ca.crt" and proxy["auth"]["enabled"] is True
    sts = by_kind(m, "StatefulSet")
    c = sts["q-quiver-querynode"]["spec"]["template"]["spec"]["containers"][0]
    # An internal port under mutual TLS cannot answer a kubelet's plain HTTP GET.
    assert "tcpSocket" in c["readinessProbe"], c["readinessProbe"]
    vols = {v["name"]: v for v in sts["q-quiver-querynode"]["spec"]["template"]["spec"]["volumes"]}
    assert vols["cluster-tls"]["secret"]["secretName"] == "quiver-cluster-tls"


@pytest.mark.parametrize(
    "sets,message",
    [
        (("mode=bogus",), "mode must be standalone or cluster"),
        (("mode=cluster", "coord.replicas=2"), "coord.replicas must be odd"),
        (("mode=cluster", "datanode.idBase=2"), "datanode.idBase 2 overlaps the coords"),
        (("mode=cluster", "datanode.replicas=150"), "run into querynode.idBase"),
        (("mode=cluster", "objectStore.bucket="), "objectStore.bucket is required"),
        (("tls.enabled=true",), "tls.secretName is required"),
        (("mode=cluster", "clusterTls.enabled=true"), "clusterTls.secretName is required"),
        (("standalone.resources.limits.memory=4G",), "use Mi or Gi"),
    ],
)
def test_bad_values_fail_naming_the_value(sets, message):
    with pytest.raises(RenderError) as e:
        render(*sets)
    assert message in str(e.value)


def test_dockerfile_is_multi_stage_non_root_and_lints_clean():
    text = (ROOT / "Dockerfile").read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and " AS build" in froms[0], froms
    assert "USER 65532:65532" in text
    assert "cargo build --release --locked -p quiver-server --bin quiver" in text
    assert "target/" in (ROOT / ".dockerignore").read_text().split()
    out = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_tracing_endpoint_reaches_every_container(mode):
    m = docs(render(f"mode={mode}", "tracing.otlpEndpoint=http://otel.observability:4317", "tracing.sampleRatio=0.25"))
    containers = [c for s in by_kind(m, "StatefulSet").values() for c in s["spec"]["template"]["spec"]["containers"]]
    assert containers
    for c in containers:
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["QUIVER_OTLP_ENDPOINT"] == "http://otel.observability:4317", c["name"]
        assert env["QUIVER_TRACE_SAMPLE_RATIO"] == "0.25", c["name"]
    # Off by default.
    assert "QUIVER_OTLP_ENDPOINT" not in render(f"mode={mode}")
