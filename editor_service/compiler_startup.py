"""What a compiled editor's process pays to start the compiler, moved out of its warm-up.

- `start_compiler_preload` (`CompilerPreload`): import the compiler while the model builds, so that
  the warm-up only compiles; then initialise the device's libraries (`init_device_libraries`).
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
)


class CompilerPreload:
    """A background import of `COMPILER_MODULES`, then (given a device) `init_device_libraries`;
    `wait()` joins it and says what it did."""

    def __init__(self, modules: tuple[str, ...] = COMPILER_MODULES, device=None, dtype=None):
        self.modules = modules
        self.device, self.dtype = device, dtype
        self.imported = 0  # modules this preload brought in (not already there)
        self.skipped: dict[str, str] = {}  # module: why it was not imported
        self.seconds = 0.0
        self.device_init_s = None  # seconds of `init_device_libraries`, when it ran
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
        if self.device is not None:
            device_started = time.perf_counter()
            try:
                init_device_libraries(self.device, self.dtype)
                self.device_init_s = time.perf_counter() - device_started
            except Exception as exc:  # noqa: BLE001 - the pipeline's first call initialises them, as before
                self.skipped["device libraries"] = f"{type(exc).__name__}: {exc}"
        self.seconds = time.perf_counter() - started

    def wait(self) -> dict[str, float | int]:
        """Join the thread; returns its seconds, the seconds this call waited and the modules imported."""
        started = time.perf_counter()
        self._thread.join()
        waited = time.perf_counter() - started
        for name, why in self.skipped.items():
            log.debug("compiler preload: %s not imported (%s)", name, why)
        log.info("compiler preload: %d modules in %.1fs (the load waited %.1fs for it)", self.imported, self.seconds, waited)
        timings = {"compiler_preload_s": round(self.seconds, 3), "compiler_preload_wait_s": round(waited, 3),
                   "compiler_preload_modules": self.imported}
        if self.device_init_s is not None:
            timings["device_libraries_s"] = round(self.device_init_s, 3)
        return timings


def start_compiler_preload(model: str, *, load_format: str, revision: str | None, speed_mode: str,
                           device, dtype=None, device_libraries: bool = True) -> "CompilerPreload | None":
    """For a pipeline that will compile: import its own classes here, then the compiler in a thread
    (`CompilerPreload`) while the model builds, and initialise the device's libraries there
    (`init_device_libraries`; device_libraries=False: left to the first edit, for the bench's A/B).
    None where nothing compiles, or where the pipeline's classes cannot be known before loading (the
    compile then imports the compiler, as before)."""
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
    return CompilerPreload(device=device if device_libraries else None, dtype=dtype).start()


def init_device_libraries(device, dtype=None) -> None:
    """Create what a CUDA process creates at its first matmul, convolution and attention call, on
    tiny tensors: the CUDA context, cuBLAS/cuBLASLt handles and workspace, cuDNN's handle with the
    sub-libraries it loads. Kernels for the real shapes still load at their first launch (lazy module
    loading); no setting is changed, so nothing the edit computes depends on it. Handles made in this
    thread return to PyTorch's per-device pools when it ends, where the main thread takes them."""
    import torch
    import torch.nn.functional as F

    dtype = dtype or torch.bfloat16
    with torch.inference_mode():
        a = torch.ones(64, 64, device=device, dtype=dtype)
        F.linear(a, a, a[0])  # cuBLASLt (addmm with bias)
        a @ a  # cuBLAS
        if torch.backends.cudnn.is_available():
            F.conv2d(torch.ones(1, 4, 8, 8, device=device, dtype=dtype), torch.ones(4, 4, 3, 3, device=device, dtype=dtype))
            F.conv3d(torch.ones(1, 4, 2, 8, 8, device=device, dtype=dtype),
                     torch.ones(4, 4, 1, 3, 3, device=device, dtype=dtype))
        from torch.nn.attention import SDPBackend, sdpa_kernel

        q = torch.ones(1, 2, 128, 128, device=device, dtype=dtype)
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):  # the speed modes' attention
            try:
                with sdpa_kernel([backend]):
                    F.scaled_dot_product_attention(q, q, q)
            except RuntimeError:  # not on this card or for this dtype: the edit's own call reports it
                pass
        torch.cuda.synchronize(device)


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
