"""Portable compile caches: compile a model once per kind, start every later editor warm.

A compiled speed mode spends its warm-up compiling the transformer blocks (Dynamo, Inductor, Triton
and the autotuner's choices). `torch.compiler.save_cache_artifacts()` bundles all of that into one
blob; `load_cache_artifacts()` puts it back into the process's compile caches before anything
compiles, so the warm-up finds every graph and kernel compiled and every launch config chosen.

One entry per *kind* of editor, under ``<directory>/<key>/``: the key hashes everything that decides
what gets compiled (model content hash and class, dtype, the runtime settings, torch / Triton / CUDA
versions, the GPU model). The entry holds ``artifacts.bin`` and ``entry.json`` (the key's fields, the
blob's sha256 and size). An editor that starts cold takes the entry's lock, compiles, saves and
releases it; editors starting at the same time wait on the lock and then load what it saved, so all
editors of one kind run the same compiled code and the same launch choices (the same bits).

A stale entry cannot be hit (other software or settings make another key). A foreign entry (its
recorded fields are not this key's), a corrupt one (sha256 or size mismatch, or torch refuses it) is
reported, removed and rebuilt; never a crash.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ENTRY_FORMAT = 1
LOCK_TIMEOUT_S = 1800.0  # a cold compile of the fast mode takes minutes on a GPU


def cache_key_fields(identity, device) -> dict[str, str]:
    """What decides the compiled artifacts of an editor (everything else may differ freely)."""
    import torch

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = ""
    gpu = ""
    if getattr(device, "type", "") == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = f"{props.name} sm_{props.major}{props.minor}"
    runtime = {k: v for k, v in sorted(identity.runtime.items()) if k != "compile_cache"}
    return {
        "format": str(ENTRY_FORMAT),
        "model_class": identity.model_class,
        "content_hash": identity.content_hash,
        "dtype": identity.dtype,
        "load_format": identity.load_format,
        "runtime": json.dumps(runtime, sort_keys=True),
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": str(torch.version.cuda or ""),
        "gpu": gpu,
    }


COUNTED = {  # name: (group, torch's counter)
    "fxgraph_cache_hit": ("inductor", "fxgraph_cache_hit"),
    "fxgraph_cache_miss": ("inductor", "fxgraph_cache_miss"),
    "fxgraph_cache_bypass": ("inductor", "fxgraph_cache_bypass"),
    "autograd_cache_hit": ("aot_autograd", "autograd_cache_hit"),
    "autograd_cache_miss": ("aot_autograd", "autograd_cache_miss"),
    "autograd_cache_bypass": ("aot_autograd", "autograd_cache_bypass"),
    "dynamo_traced_graphs": ("stats", "unique_graphs"),  # traced by Dynamo, warm or cold (the entry spares compiling)
}


def compile_counters() -> dict[str, int]:
    """This process's compile-cache counters so far (Inductor's FX graphs, AOTAutograd's, and the
    graphs Dynamo traced), by name.

    A warm start must find every graph: a miss or a bypass means code was compiled anew, whose launch
    choices (and so bits) need not be the entry's.
    """
    from torch._dynamo.utils import counters

    return {name: int(counters[group][counter]) for name, (group, counter) in COUNTED.items()}


def cache_key(fields: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CacheState:
    """How an editor started, recorded with its identity (and so in the run's manifest)."""

    key: str
    state: str = "cold"  # warm | cold | rebuilt
    problem: str = ""  # why a found entry was not used
    loaded_s: float = 0.0
    saved_bytes: int = 0
    details: dict = field(default_factory=dict)

    def describe(self) -> str:
        text = f"{self.state} {self.key[:12]}"
        return f"{text} ({self.problem})" if self.problem else text


class CompileCache:
    """One cache entry, for the editor kind given by `fields`."""

    def __init__(self, directory: str | os.PathLike, fields: dict[str, str]):
        self.root = Path(directory)
        self.fields = fields
        self.key = cache_key(fields)
        self.entry = self.root / self.key
        self.state = CacheState(self.key)
        self._lock_file = None

    # ------------------------------------------------------------ lock

    def acquire(self, timeout_s: float = LOCK_TIMEOUT_S) -> None:
        """Hold this entry's lock: one editor compiles while the others of its kind wait."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / f"{self.key}.lock", "a+")
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    log.warning("compile cache %s: cannot lock (%s); going on without the lock", self.root, exc)
                    return
                if time.monotonic() > deadline:
                    log.warning("compile cache %s: lock held for over %.0fs; compiling without it", self.key[:12], timeout_s)
                    return
                if not waited:
                    log.info("compile cache %s: another editor of this kind is compiling; waiting for it", self.key[:12])
                    waited = True
                time.sleep(0.5)

    def release(self) -> None:
        if self._lock_file is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            finally:
                self._lock_file.close()
                self._lock_file = None

    # ------------------------------------------------------------ load / save

    def load(self) -> CacheState:
        """Load the entry's artifacts into this process's compile caches if it is sound."""
        import torch

        meta_path, blob_path = self.entry / "entry.json", self.entry / "artifacts.bin"
        if not meta_path.exists() and not blob_path.exists():
            self.state.state = "cold"
            return self.state
        problem = self._check(meta_path, blob_path)
        if not problem:
            started = time.perf_counter()
            try:
                info = torch.compiler.load_cache_artifacts(blob_path.read_bytes())
            except Exception as exc:  # noqa: BLE001 - a bad entry is rebuilt, never fatal
                problem = f"torch refused the artifacts: {type(exc).__name__}: {exc}"
            else:
                if info is None:
                    problem = "torch found no artifacts in the entry"
                else:
                    self.state.state = "warm"
                    self.state.loaded_s = time.perf_counter() - started
                    self.state.details = {k: len(v) for k, v in vars(info).items() if isinstance(v, list)}
                    log.info("compile cache %s: warm start (%.2fs to load %s)", self.key[:12], self.state.loaded_s,
                             self.state.details)
                    return self.state
        log.warning("compile cache %s: %s; rebuilding it", self.key[:12], problem)
        shutil.rmtree(self.entry, ignore_errors=True)
        self.state.state, self.state.problem = "rebuilt", problem
        return self.state

    def _check(self, meta_path: Path, blob_path: Path) -> str:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable entry.json ({exc})"
        if not isinstance(meta, dict) or meta.get("fields") != self.fields:
            theirs = meta.get("fields", {}) if isinstance(meta, dict) else {}
            differing = sorted(k for k in set(theirs) | set(self.fields) if theirs.get(k) != self.fields.get(k))
            return f"foreign entry (recorded for another editor kind: {', '.join(differing) or 'no fields'})"
        try:
            blob = blob_path.read_bytes()
        except OSError as exc:
            return f"unreadable artifacts.bin ({exc})"
        if len(blob) != meta.get("size") or hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            return "corrupt artifacts.bin (size or sha256 differs from entry.json)"
        return ""

    def save(self) -> None:
        """After a cold warm-up: write what this process compiled, atomically (tmp dir + rename)."""
        import torch

        if self.state.state == "warm":
            return
        try:
            saved = torch.compiler.save_cache_artifacts()
        except Exception as exc:  # noqa: BLE001 - the editor works without a cache
            log.warning("compile cache %s: could not serialise the compiled artifacts: %s", self.key[:12], exc)
            return
        if not saved:
            log.warning("compile cache %s: nothing was compiled, nothing saved", self.key[:12])
            return
        blob, _info = saved
        tmp = self.root / f".{self.key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "artifacts.bin").write_bytes(blob)
        meta = {"fields": self.fields, "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "entry.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        shutil.rmtree(self.entry, ignore_errors=True)
        os.replace(tmp, self.entry)
        self.state.saved_bytes = len(blob)
        log.info("compile cache %s: saved %.1f MB for later editors", self.key[:12], len(blob) / 1e6)
