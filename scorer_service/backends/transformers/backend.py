"""The transformers backend: a chat VLM on a local device, prompts answered in batches.

    backend = TransformersBackend.load("Qwen/Qwen3-VL-8B-Instruct", device="cuda", dtype="bfloat16")
    texts, expected = backend.generate_with_expected(prompts)   # first attempts + expected scores
    texts = backend.generate(prompts)                          # replies only (the re-ask)

Any chat VLM whose processor takes images through `apply_chat_template` works
(`AutoModelForImageTextToText` + `AutoProcessor`); Qwen3-VL is the default. Every batch of prompts
is left padded and decoded greedily; each prompt's reply is cut at its budget (settings.reply_budget:
`max_new_tokens` where the judge is given one, else its protocol's own, else 128: a batch decodes to
its largest budget and each row is cut at its own, the same tokens as decoding it alone to its budget
under greedy decoding); the prompt ids are trimmed.

One prefill per prompt (Qwen3-VL). The first attempt's prompts are prefilled once, all but their
last token (the "\\n" of the assistant header, always text), into a KV cache. The score tree's paths
(expected_score.py) are then fed on that cache as [last prompt token] + prefix + path (the cache is
cut back after each), and decoding continues from the same cache: it processes only the last
prompt token, then decodes. The positions of the fed tokens follow Qwen3-VL's multimodal rope: text
after the prompt continues at (valid prompt tokens + rope delta), the delta being what the prefill
computed for the images. Other models score with a separate full forward over prompt + prefix +
path (`reference_expected_scores`, also the reference the shared path is tested against).

Decoding (`decode`): "dynamic" is `generate` on transformers' default growing cache. "static"
(Qwen3-VL, dense or MoE; "auto" picks it on CUDA) prefills a batch in chunks of `prefill_batch` prompts, each on its
own cache, copies them into the rows of one preallocated decode cache (decoder_pool.py: one per
batch size, reused) and decodes all rows greedily in fixed-shape steps that stay on the device
(decoding.StaticGreedyDecoder); on CUDA each (batch size, cache length) captures its step once as a
CUDA graph and replays it, with no compile warm-up. Threads: the processor runs on the caller's
thread, every forward on the device thread, static decoding on the decode thread (own CUDA stream), so
that a second batch (the batcher keeps two in flight) is prepared while one decodes. Both modes decode
with `decoding.grouped_decode_attention` (the same attention without copying the KV cache once per
query head). A mixture-of-experts judge (Qwen3-VL-30B-A3B) runs its experts as grouped GEMMs
(loading.EXPERTS_IMPLEMENTATION), in every forward and in the captured decode step alike. All of it is
recorded in the model identity's `runtime`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from copy import deepcopy

import torch

from editfleet_common.identity import ModelIdentity
from editfleet_common.settings import reply_budget

from ...expected_score import ScoreTokenTree, ScoreTrees
from ...samples import Prompt, conversation
from .decoder_pool import DecoderPool
from .decoding import StaticGreedyDecoder, install_grouped_decode_attention
from .loading import load_model

# auto: static where it is written for the model (Qwen3-VL) and runs on CUDA, else dynamic
DECODE_MODES = ("auto", "dynamic", "static")
# Models whose cached continuation (multimodal rope positions) the shared prefill and static decoding
# are written for: Qwen3-VL, dense and mixture-of-experts (the same text decoder around routed experts)
SHARED_PREFILL_MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe")


class TransformersBackend:
    def __init__(self, model, processor, identity: ModelIdentity, *, max_new_tokens: int | None = None,
                 decode: str = "auto", target_device: str | None = None, prefill_batch: int = 32,
                 min_new_tokens: int | None = None):
        _check_decode(decode)
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # batched generation needs the prompt ends aligned
        self.identity = identity
        self.max_new_tokens = max_new_tokens  # the run's budget for every protocol; None: each protocol's own
        self._short_tokens: int | None = None  # short_replies(): every reply this long (the warm-up)
        # Split over GPUs (loading.plan_split): inputs go where the embeddings are, accelerate's hooks
        # carry the activations on; static decoding (one device's CUDA graphs) is not for it.
        self.split = len(set((getattr(model, "hf_device_map", None) or {"": 0}).values())) > 1
        self.device = model.get_input_embeddings().weight.device if self.split else next(model.parameters()).device
        # where move_to_device() puts a staged model
        self.target_device = str(target_device) if target_device is not None else str(self.device)
        self.dtype = next(model.parameters()).dtype
        self.shares_prefill = getattr(model.config, "model_type", "") in SHARED_PREFILL_MODEL_TYPES
        if decode == "static" and self.split:
            raise ValueError("decode mode 'static' runs on one device; a judge split over GPUs decodes 'dynamic'")
        if decode == "auto":
            decode = ("static" if self.shares_prefill and not self.split
                      and torch.device(self.target_device).type == "cuda" else "dynamic")
        self.decode = decode
        if prefill_batch < 1:
            raise ValueError(f"prefill_batch must be >= 1, got {prefill_batch}")
        self.prefill_batch = prefill_batch  # static decoding: prompts per prefill forward
        if decode == "static" and not self.shares_prefill:
            raise ValueError(f"decode mode 'static' is written for {', '.join(SHARED_PREFILL_MODEL_TYPES)} models, "
                             f"not {getattr(model.config, 'model_type', '?')!r}; use 'dynamic'")
        self.decoders = DecoderPool(model, self.dtype)  # static decoding's caches, reused
        self.trees = ScoreTrees(self.tokenizer)
        self._counter = _token_counter(self.tokenizer)  # count_prompt_tokens' own tokenizer
        self._counter_lock = threading.Lock()
        self._grouped_attention = install_grouped_decode_attention(model)
        # Every forward of the model runs on this one thread, one batch after another (torch.compile's
        # cudagraph trees, used before, failed when recorded on another thread than the batches'). With
        # static decoding the decoding runs on a second thread and CUDA stream, so that one batch decodes
        # (memory-bound) while the next is prefilled (compute-bound).
        self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-device")
        self._decode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-decode")
        self._decode_stream = None  # made on first use, on the device the model is on by then
        self._device_queue = 0  # calls submitted to the device thread and not yet finished
        self._batches_before_decode = 0  # batches in batch() that have not started decoding
        self._device_queue_lock = threading.Lock()
        self._batch_state = threading.local()
        self.generated_tokens = 0  # replies' tokens up to their end (EOS or the limit), all batches
        self._tokens_lock = threading.Lock()
        gen = model.generation_config
        pad = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        if pad is None:
            pad = gen.eos_token_id if isinstance(gen.eos_token_id, int) else gen.eos_token_id[0]
        from transformers import GenerationConfig

        self.generation_config = GenerationConfig(
            max_new_tokens=reply_budget(max_new_tokens, None), min_new_tokens=min_new_tokens, do_sample=False,
            eos_token_id=gen.eos_token_id, pad_token_id=pad, bos_token_id=gen.bos_token_id,
        )
        identity.runtime.update(self._runtime())

    @classmethod
    def load(cls, model: str, *, device: str = "cpu", dtype: str = "auto", load_format: str = "auto",
             revision: str | None = None, max_new_tokens: int | None = None, min_new_tokens: int | None = None,
             seed: int = 0,
             trust_remote_code: bool = False, stage_on_host: bool = False, decode: str = "auto",
             prefill_batch: int = 32, gpus: int = 1) -> "TransformersBackend":
        """See loading.load_model (gpus: the weights split over that many GPUs); decode and
        prefill_batch: see the module docstring."""
        _check_decode(decode)  # before minutes of loading
        if gpus > 1 and (stage_on_host or decode == "static"):
            raise ValueError(f"gpus={gpus}: a judge split over GPUs is neither staged nor decoded 'static'")
        net, processor, identity = load_model(model, device=device, dtype=dtype, load_format=load_format,
                                              revision=revision, seed=seed, trust_remote_code=trust_remote_code,
                                              stage_on_host=stage_on_host, gpus=gpus)
        return cls(net, processor, identity, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                   decode=decode, target_device=str(device), prefill_batch=prefill_batch)

    def _runtime(self) -> dict[str, str]:
        """How this judge runs where that changes its numbers or speed (recorded with every result)."""
        runtime = {"decode": self.decode,
                   "expected_score": "shared_prefill" if self.shares_prefill else "separate_forward"}
        if self.decode == "static":
            runtime["decode_graphs"] = "cuda" if torch.device(self.target_device).type == "cuda" else "none"
            runtime["prefill_batch"] = str(self.prefill_batch)
        if self._grouped_attention:
            runtime["decode_attention"] = "grouped_sdpa"
        experts = self.experts_implementation
        if experts is not None:
            runtime["experts"] = experts
        return runtime

    @property
    def experts_implementation(self) -> str | None:
        """How the text model's routed experts run (transformers' ExpertsInterface name), None without experts."""
        text_config = self.model.config.get_text_config(decoder=True)
        if not getattr(text_config, "num_experts", 0):
            return None
        return text_config._experts_implementation

    def use_transformers_decode_attention(self) -> None:
        """Decode with transformers' own SDPA path (KV heads repeated per query head), as a plain
        transformers loop like the seed's does: the baseline benchmarks compare against."""
        if self._grouped_attention:
            self.model.config.get_text_config(decoder=True)._attn_implementation = "sdpa"
            self._grouped_attention = False
            self.identity.runtime.pop("decode_attention", None)

    def move_to_device(self) -> float:
        """Move a model staged in host memory to its target device; seconds taken (0 if there)."""
        target = torch.device(self.target_device)
        if self.device.type == target.type and target.index in (None, self.device.index):
            return 0.0
        t0 = time.monotonic()
        self.decoders.clear()  # caches live on the device they were made on
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

    # -- the batcher's view -------------------------------------------------------------------

    @property
    def batches_in_flight(self) -> int:
        """Two with static decoding (one prefilled on the device thread while the other decodes), else one."""
        return 2 if self.decode == "static" else 1

    def ready_for_next(self) -> bool:
        """No batch is being prepared or prefilled (with static decoding, one that is decoding does not count)."""
        return self._device_queue == 0 and self._batches_before_decode == 0

    @contextmanager
    def batch(self):
        with self._device_queue_lock:
            self._batches_before_decode += 1
        self._batch_state.before_decode = True
        try:
            yield
        finally:
            self._decoding_starts()

    @contextmanager
    def short_replies(self, new_tokens: int = 2):
        saved = self.generation_config
        short = deepcopy(saved)
        short.max_new_tokens, short.min_new_tokens = new_tokens, None
        self.generation_config, self._short_tokens = short, new_tokens
        try:
            yield
        finally:
            self.generation_config, self._short_tokens = saved, None

    def too_large(self, exc: BaseException) -> bool:
        if not isinstance(exc, torch.OutOfMemoryError):
            return False
        self.decoders.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return True

    def run_on_device(self, fn, *args):
        """fn(*args) on the device thread, where every forward runs (e.g. to profile one); its result."""
        return self._submit_to_device(fn, *args).result()

    def _decoding_starts(self) -> None:
        """This thread's batch is past its prefill (the next batch may start preparing)."""
        if getattr(self._batch_state, "before_decode", False):
            self._batch_state.before_decode = False
            with self._device_queue_lock:
                self._batches_before_decode -= 1

    def _submit_to_device(self, fn, *args) -> Future:
        with self._device_queue_lock:
            self._device_queue += 1
        future = self._device_thread.submit(fn, *args)
        future.add_done_callback(self._device_call_done)
        return future

    def _device_call_done(self, _future) -> None:
        with self._device_queue_lock:
            self._device_queue -= 1

    # -- inputs -------------------------------------------------------------------------------

    def inputs(self, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        """The processor's tensors for `prompts` (one batch, left padded), on the model's device."""
        return self._on_device(self._processed(prompts))

    def _processed(self, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        """The processor's tensors in host memory (pinned for a CUDA judge, so that the copy to the
        device does not wait for a staging buffer)."""
        inputs = self.processor.apply_chat_template(
            [conversation(p) for p in prompts], add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt", processor_kwargs={"padding": True},
        )
        tensors = {name: value.to(self.dtype) if value.is_floating_point() else value
                   for name, value in inputs.items()}
        if self.device.type == "cuda":
            tensors = {name: value.pin_memory() for name, value in tensors.items()}
        return tensors

    def count_prompt_tokens(self, prompts: list[Prompt]) -> list[int]:
        """Each prompt's length in tokens as `_processed` makes it (chat template, text, and every
        image's tokens at the size the processor gives it), without running the processor on the
        images: the chat template's text through a copy of the tokenizer (no truncation, no padding;
        thread-safe: the server's decode threads call this while batches run), each image counted by
        the processor's own rule where it has one (`_get_num_multimodal_tokens`, Qwen-VL processors),
        else as the one placeholder token the template puts for it."""
        texts = [self.processor.apply_chat_template(conversation(p), add_generation_prompt=True, tokenize=False)
                 for p in prompts]
        counter = self._counter
        if counter is not None:
            with self._counter_lock:
                lengths = [len(e.ids) for e in counter.encode_batch(texts, add_special_tokens=False)]
        else:  # a slow (Python) tokenizer: not shared with the batches' padding state
            with self._counter_lock:
                lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        per_image = getattr(self.processor, "_get_num_multimodal_tokens", None)
        for i, prompt in enumerate(prompts):
            if prompt.images and per_image is not None:
                try:
                    counts = per_image(image_sizes=[(img.height, img.width) for img in prompt.images]).num_image_tokens
                except Exception:  # noqa: BLE001 - a processor without the rule: its placeholders only
                    continue
                if counts:
                    lengths[i] += sum(counts) - len(prompt.images)  # each placeholder becomes its image's tokens
        return lengths

    def _on_device(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value.to(self.device, non_blocking=True) for name, value in inputs.items()}

    # -- generation ---------------------------------------------------------------------------

    def budgets(self, prompts: list[Prompt]) -> list[int]:
        """Each prompt's longest reply (settings.reply_budget; the warm-up's short replies aside)."""
        if self._short_tokens is not None:
            return [self._short_tokens] * len(prompts)
        return [reply_budget(self.max_new_tokens, p.protocol.max_new_tokens) for p in prompts]

    def _generation(self, budgets: list[int]):
        """The generation config of a batch: decoding to its largest budget."""
        if max(budgets) == self.generation_config.max_new_tokens:
            return self.generation_config
        gen = deepcopy(self.generation_config)
        gen.max_new_tokens = max(budgets)
        return gen

    def generate(self, prompts: list[Prompt], phases: dict[str, float] | None = None) -> list[str]:
        """Greedy replies to `prompts` (one batch, left padded)."""
        if self.decode == "static":
            return self._generate_shared(prompts, {}, phases)[0]
        return self.run_on_device(self._generate_plain, self.inputs(prompts), self.budgets(prompts))

    def generate_with_expected(self, prompts: list[Prompt], phases: dict[str, float] | None = None
                               ) -> tuple[list[str], dict[int, float | None]]:
        """Replies and expected scores (prompt index -> value) from one prefill per prompt where the
        model allows (see the module docstring), else generate + a separate forward."""
        trees = self.trees.for_prompts(prompts)
        if not trees:
            return self.generate(prompts, phases), {}
        if self.shares_prefill:
            return self._generate_shared(prompts, trees, phases)
        return self.generate(prompts, phases), self.run_on_device(self._expected_from_full_forward, prompts, trees)

    def reference_expected_scores(self, prompts: list[Prompt]) -> dict[int, float | None]:
        """prompt index -> expected score, each from a full forward over prompt + prefix + path (no
        cache): the definition on its own, and the reference the shared prefill is tested against."""
        return self.run_on_device(self._expected_from_full_forward, prompts, self.trees.for_prompts(prompts))

    @torch.inference_mode()
    def _generate_plain(self, inputs, budgets: list[int]) -> list[str]:
        """`generate` with its own prefill, on transformers' default cache."""
        out = self.model.generate(**inputs, generation_config=self._generation(budgets))
        return self._replies(out, inputs["input_ids"].shape[1], budgets)

    def _replies(self, out: torch.Tensor, prompt_length: int, budgets: list[int]) -> list[str]:
        return self._decode_replies(out[:, prompt_length:], budgets)  # trim the prompt (left-padded: same length)

    def _decode_replies(self, new_tokens: torch.Tensor, budgets: list[int]) -> list[str]:
        """Texts of generated token rows (finished rows are continued with the pad token), each cut at
        its own budget."""
        pad = self.generation_config.pad_token_id
        if any(budget < new_tokens.shape[1] for budget in budgets):
            beyond = torch.arange(new_tokens.shape[1], device=new_tokens.device)[None, :] \
                >= torch.tensor(budgets, device=new_tokens.device)[:, None]
            new_tokens = new_tokens.masked_fill(beyond, pad)
        generated = int((new_tokens != pad).sum()) if pad is not None else new_tokens.numel()
        with self._tokens_lock:
            self.generated_tokens += generated
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def _generate_shared(self, prompts: list[Prompt], trees: dict[int, ScoreTokenTree],
                         phases: dict[str, float] | None = None) -> tuple[list[str], dict[int, float | None]]:
        """One prefill per prompt for the replies and the expected scores of the prompts in `trees`.
        The processor runs on this thread, the forwards on the device thread, static decoding on the
        decode thread."""
        phases = {} if phases is None else phases
        t_start = time.monotonic()
        step = self.prefill_batch if self.decode == "static" else len(prompts)
        chunks = [self._processed(prompts[start:start + step]) for start in range(0, len(prompts), step)]
        t_inputs = time.monotonic()
        _add_phases(phases, inputs=t_inputs - t_start)
        if any("attention_mask" not in c or "mm_token_type_ids" not in c or bool(c["mm_token_type_ids"][:, -1].any())
               for c in chunks):
            return (self.run_on_device(self._generate_plain, self.inputs(prompts), self.budgets(prompts)),
                    self.run_on_device(self._expected_from_full_forward, prompts, trees))
        budgets = self.budgets(prompts)
        if self.decode == "static":
            return self._generate_static(prompts, trees, chunks, phases, budgets)
        replies, expected = self.run_on_device(self._prefill_and_generate, self._on_device(chunks[0]), trees, budgets)
        _add_phases(phases, device=time.monotonic() - t_inputs)
        return replies, expected

    def _generate_static(self, prompts: list[Prompt], trees: dict[int, ScoreTokenTree],
                         chunks: list[dict[str, torch.Tensor]], phases: dict[str, float], budgets: list[int]
                         ) -> tuple[list[str], dict[int, float | None]]:
        """Static decoding: the batch's rows are prefilled in chunks of `prefill_batch` prompts, each
        left padded to its own length, into one decoder's cache; then all rows decode at once. A
        prefill's activations stay those of a chunk while decoding gets the whole batch's rows."""
        gen = self._generation(budgets)
        # decoders hold at least the run's (or the default) budget: the warm-up's make the batches' own
        new_tokens = max(reply_budget(self.max_new_tokens, None), gen.max_new_tokens)
        decoder = self.decoders.check_out(len(prompts), max(c["input_ids"].shape[1] for c in chunks),
                                          new_tokens=new_tokens, chunk_rows=self.prefill_batch,
                                          generation_config=gen, device=self.device)
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
            _add_phases(phases, prefill=t_decode - t_prefill)
            self._decoding_starts()
            replies = self._decode_thread.submit(self._decode, decoder, prompt_end, ready, gen, budgets).result()
            _add_phases(phases, decode=time.monotonic() - t_decode)
            return replies, expected
        finally:
            for future in pending:  # no chunk may still write into the cache once it is checked in
                future.exception()
            self.decoders.check_in(decoder)

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
        head = {name: value[:, :-1] if _per_token(value, batch, length) else value
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
    def _prefill_and_generate(self, inputs, trees: dict[int, ScoreTokenTree], budgets: list[int]
                              ) -> tuple[list[str], dict]:
        """On the device thread (dynamic decoding): prefill and score paths, then 3. generate continues
        from the cache: the last prompt token first (no images: they are in the cache; positions continue
        from the rope deltas the prefill left in the model)."""
        expected, _, cache = self._prefill_and_score_paths(inputs, trees)
        out = self.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  past_key_values=cache, generation_config=self._generation(budgets))
        return self._replies(out, inputs["input_ids"].shape[1], budgets), expected

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
    def _decode(self, decoder: StaticGreedyDecoder, prompt_end: int, ready, gen, budgets: list[int]) -> list[str]:
        """On the decode thread, on its own CUDA stream: 3. (static) greedy decoding of every row."""
        stream = None
        if ready is not None:
            if self._decode_stream is None:
                self._decode_stream = torch.cuda.Stream(device=self.device)
            stream = self._decode_stream
            stream.wait_event(ready)
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            new = decoder.decode(prompt_end, new_tokens=gen.max_new_tokens, min_new_tokens=gen.min_new_tokens or 0)
            new = new.cpu()  # waits for this stream only
        return self._decode_replies(new, budgets)

    @torch.inference_mode()
    def _expected_from_full_forward(self, prompts: list[Prompt], trees: dict[int, ScoreTokenTree]
                                    ) -> dict[int, float | None]:
        groups: dict[int, list[int]] = {}
        for idx, tree in trees.items():
            groups.setdefault(id(tree), []).append(idx)
        results: dict[int, float | None] = {}
        for indices in groups.values():
            tree = trees[indices[0]]
            base = self.inputs([prompts[i] for i in indices])
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
            if name == "input_ids" or not _per_token(value, batch, length):
                continue
            # per-token side inputs: mask ones, type ids zeros
            fill = torch.ones_like(suffix) if name == "attention_mask" else torch.zeros_like(suffix)
            inputs[name] = torch.cat([value, fill.to(value.dtype)], dim=1)
        out = self.model(**inputs, logits_to_keep=keep, use_cache=False)
        return out.logits[:, -keep:]


def _token_counter(tokenizer):
    """A copy of a fast tokenizer's backend for counting, with no truncation and no padding (the
    batches' tokenizer sets its padding state per call), or None for a slow tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    counter = deepcopy(backend)
    counter.no_truncation()
    counter.no_padding()
    return counter


def _check_decode(decode: str) -> None:
    if decode not in DECODE_MODES:
        raise ValueError(f"unknown decode mode {decode!r} ({', '.join(DECODE_MODES)})")


def _add_phases(phases: dict[str, float], **seconds: float) -> None:
    """Seconds per phase of a batch (processor, prefill, decode), for its log line."""
    for phase, value in seconds.items():
        phases[phase] = phases.get(phase, 0.0) + value


def _per_token(value, batch: int, length: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == (batch, length)
