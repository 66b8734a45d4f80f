"""Greedy decoding for the judge: one attention change and one decode loop, both exact.

1. `grouped_decode_attention`: transformers' SDPA path copies every key/value head once per query
   head of its group (`repeat_kv`) whenever an attention mask is given, which a padded batch always
   has. For a decode step (one query token) that copy is the step's biggest memory traffic: the
   whole KV cache, written and read 4 times over for Qwen3-VL-8B (32 query heads, 8 KV heads), every
   step. With one query token the group's query heads can instead be laid out as the query length of
   their shared KV head: q (B, Hkv*G, 1, D) -> (B, Hkv, G, D), the mask broadcast over the G rows.
   That is the same attention (each query head against its own KV head), with no copy. Longer
   queries (prefill) keep transformers' path unchanged.

2. `StaticGreedyDecoder`: greedy decoding on a static KV cache in fixed-shape steps that never
   leave the device: the step picks the next token (argmax, EOS suppressed until `min_new_tokens`,
   finished rows continued with the pad token, as `generate` does), writes it into the output and
   the next step's input, and advances positions, mask and cache by itself. On CUDA the step is
   captured once as a CUDA graph (per batch size and cache length) and replayed: no Python, no
   kernel launches and no host synchronisation per token, and no torch.compile warm-up. On CPU the
   same step runs eagerly (the tests' path). The host looks at the device only every few steps, to
   stop once every row has finished.

Positions follow Qwen3-VL's multimodal rope for text after the prompt: the prompt's last valid
position plus the rope delta its images left (as `generate` continues).
"""

from __future__ import annotations

import torch

ATTENTION_NAME = "editfleet_sdpa"
# Steps between the host's checks whether every row has finished (each check waits for the device).
FINISHED_CHECK_EVERY = 8


