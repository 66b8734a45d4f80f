"""Emu Edit's headline numbers: the five metrics of the Emu Edit paper (Sheynin et al. 2023, §5.1,
Table 2), each the mean over the test set's samples (every sample once), per task and overall, per
split of the data read:

    CLIP-dir   agreement of the change in CLIP image embedding (input to edit) with the change in text
               embedding (input caption to output caption)        higher is better
    CLIP-I     CLIP image similarity of the edit and the input    higher: more of the input kept
    CLIP-out   CLIP similarity of the edit and the output caption higher is better
    L1         pixel distance of the edit to the input            lower: more of the input kept
    DINO       DINO similarity of the edit and the input          higher: more of the input kept
"""

from __future__ import annotations

import html
from pathlib import Path

from suites.shared import reference_metrics

NAME = "Emu Edit"
METRICS = ("clip_dir", "clip_i", "clip_out", "l1", "dino")
LABELS = reference_metrics.protocol_labels(Path(__file__).with_name("emu_edit.yaml"))  # "CLIP-dir \u2191", ...
SOURCE = "Emu Edit paper §5.1 (metrics), facebook/emu_edit_test_set"


def _splits(samples) -> dict[str, list]:
    splits: dict[str, list] = {}
    for sample in samples:
        splits.setdefault(str(sample.extras.get("split", "")), []).append(sample)
    return splits


def scopes(samples) -> dict[str, list]:
    """The sample sets its numbers are means over, each compared on its own (orchestrator compare):
    each split of the data read (test, validation), never pooled."""
    return {f"split {name}": group for name, group in _splits(samples).items()}


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    splits = _splits(samples)
    return {"name": NAME, "source": SOURCE,
            "formula": "each metric's mean over the samples (per task, and overall: every sample once); "
                       "CLIP-I, L1 and DINO compare the edit with the input image",
            "failures_as": "exclude", "metrics": list(METRICS),
            "splits": {name: reference_metrics.table(group, edits, scores, METRICS, lambda s: s.category)
                       for name, group in splits.items()}}


def console(block: dict) -> str:
    lines = [f"{NAME}, per task:"]
    for split, table in block["splits"].items():
        lines.append(f" split {split}:")
        lines += reference_metrics.console_rows(table, METRICS, LABELS)
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); failures left out</p>"]
    for split, table in block["splits"].items():
        parts.append(f"<h3>split {e(split)}</h3>")
        parts.append(reference_metrics.html_table(table, METRICS, LABELS, first="task"))
    return "\n".join(parts)
