"""Shared helpers of the chart tests: render the chart with the real helm."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "quiver"
BIN = Path(os.environ.get("DEPLOY_VENV_BIN", Path(sys.executable).parent))


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "helm"), *args], capture_output=True, text=True, check=check)


def render(*sets: str, values: list[Path] = (), namespace: str = "default", release: str = "q") -> str:
    """`helm template` of the chart: the manifests as one YAML stream."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    out = helm(*args, check=False)
    if out.returncode != 0:
        raise RenderError(out.stderr.strip())
    return out.stdout


class RenderError(Exception):
    pass


def docs(stream: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(stream) if d]


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return BIN / "helm"