def grouped_decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                             scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers' SDPA attention, except one-token queries with a mask over grouped KV heads."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or attention_mask is None or groups == 1 or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    # query head h attends with KV head h // groups (repeat_kv's order): a group is contiguous
    grouped = query.reshape(batch, kv_heads, groups, dim)
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key, value, attn_mask=attention_mask, dropout_p=0.0, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def install_grouped_decode_attention(model) -> bool:
    """Use `grouped_decode_attention` in the text decoder of a model on SDPA; True if installed."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    text_config = model.config.get_text_config(decoder=True)
    if text_config._attn_implementation not in ("sdpa", ATTENTION_NAME):
        return False
    AttentionInterface.register(ATTENTION_NAME, grouped_decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)  # same masks as SDPA
    text_config._attn_implementation = ATTENTION_NAME
    return True


class StaticGreedyDecoder:
    """Greedy decoding of `batch` rows on one static cache of `cache_len` positions. Made once per
    (batch, cache length) and reused: its buffers, its cache and (on CUDA) its graph keep their
    addresses. For each batch, per chunk of rows prefilled elsewhere (each chunk left padded to its
    own length): `copy_rows` takes the chunk's cache, `set_rows` what decoding starts from; then
    `decode`."""

    def __init__(self, language_model, lm_head, text_config, *, batch: int, cache_len: int, max_new_tokens: int,
                 eos_token_ids: list[int], pad_token_id: int, vocab_size: int, device: torch.device,
                 dtype: torch.dtype):
        from transformers import StaticCache

        self.language_model = language_model
        self.lm_head = lm_head
        self.text_config = text_config
        self.batch = batch
        self.cache_len = cache_len
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.use_graph = device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
        self.cache = StaticCache(config=text_config, max_cache_len=cache_len)
        self.cache.early_initialization(batch_size=batch, num_heads=text_config.num_key_value_heads,
                                        head_dim=head_dim, dtype=dtype, device=device)
        long = dict(dtype=torch.long, device=device)
        self.token = torch.zeros(batch, 1, **long)  # the step's input token
        self.positions = torch.zeros(3, batch, 1, **long)  # its multimodal rope position (t, h, w alike)
        self.step = torch.zeros((), **long)  # index of the token this step produces
        self.prompt_end = torch.zeros((), **long)  # cache positions from here on hold decoded tokens
        self.min_new_tokens = torch.zeros((), **long)
        self.prompt_valid = torch.zeros(batch, cache_len, dtype=torch.bool, device=device)
        self.cache_index = torch.arange(cache_len, **long)
        self.tokens = torch.full((batch, max_new_tokens), pad_token_id, **long)
        self.unfinished = torch.ones(batch, dtype=torch.bool, device=device)
        self.pad_token_id = pad_token_id
        self.pad = torch.tensor(pad_token_id, **long)
        self.is_eos = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.is_eos[eos_token_ids] = True

    @torch.inference_mode()
    def copy_rows(self, start: int, prefilled) -> None:
        """Copy a chunk's prefilled cache (any transformers cache whose layers hold `keys` and `values`
        of (rows, KV heads, tokens, head dim)) into rows start.. of this cache, from position 0."""
        for whole, part in zip(self.cache.layers, prefilled.layers):
            rows, _, tokens, _ = part.keys.shape
            if tokens > self.cache_len:
                raise ValueError(f"a prompt of {tokens + 1} tokens overflows a cache of {self.cache_len} positions")
            whole.keys[start:start + rows, :, :tokens].copy_(part.keys)
            whole.values[start:start + rows, :, :tokens].copy_(part.values)

    @torch.inference_mode()
    def set_rows(self, start: int, prompt_mask: torch.Tensor, last_prompt_token: torch.Tensor,
                 rope_deltas: torch.Tensor) -> None:
        """Rows start.. hold prompts (left padded, `prompt_mask` over the whole prompt) whose all-but-last
        tokens are in the cache from position 0; decoding feeds `last_prompt_token` first, at the
        prompt's last valid position plus the rope delta of its images."""
        rows, length = prompt_mask.shape
        stop = start + rows
        self.token[start:stop, 0] = last_prompt_token
        last_position = prompt_mask.long().sum(-1) - 1 + rope_deltas.view(-1).to(self.device)
        self.positions[:, start:stop, 0] = last_position
        self.prompt_valid[start:stop] = False
        self.prompt_valid[start:stop, : length - 1] = prompt_mask[:, :-1].bool()

    @torch.inference_mode()
    def decode(self, prompt_end: int, *, new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
        """The greedy continuation (batch, n <= new_tokens) of every row (see set_rows); decoded tokens
        go to cache positions prompt_end.. for all rows (past a shorter prompt, the gap is masked).
        Rows that end early are padded with the pad token, as `generate` returns them."""
        if not 0 < new_tokens <= self.max_new_tokens:
            raise ValueError(f"new_tokens must be in 1..{self.max_new_tokens}, got {new_tokens}")
        if prompt_end + new_tokens > self.cache_len:
            raise ValueError(f"prompts of {prompt_end + 1} tokens and {new_tokens} new ones overflow a cache "
                             f"of {self.cache_len} positions")
        for layer in self.cache.layers:
            layer.cumulative_length.fill_(prompt_end)
        self.step.zero_()
        self.prompt_end.fill_(prompt_end)
        self.min_new_tokens.fill_(min_new_tokens)
        self.tokens.fill_(self.pad_token_id)
        self.unfinished.fill_(True)

        done = 0
        if self.use_graph and self.graph is None:
            done = self._capture()
        while done < new_tokens:
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()
            done += 1
            if done % FINISHED_CHECK_EVERY == 0 and not bool(self.unfinished.any()):
                break
        return self.tokens[:, :done].clone()

    def _capture(self) -> int:
        """Run the first step eagerly on a side stream (also the warm-up capture needs), then record
        the step as a graph; recording runs nothing, so the state stays one step in. Steps done: 1."""
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # a private memory pool: graphs of other batch sizes replay in any order; thread_local: the
        # device thread may prefill another batch meanwhile (its CUDA calls must not end this capture)
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._step()
        self.graph = graph
        return 1

    def _step(self) -> None:
        # attend to the prompt's valid positions and to every fed token up to this one
        fed = (self.cache_index >= self.prompt_end) & (self.cache_index <= self.prompt_end + self.step)
        mask = (self.prompt_valid | fed)[:, None, None, :]
        hidden = self.language_model(input_ids=self.token, attention_mask=mask, position_ids=self.positions,
                                     past_key_values=self.cache, use_cache=True).last_hidden_state
        logits = self.lm_head(hidden[:, -1]).float()
        too_early = self.is_eos & (self.step < self.min_new_tokens)
        logits = logits.masked_fill(too_early, float("-inf"))
        chosen = torch.where(self.unfinished, logits.argmax(-1), self.pad)
        self.tokens.index_copy_(1, self.step.view(1), chosen[:, None])
        self.unfinished &= ~self.is_eos[chosen]
        self.token.copy_(chosen[:, None])
        self.positions.add_(1)
        self.step.add_(1)
