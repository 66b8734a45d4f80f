"""Will a model fit where it is asked to run? Answered before anything loads (issue 27 item 6), by the
services' start-up (editor_service/__main__.py, scorer_service/__main__.py) and the orchestrator's
preflight (orchestrator/preflight.py), so that a model too large for its device is one line naming the
model, its size, the room there is and what to do about it, not a CUDA out-of-memory traceback after
minutes of loading, or a process the kernel's OOM killer ends without a word.

  - the weights' size, without loading them: the safetensors headers of the files the service's
    loader reads (the judge's folder, each component of a diffusers folder), every floating tensor
    counted in the dtype the service loads in (other tensors at their own size; a .bin at its file
    size); for `--load-format dummy` the services build the model on the meta device from its configs
    (editor_service/dummy_load.py, scorer_service/backends/transformers/loading.py) and count it here;
  - the room: a GPU's free memory from `nvidia-smi --query-gpu` (CUDA_VISIBLE_DEVICES mapped to the
    machine's GPUs; torch.cuda.mem_get_info where torch has already initialised CUDA); on the CPU the
    memory available (/proc/meminfo's MemAvailable, within the cgroup's memory.max);
  - the rule: the weights alone larger than the room cannot load, whatever else happens (a model that
    fits but leaves too little for its activations runs out of memory while loading or warming up:
    `out_of_memory` says that in the same words).

EDITFLEET_MEMORY_CAP_BYTES (for tests, or to try a plan for a smaller device): the room the check sees
on any device is at most this many bytes. Unset in normal use.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

GIB = float(1 << 30)
CAP_ENV = "EDITFLEET_MEMORY_CAP_BYTES"
FLOAT_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# A judge split over GPUs (scorer --gpus K): the share of each GPU's free memory its weights may take
# (the rest for the batches' activations and KV cache); scorer_service's plan_split places it so.
SPLIT_WEIGHTS_SHARE = 0.75

_ST_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
             "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}
_ST_FLOATS = {"F64", "F32", "F16", "BF16"}  # cast to the load dtype by from_pretrained
_MAX_HEADER = 100 << 20  # safetensors' own bound on a header
# the weight files a loader reads from a folder, by preference (a variant such as .fp16. is read only on request)
_STEMS = ("diffusion_pytorch_model", "model")


def gib(n: float) -> str:
    """Bytes for a reader: '53.7 GiB', '12.3 MiB', '574 KiB'."""
    for unit, scale in (("GiB", GIB), ("MiB", float(1 << 20))):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.0f} KiB"


# -- the weights ----------------------------------------------------------------------------------
@dataclass
class Weights:
    """The bytes a model's weights take on its device, per component ('' for a single model)."""

    parts: dict[str, int]
    dtype: str
    source: str  # how it was found: "safetensors headers", "configs", ...

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        """'53.7 GiB in bfloat16 (transformer 38.1 GiB, text_encoder 15.4 GiB, vae 242.0 MiB)'."""
        shown = sorted(((k, v) for k, v in self.parts.items() if k), key=lambda kv: -kv[1])
        split = " (" + ", ".join(f"{k} {gib(v)}" for k, v in shown) + ")" if len(shown) > 1 else ""
        return f"{gib(self.total)} in {self.dtype}{split}"


def safetensors_bytes(path: Path, dtype: str) -> int:
    """Bytes of one safetensors file's tensors once loaded in `dtype`, from its header alone."""
    size = FLOAT_BYTES[dtype]
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{path}: a safetensors header of {length} bytes")
        header = json.loads(handle.read(length))
    total = 0
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        numel = math.prod(spec["shape"])
        kind = spec["dtype"]
        total += numel * (size if kind in _ST_FLOATS else _ST_BYTES.get(kind, 1))
    return total


def weight_files(folder: Path) -> list[Path]:
    """The weight files a diffusers or transformers loader reads from `folder`: a sharded index's shards,
    else the single file (safetensors before .bin), else whatever .safetensors the folder holds."""
    for suffix in (".safetensors", ".bin"):
        for stem in _STEMS:
            stem = "pytorch_model" if suffix == ".bin" and stem == "model" else stem
            index = folder / f"{stem}{suffix}.index.json"
            if index.is_file():
                weight_map = json.loads(index.read_text()).get("weight_map", {})
                return [folder / name for name in sorted(set(weight_map.values()))]
            single = folder / f"{stem}{suffix}"
            if single.is_file():
                return [single]
    return sorted(folder.glob("*.safetensors"))


def folder_bytes(folder: Path, dtype: str) -> int:
    total = 0
    for path in weight_files(folder):
        if path.suffix == ".safetensors":
            total += safetensors_bytes(path, dtype)
        else:
            total += path.stat().st_size  # a pickle: its stored size (its dtype is not known unread)
    return total


