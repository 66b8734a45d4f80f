"""The stand-in tokenizer of dummy loads: the project's tiny Qwen tokenizer (Qwen's special tokens,
a small byte-level BPE vocabulary), shipped as data in editfleet_common/stand-in-tokenizer/ so that
both service images have it and no service needs tools/ at run time. Written by
`tools/generate_editor_configs.py` (from tools/tiny_tokenizer.py).

A dummy load has the real architecture but no real vocabulary (none can be downloaded here): the
model's special-token ids then come from this tokenizer (`special_token_ids`).
"""

from __future__ import annotations

from pathlib import Path

STAND_IN_TOKENIZER_DIR = Path(__file__).resolve().parent / "stand-in-tokenizer"

# config key -> token, as the Qwen(-VL) configs name them
SPECIAL_TOKENS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
    "eos_token_id": "<|im_end|>",
    "pad_token_id": "<|endoftext|>",
    "bos_token_id": "<|endoftext|>",
}


def load_stand_in_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(STAND_IN_TOKENIZER_DIR)


def special_token_ids(tokenizer, keys=tuple(SPECIAL_TOKENS)) -> dict[str, int]:
    return {key: tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS[key]) for key in keys}
