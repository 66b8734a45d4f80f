"""Render k8s/ kustomizations the way a user applies them (`kubectl kustomize`), for the k8s tests."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "k8s" / "base"
OVERLAY_4GPU = REPO / "k8s" / "overlays" / "4gpu"


def _kustomize_command(path: Path) -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(path)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    raise RuntimeError("the k8s tests need kubectl (or kustomize) on PATH to render k8s/")


@functools.lru_cache(maxsize=None)
def render(path: Path) -> tuple[dict, ...]:
    done = subprocess.run(_kustomize_command(path), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"kustomize failed for {path}:\n{done.stderr}")
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def find(docs, kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def arg_value(args: list[str], flag: str) -> str | None:
    """`--flag=value` or `--flag value` in a container's args."""
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None
