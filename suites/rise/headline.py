"""RISEBench's headline numbers, as PhoenixZ810/RISEBench's gpt_eval.py computes them (`main`,
`calculate_score`, `calculate_completion`, at ce8cba3):

    per sample   ApprConsistency, Reasoning, VisualPlausibility on 1-5 (the rise protocol's sub-scores;
                 logical 0/1 answers as 1/5; no consistency for consistency_free rows, no plausibility
                 for logical rows)
      complete   1 when every judged dimension is 5, else 0                   (calculate_completion)
      score      temporal/causal/spatial: 0.3*C + 0.5*R + 0.2*VP, or 0.2*VP + 0.8*R where the row is
                 consistency_free; logical: 0.3*C + 0.7*R; halved when R = 1, but at least 1
                                                                              (calculate_score)
    per category (Temporal, Causal, Spatial, Logical) and Overall:
                 Score-Origin = mean score, Score-Percentage = 25*(Score-Origin - 1),
                 Accuracy = mean complete (the leaderboard's number, in %)
    dimensions   the mean of each dimension overall and per category (the README's second table is
                 25*(mean - 1) of Overall_Reasoning, Overall_ApprConsistency, Overall_VisualPlausibility_total)
    subtasks     Score-Origin, Score-Percentage and Accuracy per `subtask` (RISEBench-360 has them)

The set is the file the run was given: RISEBench-64 (the GitHub repo's data/data_total.json) or
RISEBench-360 (datav2_total_w_subtask.json); the release marks no 64-subset inside the 360, so a
run of the 360 reports the 360 (and one with --limit or --categories is labelled a subset).

Kept as gpt_eval.py does it, although surprising:
  * calculate_score tests `'consistency_free' in row and row['consistency_free']` on a pandas row: a
    file that has the key on any row gives NaN (truthy) on the rows without it, so there every
    temporal/causal/spatial row without the key is scored 0.2*VP + 0.8*R too, consistency left out
    (an explicit null beside true values stays None: false). The published scores come from such a
    file (RISEBench-360); the numbers here follow the same rule, per row as the loader records it
    (`score_without_consistency`; block["score_rule"] counts the rows it changed). The protocol's own
    per-sample headline (combine.py `rise`) uses the row's own flag.
  * a category or subtask mean over no rows is NaN there; null here.
Where gpt_eval.py guesses, here a failure is recorded (see protocols/rise.yaml). A sample whose reply
could not be read is, in gpt_eval.py, left out of the score and dimension means but counted as not
accurate in Accuracy: `--failures zero` does exactly that (failed edits too: gpt_eval.py stops at a
missing output instead); `--failures exclude` leaves it out of Accuracy as well. Failures are counted
per category either way. A sample is one unit: gpt_eval.py sets the whole score to None when any of
its replies fails to give a Final Score (`if not score1 or not score2 or not score3: score=None`),
so a sample failing in one question is left out of every dimension mean too; the values its other
questions gave (the scorer's "parsed.*" sub-scores) are not read.
"""

from __future__ import annotations

import html

from suites.shared.numbers import counts, mean as _mean, num, outcome


def _num(value, digits: int = 3) -> str:
    return num(value, digits)


def _counts(entry: dict) -> str:
    return counts(entry, "scored")


NAME = "RISEBench"
SOURCE = "PhoenixZ810/RISEBench gpt_eval.py (main, calculate_score, calculate_completion)"
# gpt_eval.py's row names for the categories, in its order
CATEGORY_ROWS = {"temporal_reasoning": "Temporal", "causal_reasoning": "Causal", "spatial_reasoning": "Spatial",
                 "logical_reasoning": "Logical"}
DIMENSIONS = {"ApprConsistency": "Consistency", "Reasoning": "Reasoning", "VisualPlausibility": "Quality"}
# gpt_eval.py's subtask_dic: the order and prefix of its per-subtask rows
SUBTASKS = {
    "Temp": ["Life Progression", "Material Progression", "Environmental Cycles", "Societal Transformation"],
    "Causal": ["Structural Deformation", "State Transition", "Chemical and Biological Transformation",
               "Physics Manifestation"],
    "Spa": ["Component Assembly", "Object Arrangement", "Viewpoint Generation", "Structural Inference",
            "Layout Reasoning"],
    "Logic": ["Pattern Prediction", "Mathematical Derivation", "Puzzle Solving"],
}
SETS = {64: "RISEBench-64", 360: "RISEBench-360"}
FORMULA = ("complete = every judged dimension 5; Accuracy = mean complete; score = 0.3C+0.5R+0.2VP "
           "(consistency_free: 0.2VP+0.8R; logical: 0.3C+0.7R), halved (at least 1) when R = 1; "
           "Score-Percentage = 25*(score-1)")  # RISEBench++'s gemini_eval.py keeps gpt_eval.py's rule


