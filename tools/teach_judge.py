"""Teach the tiny random Qwen3-VL judge fixed answers to given prompts (seconds of training on
CPU), so the OK path runs end to end through a real model: real generation and parsing, and an
expected score that has to land on the taught number. Used by the scorer tests
(tests/scorer/scripted_judge.py) and by `make models` (tools/make_taught_judge.py: the demo judge).
"""

from __future__ import annotations

from pathlib import Path

import torch

from scorer_service.judge import Judge
from scorer_service.samples import ScoreInput, build_prompts, prepare
from suites.protocols import load_protocols


def teach(
    model_dir: Path,
    out_dir: Path,
    lessons: list[tuple[ScoreInput, bool, dict[str, str]]],
    *,
    max_steps: int = 200,
    lr: float = 1e-2,
    target_loss: float = 0.01,
    seed: int = 0,
    protocol_dirs: list[Path] = (),
    freeze_vision: bool = False,
    group_by_question: bool = False,
    log=None,
) -> float:
    """lessons: (request, strict re-ask?, {question name: answer}). Saves the model and its
    processor to out_dir; returns the final loss. freeze_vision: train the text model only (faster;
    the answers then cannot depend on the images more than the random vision tower makes them)."""
    torch.manual_seed(seed)
    judge = Judge.load(str(model_dir), device="cpu", dtype="float32")
    registry = load_protocols(protocol_dirs)
    tok = judge.backend.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    prompts, answers = [], []
    for inp, strict, answer_by_question in lessons:
        for prompt in build_prompts([prepare(inp, registry)], strict=strict):
            prompts.append(prompt)
            answers.append(tok(answer_by_question[prompt.question.name], add_special_tokens=False)["input_ids"] + [end])

    # Batches of prompts (one, or one per question: prompts of one question have about the same
    # length, so less padding): left-padded prompts (as the judge runs them), answers right-padded after them.
    if group_by_question:
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(f"{prompt.question.name}", []).append(i)
        batches = [_batch(judge, tok, [prompts[i] for i in idx], [answers[i] for i in idx]) for idx in groups.values()]
    else:
        batches = [_batch(judge, tok, prompts, answers)]
    total = sum(int((b["labels"] != -100).sum()) for b in batches)

    model = judge.backend.model.train()
    if freeze_vision:
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss = float("inf")
    for step in range(max_steps):
        optimizer.zero_grad()
        loss = 0.0
        for inputs in batches:  # the mean over every answer token of every batch
            weight = int((inputs["labels"] != -100).sum()) / total
            out = model(**inputs)
            (out.loss * weight).backward()
            loss += out.loss.item() * weight
        optimizer.step()
        if log is not None and step % 10 == 0:
            log(f"step {step}: loss {loss:.4f}")
        if loss < target_loss:
            break
    model.eval()
    model.save_pretrained(out_dir)
    judge.backend.processor.save_pretrained(out_dir)
    return loss


def _batch(judge, tok, prompts, answers) -> dict:
    base = judge.backend.inputs(prompts)
    width = max(len(a) for a in answers)
    answer_ids = torch.full((len(answers), width), tok.pad_token_id)
    answer_mask = torch.zeros((len(answers), width), dtype=base["attention_mask"].dtype)
    for row, ids in enumerate(answers):
        answer_ids[row, : len(ids)] = torch.tensor(ids)
        answer_mask[row, : len(ids)] = 1
    inputs = dict(base)
    inputs["input_ids"] = torch.cat([base["input_ids"], answer_ids], 1)
    inputs["attention_mask"] = torch.cat([base["attention_mask"], answer_mask], 1)
    if "mm_token_type_ids" in base:
        inputs["mm_token_type_ids"] = torch.cat([base["mm_token_type_ids"], torch.zeros_like(answer_ids)], 1)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, base["input_ids"].shape[1]:] = torch.where(answer_mask.bool(), answer_ids, -100)
    inputs["labels"] = labels
    return inputs
