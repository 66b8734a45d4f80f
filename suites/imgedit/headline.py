"""ImgEdit-Bench (basic)'s headline numbers, as PKU-YuanGroup/ImgEdit computes them
(Benchmark/Basic/step1_get_avgscore.py, step2_typescore.py):

    per sample  round(mean of the reply's 1-5 scores, 2)          (the imgedit protocol's score)
    per type    round(mean of its samples' scores, 2)             (step2: typescore.json)
    Overall     the unweighted mean of the type scores            (the paper's "Overall"; the
                                                                   released scripts stop at step2)

step1 drops a key whose reply has no score (and basic_bench.py stores an API error as an object
step1 cannot read); here a failure is left out and counted per type (`--failures zero`: scored 0).
One judge call per sample gives all its scores, so a sample cannot fail in part.
"""

from __future__ import annotations

import html
import math

from suites.imgedit.data import EDIT_TYPES
from suites.shared.numbers import num

_num = num


NAME = "ImgEdit-Bench"


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    per_type: dict[str, dict] = {}
    for sample in samples:
        entry = per_type.setdefault(sample.category, {"samples": 0, "scored": 0, "failures": 0, "_values": []})
        entry["samples"] += 1
        edit, score = edits.get(sample.id), scores.get(sample.id)
        if score is not None and score.get("status") == "OK" and score.get("score") is not None:
            entry["scored"] += 1
            entry["_values"].append(float(score["score"]))
        elif (edit is not None and edit.get("status") == "failed") or score is not None:
            entry["failures"] += 1
            if failures_as == "zero":
                entry["_values"].append(0.0)
    types = {}
    for name in [t for t in EDIT_TYPES if t in per_type] + [t for t in per_type if t not in EDIT_TYPES]:
        entry = per_type[name]
        values = entry.pop("_values")
        types[name] = {**entry, "score": round(math.fsum(values) / len(values), 2) if values else None}
    present = [t["score"] for t in types.values() if t["score"] is not None]
    missing = [n for n, t in types.items() if t["score"] is None]
    return {
        "name": NAME,
        "suite": "basic",
        "source": "PKU-YuanGroup/ImgEdit Benchmark/Basic/step1_get_avgscore.py, step2_typescore.py",
        "formula": "sample = round(mean of its 1-5 scores, 2); type = round(mean of its samples, 2); "
                   "Overall = unweighted mean of the type scores",
        "failures_as": failures_as,
        "types": types,
        "Overall": None if missing or not present else math.fsum(present) / len(present),
        "missing_types": missing,
    }


def console(block: dict) -> str:
    lines = [f"{NAME} (basic), per edit type (typescore):"]
    for name, t in block["types"].items():
        lines.append(f"  {name}: {_num(t['score'])}  [{t['scored']}/{t['samples']} scored"
                     + (f", {t['failures']} failed" if t["failures"] else "") + "]")
    lines.append(f"  Overall: {_num(block['Overall'])}"
                 + (f"  (no score in: {', '.join(block['missing_types'])})" if block["missing_types"] else ""))
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)} (basic)</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             + ("failures count as 0" if block["failures_as"] == "zero" else "failures left out") + "</p>",
             "<table><tr><th>edit type</th><th>samples</th><th>scored</th><th>failures</th><th>score</th></tr>"]
    for name, t in block["types"].items():
        parts.append(f"<tr><td>{e(name)}</td><td class='num'>{t['samples']}</td><td class='num'>{t['scored']}</td>"
                     f"<td class='num'>{t['failures']}</td><td class='num'>{_num(t['score'])}</td></tr>")
    parts.append(f"<tr><th>Overall</th><td></td><td></td><td></td><td class='num'><b>{_num(block['Overall'])}</b></td></tr></table>")
    return "\n".join(parts)
