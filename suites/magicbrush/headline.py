"""MagicBrush's headline numbers, as OSU-NLP-Group/MagicBrush evaluation/image_eval.py computes them:
each metric's mean over the pairs (edit, ground truth), every pair once:

    L1, L2     eval_distance: mean |a-b| / (a-b)^2 per pair (the edit resized to the ground truth's size)
    CLIP-I     eval_clip_i: cos of CLIP ViT-B/32 image embeddings
    DINO       eval_clip_i(metric='dino'): cos of DINO ViT-S/16 [CLS] embeddings
    CLIP-T     eval_clip_t: cos of the edit's CLIP embedding and the ground truth's caption's

Single-turn ("all_turn" in image_eval.py's output: every turn edited from the ground truth's input of
that turn, `<img_id>_1` and `<img_id>_inde_<k>`): the mean over every turn of the test set; per turn
index (turn1, turn2, ...) as well. The multi-turn ("final_turn", each turn editing the previous turn's
edit) numbers come with the multi-turn chains (issue 31 item 4).
"""

from __future__ import annotations

from suites.shared import reference_metrics

NAME = "MagicBrush"
METRICS = ("l1", "l2", "clip_i", "dino", "clip_t")
LABELS = {"l1": "L1", "l2": "L2", "clip_i": "CLIP-I", "dino": "DINO", "clip_t": "CLIP-T"}
SOURCE = "OSU-NLP-Group/MagicBrush evaluation/image_eval.py at 44745b5"


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    block = reference_metrics.table(samples, edits, scores, METRICS, lambda s: s.category)
    block["groups"] = dict(sorted(block["groups"].items(), key=lambda kv: int(kv[0].removeprefix("turn") or 0)))
    return {"name": NAME, "source": SOURCE, "setting": "single-turn (all turns, each from the ground truth's input)",
            "formula": "each metric's mean over every (edit, ground truth) pair; lower L1/L2 and higher "
                       "CLIP-I/DINO/CLIP-T are better",
            "failures_as": "exclude", "metrics": list(METRICS), **block}


def console(block: dict) -> str:
    return "\n".join([f"{NAME}, {block['setting']}:",
                      *reference_metrics.console_rows(block, METRICS, LABELS, overall="all turns")])


def report_html(block: dict) -> str:
    import html

    return (f"<h2>{html.escape(NAME)}</h2><p class='muted'>{html.escape(block['setting'])}: "
            f"{html.escape(block['formula'])} ({html.escape(block['source'])}); failures left out</p>\n"
            + reference_metrics.html_table(block, METRICS, LABELS, first="turn", overall="all turns"))
