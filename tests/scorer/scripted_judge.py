"""Teach the tiny random Qwen3-VL judge fixed answers to given prompts (seconds of training on
CPU): the teaching itself lives in tools/teach_judge.py, shared with the demo judge of `make models`."""

from tools.teach_judge import teach

__all__ = ["teach"]