def model_weights(folder: Path, dtype: str) -> Weights | None:
    """The weights of a model folder on disk: a diffusers pipeline (model_index.json: each component
    with weights) or a single transformers model (config.json). None: no weights there (a snapshot whose
    weights are still to be downloaded) or unreadable."""
    folder = Path(folder)
    try:
        index_file = folder / "model_index.json"
        if index_file.is_file():
            index = json.loads(index_file.read_text())
            parts = {name: folder_bytes(folder / name, dtype) for name, spec in index.items()
                     if not name.startswith("_") and isinstance(spec, list) and spec and spec[0] is not None
                     and (folder / name).is_dir()}
            parts = {name: n for name, n in parts.items() if n}
        else:
            parts = {"": folder_bytes(folder, dtype)} if (folder / "config.json").is_file() else {}
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    if not parts or not sum(parts.values()):
        return None
    return Weights(parts, dtype, "safetensors headers")


def service_weights(model: str, dtype: str, dummy_bytes: Callable | None = None) -> Weights | None:
    """A service's weights at its start-up, in `dtype` (a resolved name: dtypes.resolve_dtype_name). For
    --load-format dummy, dummy_bytes(torch dtype) -> {component: bytes} of its configs built on the meta
    device (torch imported for that: the dummy load needs it next anyway); None where that fails (configs
    the load cannot use either: it says so in its own words). Else the safetensors headers of the model's
    folder or cached hub snapshot (model_checks.resolve_model); None for a hub id still to be downloaded."""
    if dummy_bytes is not None:
        import torch

        try:
            return Weights(dummy_bytes(getattr(torch, dtype)), dtype, "configs")
        except Exception:  # noqa: BLE001 - see above
            return None
    from .model_checks import resolve_model

    folder = resolve_model(model)
    return model_weights(folder, dtype) if folder is not None else None


def module_bytes(module, dtype: str) -> int:
    """A torch module's parameters and buffers (built on the meta device: no memory) in `dtype`."""
    size = FLOAT_BYTES[dtype]
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * (size if t.is_floating_point() else t.element_size()) for t in tensors)


# -- the room -------------------------------------------------------------------------------------
@dataclass
class Gpu:
    index: int
    uuid: str
    free: int
    total: int


@dataclass
class Room:
    """Free memory where a model would go."""

    free: int
    total: int | None
    where: str                      # "GPU 3", "GPUs 0,1", "RAM"
    how: str                        # "nvidia-smi", "torch", "MemAvailable", ...
    gpus: list[Gpu] = field(default_factory=list)  # every GPU of the machine (nvidia-smi), for the remedies

    def describe(self) -> str:
        of = f" of {gib(self.total)}" if self.total else ""
        verb = "have" if self.where.startswith("GPUs") else "has"
        return f"{self.where} {verb} {gib(self.free)} free{of} ({self.how})"


def memory_cap() -> int | None:
    """EDITFLEET_MEMORY_CAP_BYTES: the most free memory the check sees on any one device (None: unset)."""
    text = os.environ.get(CAP_ENV, "").strip()
    return int(text) if text.isdigit() else None


def _capped(free: int) -> int:
    cap = memory_cap()
    return free if cap is None else min(free, cap)


def _cap(room: Room) -> Room:
    """Say so where the cap lowered what a device has free (each device's own is capped where read)."""
    cap = memory_cap()
    devices = room.where.count(",") + 1  # "GPUs 0,1": two capped devices
    if cap is not None and room.free >= cap * devices:
        room.how = f"{CAP_ENV}={cap}"
    return room


def gpu_memory() -> list[Gpu] | None:
    """Every GPU of this machine with its free and total memory (nvidia-smi); None where it cannot say."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.free,memory.total",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    gpus = []
    for line in done.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4 or not (fields[0].isdigit() and fields[2].isdigit() and fields[3].isdigit()):
            return None  # [N/A] (a MIG device, say): not known
        gpus.append(Gpu(int(fields[0]), fields[1], _capped(int(fields[2]) << 20), int(fields[3]) << 20))
    return gpus


def visible(gpus: list[Gpu]) -> list[Gpu] | None:
    """The GPUs this process sees, in CUDA's order (CUDA_VISIBLE_DEVICES: indices or GPU- UUIDs, up to
    the first entry CUDA would stop at); None where it names devices nvidia-smi does not list (MIG)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return list(gpus)
    out = []
    for entry in (e.strip() for e in value.split(",")):
        if entry.isdigit():
            match = [g for g in gpus if g.index == int(entry)]
        elif entry.startswith("GPU-"):
            match = [g for g in gpus if g.uuid.startswith(entry)]
        elif entry.startswith("MIG-"):
            return None
        else:
            break
        if len(match) != 1 or match[0] in out:
            break
        out.append(match[0])
    return out


