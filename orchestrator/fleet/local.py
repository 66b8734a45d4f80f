"""Services as local processes: one editor per GPU (its own CUDA_VISIBLE_DEVICES), or N editors on
the CPU, each with a fixed thread count so that results do not depend on N; then one scorer.

Each service runs in its own virtualenv (.venv/editor, .venv/scorer) and logs to <run>/logs/.
Children are started from one long-lived thread with a parent-death signal, so an orchestrator
killed outright takes its services with it.

Judge pre-start (judge.prestart, default on): when the editing phase begins, the scorer is started
with --stage-on-host: it imports, creates its CUDA context, loads the processor and reads the
weights into (pinned) host memory while the editors work, then waits. Once the editors have exited,
scorer_go() sends it SIGUSR1 and it only has to copy the weights to the GPU and warm up. The cost is
host RAM of about the judge's weight size for the whole editing phase (plus its CUDA context, a few
hundred MB, on the judge's GPU). Started at the beginning of editing rather than near its end: the
remaining time of a dynamic queue is not known, and a judge not yet staged at the go signal would
make the swap slower than a normal start. A staged judge that dies is replaced by a normal start.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from editfleet_common import settings
from editfleet_common.channels import health_status, make_channel
from editfleet_common.launch import ServiceProcess, free_port, venv_python, wait_all_healthy

from .base import Endpoint, Fleet, FleetError

log = logging.getLogger(__name__)

MAX_RESTARTS_PER_EDITOR = 3
API_EDITOR = "API"  # the API editor's process (editor.backend openai-images / openai-chat-image); slots "API 1", ...
PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors", "grpcio",
            "protobuf", "pillow", "numpy")


class LocalFleet(Fleet):
    def __init__(self, config, logs_dir: Path, *, start_timeout: float = 900.0, stop_grace: float = 60.0):
        self.config = config
        self.logs_dir = Path(logs_dir)
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.editors: dict[str, ServiceProcess] = {}  # endpoint name -> process
        self.devices: dict[str, dict] = {}            # endpoint name -> how it runs
        self.restarts: dict[str, int] = {}
        self.scorer: ServiceProcess | None = None  # the judge, or its replica 0 ("scorer")
        self.replicas: dict[str, ServiceProcess] = {}  # judge replicas 1.. ("scorer-1", ...), judge.replicas > 1
        self._scorer_staged = False  # self.scorer was started with --stage-on-host and not yet told to go
        self._scorer_mode = ""
        self._go_sent = False
        self.closing = False  # set by close(): no restarts while everything is being stopped
        self._lock = threading.Lock()
        self._pids_lock = threading.Lock()  # logs/processes.json writers
        # Parent-death signals fire when the *thread* that forked dies: fork from one that lives on.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")

    # -- helpers -------------------------------------------------------------------------------
    def _spawn(self, proc: ServiceProcess) -> ServiceProcess:
        self._spawner.submit(proc.start).result()
        self._record_pids()
        return proc

    def _record_pids(self) -> None:
        """logs/processes.json: which pid serves which device right now (for operators and tests)."""
        # Worker threads restart editors concurrently: one writer at a time, or one thread's rename
        # takes another's temporary file away and its restart fails (editor lost, process left up).
        with self._pids_lock:
            with self._lock:
                pids = self.pids()
            tmp = self.logs_dir / ".processes.json.tmp"
            tmp.write_text(json.dumps(pids, indent=2) + "\n")
            tmp.replace(self.logs_dir / "processes.json")

    def _editor_process(self, name: str) -> ServiceProcess:
        e, device = self.config.editor, self.devices[name]
        port = free_port()
        argv = [venv_python("editor"), "-m", "editor_service", "--device", device["device"], "--port", str(port),
                *settings.argv(settings.EDITOR_SETTINGS, e), *e.server_args]
        slug = name.lower().replace(" ", "-")
        return ServiceProcess(
            name=f"editor {name}", argv=argv, port=port, env=device["env"], env_drop=self._api_key_vars(),
            log_path=self.logs_dir / f"editor-{slug}.log", die_with_parent=True,
        )

    def _api_key_vars(self) -> tuple[str, ...]:
        """The API key's variable (judge.api_key_env, and the default's): only an API judge reads it, so
        editors and local judges start without it."""
        return tuple({self.config.judge.api_key_env, settings.API_KEY_ENV.service_default} - {"", None})

    def _wait_all(self, procs: list[ServiceProcess]) -> None:
        errors = wait_all_healthy(procs, self.start_timeout)
        if errors:
            raise FleetError("\n\n".join(errors))

    # -- editors -------------------------------------------------------------------------------
    def start_editors(self, count: int) -> list[Endpoint]:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.config.api_editor:
            return self._start_api_editor(count)
        gpus = self.config.devices.gpus
        if gpus:
            if count > len(gpus):
                raise FleetError(f"{count} editors asked for, but only GPUs {gpus} given")
            for gpu in gpus[:count]:
                self.devices[f"GPU {gpu}"] = {"device": "cuda:0", "env": {"CUDA_VISIBLE_DEVICES": str(gpu)}, "gpu": gpu}
        else:
            for i in range(count):
                self.devices[f"CPU {i}"] = {"device": "cpu", "env": {"CUDA_VISIBLE_DEVICES": ""}}
        procs = []
        for name in self.devices:
            proc = self._editor_process(name)
            self.editors[name] = proc
            procs.append(self._spawn(proc))
        try:
            self._wait_all(procs)
        except FleetError:
            self.stop_editors()
            raise
        return [Endpoint(name, proc.address) for name, proc in self.editors.items()]

    def editor_alive(self, endpoint: Endpoint) -> bool:
        proc = self.editors.get(API_EDITOR if endpoint.name in self._api_slots else endpoint.name)
        return proc is not None and proc.address == endpoint.address and proc.alive()

    def restart_editor(self, endpoint: Endpoint) -> Endpoint | None:
        if endpoint.name in self._api_slots:
            return self._restart_api_editor(endpoint)
        with self._lock:
            if self.closing:
                return None
            count = self.restarts.get(endpoint.name, 0)
            if count >= MAX_RESTARTS_PER_EDITOR:
                return None
            self.restarts[endpoint.name] = count + 1
            old = self.editors.get(endpoint.name)
        if old is not None:
            old.stop(grace=5.0)
        return self._start_in_place(self.editors, endpoint.name, self._editor_process(endpoint.name))

    def stop_editors(self) -> None:
        self._stop_all(list(self.editors.values()))

    # -- an API editor: one process, max_concurrency request slots -------------------------------
    _api_slots: frozenset = frozenset()  # the slots' endpoint names ("API 1", ...), all served by one process

    def _api_editor_process(self) -> ServiceProcess:
        """The editor service in API mode (editor.backend openai-images / openai-chat-image): no device, no
        torch. The key reaches it only as the environment it inherits; its argv names the variable."""
        e = self.config.editor
        port = free_port()
        argv = [venv_python("editor"), "-m", "editor_service", "--port", str(port),
                *settings.argv(settings.API_EDITOR_SETTINGS, e), *e.server_args]
        drop = tuple({self.config.judge.api_key_env} - {e.api_key_env, "", None})  # the judge's key is not its own
        return ServiceProcess(name=f"editor {API_EDITOR}", argv=argv, port=port, env={"CUDA_VISIBLE_DEVICES": ""},
                              env_drop=drop, log_path=self.logs_dir / "editor-api.log", die_with_parent=True)

    def _start_api_editor(self, count: int) -> list[Endpoint]:
        """One editor process whose worker runs editor.max_concurrency requests at once, and `count` slots
        (endpoints of that one address): the dispatcher's queue keeps each slot busy."""
        self._api_restart_lock = threading.Lock()
        self.devices[API_EDITOR] = {"device": "api", "slots": count, "env": {}}
        self._api_slots = frozenset(f"{API_EDITOR} {i + 1}" for i in range(count))
        proc = self._api_editor_process()
        self.editors[API_EDITOR] = proc
        self._spawn(proc)
        try:
            self._wait_all([proc])
        except FleetError:
            self.stop_editors()
            raise
        return [Endpoint(f"{API_EDITOR} {i + 1}", proc.address) for i in range(count)]

    def _restart_api_editor(self, endpoint: Endpoint) -> Endpoint | None:
        """A slot whose requests kept failing: the process is started again only where it exited (a
        refused key stops it) and no other slot restarted it already; a live one is the provider's
        trouble, not the process's: the slot goes on with it."""
        with self._api_restart_lock:
            proc = self.editors.get(API_EDITOR)
            if self.closing:
                return None
            if proc is not None and proc.alive():
                return Endpoint(endpoint.name, proc.address)
            count = self.restarts.get(API_EDITOR, 0)
            if count >= MAX_RESTARTS_PER_EDITOR:
                return None
            self.restarts[API_EDITOR] = count + 1
            if proc is not None:
                proc.stop(grace=5.0)
            return Endpoint(endpoint.name, self._start_in_place(self.editors, API_EDITOR, self._api_editor_process()).address)

    def _stop_all(self, procs: list[ServiceProcess]) -> None:
        # SIGTERM all at once, then wait for every one: the devices are free only when all have exited.
        threads = [threading.Thread(target=p.stop, args=(self.stop_grace,)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # -- scorer --------------------------------------------------------------------------------
    def _scorer_process(self, *, staged: bool, index: int = 0) -> ServiceProcess:
        """Judge replica `index` (0: the judge): on its GPUs of the run (`RunConfig.judge_replica_gpus`:
        devices.judge_gpu for a single judge, judge.gpus_per_replica each), else the CPU."""
        j = self.config.judge
        if j.backend == "openai":
            return self._api_scorer_process()
        gpus = self.config.judge_replica_gpus(index)
        device = ("cuda" if len(gpus) > 1 else "cuda:0") if gpus else "cpu"
        env = {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus) if gpus else ""}
        port = free_port()
        argv = [venv_python("scorer"), "-m", "scorer_service", "--device", device, "--port", str(port),
                *settings.argv((settings.BACKEND, *settings.judge_settings(j.backend)), j)]  # BACKEND: metrics (else the default)
        if staged:
            argv.append("--stage-on-host")
        argv += list(j.server_args)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        name = _replica_name(index)
        if index == 0:
            self.scorer_device = (f"GPU{'s' if len(gpus) > 1 else ''} {','.join(map(str, gpus))}" if gpus else "CPU")
        return ServiceProcess(name=name + (" (staged)" if staged else ""), argv=argv, port=port, env=env,
                              env_drop=self._api_key_vars(), log_path=self.logs_dir / f"{name}.log",
                              die_with_parent=True)

    def _api_scorer_process(self) -> ServiceProcess:
        """A scorer whose judge is an OpenAI-compatible endpoint: no device. The key reaches it only as
        the environment it inherits; its argv names the variable, never the value."""
        j = self.config.judge
        port = free_port()
        argv = [venv_python("scorer"), "-m", "scorer_service", "--port", str(port),
                *settings.argv(settings.API_JUDGE_SETTINGS, j), *j.server_args]
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.scorer_device = "API"
        return ServiceProcess(name="scorer", argv=argv, port=port, env={"CUDA_VISIBLE_DEVICES": ""},
                              log_path=self.logs_dir / "scorer.log", die_with_parent=True)

    def prestart_scorer(self) -> bool:
        if self.config.judge.backend in ("openai", "metrics"):
            return False  # nothing to stage: no weights, no device (metrics: backbones that load in seconds)
        if not self.config.judge.prestart or self.scorer is not None or self.closing:
            return False
        if self.config.judge.gpus_per_replica > 1:
            log.info("judge.gpus_per_replica %d: the judge is not staged in host memory (a staged judge moves to "
                     "one GPU); it loads once the editors are down", self.config.judge.gpus_per_replica)
            return False
        self.scorer = self._scorer_process(staged=True)
        self._spawn(self.scorer)  # assigned first: processes.json then lists the scorer
        self._scorer_staged = True
        self._go_sent = False
        return True

    def scorer_go(self) -> None:
        if self._scorer_staged:
            self._send_go()  # a dead staged judge is replaced in start_scorer

    def _send_go(self) -> None:
        if self._go_sent or not self.scorer.alive():
            return
        # SIGUSR1 kills a Python process that has no handler for it yet: the handler is in place once
        # the scorer's health server answers (normally long since, the editing phase took a while).
        channel = make_channel(self.scorer.address)
        try:
            deadline = time.monotonic() + self.start_timeout
            while self.scorer.alive() and time.monotonic() < deadline:
                if health_status(channel, timeout=1.0) in ("NOT_SERVING", "SERVING"):
                    self.scorer.proc.send_signal(signal.SIGUSR1)
                    self._go_sent = True
                    return
                time.sleep(0.05)
        finally:
            channel.close()

    def scorer_start_mode(self) -> str:
        return self._scorer_mode

    def start_scorer(self) -> Endpoint:
        if self._scorer_staged:
            self._scorer_staged = False
            staged, self._scorer_mode = self.scorer, "staged"
            try:
                self._send_go()
                if not self._go_sent:
                    raise RuntimeError(f"exited with code {staged.proc.poll()} while staged")
                staged.wait_healthy(self.start_timeout)
                return Endpoint("scorer", staged.address)
            except RuntimeError as exc:
                reason = str(exc).splitlines()[0]
                self._scorer_mode = f"normal start: the staged judge failed ({reason}; see {staged.log_path})"
                log.warning("the staged judge failed (%s); starting it normally", reason)
                staged.stop(grace=5.0)
        else:
            self._scorer_mode = "normal"
        self.scorer = self._scorer_process(staged=False)
        self._spawn(self.scorer)
        try:
            self.scorer.wait_healthy(self.start_timeout)
        except RuntimeError as exc:
            self.scorer.stop(grace=5.0)
            raise FleetError(str(exc)) from None
        return Endpoint("scorer", self.scorer.address)

    def start_scorers(self, count: int) -> list[Endpoint]:
        """Replica 0 as start_scorer() brings it up (staged or not); the others start meanwhile, each
        on its own GPU of the run (or on the CPU), and all are SERVING on return."""
        if count <= 1:
            return [self.start_scorer()]
        others = []
        for index in range(1, count):
            proc = self._scorer_process(staged=False, index=index)
            with self._lock:
                self.replicas[_replica_name(index)] = proc
            others.append(self._spawn(proc))
        try:
            first = self.start_scorer()
            self._wait_all(others)
        except FleetError:
            self.stop_scorer()
            raise
        return [first] + [Endpoint(name, proc.address) for name, proc in self.replicas.items()]

    def restart_scorer(self, endpoint: Endpoint) -> Endpoint | None:
        if self.closing:
            return None
        if endpoint.name == _replica_name(0):
            if self.scorer is not None:
                self._stop_all([self.scorer])
            return self.start_scorer()
        old = self.replicas.get(endpoint.name)
        if old is not None:
            old.stop(grace=5.0)
        proc = self._scorer_process(staged=False, index=int(endpoint.name.rsplit("-", 1)[1]))
        return self._start_in_place(self.replicas, endpoint.name, proc)

    def _start_in_place(self, registry: dict, name: str, proc: ServiceProcess) -> Endpoint:
        """A restarted service: recorded under its name, started, and healthy (FleetError otherwise)."""
        with self._lock:
            registry[name] = proc
        self._spawn(proc)
        try:
            proc.wait_healthy(self.start_timeout)
        except RuntimeError as exc:
            proc.stop(grace=5.0)
            raise FleetError(str(exc)) from None
        return Endpoint(name, proc.address)

    def scorer_alive(self) -> bool:
        return self.scorer is not None and self.scorer.alive()

    def stop_scorer(self) -> None:
        self._scorer_staged = False
        self._stop_all(([self.scorer] if self.scorer is not None else []) + list(self.replicas.values()))

    def close(self) -> None:
        self.closing = True
        self._stop_all(list(self.editors.values()) + ([self.scorer] if self.scorer else [])
                       + list(self.replicas.values()))
        self._spawner.shutdown(wait=False)

    # -- record --------------------------------------------------------------------------------
    def pids(self) -> dict[str, dict]:
        procs = ([(f"editor {n}", p) for n, p in self.editors.items()] + ([("scorer", self.scorer)] if self.scorer else [])
                 + list(self.replicas.items()))
        return {name: {"pid": p.proc.pid, "address": p.address} for name, p in procs if p.proc is not None}

    def describe(self) -> dict:
        return {
            "kind": "local",
            "editors": {name: dict(dev) for name, dev in self.devices.items()},
            "threads_per_editor": self.config.editor.threads,
            "environments": {svc: service_packages(svc) for svc in ("editor", "scorer")},
        }


def _replica_name(index: int) -> str:
    """"scorer" for the judge (replica 0: logs/scorer.log, processes.json "scorer"), else "scorer-N"."""
    return "scorer" if index == 0 else f"scorer-{index}"


def service_packages(service: str) -> dict:
    """Package versions in a service's own environment, read without importing them."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for p in {PACKAGES!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    try:
        done = subprocess.run([venv_python(service), "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-300:]}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return {"error": str(exc)}


__all__ = ["LocalFleet", "service_packages"]
