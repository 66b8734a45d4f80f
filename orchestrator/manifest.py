"""What a run records about itself so that it can be reproduced and its results trusted."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys

from editfleet_common.launch import REPO_ROOT

ORCHESTRATOR_PACKAGES = ("grpcio", "protobuf", "click", "tqdm", "pyyaml", "pillow", "numpy", "kubernetes")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_state() -> dict:
    def git(*args):
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None}
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def orchestrator_packages() -> dict:
    out = {"python": platform.python_version()}
    for name in ORCHESTRATOR_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def host() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}


def command_line() -> list[str]:
    program = os.path.basename(sys.argv[0])
    if program == "__main__.py":
        program = "python -m orchestrator"
    return [program, *sys.argv[1:]]


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for every differing leaf."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
