"""A tiny kubelet for the chart's tests: runs rendered pods as processes, each in
its own network namespace (its own IP on a bridge, like a pod on a node), with
the pod's environment resolved as Kubernetes resolves it (fieldRef, secretKeyRef,
$(VAR) expansion), its volumes bind-mounted at their mount paths in a private
mount namespace, run as the pod's user, and its readiness probe asked over the
network the way the kubelet asks it."""

from __future__ import annotations

import base64
import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "qvbr0"
SUBNET = "10.77.0"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {out.stderr.strip()}")
    return out


@dataclass
class Pod:
    name: str
    index: int  # the pod's slot on the test network (its IP and interface names)
    labels: dict[str, str]
    namespace: str
    spec: dict  # the pod template's spec
    claims: list[str] = field(default_factory=list)  # volumeClaimTemplates' names
    proc: subprocess.Popen | None = None
    root: Path | None = None

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{self.index}"

    @property
    def netns(self) -> str:
        return f"qv{self.index}"

    @property
    def container(self) -> dict:
        return self.spec["containers"][0]

    @property
    def port(self) -> int:
        return self.container["ports"][0]["containerPort"]


def pods_of(statefulset: dict, first_index: int, namespace: str) -> list[Pod]:
    """The pods a StatefulSet controller would create in `namespace` (where
    the release is installed): names <sts>-<ordinal> from spec.ordinals.start,
    each labelled with its pod index."""
    spec = statefulset["spec"]
    start = spec.get("ordinals", {}).get("start", 0)
    tpl = spec["template"]
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
    pods = []
    for i in range(spec["replicas"]):
        ordinal = start + i
        labels = dict(tpl["metadata"]["labels"])
        labels["apps.kubernetes.io/pod-index"] = str(ordinal)
        labels["statefulset.kubernetes.io/pod-name"] = f"{statefulset['metadata']['name']}-{ordinal}"
        pods.append(
            Pod(
                name=f"{statefulset['metadata']['name']}-{ordinal}",
                index=first_index + i,
                labels=labels,
                namespace=statefulset["metadata"].get("namespace", namespace),
                spec=tpl["spec"],
                claims=claims,
            )
        )
    return pods


def resolve_env(pod: Pod, secrets: dict[str, dict]) -> dict[str, str]:
    """The container's environment as the kubelet builds it."""
    env: dict[str, str] = {}
    for e in pod.container.get("env", []):
        if "value" in e:
            # $(VAR) names an earlier variable; $$ escapes.
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
        else:
            src = e["valueFrom"]
            if "fieldRef" in src:
                path = src["fieldRef"]["fieldPath"]
                m = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
                if path == "metadata.name":
                    value = pod.name
                elif path == "metadata.namespace":
                    value = pod.namespace
                elif m:
                    value = pod.labels[m.group(1)]
                else:
                    raise ValueError(f"fieldRef {path} not supported by the test kubelet")
            elif "secretKeyRef" in src:
                ref = src["secretKeyRef"]
                secret = secrets[ref["name"]]
                if ref["key"] in secret.get("stringData", {}):
                    value = secret["stringData"][ref["key"]]
                else:
                    value = base64.b64decode(secret["data"][ref["key"]]).decode()
            else:
                raise ValueError(f"env source {src} not supported by the test kubelet")
        env[e["name"]] = value
    return env


