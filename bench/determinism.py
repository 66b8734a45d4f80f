"""Same edit from every editor process? (issue 18: same seed + same sample => same edit.)

Starts N editor-core processes (`EditPipeline`, the code an editor service runs) per round, all at
once on the same device, each: build the model, apply the speed mode, warm up as a service does, then
edit the same samples with the same seeds. Every process records a fingerprint (exact: a wrapping
integer checksum of the raw bits) of the transformer's inputs and output on every call and of every
transformer block's two outputs, the edited images' sha256, and a probe of block 0 on the inputs it
saw first: compiled, then eager with a forward hook on every submodule (cuDNN and native attention).
The driver compares every process with the first: identical edits, the first call/block whose bits
differ, the first submodule whose eager output differs, and (with `--cache private`) which generated
Inductor/Triton source files differ between the processes' compile caches.

    python bench/determinism.py --model models/tiny-qwen-image-edit --device cpu --mode reference --size 64 --steps 2 --samples 1 --processes 2 --profile --timeline --workdir $TMP/det  # dry run (editor)
    python bench/determinism.py --load-format dummy --model Qwen/Qwen-Image-Edit --device cuda \
        --mode default --size 1024 --steps 4 --processes 2,2 --cache private --out $OUT/det.json

CPU runs cannot show the problem this looks for (CPU editors run uncompiled `reference`): only a GPU
run in a compiled mode can.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INSTRUCTIONS = [
    "make the red disc blue and add a soft shadow under it",
    "turn the scene into a winter evening",
    "replace the background with a brick wall",
]


# ------------------------------------------------------------------ worker side


def fingerprint(t):
    """Two wrapping int64 sums over the tensor's raw bits (plain and position-weighted): equal bits give
    equal fingerprints; any changed element changes them (but for a 2^-61-ish chance)."""
    import torch

    x = t.detach().contiguous().view(-1)
    size = x.element_size()
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]
    v = x.view(as_int).to(torch.int64)
    w = _weights(v.numel(), v.device)
    return torch.stack([v.sum(), (v * w).sum()])


_WEIGHTS: dict = {}


def _weights(n, device):
    import torch

    key = (n, str(device))
    if key not in _WEIGHTS:
        _WEIGHTS[key] = (torch.arange(n, device=device, dtype=torch.int64) * 2654435761 + 97) % 2147483629
    return _WEIGHTS[key]


def _tensors(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for k in sorted(obj) for t in _tensors(obj[k])]
    return []


def _clone(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    return obj


class Recorder:
    """Fingerprints of the transformer's calls and of every block's outputs, while `enabled`."""

    def __init__(self, transformer):
        import torch

        self.enabled = False
        self.tag = ""
        self.calls = 0
        self.entries: list[tuple[str, int, str]] = []
        self.values: list = []
        self.block0_inputs = None
        self.hook_active = False
        self.intermediates: list = []  # (buffer name, fingerprint) inside block 0's first compiled call
        transformer.register_forward_pre_hook(self._pre, with_kwargs=True)
        transformer.register_forward_hook(self._post)
        blocks = transformer.transformer_blocks
        self.blocks = list(blocks)
        transformer.transformer_blocks = torch.nn.ModuleList(_Tap(self, i, b) for i, b in enumerate(blocks))

    def add(self, name, obj):
        if not self.enabled:
            return
        for j, t in enumerate(_tensors(obj)):
            self.entries.append((self.tag, self.calls, f"{name}.{j}"))
            self.values.append(fingerprint(t))

    def _pre(self, _module, args, kwargs):
        if self.enabled:
            self.add("transformer_in", {k: v for k, v in kwargs.items() if k != "attention_kwargs"})

    def _post(self, _module, _args, output):
        if self.enabled:
            self.add("transformer_out", output[0] if isinstance(output, tuple) else getattr(output, "sample", output))
            self.calls += 1

    def rows(self):
        import torch

        if not self.values:
            return []
        values = torch.stack(self.values).cpu().tolist()
        return [[tag, call, name, v[0], v[1]] for (tag, call, name), v in zip(self.entries, values)]


class _Tap:
    """Stands in a transformer's block list: runs the (compiled) block, fingerprints its outputs."""

    def __new__(cls, recorder, index, block):
        import torch

        class Tap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = block

            def forward(self, *args, **kwargs):
                first = recorder.enabled and index == 0 and recorder.block0_inputs is None
                if first:
                    recorder.block0_inputs = (_clone(args), _clone(kwargs))
                recorder.hook_active = first
                out = self.inner(*args, **kwargs)
                recorder.hook_active = False
                recorder.add(f"block{index:02d}", out)
                return out

        return Tap()