def percent(value: float | None) -> float | None:
    """Score-Percentage: 25*(Score-Origin - 1)."""
    return None if value is None else 25 * (value - 1)


def dimensions(score: dict | None) -> dict[str, float] | None:
    """The judged dimensions of one OK rise line, or None."""
    if not score or score.get("status") != "OK":
        return None
    subs = score.get("sub_scores") or {}
    dims = {name: float(subs[name]) for name in DIMENSIONS if subs.get(name) is not None}
    return dims if "Reasoning" in dims else None


def complete(category: str, consistency_free: bool, dims: dict[str, float]) -> int:
    """calculate_completion: every dimension the row is judged on equals 5."""
    if category == "logical_reasoning":
        needed = ("ApprConsistency", "Reasoning")
    elif consistency_free:
        needed = ("Reasoning", "VisualPlausibility")
    else:
        needed = ("ApprConsistency", "Reasoning", "VisualPlausibility")
    return int(all(dims.get(n) == 5 for n in needed))


def weighted(category: str, consistency_free: bool, dims: dict[str, float]) -> float:
    """calculate_score, with `consistency_free` as the *file* makes it true (see the module docstring)."""
    r = dims["Reasoning"]
    if category == "logical_reasoning":
        value = 0.3 * dims["ApprConsistency"] + 0.7 * r
    elif consistency_free:
        value = 0.2 * dims["VisualPlausibility"] + 0.8 * r
    else:
        value = 0.3 * dims["ApprConsistency"] + 0.5 * r + 0.2 * dims["VisualPlausibility"]
    if r == 1:
        value = max(1.0, value * 0.5)
    return value


def _row(entries: list[dict]) -> dict:
    scores = [e["score"] for e in entries if e["score"] is not None]
    completes = [e["complete"] for e in entries if e["complete"] is not None]
    origin = _mean(scores)
    return {
        "samples": len(entries),
        "scored": sum(1 for e in entries if e["kind"] == ""),
        "failures": sum(1 for e in entries if e["kind"] in ("edit", "score")),
        "pending": sum(1 for e in entries if e["kind"] == "pending"),
        "Score-Origin": origin,
        "Score-Percentage": percent(origin),
        "Accuracy": _mean([float(c) for c in completes]),
    }


