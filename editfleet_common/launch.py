"""Start a service as a child process and wait until it is healthy (tests and the local fleet)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .channels import make_channel, wait_serving

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_python(service: str) -> str:
    """The interpreter of a service's own environment (.venv/<service>), else this one."""
    candidate = REPO_ROOT / ".venv" / service / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


PARENT_PID_ENV = "EDITFLEET_DIE_WITH_PARENT_PID"


def die_with_parent_if_asked() -> None:
    """First thing in a service's main: when its launcher asked (ServiceProcess(die_with_parent=True)),
    ask the kernel for SIGTERM once the launching thread dies (Linux; a no-op elsewhere).

    Done here, in the child, not in a preexec_fn between fork and exec: Python code there is unsafe in
    a parent full of gRPC threads (a restarted editor once died in that window, its log holding only a
    gRPC epoll error), and without a preexec_fn the child is spawned without running fork handlers."""
    parent = os.environ.pop(PARENT_PID_ENV, None)  # not inherited by the service's own children
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != int(parent):  # the launcher died before the request took effect
        os._exit(1)


@dataclass
class ServiceProcess:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen | None = None
    # Linux: the child gets SIGTERM when the thread that started it dies (even by SIGKILL), so a
    # killed orchestrator leaves no editors behind. Start such children from a long-lived thread.
    die_with_parent: bool = False
    # Variables of this environment the child does not inherit (an API key it has no use for).
    env_drop: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        env = {**{k: v for k, v in os.environ.items() if k not in self.env_drop}, **self.env, "PYTHONUNBUFFERED": "1"}
        if self.die_with_parent:
            env[PARENT_PID_ENV] = str(os.getpid())  # the service arms it: die_with_parent_if_asked()
        if self.log_path:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A session of its own: a Ctrl-C at the terminal reaches the orchestrator, which then
        # stops its children in order instead of them all dying at once.
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout: float = 300.0) -> None:
        channel = make_channel(self.address)
        try:
            wait_serving(channel, timeout, alive=self.alive)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name}: {exc}{self._log_tail()}") from None
        finally:
            channel.close()

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, wait up to grace, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _log_tail(self, n: int = 30) -> str:
        if not self.log_path or not Path(self.log_path).exists():
            return ""
        lines = Path(self.log_path).read_text(errors="replace").splitlines()[-n:]
        return "\n--- last log lines (" + str(self.log_path) + ") ---\n" + "\n".join(lines)


def wait_all_healthy(procs: list[ServiceProcess], timeout: float) -> list[str]:
    """Wait for every process at once (each in its own thread); returns their errors, [] when all serve."""
    errors: list[str] = []

    def wait(proc: ServiceProcess) -> None:
        try:
            proc.wait_healthy(timeout)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=wait, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
