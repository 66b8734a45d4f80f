"""RISEBench++'s headline numbers, as PhoenixZ810/RISEBench's RISEBench++/gemini_eval.py computes them
(`main`, `calculate_score`, `calculate_completion`, `append_summary_row`, `append_group_summaries`, at
2902d8b), row for row as its <model>_judge.csv:

    per sample   ApprConsistency, Reasoning, VisualPlausibility on 1-5 (the risebench-pp protocol's
                 sub-scores; logical 0/1 answers as 1/5; no consistency for consistency_free rows, no
                 plausibility for logical and logical-hybrid rows)
      complete   1 when every judged dimension is 5, else 0                   (calculate_completion)
      score      0.3*C + 0.5*R + 0.2*VP; 0.2*VP + 0.8*R where consistency_free; 0.3*C + 0.7*R for
                 logical rows; halved when R = 1, but at least 1               (calculate_score)
    rows         Overall; Overall_Reasoning, Overall_ApprConsistency, Overall_VisualPlausibility; per
                 category of the single-turn rows, in the order they first appear, <Label>,
                 <Label>_Reasoning, <Label>_Consistency, <Label>_Quality (not for Logical); Hybrid,
                 Hybrid_Reasoning, Hybrid_ApprConsistency, Hybrid_Quality for the multi-turn rows;
                 subcategory/<category>/<subcategory> and task_type/<category>/<subcategory>/<task_type>
                 of the single-turn rows, sorted (pandas groupby)
    each row     Score-Origin = the mean (of the score, or of the dimension), Score-Percentage =
                 25*(Score-Origin - 1), Accuracy = the mean complete (score rows only)

Failures: gemini_eval.py gives a missing output the minimum score in every dimension it judges
(build_min_score_judgement: 1, or 0 = 1 for logical ones), so it counts with score 1 and complete 0
in every mean; a reply without a Final Score leaves the row's dimensions and score NaN (out of those
means) and its complete 0 (in the Accuracy). `--failures zero` does exactly that; `--failures
exclude` (the default) leaves every failure out of every mean. Counted per row either way. A mean
over no rows is null (NaN there).
"""

from __future__ import annotations

import html

from suites.rise.headline import FORMULA, pct, percent  # gpt_eval.py's, kept by gemini_eval.py
from suites.risebench_pp.combine import DIMENSIONS, weighted
from suites.shared.numbers import counts, mean, num, outcome

NAME = "RISEBench++"
SOURCE = "PhoenixZ810/RISEBench RISEBench++/gemini_eval.py (main, calculate_score, calculate_completion)"
LABELS = {"temporal_reasoning": "Temporal", "causal_reasoning": "Causal", "spatial_reasoning": "Spatial",
          "logical_reasoning": "Logical", "counterfactual_reasoning": "Counterfactual", "hybrid_reasoning": "Hybrid"}
SHORT = {"Reasoning": "Reasoning", "ApprConsistency": "Consistency", "VisualPlausibility": "Quality"}  # main()'s order


def judged(sample) -> tuple[str, ...]:
    """The dimensions a sample is judged on."""
    logical = sample.extras.get("family") == "logical"
    return tuple(d for d in DIMENSIONS if not (d == "ApprConsistency" and sample.extras.get("consistency_free"))
                 and not (d == "VisualPlausibility" and logical))


def _entry(sample, edit, score, failures_as: str) -> dict:
    subs = (score or {}).get("sub_scores") or {}
    ok = bool(score) and score.get("status") == "OK" and all(subs.get(d) is not None for d in judged(sample))
    kind = outcome(edit, score, ok)
    entry = {"kind": kind, "dims": None, "score": None, "complete": None}
    if kind == "":
        dims = {d: float(subs[d]) for d in judged(sample)}
        entry.update(dims=dims, score=weighted(dims), complete=int(all(v == 5 for v in dims.values())))
    elif kind == "edit" and failures_as == "zero":  # build_min_score_judgement: the lowest score everywhere
        dims = {d: 1.0 for d in judged(sample)}
        entry.update(dims=dims, score=weighted(dims), complete=0)
    elif kind == "score" and failures_as == "zero":  # extract found no score: NaN dimensions, not complete
        entry["complete"] = 0
    return entry


def _row(entries: list[dict]) -> dict:
    origin = mean([e["score"] for e in entries if e["score"] is not None])
    return {"Score-Origin": origin, "Score-Percentage": percent(origin),
            "Accuracy": mean([float(e["complete"]) for e in entries if e["complete"] is not None]),
            "samples": len(entries), "scored": sum(e["kind"] == "" for e in entries),
            "failures": sum(e["kind"] in ("edit", "score") for e in entries),
            "pending": sum(e["kind"] == "pending" for e in entries)}


