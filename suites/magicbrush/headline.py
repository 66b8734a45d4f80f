"""MagicBrush's headline numbers, as OSU-NLP-Group/MagicBrush evaluation/image_eval.py computes them:
each metric's mean over the pairs (edit, ground truth), every pair once:

    L1, L2     eval_distance: mean |a-b| / (a-b)^2 per pair (the edit resized to the ground truth's size)
    CLIP-I     eval_clip_i: cos of CLIP ViT-B/32 image embeddings
    DINO       eval_clip_i(metric='dino'): cos of DINO ViT-S/16 [CLS] embeddings
    CLIP-T     eval_clip_t: cos of the edit's CLIP embedding and the ground truth's caption's

Single-turn ("all_turn" in image_eval.py's output: every turn edited from the ground truth's input of
that turn, `<img_id>_1` and `<img_id>_inde_<k>`): the mean over every turn of the test set; per turn
index (turn1, turn2, ...) as well.

Multi-turn ("final_turn": each turn editing the edit of the turn before, the `<img_id>_iter_<k>`
samples, data.py): the mean over the sessions of each session's last turn against its last ground
truth (`<img_id>_1` for a session of one turn, as get_final_turn_img takes it); also split by the
sessions' length. Present where the run has multi-turn samples; a session whose last turn is not in
the run (--categories, --limit) is counted as lacking, in no mean.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared import reference_metrics

NAME = "MagicBrush"
METRICS = ("l1", "l2", "clip_i", "dino", "clip_t")
LABELS = reference_metrics.protocol_labels(Path(__file__).with_name("magicbrush.yaml"))  # "L1 \u2193", ...
SINGLE, FINAL = "all turns (single-turn)", "final turn (multi-turn)"  # the settings, as scopes()
SOURCE = "OSU-NLP-Group/MagicBrush evaluation/image_eval.py at 44745b5"


MULTI_TURN = "multi-turn"  # extras["setting"] of the multi-turn samples (data.py)


def _turns(n: int) -> str:
    return f"sessions of {n} turn{'s' if n != 1 else ''}"


def final_turns(samples) -> tuple[list, list[str]]:
    """Each session's last turn in the multi-turn setting (its `<img_id>_1` where it has one turn), in
    session order, and the sessions whose last turn is not among `samples`."""
    by_id = {s.id: s for s in samples}
    sessions = {s.extras["session"]: int(s.extras["turns"]) for s in samples}
    finals, lacking = [], []
    for session, n in sessions.items():
        last = by_id.get(f"{session}_1" if n == 1 else f"{session}_iter_{n}")
        (finals.append(last) if last is not None else lacking.append(session))
    return finals, lacking


def scopes(samples) -> dict[str, list]:
    """The sample sets its numbers are means over, each compared on its own (orchestrator compare): the
    single-turn setting's every turn (all_turn) and, where the run has multi-turn samples, the
    multi-turn setting's sessions' last turns (final_turn); never the two pooled."""
    out = {SINGLE: [s for s in samples if s.extras.get("setting") != MULTI_TURN]}
    if any(s.extras.get("setting") == MULTI_TURN for s in samples):
        out[FINAL] = final_turns(samples)[0]
    return out


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    single = [s for s in samples if s.extras.get("setting") != MULTI_TURN]
    block = reference_metrics.table(single, edits, scores, METRICS, lambda s: s.category)
    block["groups"] = dict(sorted(block["groups"].items(), key=lambda kv: int(kv[0].removeprefix("turn") or 0)))
    out = {"name": NAME, "source": SOURCE, "setting": "single-turn (all turns, each from the ground truth's input)",
           "formula": "each metric's mean over every (edit, ground truth) pair; lower L1/L2 and higher "
                      "CLIP-I/DINO/CLIP-T are better",
           "failures_as": "exclude", "metrics": list(METRICS), **block}
    if any(s.extras.get("setting") == MULTI_TURN for s in samples):
        finals, lacking = final_turns(samples)
        multi = reference_metrics.table(finals, edits, scores, METRICS, lambda s: _turns(int(s.extras["turns"])))
        multi["groups"] = dict(sorted(multi["groups"].items(), key=lambda kv: int(kv[0].split()[2])))
        out["multi_turn"] = {"setting": "multi-turn (final turn: each turn edits the edit of the turn before)",
                             "formula": "each metric's mean over the sessions' last (edit, ground truth) pair",
                             "sessions_lacking": len(lacking), **multi}
    return out


def console(block: dict) -> str:
    lines = [f"{NAME}, {block['setting']}:",
             *reference_metrics.console_rows(block, METRICS, LABELS, overall="all turns")]
    multi = block.get("multi_turn")
    if multi:
        lacking = f" ({multi['sessions_lacking']} session(s) without their last turn in this run)" \
            if multi["sessions_lacking"] else ""
        lines += [f"{NAME}, {multi['setting']}{lacking}:",
                  *reference_metrics.console_rows(multi, METRICS, LABELS, overall="final turn")]
    return "\n".join(lines)


def report_html(block: dict) -> str:
    import html

    out = (f"<h2>{html.escape(NAME)}</h2><p class='muted'>{html.escape(block['setting'])}: "
           f"{html.escape(block['formula'])} ({html.escape(block['source'])}); failures left out</p>\n"
           + reference_metrics.html_table(block, METRICS, LABELS, first="turn", overall="all turns"))
    multi = block.get("multi_turn")
    if multi:
        lacking = (f"; {multi['sessions_lacking']} session(s) without their last turn in this run"
                   if multi["sessions_lacking"] else "")
        out += (f"\n<p class='muted'>{html.escape(multi['setting'])}: {html.escape(multi['formula'])}; failures "
                f"(a failed turn fails the rest of its session) left out{html.escape(lacking)}</p>\n"
                + reference_metrics.html_table(multi, METRICS, LABELS, first="last turn of", overall="final turn"))
    return out
