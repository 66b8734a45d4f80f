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
from editfleet_common.version import __version__

ORCHESTRATOR_PACKAGES = ("grpcio", "protobuf", "click", "tqdm", "pyyaml", "pillow", "numpy", "pyarrow", "kubernetes")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


DIRTY_PATHS_SHOWN = 5


def git_state(root: os.PathLike | str = REPO_ROOT) -> dict:
    """The checkout's commit and whether the code that runs differs from it.

    Untracked files count as dirty (a new module the run imports is code that ran); files git ignores
    (.venv/, models/, gen/, runs/) do not. "normal" untracked mode reports a new directory as one
    entry without walking it, and git never descends into ignored directories, so this stays cheap.
    """
    def git(*args):
        # --no-optional-locks: status would otherwise refresh the index under index.lock and could
        # make a concurrent `git commit` in the same checkout fail.
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                              capture_output=True, text=True, timeout=10)
        return done.stdout.strip("\n") if done.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        if top is not None and os.path.realpath(top) != os.path.realpath(root):
            # Installed (site-packages) inside someone else's repository: its commit is not ours.
            return {"commit": None, "dirty": None}
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=normal")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None}
    if status is None:
        return {"commit": commit, "dirty": None}
    # One line per changed path ("?? new.py", " M changed.py"); names with odd characters come quoted.
    changes = [line for line in status.split("\n") if line.strip()]
    state = {"commit": commit, "dirty": bool(changes)}
    if changes:
        state["dirty_count"] = len(changes)
        state["dirty_paths"] = changes[:DIRTY_PATHS_SHOWN]
    return state


def orchestrator_packages() -> dict:
    out = {"python": platform.python_version(), "editfleet": __version__}
    for name in ORCHESTRATOR_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def host() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}


def _process_start(pid: int) -> str | None:
    """The process's start time as the kernel counts it (/proc/<pid>/stat field 22), which tells a
    process from a later one given the same pid; None where unknown (no /proc, no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def new_session() -> dict:
    """A session's entry as it starts: "running", and which process on which host runs it (so that a
    later start can tell one that was killed outright from one still going)."""
    pid = os.getpid()
    session = {"started": now(), "status": "running", "pid": pid, "host": socket.gethostname()}
    started = _process_start(pid)
    if started is not None:
        session["pid_start"] = started
    return session


def _gone(session: dict) -> bool:
    """Whether the process a session names no longer exists (only where that can be told: this host)."""
    pid = session.get("pid")
    if not isinstance(pid, int) or session.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's: EPERM)
        pass
    recorded = session.get("pid_start")
    return recorded is not None and _process_start(pid) not in (None, recorded)  # the pid was given again


def settle_sessions(manifest: dict) -> int:
    """Mark each earlier session left "running" by a process that no longer exists (killed outright:
    SIGKILL, a power cut, an OOM kill) as "interrupted"; the number marked. Sessions of another host,
    or written before sessions named their process, are left as they are."""
    marked = 0
    for session in manifest.get("sessions") or []:
        if session.get("status") == "running" and _gone(session):
            session.update(status="interrupted", interrupted_noted=now())
            marked += 1
    return marked


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
