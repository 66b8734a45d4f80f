"""OmniContext's headline numbers, as VectorSpaceLab/OmniGen2's omnicontext/calculate_statistics.py
computes them (`analyze_scores` and its `__main__`, at 0f72fa9):

    per sample     PF and SC (0-10, the omnicontext protocol's sub-scores) and overall = sqrt(PF * SC)
    per task type  the mean PF, the mean SC and the mean of the samples' overall scores (not
                   sqrt(mean PF * mean SC)), over its rows of the chosen language
    Average        the unweighted mean of the task types' means (each of PF, SC, overall): every task
                   type weighs the same, whatever its number of samples

calculate_statistics.py prints the task types in the order glob finds their score.jsonl files; here
they come in the release's order (data.TASK_TYPES), then any other alphabetically. Its `np.mean([])`
of a task type without rows is NaN (and makes the Average NaN); here a task type without a judged
sample is null and left out of the Average (`task_types_without_scores` lists it).

Failures: the official scorer skips an output that is missing (never in score.jsonl: out of every
mean) and, for a reply it cannot parse, GUESSES a random 0-10 score. Here a failed edit or a reply
that could not be read is a failure, counted per task type: `--failures exclude` (the default, as
the official skip) leaves it out of the means; `--failures zero` counts it PF = SC = overall = 0.
"""

from __future__ import annotations

import html
import math

from suites.omnicontext.data import TASK_TYPES
from suites.shared.numbers import counts, mean, num, outcome

NAME = "OmniContext"
SOURCE = "VectorSpaceLab/OmniGen2 omnicontext/calculate_statistics.py (analyze_scores)"
KEYS = ("PF", "SC", "Overall")


def sample_values(score: dict | None) -> dict[str, float] | None:
    """PF, SC and sqrt(PF * SC) of one OK omnicontext score line, or None."""
    if not score or score.get("status") != "OK":
        return None
    subs = score.get("sub_scores") or {}
    if subs.get("PF") is None or subs.get("SC") is None:
        return None
    pf, sc = float(subs["PF"]), float(subs["SC"])
    return {"PF": pf, "SC": sc, "Overall": math.sqrt(pf * sc)}


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    groups: dict[str, dict] = {}
    for sample in samples:
        entry = groups.setdefault(sample.category, {"samples": 0, "scored": 0, "failures": 0, "pending": 0,
                                                    "_values": {k: [] for k in KEYS}})
        entry["samples"] += 1
        values = sample_values(scores.get(sample.id))
        kind = outcome(edits.get(sample.id), scores.get(sample.id), values is not None)
        if kind == "edit":
            values = None
        if kind == "":
            entry["scored"] += 1
        elif kind == "pending":
            entry["pending"] += 1
        else:
            entry["failures"] += 1
            if failures_as == "zero":
                values = {k: 0.0 for k in KEYS}
        if values is not None:
            for k in KEYS:
                entry["_values"][k].append(values[k])
    order = [t for t in TASK_TYPES if t in groups] + sorted(t for t in groups if t not in TASK_TYPES)
    task_types = {}
    for t in order:
        entry = groups[t]
        task_types[t] = {**{k: mean(entry["_values"][k]) for k in KEYS},
                         **{k: entry[k] for k in ("samples", "scored", "failures", "pending")}}
    with_scores = [t for t in order if task_types[t]["Overall"] is not None]
    average = {k: mean([task_types[t][k] for t in with_scores]) for k in KEYS}
    total = {k: sum(task_types[t][k] for t in order) for k in ("samples", "scored", "failures", "pending")}
    return {
        "name": NAME,
        "source": SOURCE,
        "formula": "per sample overall = sqrt(PF*SC); per task type the mean PF, SC and overall; "
                   "Average = the unweighted mean of the task types' means",
        "failures_as": failures_as,
        "task_types": task_types,
        "Average": {**average, **total},
        "task_types_without_scores": [t for t in order if t not in with_scores],
    }


def console(block: dict) -> str:
    lines = [f"{NAME}: PF, SC, Overall (sqrt(PF*SC)) per task type, 0-10"]
    for name, row in block["task_types"].items():
        lines.append(f"  {name}: {num(row['PF'], 3)}, {num(row['SC'], 3)}, {num(row['Overall'], 3)}  {counts(row)}")
    avg = block["Average"]
    lines.append(f"  Average: {num(avg['PF'], 3)}, {num(avg['SC'], 3)}, {num(avg['Overall'], 3)}  {counts(avg)}")
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             + ("a failure counts 0" if block["failures_as"] == "zero" else "failures left out") + "</p>",
             "<table><tr><th>task type</th><th>samples</th><th>scored</th><th>failures</th><th>PF</th><th>SC</th>"
             "<th>Overall</th></tr>"]
    for name, row in [*block["task_types"].items(), ("Average", block["Average"])]:
        cell = "th" if name == "Average" else "td"
        overall = f"<b>{num(row['Overall'], 3)}</b>" if name == "Average" else num(row["Overall"], 3)
        parts.append(f"<tr><{cell}>{e(name)}</{cell}><td class='num'>{row['samples']}</td>"
                     f"<td class='num'>{row['scored']}</td><td class='num'>{row['failures']}</td>"
                     f"<td class='num'>{num(row['PF'], 3)}</td><td class='num'>{num(row['SC'], 3)}</td>"
                     f"<td class='num'>{overall}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
