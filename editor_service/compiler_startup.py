"""What a compiled editor's process pays to start the compiler, moved out of its warm-up.

- `start_compiler_preload` (`CompilerPreload`): import the compiler while the model builds, so that
  the warm-up only compiles.
- `no_compile_workers`: a warm start (compile cache hit) starts no compile worker processes.

The preload: Dynamo imports most of AOTAutograd, Inductor and the Triton runtime lazily, inside the
first compiled call. With a warm compile cache that import was the largest share of the warm-up (H200,
RESULTS §16, one call: the compile of a default warm start 4.06 s without the preload, 2.0 s with it;
that image's torch ships no .pyc for Inductor, so each process compiles its modules from source).
Nothing in it depends on the model, so a thread does it during the 10-20 s of model build, and the
warm-up finds it done.

Started by `EditPipeline.load` after the main thread has imported the pipeline's own classes, so the
two threads import disjoint packages (no import-lock cycle between them). A module that fails to import
here is left to the compile itself, which then reports it as it always did: the preload only moves
work, it never decides anything.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)

# What the first compiled call of a block imported on the H200 (torch 2.11, warm and cold starts,
# `bench/determinism.py` records what a warm-up still imports; a name a torch version lacks is skipped).
# The compile's own imports stay the reference: a module missing here is imported there, as before.
COMPILER_MODULES = (
    "torch._dynamo",
    "torch._functorch.aot_autograd",
    "torch._functorch._aot_autograd.autograd_cache",
    "torch._inductor.compile_fx",
    "torch._inductor.select_algorithm",
    "torch._inductor.lowering",
    "torch._inductor.kernel",
    "torch._inductor.debug",
    "torch._inductor.codecache",
    "torch._inductor.graph",
    "torch._inductor.scheduler",
    "torch._inductor.async_compile",
    "torch._inductor.codegen.triton",
    "torch._inductor.codegen.wrapper",
    "torch._inductor.fx_passes.pre_grad",
    "torch._inductor.fx_passes.joint_graph",
    "torch._inductor.fx_passes.post_grad",
    "torch._inductor.runtime.triton_heuristics",
    "torch._inductor.runtime.static_cuda_launcher",
    "torch._inductor.codegen.memory_planning",
    "torch._inductor.compiler_bisector",
    "torch._inductor.hooks",
    "torch._dynamo.dce_extra_outputs",
    "torch._subclasses.schema_check_mode",
    "torch.export._trace",
    "torch._export.passes",
    "sympy.combinatorics",
    "sympy.tensor.tensor",
    "triton.compiler.compiler",
    "triton.tools.tensor_descriptor",
    # Where pytest is installed, Dynamo's first traced `with` imports pytest's context managers to
    # refuse them (`is_forbidden_context_manager`); a pytest version has some of these three
    "_pytest.raises",
    "_pytest.python_api",
    "_pytest.recwarn",
)


class CompilerPreload:
    """A background import of `COMPILER_MODULES`; `wait()` joins it and says what it did."""

    def __init__(self, modules: tuple[str, ...] = COMPILER_MODULES):
        self.modules = modules
        self.imported = 0  # modules this preload brought in (not already there)
        self.skipped: dict[str, str] = {}  # module: why it was not imported
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="compiler-preload", daemon=True)

    def start(self) -> "CompilerPreload":
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.perf_counter()
        before = len(sys.modules)
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - left to the compile, which reports it as always
                self.skipped[name] = f"{type(exc).__name__}: {exc}"
        for name, step in (("codegen backends", _register_codegen_backends), ("torch_key", _torch_key)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001
                self.skipped[name] = f"{type(exc).__name__}: {exc}"
        self.imported = len(sys.modules) - before
        self.seconds = time.perf_counter() - started

    def wait(self) -> dict[str, float | int]:
        """Join the thread; returns its seconds, the seconds this call waited and the modules imported."""
        started = time.perf_counter()
        self._thread.join()
        waited = time.perf_counter() - started
        for name, why in self.skipped.items():
            log.debug("compiler preload: %s not imported (%s)", name, why)
        log.info("compiler preload: %d modules in %.1fs (the load waited %.1fs for it)", self.imported, self.seconds, waited)
        return {"compiler_preload_s": round(self.seconds, 3), "compiler_preload_wait_s": round(waited, 3),
                "compiler_preload_modules": self.imported}


def start_compiler_preload(model: str, *, load_format: str, revision: str | None, speed_mode: str,
                           device) -> "CompilerPreload | None":
    """For a pipeline that will compile: import its own classes here, then the compiler in a thread
    (`CompilerPreload`) while the model builds. None where nothing compiles, or where the pipeline's
    classes cannot be known before loading (the compile then imports the compiler, as before)."""
    from .dummy_load import resolve_config_dir
    from .speed import compiles

    if not compiles(speed_mode, device):
        return None
    try:
        if load_format == "dummy":
            index = json.loads((resolve_config_dir(model) / "model_index.json").read_text())
        else:
            from diffusers import DiffusionPipeline

            index = DiffusionPipeline.load_config(model, revision=revision)
    except Exception as exc:  # noqa: BLE001 - the load itself reports a missing or bad model
        log.debug("compiler preload skipped: no model_index.json before loading (%s)", exc)
        return None
    import diffusers
    import transformers

    libraries = {"diffusers": diffusers, "transformers": transformers}
    getattr(diffusers, str(index.get("_class_name", "")), None)
    for spec in index.values():
        if isinstance(spec, list) and len(spec) == 2 and spec[0] in libraries and spec[1]:
            getattr(libraries[spec[0]], spec[1], None)  # resolving a lazy name imports its module
    return CompilerPreload().start()


def _register_codegen_backends() -> None:
    from torch._inductor.codegen.common import init_backend_registration

    init_backend_registration()  # what the first graph lowering does (idempotent): imports every backend


def _torch_key() -> None:
    from torch._inductor.codecache import torch_key

    torch_key()  # hashes torch's own sources once per process (part of every cache key)


@contextmanager
def no_compile_workers():
    """Inside: Inductor starts no compile worker processes; it loads (or, on a miss, compiles) in-process.

    At the first compiled call Inductor starts a sidecar process and one worker per CPU core (up to
    32), each importing torch, in case kernels must be compiled; loading a cached module's kernels
    asks for that pool too, even when every kernel is a cache hit. A warm start compiles none: the
    workers are CPU time taken from the warm-up and memory taken from the host, in every editor of
    the machine. One compile thread means no pool. A cache that misses stays correct, only slower
    (its kernels compile one by one in this process). `compile_threads` is not part of any cache
    key (Inductor ignores it there). Restored on exit: a later compile (a new shape) gets the pool.
    """
    import torch._inductor.config as inductor_config

    previous = inductor_config.compile_threads
    inductor_config.compile_threads = 1
    try:
        yield
    finally:
        inductor_config.compile_threads = previous