def device_room(device: str, gpus: int = 1) -> Room | None:
    """The free memory of `--device DEVICE` (with --gpus K: the first K visible GPUs together); None
    where it cannot be told (no nvidia-smi, MIG)."""
    if not device.startswith("cuda"):
        return ram_room()
    index = int(device.partition(":")[2] or 0)
    indices = list(range(index, index + 1)) if gpus <= 1 else list(range(gpus))
    every = gpu_memory()
    seen = visible(every) if every is not None else None
    torch_room = _torch_room(indices)
    if torch_room is not None:
        free, total = torch_room
        physical = [seen[i].index for i in indices] if seen and len(seen) > max(indices) else indices
        return _cap(Room(free, total, _gpus_named(physical), "torch", every or []))
    if not seen or len(seen) <= max(indices):
        return None
    chosen = [seen[i] for i in indices]
    return _cap(Room(sum(g.free for g in chosen), sum(g.total for g in chosen),
                     _gpus_named([g.index for g in chosen]), "nvidia-smi", every))


def gpus_room(indices: list[int]) -> Room | None:
    """The free memory of the machine's GPUs `indices` together (nvidia-smi's numbering: what the
    orchestrator's --gpus names)."""
    every = gpu_memory()
    if every is None:
        return None
    chosen = [g for g in every if g.index in indices]
    if len(chosen) != len(set(indices)):
        return None
    return _cap(Room(sum(g.free for g in chosen), sum(g.total for g in chosen), _gpus_named(indices), "nvidia-smi",
                     every))


def _gpus_named(indices: list[int]) -> str:
    return f"GPU{'s' if len(indices) > 1 else ''} {','.join(map(str, indices))}"


def _torch_room(indices: list[int]) -> tuple[int, int] | None:
    """torch's own count, where this process has initialised CUDA already (never initialised here)."""
    import sys

    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_initialized():
            return None
        infos = [torch.cuda.mem_get_info(i) for i in indices]
    except Exception:  # noqa: BLE001 - an index torch lacks: let nvidia-smi say
        return None
    return sum(_capped(f) for f, _ in infos), sum(t for _, t in infos)


def ram_room() -> Room:
    """The memory a new process may take on this machine: MemAvailable, within the cgroup's limit."""
    free, total, how = 0, None, "MemAvailable"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("MemAvailable", "MemTotal"):
                kib = int(value.split()[0]) * 1024
                free, total = (kib, total) if name == "MemAvailable" else (free, kib)
    except (OSError, ValueError, IndexError):
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        how = "sysconf"
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit.isdigit() and int(limit) - used < free:
            free, total, how = max(0, int(limit) - used), int(limit), "the cgroup's memory.max"
    except (OSError, ValueError):
        pass
    return _cap(Room(_capped(free), total, "RAM", how))


# -- the verdict ----------------------------------------------------------------------------------
def fits(weights: Weights | None, room: Room | None) -> bool:
    return weights is None or room is None or weights.total <= room.free


def gpus_with_room(room: Room, need: int, but: list[int] | None = None) -> list[int]:
    """The machine's GPUs (nvidia-smi's numbering) whose free memory holds `need`, other than `but`."""
    return [g.index for g in room.gpus if g.free >= need and g.index not in (but or [])]


def split_count(need: int, room: Room, among: list[int] | None = None) -> int | None:
    """The fewest GPUs (of the machine's, or those numbered `among`) a judge split over them would need:
    a balanced split puts about need/K on each, within SPLIT_WEIGHTS_SHARE of its free memory (the
    emptiest taken first); None where no such K is there."""
    frees = sorted((g.free for g in room.gpus if among is None or g.index in among), reverse=True)
    for k in range(2, len(frees) + 1):
        if frees[k - 1] * SPLIT_WEIGHTS_SHARE >= need / k:
            return k
    return None


def does_not_fit(what: str, model: str, weights: Weights, room: Room, remedies: list[str], *,
                 device: str = "", on: str = "") -> str:
    """The one line: 'editor model X does not fit on cuda:0 (GPU 3): its weights alone take ..., and GPU 3
    has ... free (...): remedy; remedy'. on: where, said otherwise than `device (room)`."""
    on = on or (f"{device} ({room.where})" if device and device != room.where else room.where)
    said = "; ".join(remedies) if remedies else "no device here has room for it"
    return (f"{what} model {model} does not fit on {on}: its weights alone take {weights.describe()}, and "
            f"{room.describe()}: {said}")


def smaller_dtype(weights: Weights, room: Room, flag: str) -> list[str]:
    """float32 weights that would fit in bfloat16: say so."""
    if weights.dtype == "float32" and weights.total // 2 <= room.free:
        return [f"{flag} bfloat16 halves them ({gib(weights.total // 2)})"]
    return []


