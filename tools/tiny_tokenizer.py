"""A tiny byte-level BPE tokenizer with Qwen's special tokens, trained locally and deterministically.

Stands in for Qwen's tokenizer in tiny test models (nothing can be downloaded here). Model
configs take their image/video/vision token ids from `special_token_ids()`.
"""

from __future__ import annotations

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A fixed corpus: training is deterministic, so the same files come out on every machine.
_CORPUS = [
    "Change the sky to a sunset. Make the car red. Remove the person on the left.",
    "Add a hat to the cat. Replace the background with a beach. Turn the photo into a painting.",
    "Describe the key features of the input image (color, shape, size, texture, objects, background),",
    "then explain how the user's text instruction should alter or modify the image.",
    "You are a professional digital artist. Rate the edited image from 0 to 10.",
    '{"score": [7, 8], "reasoning": "The edit follows the instruction."} Score: 7/10',
    "system user assistant The image shows a red apple on a wooden table next to a glass of water.",
    "physical environmental cultural causal referential 0 1 2 3 4 5 6 7 8 9 10",
]


def train_tiny_qwen_tokenizer(vocab_size: int = 600, model_max_length: int = 32768):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    state = bpe.model.__getstate__()
    import json

    model_state = json.loads(state)
    vocab = model_state["vocab"]
    merges = [tuple(m) if not isinstance(m, str) else tuple(m.split(" ")) for m in model_state["merges"]]
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
    )
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS[1:]})
    tok.add_tokens(["<|endoftext|>"], special_tokens=True)
    return tok


def special_token_ids(tok) -> dict[str, int]:
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": ids["<|endoftext|>"],
    }


def train_tiny_clip_tokenizer(vocab_size: int = 300):
    """A tiny CLIP-style BPE tokenizer (`</w>` word ends, start/end tokens 0 and 1) for FLUX's CLIP encoder."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  end_of_word_suffix="</w>", show_progress=False)
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    state = json.loads(bpe.model.__getstate__())
    merges = [tuple(m) if not isinstance(m, str) else tuple(m.split(" ")) for m in state["merges"]]
    return CLIPTokenizer(vocab=state["vocab"], merges=merges, model_max_length=77)


def train_tiny_t5_tokenizer(vocab_size: int = 200):
    """A tiny Unigram tokenizer with T5's special tokens (<pad> 0, </s> 1, <unk> 2) for FLUX's T5 encoder."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    unigram.train_from_iterator(_CORPUS * 4, trainer=trainer)
    vocab = json.loads(unigram.to_str())["model"]["vocab"]
    return T5Tokenizer(vocab=[tuple(piece) for piece in vocab], extra_ids=0, model_max_length=512)