class StageClock:
    """Where an edit's seconds go, by stage: each text-encoder, VAE encode/decode and transformer call,
    timed between two device synchronisations, while `enabled`. The gaps are the pipeline's own Python
    (preprocessing, scheduler, tracing outside the hooked calls). For shares of a warm-up, not speed:
    the synchronisations cost a little each."""

    def __init__(self, pipe, device):
        self.device = device
        self.enabled = False
        self.events: list[list] = []
        self._open: dict[str, float] = {}
        self._t0 = 0.0
        for name in ("text_encoder", "transformer"):
            module = getattr(pipe, name, None)
            if module is not None:
                module.register_forward_pre_hook(lambda _m, _a, _n=name: self.start(_n))
                module.register_forward_hook(lambda _m, _a, _o, _n=name: self.stop(_n))
        vae = getattr(pipe, "vae", None)
        for method in ("encode", "decode"):
            if vae is not None and hasattr(vae, method):
                inner = getattr(vae, method)

                def timed(*a, _inner=inner, _n=f"vae_{method}", **k):
                    self.start(_n)
                    out = _inner(*a, **k)
                    self.stop(_n)
                    return out

                setattr(vae, method, timed)

    def _now(self) -> float:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def begin(self) -> None:
        self.events, self.enabled = [], True
        self._t0 = self._now()

    def start(self, name: str) -> None:
        if self.enabled:
            self._open[name] = self._now()

    def stop(self, name: str) -> None:
        if self.enabled and name in self._open:
            began = self._open.pop(name)
            self.events.append([name, round(began - self._t0, 3), round(self._now() - began, 3)])

    def end(self) -> dict:
        total = self._now() - self._t0
        self.enabled = False
        by_stage: dict[str, float] = {}
        for name, _at, seconds in self.events:
            by_stage[name] = round(by_stage.get(name, 0.0) + seconds, 3)
        return {"total_s": round(total, 3), "by_stage": by_stage,
                "other_s": round(total - sum(by_stage.values()), 3), "events": self.events}


class GcClock:
    """The cyclic GC's collections inside the `with`, and their seconds (`gc.callbacks`)."""

    def __init__(self):
        self.count = self.full = 0
        self.seconds = self._at = 0.0

    def _on_gc(self, phase, info):
        if phase == "start":
            self._at = time.perf_counter()
        else:
            self.count += 1
            self.full += info["generation"] == 2
            self.seconds += time.perf_counter() - self._at

    def __enter__(self) -> "GcClock":
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._on_gc)

    def summary(self) -> dict:
        return {"collections": self.count, "full": self.full, "s": round(self.seconds, 3),
                "frozen_after": gc.get_freeze_count()}


def probe_block0(pipe, recorder) -> dict:
    """Block 0 on the inputs it saw first: compiled again, then eager with every submodule hooked."""
    import torch

    if recorder.block0_inputs is None:
        return {}
    args, kwargs = recorder.block0_inputs
    block = recorder.blocks[0]
    result = {}
    with torch.inference_mode():
        result["compiled"] = [fingerprint(t).cpu().tolist() for t in _tensors(block(*args, **kwargs))]

        def eager(label):
            found = []
            handles = []
            for name, module in block.named_modules():
                if name:
                    handles.append(module.register_forward_hook(
                        lambda m, a, o, name=name: found.append((name, [fingerprint(t).cpu().tolist() for t in _tensors(o)]))))
            out = block.forward(*args, **kwargs)
            for h in handles:
                h.remove()
            found.append(("<block>", [fingerprint(t).cpu().tolist() for t in _tensors(out)]))
            result[label] = found

        backend = getattr(pipe, "_bench_attention", None)
        eager(f"eager_{backend or 'default'}")
        if backend and backend != "native" and hasattr(pipe.transformer, "set_attention_backend"):
            pipe.transformer.set_attention_backend("native")
            eager("eager_native")
            pipe.transformer.set_attention_backend(backend)
    return result