def service_remedies(weights: Weights, room: Room, device: str, *, split: bool = False) -> list[str]:
    """What a service's user can do (its own flags): another GPU with room, bfloat16 for float32 weights,
    a judge split over GPUs (split: the scorer's --gpus K; a run's --judge-gpus-per-replica K), the CPU."""
    out = smaller_dtype(weights, room, "--dtype")
    if device.startswith("cuda"):
        current = [int(i) for i in room.where.split()[-1].split(",")] if room.where.startswith("GPU") else []
        others = gpus_with_room(room, weights.total, but=current)
        if others:
            masked = os.environ.get("CUDA_VISIBLE_DEVICES") is not None
            how = f"CUDA_VISIBLE_DEVICES={others[0]}" if masked else f"--device cuda:{others[0]}"
            out.append(f"GPU{'s' if len(others) > 1 else ''} {','.join(map(str, others))} "
                       f"{'have' if len(others) > 1 else 'has'} room ({how})")
        if split:
            k = split_count(weights.total, room)
            if k:
                out.append(f"split it over {k} GPUs with --gpus {k} (a run: --judge-gpus-per-replica {k})")
        if not others:
            out.append(f"free {room.where} (nvidia-smi lists what holds it) or give a GPU with {gib(weights.total)} free")
        ram = ram_room()
        cpu_need = weights.total * 2 if weights.dtype != "float32" else weights.total  # float32 on the CPU
        if cpu_need <= ram.free:
            out.append(f"run on the CPU (--device cpu; its RAM has {gib(ram.free)} free), slowly")
    else:
        half = weights.total // 2 if weights.dtype == "float32" else weights.total  # bfloat16 on a GPU
        fit = [g.index for g in (gpu_memory() or []) if g.free >= half]
        if fit:
            out.append(f"run on a GPU with room (--device cuda:N; {_gpus_named(fit)})")
        if not out:
            out.append("run it on a machine with more memory")
    return out


# -- out of memory while loading or warming up ---------------------------------------------------
def is_out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA OutOfMemoryError, the CPU allocator's failure (a RuntimeError), Python's MemoryError."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and said_out_of_memory(str(exc))


def said_out_of_memory(text: str) -> bool:
    """An error already turned into text ("OutOfMemoryError: CUDA out of memory. ...", as a judge's
    failed sample carries it) that is one of those."""
    return (text.startswith(("OutOfMemoryError:", "MemoryError:")) or "can't allocate memory" in text
            or "CUDA out of memory" in text)


def out_of_memory(what: str, model: str, device: str, phase: str, error: str, *,
                  weights: Weights | None = None, remedies: list[str] | None = None) -> str:
    """The one line for an out-of-memory error (its text) while loading (`phase` 'loading') or warming up."""
    first = error.strip().splitlines()[0] if error.strip() else "out of memory"
    if len(first) > 240:
        first = first[:240].rsplit(" ", 1)[0] + " ..."
    size = f" (its weights take {weights.describe()})" if weights is not None else ""
    said = "; ".join(remedies or []) or "give it a device with more free memory"
    return f"{what} model {model} ran out of memory on {device} while {phase}{size}: {first}: {said}"


class OutOfMemoryGuard:
    """A service's load and warm-up: an out-of-memory error (also one a handler turned into another
    error, raised `from None`) becomes the one line of `out_of_memory`, raised as the service frame's
    StartFailed (no traceback); `tripped` tells the service to exit 2, as the check before the load does."""

    def __init__(self, what: str, model: str, device: str, *, weights: Weights | None = None,
                 remedies: list[str] | None = None):
        self.what, self.model, self.device = what, model, device
        self.weights, self.remedies = weights, remedies
        self.tripped = False

    def during(self, phase: str) -> "_Phase":
        return _Phase(self, phase)

    def refuse(self, phase: str, error: str):
        """Raise the service frame's StartFailed with the line for `error` (an out-of-memory error's text)."""
        from .service import StartFailed

        self.tripped = True
        remedies = self.remedies if self.remedies is not None else ["give it a device with more free memory"]
        raise StartFailed(out_of_memory(self.what, self.model, self.device, phase, error, weights=self.weights,
                                        remedies=remedies)) from None


class _Phase:
    def __init__(self, guard: OutOfMemoryGuard, phase: str):
        self.guard, self.phase = guard, phase

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        cause = next((e for e in (exc, exc.__cause__, exc.__context__) if e is not None and is_out_of_memory(e)), None)
        if cause is None:
            return False
        self.guard.refuse(self.phase, f"{type(cause).__name__}: {cause}")
        return False
