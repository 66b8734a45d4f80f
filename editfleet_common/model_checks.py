"""Where a model and a device are, checked before anything loads: the orchestrator's preflight
(orchestrator/preflight.py) and both services' start-up ask the same questions here, so that a
mistake reads the same wherever it is caught, in one line naming the flag (or config key).

  - a model name meant as a folder (absolute, ./ ../ ~, `models/x` where models/ is a folder here) is a
    folder: missing, not a folder, or without the file its service reads first (the editor's
    model_index.json, the judge's config.json); never taken for a hub id;
  - a hub id (`org/name`, or a bare `name` that is no folder here) is in the local Hugging Face cache
    when HF_HUB_OFFLINE=1 forbids a download; a service about to download one asks the hub first
    (`ask_hub`): an unknown id, a gated or unreachable hub is said in one line, not as a diffusers or
    transformers traceback;
  - `--device cuda[:N]` / `--gpus K` name GPUs this machine shows (nvidia-smi -L, else
    /proc/driver/nvidia/gpus, then CUDA_VISIBLE_DEVICES; torch is not imported unless a service asks
    to confirm a refusal with it).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path

# A hub id: "org/name" (or a bare legacy "name"); anything else with a separator is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
HUB_TIMEOUT_S = 15.0  # one metadata request before a download starts


# -- models ---------------------------------------------------------------------------------------
def hub_cache() -> Path:
    """The Hugging Face hub cache the services read (the environment they inherit)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def looks_like_path(name: str) -> bool:
    """A model name meant as a folder: absolute, ./ ../ ~, a trailing or second separator, or a first
    component that is a folder here (`models/tiny-x`); otherwise a hub id (`org/name`)."""
    if name.startswith(("/", ".", "~")) or name.endswith("/") or "\\" in name or not _HUB_ID.match(name):
        return True
    first = name.split("/", 1)[0]
    return "/" in name and Path(first).is_dir()