def cache_listing(cache_dir: str | None) -> dict[str, str]:
    """Generated source files of a private Inductor cache: relative path -> sha256."""
    if not cache_dir or not Path(cache_dir).is_dir():
        return {}
    files = {}
    for path in sorted(Path(cache_dir).rglob("*")):
        if path.is_file() and path.suffix not in (".lock",):
            files[str(path.relative_to(cache_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return files


def child_processes() -> int:
    """How many processes this one has started that are still alive (Linux /proc)."""
    me, count = str(os.getpid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if any(line.split()[1:2] == [me] for line in status.read_text().splitlines() if line.startswith("PPid:")):
                count += 1
        except OSError:
            continue
    return count


def worker(args) -> int:
    import numpy as np
    import torch

    from bench.common import source_image
    from editfleet_common.identity import ModelIdentity
    from editfleet_common.images import encode_png
    from editfleet_common.dtypes import resolve_dtype_name, torch_dtype
    from editor_service.dummy_load import build_dummy_pipeline, resolve_config_dir
    from editor_service.pipeline import EditPipeline, EditRequest, software_and_accelerator
    from editor_service.compiler_startup import start_compiler_preload
    from editor_service.compile_cache import compile_counters
    from editor_service.speed import apply_speed_mode

    timings = {}
    t0 = time.perf_counter()
    device = torch.device(args.device)
    dtype_name = resolve_dtype_name("auto", str(device))
    preload = None if args.no_preload else start_compiler_preload(
        args.model, load_format=args.load_format, revision=None, speed_mode=args.mode, device=device)
    if args.load_format == "dummy":
        pipe = build_dummy_pipeline(resolve_config_dir(args.model), device, torch_dtype(dtype_name, str(device)))
    else:
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(args.model, dtype=torch_dtype(dtype_name, str(device))).to(device)
    if preload is not None:  # what EditPipeline.load does: the load waits for the compiler's imports
        timings.update(preload.wait())
    timings["load_s"] = time.perf_counter() - t0
    if args.intermediates:
        # Inductor's debug hooks: the compiled code calls back with every buffer it computes, so the
        # first buffer (kernel) whose bits differ between processes can be named.
        import torch._inductor.config as inductor_config
        from torch._inductor import hooks

        inductor_config.generate_intermediate_hooks = True
    t0 = time.perf_counter()
    applied = apply_speed_mode(pipe, args.mode, attention_backend=args.attention, compile_blocks=not args.no_compile)
    timings["speed_mode_s"] = time.perf_counter() - t0  # the fast mode's FP8 weight conversion lives here
    if args.coordinate_descent:  # the fast mode before RESULTS §15 (torchao's setting), for comparison
        import torch._inductor.config as inductor_config

        inductor_config.coordinate_descent_tuning = inductor_config.coordinate_descent_check_all_directions = True
        applied["inductor"] += " (bench: coordinate-descent tuning ON)"
    pipe._bench_attention = applied.get("attention_backend")
    identity = ModelIdentity(model=args.model, revision="", content_hash="", model_class=type(pipe).__name__,
                             dtype=dtype_name, device=str(device), load_format=args.load_format,
                             runtime={**applied, **software_and_accelerator(device)})
    editor = EditPipeline(pipe, identity)
    editor.warming.compile_workers_when_warm = args.compile_workers
    if args.warm_up_all_steps:  # the warm-up before it ran one step of its two
        editor.warming.run_steps = None
    if args.no_gc_freeze:
        editor.warming.freeze_gc = False
    if args.compile_cache and "compile" in applied:
        from editor_service.compile_cache import CompileCache, cache_key_fields

        editor.warming.compile_cache = CompileCache(args.compile_cache, cache_key_fields(identity, device))
    recorder = Recorder(pipe.transformer)
    if args.intermediates:
        def on_buffer(name, value):
            if recorder.hook_active and isinstance(value, torch.Tensor):
                recorder.intermediates.append((name, fingerprint(value).cpu().tolist()))

        hooks.INTERMEDIATE_HOOKS.append(on_buffer)
    profiler = None
    if args.profile:  # where a warm start's seconds go (cProfile slows Python-heavy tracing: shares, not times)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    clock = StageClock(pipe, device) if args.timeline else None
    modules_before = set(sys.modules)
    t0 = time.perf_counter()
    if clock is not None:
        clock.begin()
    with GcClock() as collections:
        editor.warm_up()
    timings["warm_up_s"] = time.perf_counter() - t0
    timings["warm_up_gc"] = collections.summary()
    if clock is not None:
        timings["warm_up_timeline"] = clock.end()
    imported = sorted(set(sys.modules) - modules_before)  # what the compiler preload left to the warm-up
    timings["child_processes_after_warm_up"] = child_processes()  # Inductor's compile workers, if started
    timings["warm_up_imported"] = {"modules": len(imported),
                                   "packages": sorted({".".join(m.split(".")[:3]) for m in imported})[:40]}
    if profiler is not None:
        import pstats

        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(80)
        timings["warm_up_profile"] = text.getvalue()
    timings["warm_up_edits"] = dict(editor.warming.timings)
    import torch._dynamo.utils as dynamo_utils

    timings["compile_phases"] = dynamo_utils.compile_times(repr="str", aggregate=True)  # Dynamo / AOT / Inductor
    cache = editor.warming.compile_cache
    if cache is not None:
        timings["cache_load_s"] = round(cache.state.loaded_s, 3)

    step_times: list[float] = []

    def on_step(step, _total, _elapsed):
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if step > 1:
            step_times.append(now - last[0])
        last[0] = now

    last = [0.0]

    def edit(i, tag):
        recorder.tag, recorder.calls = tag, 0
        recorder.enabled = args.fingerprints
        out = editor.edit(on_step=on_step, request=EditRequest(instruction=INSTRUCTIONS[i % len(INSTRUCTIONS)],
                                      image=encode_png(source_image(args.size, seed=i)), sample_id=tag,
                                      num_inference_steps=args.steps, seed=1000 + i,
                                      width=args.size, height=args.size))
        recorder.enabled = False
        return hashlib.sha256(out.image_png).hexdigest(), out

    images = {}
    t0 = time.perf_counter()
    for i in range(args.samples):
        if clock is not None and i == 0:
            clock.begin()
        images[f"edit{i}"], out = edit(i, f"edit{i}")
        if i == 0:
            first_png = out.image_png
            if clock is not None:
                timings["edit0_timeline"] = clock.end()  # the same stages in a warmed process
    timings["edits_s"] = time.perf_counter() - t0
    images["edit0_again"], _ = edit(0, "edit0_again")  # within one process: repeatable?
    timings["s_per_step_median"] = sorted(step_times)[len(step_times) // 2] if step_times else None
    probe = probe_block0(pipe, recorder) if args.fingerprints else {}
    payload = {
        "pid": os.getpid(),
        "hash_seed": os.environ.get("PYTHONHASHSEED"),
        "cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "runtime": identity.runtime,
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "timings": timings,
        "compile_cache": identity.runtime.get("compile_cache"),
        "compile_cache_details": cache.state.details if cache is not None else None,
        "compile_counters": compile_counters(),
        "images": images,
        "fingerprints": recorder.rows(),
        "probe": probe,
        "intermediates": recorder.intermediates,
        "kernels": cache_listing(os.environ.get("TORCHINDUCTOR_CACHE_DIR")),
    }
    Path(args.worker).write_text(json.dumps(payload))
    Path(args.worker).with_suffix(".png").write_bytes(first_png)
    del np
    return 0


# ------------------------------------------------------------------ driver side


def first_difference(a: list, b: list):
    for ra, rb in zip(a, b):
        if ra != rb:
            return {"at": ra[:3], "a": ra[3:], "b": rb[3:] if rb[:3] == ra[:3] else rb}
    if len(a) != len(b):
        return {"at": "length", "a": len(a), "b": len(b)}
    return None


def compare(ref: dict, other: dict) -> dict:
    same = [k for k in ref["images"] if ref["images"][k] == other["images"].get(k)]
    row = {"identical_edits": f"{len(same)}/{len(ref['images'])}", "differing_edits": sorted(set(ref["images"]) - set(same)),
           "first_fingerprint_difference": first_difference(ref["fingerprints"], other["fingerprints"])}
    probes = {}
    for label, entries in ref.get("probe", {}).items():
        theirs = other.get("probe", {}).get(label)
        if label == "compiled":
            probes[label] = "same" if entries == theirs else "differs"
            continue
        first = next((e[0] for e, t in zip(entries, theirs or []) if e != t), None)
        probes[label] = "same" if first is None and theirs and len(theirs) == len(entries) else f"first differing submodule: {first}"
    row["block0_probe"] = probes
    if ref.get("intermediates"):
        mine, theirs = ref["intermediates"], other.get("intermediates", [])
        row["first_differing_buffer"] = next((a[0] for a, b in zip(mine, theirs) if a != b), None)
        row["buffers_compared"] = min(len(mine), len(theirs))
    if ref["cache_dir"] != other["cache_dir"] and (ref["kernels"] or other["kernels"]):
        a, b = set(ref["kernels"].items()), set(other["kernels"].items())
        row["cache_files_only_in_first"] = sorted(k for k, _ in a - b)[:40]
        row["cache_files_only_in_this"] = sorted(k for k, _ in b - a)[:40]
        row["cache_files_common"] = len(a & b)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Qwen/Qwen-Image-Edit")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--mode", default="default", choices=["reference", "default", "fast"])
    p.add_argument("--attention", default=None, help="attention backend (default: the speed mode's)")
    p.add_argument("--no-compile", action="store_true", help="the mode's kernels without torch.compile")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--processes", default="2",
                   help="processes started together, per round: '2,1' = two together, then one more after them")
    p.add_argument("--cache", choices=["private", "shared", "seeded"], default="private",
                   help="private: a fresh Inductor cache per process (its generated files are compared); shared: one "
                        "for all; seeded: round 0 private, every later process gets its own copy of r0p0's cache")
    p.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="the editor's portable compile cache (editor_service/compile_cache.py): '1,1' processes = cold, then warm")
    p.add_argument("--compile-workers", action="store_true",
                   help="let Inductor start its compile workers in a warm start too (the editor before RESULTS §16)")
    p.add_argument("--no-preload", action="store_true",
                   help="no compiler preload during the model build (the editor's behaviour before RESULTS §16)")
    p.add_argument("--no-gc-freeze", action="store_true",
                   help="leave the loaded objects to the cyclic GC during the warm-up (A/B of gc.freeze)")
    p.add_argument("--warm-up-all-steps", action="store_true",
                   help="the warm-up runs every scheduled step (A/B: it runs one of two)")
    p.add_argument("--timeline", action="store_true",
                   help="seconds per stage (text encoder, VAE, each transformer call) of the warm-up and the first edit")
    p.add_argument("--profile", action="store_true",
                   help="cProfile each process's warm-up (the 80 costliest calls by cumulative time, in its timings)")
    p.add_argument("--coordinate-descent", action="store_true",
                   help="turn Inductor's coordinate-descent tuning back on (what torchao's FP8 config used to set)")
    p.add_argument("--hash-seed", default="random", help="PYTHONHASHSEED for the workers: random (each its own) or a number")
    p.add_argument("--no-fingerprints", dest="fingerprints", action="store_false")
    p.add_argument("--intermediates", action="store_true",
                   help="compiled modes: fingerprint every buffer of block 0's first compiled call (Inductor debug hooks)")
    p.add_argument("--workdir", default="/tmp/editfleet-determinism")
    p.add_argument("--label", default="")
    p.add_argument("--out", default=None)
    p.add_argument("--tar", default=None, help="write the differing generated files of the first two processes here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    from bench.common import card_name, git_commit, write_json

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    results = []
    started = time.perf_counter()
    for r, count in enumerate(int(c) for c in args.processes.split(",")):
        procs = []
        for n in range(count):
            name = f"r{r}p{n}"
            env = dict(os.environ)
            env["PYTHONHASHSEED"] = str(random.randint(1, 2**31)) if args.hash_seed == "random" else args.hash_seed
            env["TORCHINDUCTOR_CACHE_DIR"] = str(work / (f"cache-{name}" if args.cache != "shared" else "cache-shared"))
            if args.cache == "seeded" and r > 0:
                shutil.copytree(work / "cache-r0p0", work / f"cache-{name}", dirs_exist_ok=True)
            log = open(work / f"{name}.log", "w")
            cmd = [sys.executable, __file__, *passthrough, "--worker", str(work / f"{name}.json")]
            procs.append((name, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        for name, proc in procs:
            rc = proc.wait()
            if rc != 0:
                print(f"worker {name} failed (rc {rc}); log:\n" + (work / f"{name}.log").read_text()[-4000:])
                return 1
            results.append((name, json.loads((work / f"{name}.json").read_text())))
            res = results[-1][1]  # as each worker ends, so a run cut short by its time limit keeps it
            print(f"[{name}] edits {res['images']} timings {json.dumps({k: v for k, v in res['timings'].items() if k not in ('warm_up_profile', 'warm_up_timeline', 'edit0_timeline')})} cache {res.get('compile_cache')} "
                  f"{json.dumps(res.get('compile_cache_details'))} counters {json.dumps(res.get('compile_counters'))}",
                  flush=True)
    ref_name, ref = results[0]
    classes: dict[str, list[str]] = {}
    for name, res in results:
        classes.setdefault(json.dumps(res["images"], sort_keys=True), []).append(name)
    summary = {
        "bench": "determinism",
        "label": args.label,
        "card": card_name(),
        "git": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
        "settings": {k: getattr(args, k) for k in ("model", "load_format", "device", "mode", "attention", "no_compile",
                                                  "size", "steps", "samples", "processes", "cache", "compile_cache",
                                                  "coordinate_descent", "no_preload", "compile_workers", "hash_seed",
                                                  "no_gc_freeze", "warm_up_all_steps", "timeline")},
        "runtime": ref["runtime"],
        "cudnn": ref["cudnn"],
        "wall_s": round(time.perf_counter() - started, 1),
        "processes": {name: {"hash_seed": res["hash_seed"], "timings": res["timings"], "compile_cache": res.get("compile_cache"),
                             "compile_cache_details": res.get("compile_cache_details"),
                             "compile_counters": res.get("compile_counters"),
                             "images": res["images"],  # sha256 of each edit: comparable across calls too
                             "repeatable_in_process": res["images"]["edit0"] == res["images"]["edit0_again"]}
                      for name, res in results},
        "edit_classes": list(classes.values()),
        "all_identical": len(classes) == 1,
        "vs_first": {name: compare(ref, res) for name, res in results[1:]},
    }
    if args.tar and len(results) > 1:
        other = results[1][1]
        differing = sorted(set(ref["kernels"].items()) ^ set(other["kernels"].items()))
        with tarfile.open(args.tar, "w:gz") as tar:
            for rel, _ in differing[:200]:
                for name in (ref_name, results[1][0]):
                    path = work / f"cache-{name}" / rel
                    if path.is_file():
                        tar.add(path, arcname=f"{name}/{rel}")
            for name, res in results[:2]:
                data = json.dumps({"probe": res["probe"], "intermediates": res.get("intermediates")}, indent=1).encode()
                info = tarfile.TarInfo(f"{name}/probe.json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
