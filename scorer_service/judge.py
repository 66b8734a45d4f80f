"""The judge: a chat VLM that scores image edits in batches. Knows nothing of gRPC.

    judge = Judge.load("Qwen/Qwen3-VL-8B-Instruct", device="cuda", dtype="bfloat16")
    samples = [prepare(ScoreInput(...), registry), ...]   # validation: raises InvalidInput
    outcomes = judge.score(samples)                        # one ScoreOutcome per sample, same order

Any chat VLM whose processor takes images through `apply_chat_template` works
(`AutoModelForImageTextToText` + `AutoProcessor`); Qwen3-VL is the default. `load_format="dummy"`
builds the real Qwen3-VL-8B architecture from the configs shipped in configs/qwen3-vl-8b with random
weights (for performance work where no checkpoint can be downloaded).

Scoring a batch:
  1. every (sample, question) becomes one chat prompt; all prompts run as one batch: left padding,
     greedy decoding, `max_new_tokens`; the prompt ids are trimmed and the raw text is kept;
  2. replies that cannot be parsed are asked again, once, with the protocol's stricter suffix
     (batched too); if that fails as well the sample is PARSE_FAILED with every raw text: never a
     default, never a guess;
  3. for questions with one score and an `expected_score_prefix`, the expected score (below).

Expected score. With p(· | context) the judge's next-token distribution, the context being the
question's first-attempt prompt followed by the prefix (e.g. `{"score": `) teacher-forced as the
start of the assistant's reply:
  * each integer s in the protocol's range is spelled by the tokens of str(s) (in Qwen's tokenizer
    digits are single tokens, so "10" is "1" then "0"); these spellings form a tree;
  * at every node of the tree the valid outcomes are its children and, if the digits so far are
    themselves a score, "the number ends here" (any token that does not start with a digit);
    the probabilities of the valid outcomes are renormalised to sum to 1 (an out-of-range spelling
    such as "11" is thus excluded, like a token that is no digit at the first position);
  * P(s) is the product along the path of s (times the end probability where s is also a prefix
    of a longer score), and expected_score = sum_s s * P(s).
With Qwen that is one forward pass per batch over prompt + prefix + "1": the last two positions
give the first-digit distribution and the distribution after "1". The value exists whether or not
the generated text parses; it is computed from the first-attempt prompt only.

One prefill per prompt (Qwen3-VL). The first attempt's prompts are prefilled once, all but their
last token (the "\n" of the assistant header, always text), into a KV cache. The tree's paths are
then fed on that cache as [last prompt token] + prefix + path (the cache is cut back after each),
and decoding continues from the same cache: it processes only the last prompt token, then decodes.
The positions of the fed tokens follow Qwen3-VL's multimodal rope: text after the prompt continues
at (valid prompt tokens + rope delta), the delta being what the prefill computed for the images.
Other models score with a separate full forward over prompt + prefix + path (`_expected_scores`,
also the reference the shared path is tested against).

Decoding (`decode`): "dynamic" is `generate` on transformers' default growing cache. "static"
(Qwen3-VL; "auto" picks it on CUDA) prefills a batch in chunks of `prefill_batch` prompts, each on its
own cache, copies them into the rows of one preallocated decode cache (transformers' StaticCache, one
per batch size, reused) and decodes all rows greedily in fixed-shape steps that stay on the device
(`decoding.StaticGreedyDecoder`); on CUDA each (batch size, cache length) captures its step once as a
CUDA graph and replays it, with no compile warm-up. Threads: the processor runs on the caller's
thread, every forward on the device thread, static decoding on the decode thread (own CUDA stream), so
that a second batch (the batcher keeps two in flight) is prepared while one decodes. Both modes decode
with `decoding.grouped_decode_attention` (the same attention without copying the KV cache once per
query head). All of it is recorded in the model identity's `runtime`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from contextlib import nullcontext
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from editfleet_common.identity import ModelIdentity
from editfleet_common.model_files import hash_files
from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image

from .decoding import StaticGreedyDecoder, install_grouped_decode_attention
from .parsing import parse_reply
from .protocol import Protocol, ProtocolRegistry, Question

log = logging.getLogger(__name__)

DUMMY_CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "qwen3-vl-8b"
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# auto: static where it is written for the model (Qwen3-VL) and runs on CUDA, else dynamic
DECODE_MODES = ("auto", "dynamic", "static")
# Static caches are sized in steps of this many tokens and never shrink, so that prompts of
# slightly different lengths reuse one cache (and one captured decode graph).
STATIC_CACHE_STEP = 128
# Models whose cached continuation (multimodal rope positions) the shared prefill is written for.
SHARED_PREFILL_MODEL_TYPES = ("qwen3_vl",)

STATUS_OK = "OK"
STATUS_PARSE_FAILED = "PARSE_FAILED"
STATUS_INVALID = "INVALID"
STATUS_ERROR = "ERROR"
STATUS_REFUSED = "REFUSED"  # the judge refused (an API model or its content filter): reason in `error`


# ----------------------------------------------------------------------------------------------
# Inputs and outputs (plain data; the gRPC layer converts messages to and from these)


@dataclass
class ScoreInput:
    sample_id: str
    source_image: bytes = b""
    edited_image: bytes = b""
    instruction: str = ""
    category: str = ""
    protocol: str = ""
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class PreparedSample:
    sample_id: str
    protocol: Protocol
    category: str
    variables: dict[str, str]
    images: dict[str, Image.Image]


@dataclass
class ScoreOutcome:
    sample_id: str
    status: str
    protocol: str = ""
    protocol_hash: str = ""
    score: float | None = None
    sub_scores: list[tuple[str, float]] = field(default_factory=list)
    expected_score: float | None = None
    response: str = ""
    raw_responses: list[str] = field(default_factory=list)
    attempts: int = 0
    error: str = ""
    batch_size: int = 0
    latency_s: float = 0.0
    # reported by an API endpoint (backend openai), summed over the sample's requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    served_model: str = ""
    system_fingerprint: str = ""


def prepare(inp: ScoreInput, registry: ProtocolRegistry, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> PreparedSample:
    """Validate a request and decode its images; every problem is an InvalidInput naming it."""
    if not inp.sample_id:
        raise InvalidInput("sample_id is empty")
    protocol = registry.get(inp.protocol)
    variables = dict(inp.variables)
    if inp.instruction.strip():  # a blank instruction is a missing one (not judged as "   ")
        if variables.get("edit_instruction", inp.instruction) != inp.instruction:
            raise InvalidInput("instruction and variables['edit_instruction'] disagree")
        variables["edit_instruction"] = inp.instruction
    variables.setdefault("category", inp.category)
    protocol.check_variables(inp.category, variables)

    images: dict[str, Image.Image] = {}
    given = {"source": inp.source_image, "edited": inp.edited_image}
    for role in protocol.images:
        if not given[role]:
            raise InvalidInput(f"{role}_image: missing (protocol {protocol.name!r} needs it)")
    for role, data in given.items():
        if data:  # an image that is sent is checked even where the protocol does not show it
            images[role] = decode_image(data, max_pixels=max_image_pixels, field=f"{role}_image")
    return PreparedSample(inp.sample_id, protocol, inp.category, variables, images)


# ----------------------------------------------------------------------------------------------
# Model loading and identity


def resolve_dtype(name: str, device: str) -> torch.dtype:
    if name in ("", "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        dtype = getattr(torch, name)
    except AttributeError:
        dtype = None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} (float32, bfloat16, float16, auto)")
    return dtype


def _resolve_model_dir(model: str, revision: str | None) -> tuple[Path, str]:
    """(local directory, hub commit hash or '') for a path or a hub id."""
    path = Path(model)
    if path.is_dir():
        parts = path.resolve().parts
        commit = parts[-1] if len(parts) > 1 and parts[-2] == "snapshots" else ""
        return path, commit
    from huggingface_hub import snapshot_download

    local = Path(snapshot_download(model, revision=revision))
    return local, local.name  # hub cache layout: .../snapshots/<commit>


class ScoreTokenTree:
    """The spellings of the protocol's integer scores as token paths (see the module docstring)."""

    def __init__(self, tokenizer, prefix: str, low: float, high: float, digit_start: torch.Tensor):
        encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.prefix_ids = encode(prefix)
        self.root: dict = {"children": {}, "value": None}
        for value in range(math.ceil(low), math.floor(high) + 1):
            full = encode(prefix + str(value))
            if full[: len(self.prefix_ids)] != self.prefix_ids:
                raise ValueError(f"tokenizer merges the prefix {prefix!r} with the score {value}")
            node = self.root
            for tok in full[len(self.prefix_ids):]:
                node = node["children"].setdefault(tok, {"children": {}, "value": None})
            node["value"] = value
        # paths to feed: the deepest path to each internal node covers all internal nodes above it
        internal: list[tuple[int, ...]] = []

        def collect(node, path):
            if node["children"]:
                internal.append(path)
                for tok, child in node["children"].items():
                    collect(child, path + (tok,))

        collect(self.root, ())
        self.paths = [p for p in internal if not any(q[: len(p)] == p and q != p for q in internal)]
        self.end_mask = ~digit_start  # "the number ends here": tokens that do not start with a digit

    def expected(self, dists: dict[tuple[int, ...], torch.Tensor]) -> float | None:
        """dists: node path -> probability vector over the vocabulary at that node."""
        probs: dict[int, float] = {}

        def walk(node, path, p):
            if not node["children"]:
                probs[node["value"]] = probs.get(node["value"], 0.0) + p
                return
            dist = dists[path]
            mass = {tok: float(dist[tok]) for tok in node["children"]}
            end = 0.0
            if node["value"] is not None:  # ids past the tokenizer (embedding padding) are no outcome
                n = min(dist.shape[0], self.end_mask.shape[0])
                end = float(dist[:n][self.end_mask[:n]].sum())
            total = sum(mass.values()) + end
            if total <= 0.0:
                raise ArithmeticError("no probability on any score token")
            if node["value"] is not None:
                probs[node["value"]] = probs.get(node["value"], 0.0) + p * end / total
            for tok, child in node["children"].items():
                walk(child, path + (tok,), p * mass[tok] / total)

        try:
            walk(self.root, (), 1.0)
        except ArithmeticError:
            return None
        return sum(v * p for v, p in probs.items())


