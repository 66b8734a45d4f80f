"""tools/make_tiny_qwen3_vl.py: deterministic, loadable like the real judge, consistent ids."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from editfleet_common.launch import REPO_ROOT


def _hashes(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".")}


def test_the_tool_is_deterministic(tiny_judge_dir, tmp_path):
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_tiny_qwen3_vl.py"), str(tmp_path)],
                   check=True, capture_output=True)
    assert _hashes(tmp_path) == _hashes(tiny_judge_dir)


def test_loads_with_the_auto_classes_and_ids_match_the_tokenizer(tiny_judge_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_judge_dir)
    processor = AutoProcessor.from_pretrained(tiny_judge_dir)
    tok = processor.tokenizer
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert model.config.text_config.vocab_size >= len(tok)
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")

    # the Qwen3-VL chat template with images; a large image still costs only a few tokens
    messages = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (1024, 768))},
                                             {"type": "text", "text": "Rate it."}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert 1 <= n_image_tokens <= 4
    text = tok.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|>")
    assert text.endswith("Rate it.<|im_end|>\n<|im_start|>assistant\n")
