"""GEdit-Bench's headline numbers, as stepfun-ai/Step1X-Edit computes them
(GEdit-Bench/calculate_statistics.py, `analyze_scores`):

    per sample  SC = min(SC scores), PQ = min(PQ scores)     (viescore's sub-scores "SC", "PQ")
                O  = sqrt(SC * PQ)                            (recomputed from SC and PQ, as the script does)
    per group   the mean of SC, of PQ and of O over the group's samples of one language
    Average     the unweighted mean of the 11 group means (numpy.mean over GROUPS)
    Intersection the same over the samples with Intersection_exist

for each instruction language separately (en, cn). The official script leaves out a sample whose
judging finally failed (and guesses a random score for a reply it cannot parse); here a failure is
left out (`--failures exclude`, counted per group) or scored 0 (`--failures zero`), never guessed.
A sample is one unit there (VIEScore asks SC and PQ again together until both parse, and the CSV
row holds SC, PQ and O), so a sample whose PQ (or SC) reply fails is left out whole here too: the
values its other question gave (the scorer's "parsed.*" sub-scores) are in no mean.
A group without any scored sample has no mean; the official np.mean would then give NaN for the
Average, so the Average is null here and `missing_groups` names the groups.
"""

from __future__ import annotations

import html
import math

from suites.gedit.data import GROUPS, LANGUAGES
from suites.shared.numbers import counts, mean as _mean, num, outcome


def _num(value, digits: int = 3) -> str:
    return num(value, digits)


NAME = "GEdit-Bench"
METRICS = ("SC", "PQ", "O")
# The labels calculate_statistics.py prints for SC, PQ and O.
LABELS = {"SC": "Semantics", "PQ": "Quality", "O": "Overall"}
SUBSETS = ("fullset", "intersection")


def sample_scores(score: dict | None) -> tuple[float, float, float] | None:
    """(SC, PQ, O) of one OK viescore line, or None."""
    if not score or score.get("status") != "OK":
        return None
    subs = score.get("sub_scores") or {}
    if "SC" not in subs or "PQ" not in subs:
        return None
    sc, pq = float(subs["SC"]), float(subs["PQ"])
    return sc, pq, math.sqrt(sc * pq)


def _subset(rows: list[tuple]) -> dict:
    """rows: (group, (SC, PQ, O) or None, kind: '' scored, 'edit'/'score' failed, 'pending') -> the table."""
    groups = {}
    for group in GROUPS:
        mine = [r for r in rows if r[0] == group]
        values = [v for _, v, _ in mine if v is not None]
        groups[group] = {
            "samples": len(mine),
            "scored": sum(1 for _, v, kind in mine if v is not None and not kind),
            "failures": sum(1 for _, _, kind in mine if kind in ("edit", "score")),
            "pending": sum(1 for _, _, kind in mine if kind == "pending"),
            **{m: _mean([v[i] for v in values]) for i, m in enumerate(METRICS)},
        }
    missing = [g for g, c in groups.items() if c["O"] is None]
    average = {m: (None if missing else _mean([groups[g][m] for g in GROUPS])) for m in METRICS}
    return {"groups": groups, "Average": average, "missing_groups": missing}


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    """The GEdit-Bench block of summary.json: per language, fullset and intersection."""
    rows: dict[str, list[tuple]] = {lang: [] for lang in LANGUAGES}
    intersection: dict[str, list[tuple]] = {lang: [] for lang in LANGUAGES}
    for sample in samples:
        if sample.language not in rows:
            continue
        edit, score = edits.get(sample.id), scores.get(sample.id)
        values = sample_scores(score)
        kind = outcome(edit, score, values is not None)
        if kind in ("edit", "score") and failures_as == "zero":
            values = (0.0, 0.0, 0.0)
        row = (sample.category, values, kind)
        rows[sample.language].append(row)
        if sample.extras.get("intersection"):
            intersection[sample.language].append(row)
    languages = {}
    for lang in LANGUAGES:
        run = [s for s in samples if s.language == lang]
        if not run:
            continue
        languages[lang] = {"samples": len(run), "fullset": _subset(rows[lang]),
                           "intersection": _subset(intersection[lang])}
    return {
        "name": NAME,
        "source": "stepfun-ai/Step1X-Edit GEdit-Bench/calculate_statistics.py",
        "formula": "O = sqrt(SC*PQ) per sample; mean per task group; Average = unweighted mean of the 11 group means",
        "failures_as": failures_as,
        "languages": languages,
    }


def _title(lang: str, subset: str) -> str:
    return f"{NAME}-{lang.upper()}" + (" Intersection" if subset == "intersection" else "")


def console(block: dict) -> str:
    """calculate_statistics.py's printout per language: `group: SC, PQ, O`, then the Average."""
    lines = []
    for lang, data in block["languages"].items():
        for subset in SUBSETS:
            table = data[subset]
            lines.append(f"{_title(lang, subset)} (Semantics SC, Quality PQ, Overall O):")
            for group, c in table["groups"].items():
                lines.append(f"  {group}: {_num(c['SC'])}, {_num(c['PQ'])}, {_num(c['O'])}  {counts(c)}")
            avg = table["Average"]
            label = "Average" if subset == "fullset" else "Average Intersection"
            lines.append(f"  {label}: {_num(avg['SC'])}, {_num(avg['PQ'])}, {_num(avg['O'])}"
                         + (f"  (no score in: {', '.join(table['missing_groups'])})" if table["missing_groups"] else ""))
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             + ("failures count as 0" if block["failures_as"] == "zero" else "failures left out") + "</p>"]
    for lang, data in block["languages"].items():
        for subset in SUBSETS:
            table = data[subset]
            parts.append(f"<h3>{e(_title(lang, subset))}</h3><table><tr><th>task group</th><th>samples</th>"
                         "<th>scored</th><th>failures</th>"
                         + "".join(f"<th>{e(LABELS[m])} ({m})</th>" for m in METRICS) + "</tr>")
            for group, c in table["groups"].items():
                parts.append(f"<tr><td>{e(group)}</td><td class='num'>{c['samples']}</td><td class='num'>{c['scored']}</td>"
                             f"<td class='num'>{c['failures']}</td>"
                             + "".join(f"<td class='num'>{_num(c[m])}</td>" for m in METRICS) + "</tr>")
            avg = table["Average"]
            parts.append("<tr><th>Average</th><td></td><td></td><td></td>"
                         + "".join(f"<td class='num'><b>{_num(avg[m])}</b></td>" for m in METRICS) + "</tr></table>")
            if table["missing_groups"]:
                parts.append(f"<p class='fail'>No Average: no score in {e(', '.join(table['missing_groups']))}</p>")
    return "\n".join(parts)