@dataclass
class _Prompt:
    sample_index: int
    question: Question
    system: str | None
    user: str
    images: list[Image.Image]


class Judge:
    def __init__(self, model, processor, identity: ModelIdentity, *, max_new_tokens: int = 128,
                 decode: str = "auto", target_device: str | None = None, prefill_batch: int = 32):
        if decode not in DECODE_MODES:
            raise ValueError(f"unknown decode mode {decode!r} ({', '.join(DECODE_MODES)})")
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # batched generation needs the prompt ends aligned
        self.identity = identity
        self.max_new_tokens = max_new_tokens
        self.max_attempts = 2  # 1: no re-ask (benchmarks comparing against a loop that never re-asks)
        self.device = next(model.parameters()).device
        # where move_to_device() puts a staged model
        self.target_device = str(target_device) if target_device is not None else str(self.device)
        self.dtype = next(model.parameters()).dtype
        if decode == "auto":
            decode = "static" if self._shares_prefill() and torch.device(self.target_device).type == "cuda" else "dynamic"
        self.decode = decode
        if prefill_batch < 1:
            raise ValueError(f"prefill_batch must be >= 1, got {prefill_batch}")
        self.prefill_batch = prefill_batch  # static decoding: prompts per prefill forward
        if decode == "static" and not self._shares_prefill():
            raise ValueError(f"decode mode 'static' is written for {', '.join(SHARED_PREFILL_MODEL_TYPES)} models, "
                             f"not {getattr(model.config, 'model_type', '?')!r}; use 'dynamic'")
        # static decode: idle decoders by (batch, cache length), oldest first; one is checked out per
        # batch from its prefill to the end of its decoding (two batches in flight: two of one size)
        self._idle_decoders: OrderedDict[tuple[int, int], list[StaticGreedyDecoder]] = OrderedDict()
        self._decoders_changed = threading.Condition()
        self._busy_decoders = 0
        self._static_cache_len = 0
        self._grouped_attention = install_grouped_decode_attention(model)
        self._trees: dict[tuple, ScoreTokenTree | None] = {}
        self._digit_start: torch.Tensor | None = None
        # Every forward of the model runs on this one thread, one batch after another (torch.compile's
        # cudagraph trees, used before, failed when recorded on another thread than the batches'). With
        # static decoding the decoding runs on a second thread and CUDA stream, so that one batch decodes
        # (memory-bound) while the next is prefilled (compute-bound): see score().
        self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-device")
        self._decode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-decode")
        self._decode_stream = None  # made on first use, on the device the model is on by then
        self._device_queue = 0  # calls submitted to the device thread and not yet finished
        self._batches_before_decode = 0  # batches in score() that have not started decoding
        self._device_queue_lock = threading.Lock()
        self._batch_state = threading.local()
        gen = model.generation_config
        pad = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        if pad is None:
            pad = gen.eos_token_id if isinstance(gen.eos_token_id, int) else gen.eos_token_id[0]
        from transformers import GenerationConfig

        self.generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=gen.eos_token_id,
            pad_token_id=pad,
            bos_token_id=gen.bos_token_id,
        )
        identity.runtime.update(self._runtime())

    def _runtime(self) -> dict[str, str]:
        """How this judge runs where that changes its numbers or speed (recorded with every result)."""
        runtime = {
            "decode": self.decode,
            "expected_score": "shared_prefill" if self._shares_prefill() else "separate_forward",
        }
        if self.decode == "static":
            runtime["decode_graphs"] = "cuda" if torch.device(self.target_device).type == "cuda" else "none"
            runtime["prefill_batch"] = str(self.prefill_batch)
        if self._grouped_attention:
            runtime["decode_attention"] = "grouped_sdpa"
        return runtime

    def use_transformers_decode_attention(self) -> None:
        """Decode with transformers' own SDPA path (KV heads repeated per query head), as a plain
        transformers loop like the seed's does: the baseline benchmarks compare against."""
        if self._grouped_attention:
            self.model.config.get_text_config(decoder=True)._attn_implementation = "sdpa"
            self._grouped_attention = False
            self.identity.runtime.pop("decode_attention", None)

    def _shares_prefill(self) -> bool:
        return getattr(self.model.config, "model_type", "") in SHARED_PREFILL_MODEL_TYPES

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        load_format: str = "auto",
        revision: str | None = None,
        max_new_tokens: int = 128,
        seed: int = 0,
        trust_remote_code: bool = False,
        stage_on_host: bool = False,
        decode: str = "auto",
        prefill_batch: int = 32,
    ) -> "Judge":
        """stage_on_host: load into host memory in the dtype of `device` (bfloat16 for cuda) and
        stay there until move_to_device(); the identity names `device` either way."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        torch_dtype = resolve_dtype(dtype, device)
        # staged: no device_map (no dispatch hooks), so that a plain .to(device) moves it later
        load_device, device_map = ("cpu", None) if stage_on_host else (device, device)
        if decode not in DECODE_MODES:  # before minutes of loading
            raise ValueError(f"unknown decode mode {decode!r} ({', '.join(DECODE_MODES)})")
        if load_format == "dummy":
            judge = cls._load_dummy(model, load_device, torch_dtype, max_new_tokens, seed, decode, str(device),
                                    prefill_batch)
            judge.identity.device = str(device)
            return judge
        if load_format != "auto":
            raise ValueError(f"unknown load format {load_format!r} (auto, dummy)")
        directory, commit = _resolve_model_dir(model, revision)
        hashed: dict[str, str] = {}
        hasher = threading.Thread(target=lambda: hashed.setdefault("h", hash_files(directory)), daemon=True)
        hasher.start()  # hashing the weights overlaps with loading them
        t0 = time.monotonic()
        # trust_remote_code said explicitly: no code from the model folder runs unless opted in.
        net = AutoModelForImageTextToText.from_pretrained(directory, dtype=torch_dtype, device_map=device_map,
                                                          trust_remote_code=trust_remote_code)
        net.eval()
        processor = AutoProcessor.from_pretrained(directory, trust_remote_code=trust_remote_code)
        hasher.join()
        log.info("loaded %s (%s) on %s in %.1fs", model, type(net).__name__, load_device, time.monotonic() - t0)
        identity = ModelIdentity(
            model=model,
            revision=commit,
            content_hash=hashed["h"],
            model_class=type(net).__name__,
            dtype=str(torch_dtype).removeprefix("torch."),
            device=str(device),
            load_format="auto",
        )
        return cls(net, processor, identity, max_new_tokens=max_new_tokens, decode=decode, target_device=str(device),
                   prefill_batch=prefill_batch)

    @classmethod
    def _load_dummy(cls, model: str, device: str, torch_dtype, max_new_tokens: int, seed: int,
                    decode: str = "auto", target_device: str | None = None, prefill_batch: int = 32) -> "Judge":
        """The real Qwen3-VL-8B architecture with random weights and the tiny test tokenizer
        (no real tokenizer can be downloaded here): for throughput and memory measurements only."""
        import json

        from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig, Qwen3VLProcessor
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

        from tools.tiny_tokenizer import special_token_ids, train_tiny_qwen_tokenizer

        config_dir = Path(model) if Path(model).is_dir() else DUMMY_CONFIG_DIR
        config_text = (config_dir / "config.json").read_text()
        tokenizer = train_tiny_qwen_tokenizer()
        ids = special_token_ids(tokenizer)
        config = AutoConfig.from_pretrained(config_dir, trust_remote_code=False)
        for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
            setattr(config, key, ids[key])  # the tokenizer's ids, the checkpoint's sizes
        torch.manual_seed(seed)
        t0 = time.monotonic()
        with torch.device(device):
            net = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype)
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
        identity = ModelIdentity(
            model=str(model),
            revision="",
            content_hash="dummy:" + hashlib.sha256(config_text.encode()).hexdigest(),
            model_class=type(net).__name__,
            dtype=str(torch_dtype).removeprefix("torch."),
            device=str(device),
            load_format="dummy",
        )
        return cls(net, processor, identity, max_new_tokens=max_new_tokens, decode=decode, target_device=target_device,
                   prefill_batch=prefill_batch)

    def move_to_device(self) -> float:
        """Move a model staged in host memory to its target device; seconds taken (0 if there)."""
        target = torch.device(self.target_device)
        if self.device.type == target.type and target.index in (None, self.device.index):
            return 0.0
        t0 = time.monotonic()
        with self._decoders_changed:
            self._idle_decoders.clear()  # caches live on the device they were made on
        if target.type == "cuda":
            # One device allocation up front, freed into the caching allocator: the per-tensor
            # copies below then take memory from that segment instead of one cudaMalloc each.
            nbytes = sum(t.numel() * t.element_size() for t in (*self.model.parameters(), *self.model.buffers()))
            torch.empty(nbytes + (64 << 20), dtype=torch.uint8, device=target)
        self.model.to(target, non_blocking=True)  # async from pinned blocks: DMA at bus speed
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        self.device = next(self.model.parameters()).device
        return time.monotonic() - t0

    def warm_up(self, sample: PreparedSample) -> ScoreOutcome:
        """One sample through every path a batch takes (processor, vision tower, prefill, one decode
        step, the expected-score forward) with 2 new tokens and no re-ask: the first real batch pays
        no lazy initialisation, and start-up does not pay a full-length reply. Before serving only."""
        from copy import deepcopy

        saved = self.generation_config, self.max_attempts
        short = deepcopy(self.generation_config)
        short.max_new_tokens, short.min_new_tokens = 2, None
        self.generation_config, self.max_attempts = short, 1
        try:
            return self._score_isolating_failures([sample])[0]
        finally:
            self.generation_config, self.max_attempts = saved

    # -- scoring ------------------------------------------------------------------------------

    @property
    def batches_in_flight(self) -> int:
        """How many batches score() can usefully run at once: two with static decoding (one prefilled
        on the device thread while the other decodes), else one."""
        return 2 if self.decode == "static" else 1

    def ready_for_next(self) -> bool:
        """Whether a new batch would start its prefill at once: no batch is being prepared or
        prefilled (with static decoding, one that is decoding does not count)."""
        return self._device_queue == 0 and self._batches_before_decode == 0

    def score(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        """Score a batch; a failure of the whole batch is retried sample by sample so that one bad
        sample cannot take the others down (those failing alone get status ERROR). Callable from
        several threads at once: the processor runs on the caller's thread, every model forward on
        the device thread in call order, and static decoding on the decode thread."""
        with self._device_queue_lock:
            self._batches_before_decode += 1
        self._batch_state.before_decode = True
        try:
            return self._score_isolating_failures(samples)
        finally:
            self._decoding_starts()

    def _decoding_starts(self) -> None:
        """This thread's batch is past its prefill (the next batch may start preparing)."""
        if getattr(self._batch_state, "before_decode", False):
            self._batch_state.before_decode = False
            with self._device_queue_lock:
                self._batches_before_decode -= 1

    def _on_device_thread(self, fn, *args):
        return self._submit_to_device(fn, *args).result()

    def _submit_to_device(self, fn, *args) -> Future:
        with self._device_queue_lock:
            self._device_queue += 1
        future = self._device_thread.submit(fn, *args)
        future.add_done_callback(self._device_call_done)
        return future

    def _device_call_done(self, _future) -> None:
        with self._device_queue_lock:
            self._device_queue -= 1

    def _score_isolating_failures(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        try:
            return self._score_batch(samples)
        except torch.OutOfMemoryError as exc:
            if len(samples) == 1:
                log.exception("judge ran out of device memory on sample %s", samples[0].sample_id)
                return [self._error(samples[0], exc)]
            # too large for this device, not a bad sample: halves (a 96-sample batch on a smaller card
            # then costs a few retries, not 96 single-sample batches)
            half = len(samples) // 2
            log.warning("batch of %d ran out of device memory; retrying as %d + %d", len(samples), half,
                        len(samples) - half)
            self._free_idle_decoders()
            return self._score_isolating_failures(samples[:half]) + self._score_isolating_failures(samples[half:])
        except Exception as exc:  # noqa: BLE001 - isolate, then report per sample
            if len(samples) == 1:
                log.exception("judge failed on sample %s", samples[0].sample_id)
                return [self._error(samples[0], exc)]
            log.warning("batch of %d failed (%s: %s); retrying one by one", len(samples), type(exc).__name__, exc)
        outcomes = []
        for sample in samples:
            try:
                outcomes.extend(self._score_batch([sample]))
            except Exception as exc:  # noqa: BLE001
                log.exception("judge failed on sample %s", sample.sample_id)
                outcomes.append(self._error(sample, exc))
        return outcomes

    @staticmethod
    def _error(sample: PreparedSample, exc: BaseException) -> ScoreOutcome:
        return ScoreOutcome(
            sample_id=sample.sample_id, status=STATUS_ERROR, protocol=sample.protocol.name,
            protocol_hash=sample.protocol.sha256, error=f"{type(exc).__name__}: {exc}",
        )

    def _prompts(self, samples: list[PreparedSample], strict: bool = False) -> list[_Prompt]:
        prompts = []
        for i, sample in enumerate(samples):
            for question in sample.protocol.questions:
                system, user = sample.protocol.render_question(question, sample.category, sample.variables, strict=strict)
                prompts.append(_Prompt(i, question, system, user, [sample.images[r] for r in question.images]))
        return prompts

    @staticmethod
    def _conversation(prompt: _Prompt) -> list[dict]:
        conv = []
        if prompt.system:
            conv.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
        content = [{"type": "image", "image": img} for img in prompt.images]
        content.append({"type": "text", "text": prompt.user})
        conv.append({"role": "user", "content": content})
        return conv

    def _inputs(self, prompts: list[_Prompt]):
        return self._on_device(self._processed(prompts))

    def _processed(self, prompts: list[_Prompt]) -> dict[str, torch.Tensor]:
        """The processor's tensors for `prompts` (left padded), in host memory (pinned for a CUDA judge,
        so that the copy to the device does not wait for a staging buffer)."""
        inputs = self.processor.apply_chat_template(
            [self._conversation(p) for p in prompts],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        tensors = {name: value.to(self.dtype) if value.is_floating_point() else value
                   for name, value in inputs.items()}
        if self.device.type == "cuda":
            tensors = {name: value.pin_memory() for name, value in tensors.items()}
        return tensors

    def _on_device(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value.to(self.device, non_blocking=True) for name, value in inputs.items()}

    def _generate(self, prompts: list[_Prompt], phases: dict[str, float] | None = None) -> list[str]:
        """Greedy replies to `prompts` (one batch, left padded)."""
        if self.decode == "static":
            return self._generate_with_expected(prompts, {}, phases)[0]
        return self._on_device_thread(self._generate_plain, self._inputs(prompts))

    @torch.inference_mode()
    def _generate_plain(self, inputs) -> list[str]:
        """`generate` with its own prefill, on transformers' default cache."""
        out = self.model.generate(**inputs, generation_config=self.generation_config)
        return self._replies(out, inputs["input_ids"].shape[1])

    def _replies(self, out: torch.Tensor, prompt_length: int) -> list[str]:
        new_tokens = out[:, prompt_length:]  # trim the prompt (left-padded: same length)
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def _generate_with_expected(
        self, prompts: list[_Prompt], trees: dict[int, ScoreTokenTree], phases: dict[str, float] | None = None
    ) -> tuple[list[str], dict[int, float | None]]:
        """Replies and expected scores (prompt index -> value, for the prompts in `trees`) from one
        prefill per prompt (see the module docstring); the fallback is generate + a separate forward.
        The processor runs on this thread, the forwards on the device thread, static decoding on the
        decode thread."""
        phases = {} if phases is None else phases
        t_start = time.monotonic()
        step = self.prefill_batch if self.decode == "static" else len(prompts)
        chunks = [self._processed(prompts[start:start + step]) for start in range(0, len(prompts), step)]
        t_inputs = time.monotonic()
        self._add_phases(phases, inputs=t_inputs - t_start)
        if any("attention_mask" not in c or "mm_token_type_ids" not in c or bool(c["mm_token_type_ids"][:, -1].any())
               for c in chunks):
            return (self._on_device_thread(self._generate_plain, self._inputs(prompts)),
                    self._on_device_thread(self._expected_from_full_forward, prompts, trees))
        if self.decode == "static":
            return self._generate_static(prompts, trees, chunks, phases)
        replies, expected = self._on_device_thread(self._prefill_and_generate, self._on_device(chunks[0]), trees)
        self._add_phases(phases, device=time.monotonic() - t_inputs)
        return replies, expected

    def _generate_static(self, prompts: list[_Prompt], trees: dict[int, ScoreTokenTree],
                         chunks: list[dict[str, torch.Tensor]], phases: dict[str, float]
                         ) -> tuple[list[str], dict[int, float | None]]:
        """Static decoding: the batch's rows are prefilled in chunks of `prefill_batch` prompts, each
        left padded to its own length, into one decoder's cache; then all rows decode at once. A
        prefill's activations stay those of a chunk while decoding gets the whole batch's rows."""
        decoder = self._check_out(len(prompts), max(c["input_ids"].shape[1] for c in chunks))
        t_prefill = time.monotonic()
        starts = range(0, len(prompts), self.prefill_batch)
        pending = []
        try:
            for start, chunk in zip(starts, chunks):
                chunk_trees = {i - start: t for i, t in trees.items() if start <= i < start + self.prefill_batch}
                pending.append(self._submit_to_device(self._prefill_rows, decoder, start, chunk, chunk_trees))
            expected, prompt_end, ready = {}, 0, None
            for start, future in zip(starts, pending):
                chunk_expected, chunk_end, ready = future.result()
                expected.update({i + start: value for i, value in chunk_expected.items()})
                prompt_end = max(prompt_end, chunk_end)
            t_decode = time.monotonic()
            self._add_phases(phases, prefill=t_decode - t_prefill)
            self._decoding_starts()
            replies = self._decode_thread.submit(self._decode, decoder, prompt_end, ready).result()
            self._add_phases(phases, decode=time.monotonic() - t_decode)
            return replies, expected
        finally:
            for future in pending:  # no chunk may still write into the cache once it is checked in
                future.exception()
            self._check_in(decoder)

    @torch.inference_mode()
    def _prefill_and_score_paths(self, inputs, trees: dict[int, ScoreTokenTree]):
        """1. Prefill all but the last prompt token into a new (dynamic) cache, which computes the rope
        deltas of the images; a prompt batch without padding gets SDPA's causal flash path. 2. Each path
        of each tree on that cache: [last prompt token] + prefix + path, the cache cut back after each.
        (expected scores by row, rope deltas, the cache)"""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        batch, length = ids.shape
        head = {name: value[:, :-1] if self._per_token(value, batch, length) else value
                for name, value in inputs.items()}
        self.model(**head, past_key_values=cache, use_cache=True, logits_to_keep=1)
        rope_deltas = self.model.model.rope_deltas
        dists: dict[int, dict[tuple[int, ...], torch.Tensor]] = {i: {} for i in trees}
        for tree in {id(t): t for t in trees.values()}.values():
            rows = [i for i, t in trees.items() if t is tree]
            for path in tree.paths:
                extra = torch.tensor([tree.prefix_ids + list(path)], device=self.device).expand(batch, -1)
                fed = torch.cat([ids[:, -1:], extra], dim=1)
                fed_mask = torch.cat([mask, torch.ones_like(extra, dtype=mask.dtype)], dim=1)
                # text positions continue after the prompt's last valid position (as in generate's decode)
                positions = (fed_mask.long().cumsum(-1) - 1)[:, -fed.shape[1]:] + rope_deltas.to(self.device)
                keep = len(path) + 1
                out = self.model(input_ids=fed, attention_mask=fed_mask, position_ids=positions[None].expand(3, -1, -1),
                                 past_key_values=cache, use_cache=True, logits_to_keep=keep)
                cache.crop(-fed.shape[1])  # drop the fed tokens again
                probs = torch.softmax(out.logits[:, -keep:].float(), dim=-1).cpu()
                for row in rows:
                    for depth in range(keep):
                        dists[row][path[:depth]] = probs[row, depth]
        return {row: trees[row].expected(dists[row]) for row in trees}, rope_deltas, cache

    @torch.inference_mode()
    def _prefill_and_generate(self, inputs, trees: dict[int, ScoreTokenTree]) -> tuple[list[str], dict]:
        """On the device thread (dynamic decoding): prefill and score paths, then 3. generate continues
        from the cache: the last prompt token first (no images: they are in the cache; positions continue
        from the rope deltas the prefill left in the model)."""
        expected, _, cache = self._prefill_and_score_paths(inputs, trees)
        out = self.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  past_key_values=cache, generation_config=self.generation_config)
        return self._replies(out, inputs["input_ids"].shape[1]), expected

    @torch.inference_mode()
    def _prefill_rows(self, decoder: StaticGreedyDecoder, start: int, inputs, trees: dict[int, ScoreTokenTree]):
        """On the device thread: one chunk of a static batch into rows start.. of the decoder's cache.
        (expected scores by chunk row, the chunk's prompt end, an event after its last write on CUDA)"""
        inputs = self._on_device(inputs)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        # the chunk prefills on its own cache, as the dynamic mode does (a mask over the static cache's
        # full length would rule out the flash path), and is copied into the decoder's rows
        expected, rope_deltas, cache = self._prefill_and_score_paths(inputs, trees)
        decoder.copy_rows(start, cache)
        del cache
        decoder.set_rows(start, mask, ids[:, -1], rope_deltas)
        ready = None
        if self.device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()  # the decode stream starts once the cache is written
        return expected, ids.shape[1] - 1, ready

    @torch.inference_mode()
    def _decode(self, decoder: StaticGreedyDecoder, prompt_end: int, ready) -> list[str]:
        """On the decode thread, on its own CUDA stream: 3. (static) greedy decoding of every row."""
        gen = self.generation_config
        stream = None
        if ready is not None:
            if self._decode_stream is None:
                self._decode_stream = torch.cuda.Stream(device=self.device)
            stream = self._decode_stream
            stream.wait_event(ready)
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            new = decoder.decode(prompt_end, new_tokens=gen.max_new_tokens, min_new_tokens=gen.min_new_tokens or 0)
            new = new.cpu()  # waits for this stream only
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    @staticmethod
    def _add_phases(phases: dict[str, float], **seconds: float) -> None:
        """Seconds per phase of a batch (processor, prefill, decode), for its log line."""
        for phase, value in seconds.items():
            phases[phase] = phases.get(phase, 0.0) + value

    @staticmethod
    def _per_token(value, batch: int, length: int) -> bool:
        return isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == (batch, length)

    def _check_out(self, batch: int, prompt_length: int) -> StaticGreedyDecoder:
        """A decoder for `batch` prompts of `prompt_length` tokens: an idle one
        of that size (one allocation, one CUDA graph, stable addresses), else a new one. Check it in
        again when its decoding is done."""
        new_tokens = max(self.max_new_tokens, self.generation_config.max_new_tokens or 0)
        need = prompt_length + new_tokens  # the score paths run on each chunk's own cache, not this one
        self._static_cache_len = max(self._static_cache_len, -(-need // STATIC_CACHE_STEP) * STATIC_CACHE_STEP)
        key = (batch, self._static_cache_len)
        with self._decoders_changed:
            while True:
                if self._idle_decoders.get(key):
                    decoder = self._idle_decoders[key].pop()
                    if not self._idle_decoders[key]:
                        del self._idle_decoders[key]
                    # no reset: copy_rows overwrites every prompt position a row attends to, decode() sets
                    # the write position, and stale values elsewhere are masked out
                    self._busy_decoders += 1
                    return decoder
                # a new one: idle decoders of other sizes go first where memory is short (at most 2 kept)
                while self._idle_decoders and (sum(map(len, self._idle_decoders.values())) >= 2
                                               or not self._room_for(batch, self._static_cache_len)):
                    oldest = next(iter(self._idle_decoders))
                    self._idle_decoders[oldest].pop(0)
                    if not self._idle_decoders[oldest]:
                        del self._idle_decoders[oldest]
                if not self._busy_decoders or self._room_for(batch, self._static_cache_len):
                    break
                # another batch's cache is still decoding and a second one does not fit: wait for it
                if not self._decoders_changed.wait(timeout=600):
                    break  # try anyway: an out-of-memory error fails this batch, not the service
            self._busy_decoders += 1
        eos = self.generation_config.eos_token_id
        return StaticGreedyDecoder(
            self.model.model.language_model, self.model.lm_head, self.model.config.get_text_config(decoder=True),
            batch=batch, cache_len=self._static_cache_len, max_new_tokens=new_tokens,
            eos_token_ids=[eos] if isinstance(eos, int) else list(eos or []),
            pad_token_id=self.generation_config.pad_token_id, vocab_size=self.model.lm_head.out_features,
            device=self.device, dtype=self.dtype)

    def _free_idle_decoders(self) -> None:
        with self._decoders_changed:
            self._idle_decoders.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _check_in(self, decoder: StaticGreedyDecoder | None) -> None:
        if decoder is None:
            return
        with self._decoders_changed:
            self._busy_decoders -= 1
            key = (decoder.batch, decoder.cache_len)
            self._idle_decoders.setdefault(key, []).append(decoder)
            self._idle_decoders.move_to_end(key)
            self._decoders_changed.notify_all()

    def _room_for(self, batch: int, cache_len: int) -> bool:
        """Whether a new decode cache fits on the device beside what is there, with room left for a
        prefill chunk's own cache (twice over: the tree paths grow it) and a twentieth of the card for
        its activations (always, off CUDA)."""
        if self.device.type != "cuda":
            return True
        free, total = torch.cuda.mem_get_info(self.device)
        reusable = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        chunk = self._cache_bytes(min(batch, self.prefill_batch), cache_len)
        return free + reusable >= self._cache_bytes(batch, cache_len) + 2 * chunk + total // 20

    def _cache_bytes(self, batch: int, cache_len: int) -> int:
        text = self.model.config.get_text_config(decoder=True)
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * self.dtype.itemsize
        return batch * cache_len * per_token

    def _tree(self, protocol: Protocol, question: Question) -> ScoreTokenTree | None:
        """The score token tree for a question, or None where this tokenizer cannot give one (then
        results carry no expected score; said once in the log)."""
        key = (question.expected_score_prefix, protocol.low, protocol.high)
        if key not in self._trees:
            if self._digit_start is None:
                n = len(self.tokenizer)
                texts = self.tokenizer.batch_decode([[i] for i in range(n)])
                self._digit_start = torch.tensor([bool(t) and t[0].isdigit() for t in texts])
            try:
                self._trees[key] = ScoreTokenTree(self.tokenizer, question.expected_score_prefix, protocol.low,
                                                  protocol.high, self._digit_start)
            except ValueError as exc:
                log.warning("protocol %s: no expected score with this tokenizer: %s", protocol.name, exc)
                self._trees[key] = None
        return self._trees[key]

    def _trees_for(self, samples: list[PreparedSample], prompts: list[_Prompt]) -> dict[int, ScoreTokenTree]:
        """prompt index -> score token tree, for prompts whose question asks for an expected score."""
        trees = {}
        for idx, prompt in enumerate(prompts):
            if prompt.question.expected_score_prefix is not None:
                tree = self._tree(samples[prompt.sample_index].protocol, prompt.question)
                if tree is not None:
                    trees[idx] = tree
        return trees

    def _expected_scores(self, samples: list[PreparedSample], prompts: list[_Prompt]) -> dict[int, float | None]:
        """prompt index -> expected score, each from a full forward over prompt + prefix + path (no
        cache): the probability-weighted path on its own, and the reference for the shared prefill."""
        return self._expected_from_full_forward(prompts, self._trees_for(samples, prompts))

    @torch.inference_mode()
    def _expected_from_full_forward(self, prompts: list[_Prompt], trees: dict[int, ScoreTokenTree]) -> dict[int, float | None]:
        groups: dict[int, list[int]] = {}
        for idx, tree in trees.items():
            groups.setdefault(id(tree), []).append(idx)
        results: dict[int, float | None] = {}
        for indices in groups.values():
            tree = trees[indices[0]]
            base = self._inputs([prompts[i] for i in indices])
            dists: list[dict[tuple[int, ...], torch.Tensor]] = [{} for _ in indices]
            for path in tree.paths:
                extra = torch.tensor([tree.prefix_ids + list(path)], device=self.device)
                logits = self._forward_with_suffix(base, extra, keep=len(path) + 1)
                probs = torch.softmax(logits.float(), dim=-1).cpu()
                for row in range(len(indices)):
                    for depth in range(len(path) + 1):
                        dists[row][path[:depth]] = probs[row, depth]
            for row, idx in enumerate(indices):
                results[idx] = tree.expected(dists[row])
        return results

    def _forward_with_suffix(self, base, extra: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits at the last `keep` positions of prompt + extra tokens (teacher-forced)."""
        batch = base["input_ids"].shape[0]
        length = base["input_ids"].shape[1]
        suffix = extra.expand(batch, -1)
        inputs = dict(base)
        inputs["input_ids"] = torch.cat([base["input_ids"], suffix], dim=1)
        for name, value in base.items():
            if name == "input_ids" or not self._per_token(value, batch, length):
                continue
            # per-token side inputs: mask ones, type ids zeros
            fill = torch.ones_like(suffix) if name == "attention_mask" else torch.zeros_like(suffix)
            inputs[name] = torch.cat([value, fill.to(value.dtype)], dim=1)
        out = self.model(**inputs, logits_to_keep=keep, use_cache=False)
        return out.logits[:, -keep:]

    def _score_batch(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        started = time.monotonic()
        phases: dict[str, float] = {}
        prompts = self._prompts(samples)
        trees = self._trees_for(samples, prompts)
        if not trees:
            texts, expected = self._generate(prompts, phases), {}
        elif self._shares_prefill():
            texts, expected = self._generate_with_expected(prompts, trees, phases)
        else:
            texts = self._generate(prompts, phases)
            expected = self._on_device_thread(self._expected_from_full_forward, prompts, trees)
        raw: list[list[str]] = [[t] for t in texts]
        parsed = [parse_reply(t, len(p.question.scores), samples[p.sample_index].protocol.low,
                              samples[p.sample_index].protocol.high) for p, t in zip(prompts, texts)]
        retry = [i for i, p in enumerate(parsed) if not p.ok] if self.max_attempts > 1 else []
        if retry:
            strict_prompts = self._prompts(samples, strict=True)
            retry_texts = self._generate([strict_prompts[i] for i in retry], phases)
            for i, text in zip(retry, retry_texts):
                raw[i].append(text)
                p = prompts[i]
                protocol = samples[p.sample_index].protocol
                parsed[i] = parse_reply(text, len(p.question.scores), protocol.low, protocol.high)

        outcomes = []
        for s_idx, sample in enumerate(samples):
            mine = [i for i, p in enumerate(prompts) if p.sample_index == s_idx]
            protocol = sample.protocol
            outcome = ScoreOutcome(
                sample_id=sample.sample_id,
                status=STATUS_OK,
                protocol=protocol.name,
                protocol_hash=protocol.sha256,
                raw_responses=[text for i in mine for text in raw[i]],
                attempts=max(len(raw[i]) for i in mine),
            )
            exp = [expected[i] for i in mine if i in expected]
            if exp and exp[0] is not None:
                outcome.expected_score = exp[0]
            failed = [i for i in mine if not parsed[i].ok]
            if failed:
                outcome.status = STATUS_PARSE_FAILED
                outcome.error = "; ".join(
                    f"{prompts[i].question.name}: {parsed[i].reason}" for i in failed
                )
            else:
                scores = {prompts[i].question.name: parsed[i].scores for i in mine}
                outcome.score, outcome.sub_scores = protocol.combine_scores(scores)
                outcome.response = "\n".join(parsed[i].response for i in mine if parsed[i].response)
            outcomes.append(outcome)
        ok = sum(o.status == STATUS_OK for o in outcomes)
        phases = ", ".join(f"{name} {value:.2f}s" for name, value in phases.items())
        log.info("batch: %d sample(s), %d prompt(s), %d re-asked, %d OK, %d PARSE_FAILED in %.2fs%s",
                 len(samples), len(prompts), len(retry), ok, len(outcomes) - ok, time.monotonic() - started,
                 f" ({phases})" if phases else "")
        return outcomes


def set_threads(threads: int) -> None:
    """Fix torch's CPU thread count so results and timings do not depend on what else runs."""
    if threads > 0:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