def _dim(entries: list[dict], name: str) -> dict:
    value = mean([e["dims"][name] for e in entries if e["dims"] and name in e["dims"]])
    return {"Score-Origin": value, "Score-Percentage": percent(value), "Accuracy": None}


def _group_key(value) -> tuple:
    # pandas groupby(dropna=False) sorts its keys, a missing one (NaN) last
    return (value is None, "" if value is None else str(value))


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    entries = [(s, _entry(s, edits.get(s.id), scores.get(s.id), failures_as)) for s in samples]
    every = [e for _, e in entries]
    rows = {"Overall": _row(every)}
    for d in SHORT:
        rows[f"Overall_{d}"] = _dim(every, d)
    single = [(s, e) for s, e in entries if not s.extras.get("multi_turn")]
    hybrid = [e for s, e in entries if s.extras.get("multi_turn")]
    for category in dict.fromkeys(s.category for s, _ in single):
        mine = [e for s, e in single if s.category == category]
        label = LABELS.get(category, category)
        rows[label] = _row(mine)
        for d in SHORT:
            if not (d == "VisualPlausibility" and category == "logical_reasoning"):
                rows[f"{label}_{SHORT[d]}"] = _dim(mine, d)
    if hybrid:
        rows["Hybrid"] = _row(hybrid)
        for d, short in (("Reasoning", "Reasoning"), ("ApprConsistency", "ApprConsistency"),
                         ("VisualPlausibility", "Quality")):
            rows[f"Hybrid_{short}"] = _dim(hybrid, d)
    groups: dict[str, dict] = {}
    for keys, prefix in ((("subcategory",), "subcategory"), (("subcategory", "task_type"), "task_type")):
        found: dict[tuple, list] = {}
        for s, e in single:
            key = (s.category, *(s.extras.get(k) for k in keys))
            found.setdefault(key, []).append(e)
        for key in sorted(found, key=lambda k: tuple(_group_key(v) for v in k)):
            groups["/".join([prefix, *("nan" if v is None else str(v) for v in key)])] = _row(found[key])
    return {
        "name": NAME,
        "source": SOURCE,
        "language": samples[0].language if samples else "en",
        "formula": FORMULA,
        "failures_as": failures_as,
        "rows": rows,
        "groups": groups,
    }


def console(block: dict) -> str:
    lines = [f"{NAME} ({block['language'].upper()}): Accuracy, Score-Origin (Score-Percentage)"]
    for label, row in block["rows"].items():
        if row["Accuracy"] is not None or "samples" in row:
            lines.append(f"  {label}: {pct(row['Accuracy'])}, {num(row['Score-Origin'], 3)} "
                         f"({num(row['Score-Percentage'], 1)})  {counts(row)}")
    lines.append("  dimensions, mean (percentage): " + "; ".join(
        f"{label} {num(row['Score-Origin'], 3)} ({num(row['Score-Percentage'], 1)})"
        for label, row in block["rows"].items() if "samples" not in row and label.startswith("Overall_")))
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)} ({e(block['language'].upper())})</h2><p class='muted'>{e(block['formula'])} "
             f"({e(block['source'])}); "
             + ("a failed edit counts the lowest score and a failed reply not accurate, as gemini_eval.py"
                if block["failures_as"] == "zero" else "failures left out") + "</p>",
             "<table><tr><th></th><th>samples</th><th>scored</th><th>failures</th><th>Accuracy</th>"
             "<th>Score-Origin</th><th>Score-Percentage</th></tr>"]
    for label, row in [*block["rows"].items(), *block["groups"].items()]:
        cell = "th" if label == "Overall" else "td"
        n = (f"<td class='num'>{row['samples']}</td><td class='num'>{row['scored']}</td>"
             f"<td class='num'>{row['failures']}</td>") if "samples" in row else "<td></td><td></td><td></td>"
        acc = f"<b>{pct(row['Accuracy'])}</b>" if label == "Overall" else pct(row["Accuracy"])
        parts.append(f"<tr><{cell}>{e(label)}</{cell}>{n}<td class='num'>{acc if row['Accuracy'] is not None else ''}</td>"
                     f"<td class='num'>{num(row['Score-Origin'], 3)}</td><td class='num'>{num(row['Score-Percentage'], 1)}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