def cached_snapshot(hub_id: str, needs: str) -> Path | None:
    """The local snapshot folder of a hub id that holds `needs` (refs/main's first), else None."""
    repo = hub_cache() / ("models--" + hub_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    preferred = []
    try:
        if ref.is_file():
            preferred.append(snapshots / ref.read_text().strip())
    except OSError:
        pass
    for folder in [*preferred, *sorted(snapshots.iterdir())]:
        if (folder / needs).is_file():
            return folder
    return None


def resolve_model(name: str) -> Path | None:
    """The local folder of a model name (a folder, or a hub id's cached snapshot); None where there is none."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if not looks_like_path(name):
        for needs in ("model_index.json", "config.json"):
            found = cached_snapshot(name, needs)
            if found is not None:
                return found
    return None


def model_problem(name: str | None, *, what: str, needs: str, kind: str, flag: str, key: str | None = None,
                  dummy: bool = False, ask_hub: bool = False, revision: str | None = None) -> str | None:
    """Why the model `name` cannot be loaded by a service of this machine (None: it can, or it will be
    downloaded). needs: the file its service reads first (config.json, model_index.json); flag/key: what
    the user wrote it as (`--editor-model` / `editor.model`, or a service's `--model`). ask_hub: a hub id
    neither cached nor forbidden to download is looked up on the hub (a service about to download it)."""
    if not name:
        return None
    where = f"({flag} / {key})" if key else f"({flag})"
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"{what} model {name}: not a folder {where}"
        if not (path / needs).is_file():
            return f"{what} model {name}: the folder has no {needs}, so it is not a {kind} model folder {where}"
        return None
    hint = _close_folder(path)
    did_you_mean = f"; did you mean {hint}?" if hint else ""
    if looks_like_path(name):
        first = name.split("/", 1)[0]
        taken = (f" ({first}/ is a folder here, so this is a path, not a hub id)"
                 if _HUB_ID.match(name) and "/" in name else "")
        return f"{what} model {name}: no such folder{taken} {where}{did_you_mean}"
    if dummy:
        return None  # random weights from shipped configs: the service knows its own names
    if cached_snapshot(name, needs) is not None:
        return None
    if offline():
        return (f"{what} model {name!r}: not in the local Hugging Face cache ({hub_cache()}) and HF_HUB_OFFLINE=1 "
                f"forbids downloading it {where}: download it first (`hf download {name}`), or give its folder"
                + did_you_mean)
    if ask_hub:
        return hub_problem(name, what=what, needs=needs, kind=kind, where=where, revision=revision,
                           did_you_mean=did_you_mean)
    return None


def hub_problem(name: str, *, what: str, needs: str, kind: str, where: str, revision: str | None = None,
                did_you_mean: str = "") -> str | None:
    """Ask the hub (HF_ENDPOINT, with the user's token) whether `name` is a `kind` model there: one
    metadata request, made only for a model about to be downloaded. None: it is (or huggingface_hub is
    not installed: nothing here downloads then)."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        return None
    from huggingface_hub import constants

    not_here = f"{what} model {name!r}: no such folder here and not in the local Hugging Face cache ({hub_cache()})"
    try:
        info = HfApi().model_info(name, revision=revision, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return (f"{what} model {name!r}: a gated repository on the Hugging Face hub: accept its terms on the hub and "
                f"give a token (HF_TOKEN, or `hf auth login`) {where}")
    except RepositoryNotFoundError:
        return (f"{not_here}, and the hub ({constants.ENDPOINT}) has no model {name!r} (or it is private: give a token, "
                f"HF_TOKEN) {where}{did_you_mean}")
    except RevisionNotFoundError:
        return f"{what} model {name!r}: the hub has no revision {revision!r} of it (--revision) {where}"
    except Exception as exc:  # noqa: BLE001 - no network, a proxy, a hub error: said in one line
        return (f"{not_here}, and the hub ({constants.ENDPOINT}) cannot be reached to download it "
                f"({type(exc).__name__}: {str(exc)[:200]}) {where}: give a model folder, or download it first "
                f"(`hf download {name}`){did_you_mean}")
    files = [sibling.rfilename for sibling in (info.siblings or [])]
    if files and needs not in files:
        return f"{what} model {name!r}: the hub repository has no {needs}, so it is not a {kind} model {where}"
    return None


def _close_folder(path: Path) -> str | None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        names = [p.name for p in parent.iterdir() if p.is_dir()]
    except OSError:
        return None
    close = difflib.get_close_matches(path.name, names, n=1)
    return str(parent / close[0]) if close else None


# -- GPUs -----------------------------------------------------------------------------------------
def gpu_count() -> int:
    """GPUs on this machine, without importing torch: `nvidia-smi -L`, else /proc/driver/nvidia/gpus."""
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0:
            return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))
    proc = Path("/proc/driver/nvidia/gpus")
    try:
        return len([p for p in proc.iterdir()]) if proc.is_dir() else 0
    except OSError:
        return 0


def visible_gpus(total: int) -> int:
    """Of `total` GPUs, those this process may use: CUDA_VISIBLE_DEVICES up to its first entry CUDA
    would stop at (empty, negative, or an index the machine lacks)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return total
    count = 0
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-") or (entry.isdigit() and int(entry) >= total):
            break
        count += 1
    return min(count, total)


def torch_gpu_count() -> int | None:
    """CUDA devices as torch sees them (None: no torch here)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def device_problem(device: str, *, gpus: int = 1, confirm_with_torch: bool = False) -> str | None:
    """Why `--device DEVICE` (and `--gpus K`, a judge split over K GPUs) cannot run here; None: it can.
    confirm_with_torch: a refusal is checked with torch's own count first (a machine whose GPUs
    nvidia-smi and /proc do not show, e.g. WSL, is not refused)."""
    if not device.startswith("cuda"):
        return None
    index_text = device.partition(":")[2]
    if device != "cuda" and not (device.startswith("cuda:") and index_text.isdigit()):
        return f"--device {device}: give cpu, cuda or cuda:N"
    index = int(index_text) if index_text else 0
    total = gpu_count()
    visible = visible_gpus(total)
    if max(index + 1, gpus) > visible and confirm_with_torch:
        seen = torch_gpu_count()
        if seen is not None and seen > visible:
            visible = seen
    if max(index + 1, gpus) <= visible:
        return None
    masked = os.environ.get("CUDA_VISIBLE_DEVICES")
    shown = f" (CUDA_VISIBLE_DEVICES={masked!r})" if masked is not None else ""
    flags = f"--device {device}" + (f" --gpus {gpus}" if gpus > 1 else "")
    if visible == 0:
        why = ("this machine has no GPU (nvidia-smi finds none)" if total == 0
               else f"no GPU is visible to this process{shown}")
        return f"{flags}: {why}; run on the CPU with --device cpu"
    if index >= visible:
        return f"{flags}: there is no GPU {index}: {visible} GPU(s) visible{shown}, cuda:0 to cuda:{visible - 1}"
    return f"{flags}: {gpus} GPUs asked, {visible} visible{shown}"
