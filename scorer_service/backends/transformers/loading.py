"""Loading a chat VLM judge with transformers: from a directory or a hub id (`load_format="auto"`),
or the real architecture with random weights from shipped configs (`load_format="dummy"`:
`SHIPPED_CONFIGS`, Qwen3-VL-8B and Qwen3-VL-30B-A3B, or the configs in a directory).

    model, processor, identity = load_model("Qwen/Qwen3-VL-8B-Instruct", device="cuda", dtype="bfloat16")

A mixture-of-experts judge (Qwen3-VL-30B-A3B) runs its experts with `EXPERTS_IMPLEMENTATION`:
transformers' grouped GEMM (`torch.nn.functional.grouped_mm` over the tokens sorted by expert, one
kernel per projection for all experts), asked for explicitly rather than left to transformers'
default, and never its "eager" loop over experts (one pair of matmuls per expert hit, and a
host synchronisation that rules out CUDA graphs).

No code from a model folder runs unless `trust_remote_code` is set. The identity's content hash
covers every config and weight file (a dummy load: "dummy:" + the config's sha256).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

import torch

from editfleet_common.identity import ModelIdentity
from editfleet_common.memory_fit import SPLIT_WEIGHTS_SHARE, module_bytes
from editfleet_common.dtypes import torch_dtype as resolve_torch_dtype
from editfleet_common.model_files import hash_files, model_snapshot
from editfleet_common.stand_in_tokenizer import load_stand_in_tokenizer, special_token_ids

log = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
# Hub ids (and short names) whose real architecture's configs (no weights) ship in configs/ for
# load_format="dummy"
SHIPPED_CONFIGS = {
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3-vl-8b",
    "qwen3-vl-8b": "qwen3-vl-8b",
    "Qwen/Qwen3-VL-30B-A3B-Instruct": "qwen3-vl-30b-a3b",
    "qwen3-vl-30b-a3b": "qwen3-vl-30b-a3b",
}
DUMMY_CONFIG_DIR = CONFIGS_DIR / "qwen3-vl-8b"  # the default judge's
LOAD_FORMATS = ("auto", "dummy")
# how a mixture-of-experts judge runs its experts (transformers' ExpertsInterface): grouped GEMMs
EXPERTS_IMPLEMENTATION = "grouped_mm"


class NoShippedConfigs(ValueError):
    """load_format="dummy" for a model that is neither a config directory nor in SHIPPED_CONFIGS."""


class NotEnoughGpus(ValueError):
    """gpus > 1: fewer CUDA devices visible than the judge is split over, or its weights do not fit on them."""


# A judge split over GPUs (gpus > 1): the share of each GPU's free memory its weights may take; the rest
# is left for the batches' activations and KV cache (defined with the start-up's memory check, which
# suggests a split by it).
WEIGHTS_SHARE = SPLIT_WEIGHTS_SHARE


def plan_split(net, gpus: int, free_bytes: list[int], dtype) -> dict[str, int]:
    """Which GPU (0..gpus-1) holds each part of `net` (a model on any device, "meta" included): accelerate's
    balanced placement, whole decoder layers per GPU (the model's `_no_split_modules`). Nothing goes to
    the CPU or disk: a judge that does not fit is refused (NotEnoughGpus), never offloaded."""
    from accelerate.utils import get_balanced_memory, infer_auto_device_map

    no_split = list(getattr(net, "_no_split_modules", None) or [])
    max_memory = {i: int(free * WEIGHTS_SHARE) for i, free in enumerate(free_bytes[:gpus])}
    balanced = get_balanced_memory(net, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype)
    plan = infer_auto_device_map(net, max_memory={**balanced, "cpu": 0, "disk": 0}, no_split_module_classes=no_split,
                                 dtype=dtype)
    off = sorted({str(where) for where in plan.values() if not isinstance(where, int)})
    if off:
        raise NotEnoughGpus(f"--gpus {gpus}: the judge's weights do not fit on {gpus} GPU(s) at "
                            f"{WEIGHTS_SHARE:.0%} of their free memory (parts left for {', '.join(off)})")
    return plan


def _free_gpu_bytes(gpus: int) -> list[int]:
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible < gpus:
        raise NotEnoughGpus(f"--gpus {gpus}: {visible} CUDA device(s) visible "
                            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r})")
    return [torch.cuda.mem_get_info(i)[0] for i in range(gpus)]


def placement(plan: dict[str, int]) -> str:
    """A plan in one line for the identity's runtime: how many top-level parts each GPU holds."""
    return ", ".join(f"GPU {gpu}: {n} part(s)" for gpu, n in sorted(Counter(plan.values()).items()))


def dummy_config_dir(model: str) -> Path:
    """Where a dummy load's configs come from: a directory with a config.json, or shipped configs."""
    path = Path(model)
    if (path / "config.json").is_file():
        return path
    if model in SHIPPED_CONFIGS:
        return CONFIGS_DIR / SHIPPED_CONFIGS[model]
    raise NoShippedConfigs(f"--load-format dummy: {model!r} is neither a directory with config.json nor a model "
                           f"with shipped configs ({', '.join(sorted(SHIPPED_CONFIGS))})")


def _experts_kwargs(config) -> dict[str, str]:
    """from_config arguments that pick the grouped experts for a MoE model."""
    moe = bool(getattr(config.get_text_config(decoder=True), "num_experts", 0))
    return {"experts_implementation": EXPERTS_IMPLEMENTATION} if moe else {}


def _is_moe_checkpoint(directory: Path) -> bool:
    """Whether the checkpoint's text model has routed experts (transformers 5 writes num_local_experts)."""
    path = directory / "config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    text = config.get("text_config", config)
    return bool(text.get("num_experts") or text.get("num_local_experts"))


def load_model(model: str, *, device: str = "cpu", dtype: str = "auto", load_format: str = "auto",
               revision: str | None = None, seed: int = 0, trust_remote_code: bool = False,
               stage_on_host: bool = False, gpus: int = 1):
    """(model, processor, identity). stage_on_host: load into host memory in the dtype of `device`
    (bfloat16 for cuda), to be moved there later; the identity names `device` either way. gpus > 1:
    the weights split over the first `gpus` visible CUDA devices (`plan_split`), not staged."""
    if load_format not in LOAD_FORMATS:
        raise ValueError(f"unknown load format {load_format!r} ({', '.join(LOAD_FORMATS)})")
    torch_dtype = resolve_torch_dtype(dtype, device)
    if gpus > 1:
        return _load_split(model, gpus, torch_dtype, load_format, revision, seed, trust_remote_code)
    # staged: no device_map (no dispatch hooks), so that a plain .to(device) moves it later
    load_device, device_map = ("cpu", None) if stage_on_host else (device, device)
    if load_format == "dummy":
        net, processor, identity = build_dummy(model, load_device, torch_dtype, seed)
    else:
        net, processor, identity = _from_pretrained(model, load_device, device_map, torch_dtype, revision,
                                                    trust_remote_code)
    identity.device = str(device)
    return net, processor, identity


def _load_split(model: str, gpus: int, torch_dtype, load_format: str, revision, seed: int, trust_remote_code: bool):
    """The judge over `gpus` GPUs: planned on the meta device (no memory), then loaded to that plan
    (from_pretrained's device_map), or, for a dummy, built on the CPU and dispatched to it."""
    from accelerate import dispatch_model
    from transformers import AutoConfig, AutoModelForImageTextToText

    free = _free_gpu_bytes(gpus)
    if load_format == "dummy":
        net, processor, identity = build_dummy(model, "cpu", torch_dtype, seed)
        plan = plan_split(net, gpus, free, torch_dtype)
        net = dispatch_model(net, device_map=plan)
    else:
        directory, _ = model_snapshot(model, revision)
        config = AutoConfig.from_pretrained(directory, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            skeleton = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype, **_experts_kwargs(config))
        plan = plan_split(skeleton, gpus, free, torch_dtype)
        del skeleton
        net, processor, identity = _from_pretrained(model, "cuda", plan, torch_dtype, revision, trust_remote_code)
    identity.device = "cuda"
    identity.runtime["gpus"] = str(gpus)
    identity.runtime["placement"] = placement(plan)
    log.info("judge split over %d GPUs: %s", gpus, identity.runtime["placement"])
    return net, processor, identity


def _from_pretrained(model: str, load_device: str, device_map, torch_dtype, revision, trust_remote_code: bool):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    directory, commit = model_snapshot(model, revision)
    hashed: dict[str, str] = {}
    hasher = threading.Thread(target=lambda: hashed.setdefault("h", hash_files(directory)), daemon=True)
    hasher.start()  # hashing the weights overlaps with loading them
    t0 = time.monotonic()
    # trust_remote_code said explicitly: no code from the model folder runs unless opted in.
    net = AutoModelForImageTextToText.from_pretrained(
        directory, dtype=torch_dtype, device_map=device_map, trust_remote_code=trust_remote_code,
        **({"experts_implementation": EXPERTS_IMPLEMENTATION} if _is_moe_checkpoint(Path(directory)) else {}))
    net.eval()
    processor = AutoProcessor.from_pretrained(directory, trust_remote_code=trust_remote_code)
    hasher.join()
    log.info("loaded %s (%s) on %s in %.1fs", model, type(net).__name__, load_device, time.monotonic() - t0)
    identity = ModelIdentity(model=model, revision=commit, content_hash=hashed["h"], model_class=type(net).__name__,
                             dtype=str(torch_dtype).removeprefix("torch."), device=load_device, load_format="auto")
    return net, processor, identity


def dummy_weight_bytes(model: str, torch_dtype) -> int:
    """What build_dummy's model would take on its device in `torch_dtype`: built on the meta device from
    the same configs (no memory, no weights drawn)."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(dummy_config_dir(model), trust_remote_code=False)
    with torch.device("meta"):
        net = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype, **_experts_kwargs(config))
    return module_bytes(net, str(torch_dtype).removeprefix("torch."))


def build_dummy(model: str, device: str, torch_dtype, seed: int = 0):
    """The real architecture of `model` (shipped configs: Qwen3-VL-8B or -30B-A3B; or the configs in
    the directory `model`) with random weights drawn from `seed`, and the stand-in tokenizer (no real
    tokenizer can be downloaded here): for throughput and memory measurements only."""
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    config_dir = dummy_config_dir(model)
    config_text = (config_dir / "config.json").read_text()
    tokenizer = load_stand_in_tokenizer()
    ids = special_token_ids(tokenizer)
    config = AutoConfig.from_pretrained(config_dir, trust_remote_code=False)
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(config, key, ids[key])  # the tokenizer's ids, the checkpoint's sizes
    torch.manual_seed(seed)
    t0 = time.monotonic()
    with torch.device(device):
        net = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype, **_experts_kwargs(config))
    net.eval()
    net.generation_config = GenerationConfig(
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]], pad_token_id=ids["pad_token_id"],
        bos_token_id=ids["bos_token_id"], do_sample=False,
    )
    log.info("built dummy %s on %s in %.1fs", type(net).__name__, device, time.monotonic() - t0)
    pre = json.loads((config_dir / "preprocessor_config.json").read_text())
    vid = json.loads((config_dir / "video_preprocessor_config.json").read_text())
    keep = ("size", "patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**{k: pre[k] for k in keep if k in pre}),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**{k: vid[k] for k in keep if k in vid}),
        chat_template=(config_dir / "chat_template.jinja").read_text(),
    )
    identity = ModelIdentity(model=str(model), revision="",
                             content_hash="dummy:" + hashlib.sha256(config_text.encode()).hexdigest(),
                             model_class=type(net).__name__, dtype=str(torch_dtype).removeprefix("torch."),
                             device=str(device), load_format="dummy")
    return net, processor, identity


def set_threads(threads: int) -> None:
    """Fix torch's CPU thread count so results and timings do not depend on what else runs."""
    if threads > 0:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
