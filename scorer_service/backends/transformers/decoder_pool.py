"""The static decoders of one judge, kept for reuse: one per (batch size, cache length, reply budget).

A `StaticGreedyDecoder` holds a preallocated KV cache (and, on CUDA, a captured decode graph), so
making one costs an allocation and a capture; the pool hands an idle one of the right size out
again. One is checked out per batch from its prefill to the end of its decoding (two batches in
flight: two of one size). Cache lengths grow in steps of `STATIC_CACHE_STEP` tokens and never
shrink, so that prompts of slightly different lengths share a cache. At most two idle decoders are
kept, fewer where device memory is short; a new one waits for a busy one where it would not fit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

from .decoding import StaticGreedyDecoder

STATIC_CACHE_STEP = 128
MAX_IDLE = 2


class DecoderPool:
    def __init__(self, model, dtype: torch.dtype):
        self.model = model
        self.dtype = dtype
        self.idle: OrderedDict[tuple[int, int, int], list[StaticGreedyDecoder]] = OrderedDict()  # oldest first
        self.busy = 0
        self.cache_len = 0
        self._changed = threading.Condition()

    def check_out(self, batch: int, prompt_length: int, *, new_tokens: int, chunk_rows: int,
                  generation_config, device: torch.device) -> StaticGreedyDecoder:
        """A decoder for `batch` prompts of `prompt_length` tokens and `new_tokens` more: an idle one of
        that size (one allocation, one CUDA graph, stable addresses), else a new one. chunk_rows: the
        rows of one prefill chunk (its own cache needs room too). Check it in when its decoding is done."""
        need = prompt_length + new_tokens  # the score paths run on each chunk's own cache, not this one
        self.cache_len = max(self.cache_len, -(-need // STATIC_CACHE_STEP) * STATIC_CACHE_STEP)
        key = (batch, self.cache_len, new_tokens)
        room = lambda: self._room_for(batch, self.cache_len, chunk_rows, device)  # noqa: E731
        with self._changed:
            while True:
                if self.idle.get(key):
                    decoder = self.idle[key].pop()
                    if not self.idle[key]:
                        del self.idle[key]
                    # no reset: copy_rows overwrites every prompt position a row attends to, decode() sets
                    # the write position, and stale values elsewhere are masked out
                    self.busy += 1
                    return decoder
                # a new one: idle decoders of other sizes go first where memory is short (at most 2 kept)
                while self.idle and (sum(map(len, self.idle.values())) >= MAX_IDLE or not room()):
                    oldest = next(iter(self.idle))
                    self.idle[oldest].pop(0)
                    if not self.idle[oldest]:
                        del self.idle[oldest]
                if not self.busy or room():
                    break
                # another batch's cache is still decoding and a second one does not fit: wait for it
                if not self._changed.wait(timeout=600):
                    break  # try anyway: an out-of-memory error fails this batch, not the service
            self.busy += 1
        eos = generation_config.eos_token_id
        return StaticGreedyDecoder(
            self.model.model.language_model, self.model.lm_head, self.model.config.get_text_config(decoder=True),
            batch=batch, cache_len=self.cache_len, max_new_tokens=new_tokens,
            eos_token_ids=[eos] if isinstance(eos, int) else list(eos or []),
            pad_token_id=generation_config.pad_token_id, vocab_size=self.model.lm_head.out_features,
            device=device, dtype=self.dtype)

    def check_in(self, decoder: StaticGreedyDecoder | None) -> None:
        if decoder is None:
            return
        with self._changed:
            self.busy -= 1
            key = (decoder.batch, decoder.cache_len, decoder.max_new_tokens)
            self.idle.setdefault(key, []).append(decoder)
            self.idle.move_to_end(key)
            self._changed.notify_all()

    def clear(self) -> None:
        """Drop the idle decoders (their caches live on the device they were made on)."""
        with self._changed:
            self.idle.clear()

    def _room_for(self, batch: int, cache_len: int, chunk_rows: int, device: torch.device) -> bool:
        """Whether a new decode cache fits on the device beside what is there, with room left for a
        prefill chunk's own cache (twice over: the tree paths grow it) and a twentieth of the card for
        its activations (always, off CUDA)."""
        if device.type != "cuda":
            return True
        free, total = torch.cuda.mem_get_info(device)
        reusable = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        chunk = self._cache_bytes(min(batch, chunk_rows), cache_len)
        return free + reusable >= self._cache_bytes(batch, cache_len) + 2 * chunk + total // 20

    def _cache_bytes(self, batch: int, cache_len: int) -> int:
        text = self.model.config.get_text_config(decoder=True)
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * self.dtype.itemsize
        return batch * cache_len * per_token