def _dimension(entries: list[dict], name: str) -> dict:
    mean = _mean([e["dims"][name] for e in entries if e["dims"] and name in e["dims"]])
    return {"Score-Origin": mean, "Score-Percentage": percent(mean)}


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    without_c = sum(1 for s in samples if s.extras.get("score_without_consistency") and s.category != "logical_reasoning"
                    and not s.extras.get("consistency_free"))
    entries = []
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        dims = dimensions(score)
        kind = outcome(edit, score, dims is not None)
        if kind == "edit":
            dims = None
        entry = {"category": sample.category, "subtask": sample.extras.get("subtask"), "dims": dims, "kind": kind,
                 "score": None, "complete": None}
        if dims is not None:
            free = bool(sample.extras.get("score_without_consistency")) and sample.category != "logical_reasoning"
            # a falsy consistency_free (false, 0, ""): no consistency asked, yet calculate_score weighs it:
            # NaN there, out of the score means (the row still counts for Accuracy)
            if free or "ApprConsistency" in dims or sample.category == "logical_reasoning":
                entry["score"] = weighted(sample.category, free, dims)
            entry["complete"] = complete(sample.category, bool(sample.extras.get("consistency_free")), dims)
        elif kind in ("edit", "score") and failures_as == "zero":
            entry["complete"] = 0  # gpt_eval.py: NaN dimensions are not 5
        entries.append(entry)
    rows = {"Overall": _row(entries)}
    for category, label in CATEGORY_ROWS.items():
        mine = [e for e in entries if e["category"] == category]
        if mine:
            rows[label] = _row(mine)
    dims = {f"Overall_{name}" + ("_total" if name == "VisualPlausibility" else ""): _dimension(entries, name)
            for name in DIMENSIONS}
    for category, label in CATEGORY_ROWS.items():
        mine = [e for e in entries if e["category"] == category]
        for name, short in DIMENSIONS.items():
            if mine and not (category == "logical_reasoning" and name == "VisualPlausibility"):
                dims[f"{label}_{short}"] = _dimension(mine, name)
    named = {e["subtask"] for e in entries if e["subtask"]}
    subtasks = {}
    for prefix, names in SUBTASKS.items():
        for name in names:
            if name in named:
                subtasks[f"{prefix}-{name}"] = _row([e for e in entries if e["subtask"] == name])
    for name in sorted(named - {n for names in SUBTASKS.values() for n in names}):
        subtasks[name] = _row([e for e in entries if e["subtask"] == name])  # gpt_eval.py lists only its own
    return {
        "name": NAME,
        "set": SETS.get(len(samples), f"subset of {len(samples)} samples"),
        "source": SOURCE,
        "formula": FORMULA,
        "score_rule": (f"0.2*VP + 0.8*R also for {without_c} temporal/causal/spatial row(s) that are not "
                       "consistency_free: the file has consistency_free keys and gpt_eval.py's test is true for "
                       "their NaN") if without_c else
                      "0.3*C + 0.5*R + 0.2*VP for temporal/causal/spatial rows (0.2*VP + 0.8*R where consistency_free)",
        "failures_as": failures_as,
        "rows": rows,
        "dimensions": dims,
        "subtasks": subtasks,
    }


def pct(value) -> str:
    """An Accuracy (0-1) as gpt_eval.py prints it: "62.5%"."""
    return f"{100 * value:.1f}%" if value is not None else "n/a"


def console(block: dict) -> str:
    lines = [f"{NAME} ({block['set']}): Accuracy, Score-Origin (Score-Percentage)"]
    for label, row in block["rows"].items():
        lines.append(f"  {label}: {pct(row['Accuracy'])}, {_num(row['Score-Origin'])} "
                     f"({_num(row['Score-Percentage'], 1)})  {_counts(row)}")
    lines.append("  dimensions, mean (percentage): " + "; ".join(
        f"{name} {_num(d['Score-Origin'])} ({_num(d['Score-Percentage'], 1)})"
        for name, d in block["dimensions"].items() if name.startswith("Overall_")))
    for label, row in block["subtasks"].items():
        lines.append(f"  {label}: {pct(row['Accuracy'])}, {_num(row['Score-Origin'])}  {_counts(row)}")
    lines.append(f"  score rule: {block['score_rule']}")
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)} ({e(block['set'])})</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             f"score rule: {e(block['score_rule'])}; "
             + ("a failure counts as not accurate, outside the score means (as gpt_eval.py)"
                if block["failures_as"] == "zero" else "failures left out") + "</p>",
             "<table><tr><th></th><th>samples</th><th>scored</th><th>failures</th><th>Accuracy</th>"
             "<th>Score-Origin</th><th>Score-Percentage</th></tr>"]
    for label, row in [*block["rows"].items(), *block["subtasks"].items()]:
        cell = "th" if label == "Overall" else "td"
        parts.append(f"<tr><{cell}>{e(label)}</{cell}><td class='num'>{row['samples']}</td><td class='num'>{row['scored']}</td>"
                     f"<td class='num'>{row['failures']}</td><td class='num'><b>{pct(row['Accuracy'])}</b></td>"
                     f"<td class='num'>{_num(row['Score-Origin'])}</td><td class='num'>{_num(row['Score-Percentage'], 1)}</td></tr>")
    parts.append("</table><table><tr><th>dimension</th><th>mean (1-5)</th><th>percentage</th></tr>")
    for name, d in block["dimensions"].items():
        parts.append(f"<tr><td>{e(name)}</td><td class='num'>{_num(d['Score-Origin'])}</td>"
                     f"<td class='num'>{_num(d['Score-Percentage'], 1)}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