class Network:
    """A bridge in the root namespace and one namespace per pod; `hosts` is
    every pod's /etc/hosts (what cluster DNS would answer)."""

    def __init__(self) -> None:
        self.spaces: list[str] = []
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")

    def add(self, index: int, hosts: str) -> str:
        ns, host_end, pod_end = f"qv{index}", f"qvh{index}", f"qvp{index}"
        sh("ip", "netns", "add", ns)
        self.spaces.append(ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", pod_end)
        sh("ip", "link", "set", pod_end, "netns", ns)
        sh("ip", "link", "set", host_end, "master", BRIDGE, "up")
        sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{index}/24", "dev", pod_end)
        sh("ip", "-n", ns, "link", "set", pod_end, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("127.0.0.1 localhost\n" + hosts)
        return ns

    def close(self) -> None:
        for ns in self.spaces:
            sh("ip", "netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        sh("ip", "link", "del", BRIDGE, check=False)


def run_in(ns: str, mounts: list[tuple[Path, str]], user: int | None, env: dict[str, str], argv: list[str], log: Path) -> subprocess.Popen:
    """Starts argv in namespace `ns` with each (source, path) bind-mounted
    (private to this process tree), as `user`, with exactly `env`."""
    steps = []
    for src, dst in mounts:
        steps.append(f"mkdir -p {shlex.quote(dst)} && mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}")
    drop = f"setpriv --reuid {user} --regid {user} --clear-groups " if user is not None else ""
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    cmd = " && ".join(steps + [f"exec {drop}env -i {env_args} {' '.join(shlex.quote(a) for a in argv)}"])
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", cmd],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_pod(pod: Pod, binary: Path, workdir: Path, configmaps: dict, secrets: dict) -> None:
    """Prepares the pod's volumes and starts its container (the image's
    entrypoint is the quiver binary)."""
    pod.root = workdir / pod.name
    vols = {v["name"]: v for v in pod.spec.get("volumes", [])}
    user = pod.spec.get("securityContext", {}).get("runAsUser")
    mounts = []
    for vm in pod.container.get("volumeMounts", []):
        src = pod.root / vm["name"]
        if not src.exists():
            src.mkdir(parents=True)
            vol = vols.get(vm["name"])
            if vol and "configMap" in vol:
                data = configmaps[vol["configMap"]["name"]]["data"]
                for item in vol["configMap"].get("items", [{"key": k, "path": k} for k in data]):
                    (src / item["path"]).write_text(data[item["key"]])
            elif vol and "secret" in vol:
                secret = secrets[vol["secret"]["secretName"]]
                for k, v in secret.get("stringData", {}).items():
                    (src / k).write_text(v)
            elif not vol and vm["name"] not in pod.claims:
                raise ValueError(f"{pod.name}: volume {vm['name']} is not defined")
            if user is not None:
                shutil.chown(src, user, user)  # fsGroup: the pod's user owns its volumes
                for f in src.iterdir():
                    shutil.chown(f, user, user)
        mounts.append((src, vm["mountPath"]))
    env = resolve_env(pod, secrets)
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    argv = [str(binary), *pod.container.get("args", [])]
    pod.proc = run_in(pod.netns, mounts, user, env, argv, workdir / f"{pod.name}.log")


def stop_pod(pod: Pod, sig: int = signal.SIGTERM) -> None:
    if pod.proc and pod.proc.poll() is None:
        os.killpg(pod.proc.pid, sig)
        try:
            pod.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(pod.proc.pid, signal.SIGKILL)
            pod.proc.wait()


def http_get(ip: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """What an httpGet probe (or a Prometheus scrape) gets: status and body;
    (0, reason) when nothing answers."""
    try:
        conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def probe(pod: Pod, which: str = "readinessProbe") -> tuple[bool, str]:
    """The pod's probe as the kubelet runs it."""
    p = pod.container[which]
    if "httpGet" in p:
        g = p["httpGet"]
        status, body = http_get(pod.ip, g["port"], g["path"])
        return 200 <= status < 400, f"{status} {body.strip()}"
    raise ValueError(f"{pod.name}: {which} is not httpGet")


def wait_until(what: str, check, timeout: float, pods: list[Pod] = ()) -> None:
    """Polls `check` until true; fails naming `what` (and a dead pod, if any)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for p in pods:
            if p.proc and p.proc.poll() is not None:
                raise AssertionError(f"{what}: pod {p.name} exited with {p.proc.returncode}")
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")
