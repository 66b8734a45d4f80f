"""KRIS-Bench's headline numbers, as its summary script computes them (ByteDance-Seed/Bagel
eval/gen/kris/summarize.py at 056b5fd, `summarize_benchmark_scores_with_normalization`: the
mercurystraw/Kris_Bench release has the judging scripts only; that summary is the one lmms-eval's
kris_bench task and the published tables follow):

    per score      (s - 1) * 25: the judge's 1-5 on 0-100               (normalize_score)
    per category   the mean of each dimension over its samples          ("subitems": VC, VQ, IF, KP)
    per type       the mean of each dimension over the type's samples, and AVG = the mean of ALL the
                   type's normalised scores pooled (samples x dimensions), for the 7 types
                   Attribute Perception, Spatial Perception, Temporal Prediction, Social Science,
                   Natural Science, Logical Reasoning, Instruction Decomposition
    per group      Factual / Conceptual / Procedural Knowledge: AVG = the mean of all scores of its
                   types pooled
    Overall        AVG = the mean of every normalised score pooled

The dimensions a type counts: VC (visual consistency), VQ (visual quality), IF (instruction
following), and KP (knowledge plausibility) for Social Science, Natural Science and Logical Reasoning
(kris_benchamrk_metric). A knowledge sample thus weighs four scores in the pooled means, the others
three. The sample's scores are the `kris` protocol's sub-scores (raw 1-5, see
suites/kris/kris.yaml).

Where the official scripts differ: their parser takes "N/5", "N out of 5" or the first bare digit 1-5
anywhere in a reply when the JSON does not parse, and summarize.py maps whatever integer it got
(0 or 7 included) through (s-1)*25; a reply without a score is a None that summarize.py drops, one
dimension at a time (metrics_common.py judges each dimension with its own call and stores each
score on its own). Here a reply without an unambiguous in-range score is PARSE_FAILED, never
guessed: the sample is a failure in the counts (`failures`, not `scored`), and the dimension(s) of
the failed question are left out of their means (`--failures exclude`) or count 0 on the 0-100 scale
(`--failures zero`); the dimensions its other questions gave (kept by the scorer as sub-scores
"parsed.<dimension>") count, as summarize.py counts them, in their dimension means and the pooled
AVGs.
"""

from __future__ import annotations

import html

from suites.kris.data import CATEGORIES
from suites.shared.numbers import counts, mean as _mean, num, outcome, parsed_values

_num = num


def _counts(entry: dict) -> str:
    return counts(entry, "scored")


NAME = "KRIS-Bench"
DIMENSIONS = ("VC", "VQ", "IF", "KP")  # summarize.py's score_name_order (without AVG)
LABELS = {"VC": "Visual Consistency", "VQ": "Visual Quality", "IF": "Instruction Following",
          "KP": "Knowledge Plausibility"}
# summarize.py's kris_benchamrk_type (its spelling aside), in its order.
TYPES = {
    "Attribute Perception": ("count_change", "color_change", "size_adjustment", "part_completion", "anomaly_correction"),
    "Spatial Perception": ("viewpoint_change", "position_movement"),
    "Temporal Prediction": ("temporal_prediction",),
    "Social Science": ("humanities", "practical_knowledge"),
    "Natural Science": ("biology", "chemistry", "geography", "medicine", "mathematics", "physics"),
    "Logical Reasoning": ("abstract_reasoning", "rule-based_reasoning"),
    "Instruction Decomposition": ("multi-element_composition", "multi-instruction_execution"),
}
WITH_KP = ("Social Science", "Natural Science", "Logical Reasoning")  # kris_benchamrk_metric
GROUPS = {
    "Factual Knowledge": ("Attribute Perception", "Spatial Perception", "Temporal Prediction"),
    "Conceptual Knowledge": ("Social Science", "Natural Science"),
    "Procedural Knowledge": ("Logical Reasoning", "Instruction Decomposition"),
}
TYPE_OF = {category: t for t, categories in TYPES.items() for category in categories}
assert set(TYPE_OF) == set(CATEGORIES)


def normalize(score: float) -> float:
    """summarize.py's normalize_score: 1-5 -> 0-100."""
    return (score - 1) * 25


def dimensions(category: str) -> tuple[str, ...]:
    """The dimensions summarize.py counts for a category (its type's kris_benchamrk_metric)."""
    return DIMENSIONS if TYPE_OF.get(category) in WITH_KP else DIMENSIONS[:3]


def partial_values(score: dict | None, category: str) -> dict[str, float]:
    """{dimension: normalised score} of what a PARSE_FAILED line's parsed questions gave ({} for any
    other line): summarize.py drops a None score one dimension at a time."""
    kept = parsed_values(score)
    return {d: normalize(kept[d]) for d in dimensions(category) if d in kept}


def sample_values(score: dict | None, category: str) -> dict[str, float] | None:
    """{dimension: normalised score} of one OK kris score line, or None (not OK, or a dimension missing)."""
    if not score or score.get("status") != "OK":
        return None
    subs = score.get("sub_scores") or {}
    if any(d not in subs for d in dimensions(category)):
        return None
    return {d: normalize(float(subs[d])) for d in dimensions(category)}


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    """The KRIS-Bench block of summary.json: per category, per type, per group, Overall."""
    per_category: dict[str, dict] = {}
    for sample in samples:
        entry = per_category.setdefault(sample.category, {"samples": 0, "scored": 0, "failures": 0, "pending": 0,
                                                          "_values": {d: [] for d in dimensions(sample.category)}})
        entry["samples"] += 1
        edit, score = edits.get(sample.id), scores.get(sample.id)
        values = sample_values(score, sample.category)
        kind = outcome(edit, score, values is not None)
        if not kind:
            entry["scored"] += 1
        elif kind == "pending":
            entry["pending"] += 1  # not judged yet: counted, in no mean
        else:
            entry["failures"] += 1
            values = {} if kind == "edit" else partial_values(score, sample.category)
            if failures_as == "zero":
                values = {**{d: 0.0 for d in dimensions(sample.category)}, **values}
        for d, v in (values or {}).items():
            entry["_values"][d].append(v)

    categories, pooled = {}, {}
    for name in [c for c in CATEGORIES if c in per_category]:  # the loader knows no others
        entry = per_category[name]
        values = entry.pop("_values")
        categories[name] = {**entry, **{d: _mean(v) for d, v in values.items()}}
        pooled[name] = values
    types = {}
    for type_name, members in TYPES.items():
        present = [c for c in members if c in pooled]
        if not present:
            continue
        dims = DIMENSIONS if type_name in WITH_KP else DIMENSIONS[:3]
        flat = [v for c in present for d in dims for v in pooled[c].get(d, [])]
        types[type_name] = {
            "categories": present,
            **{k: sum(categories[c][k] for c in present) for k in ("samples", "scored", "failures", "pending")},
            **{d: _mean([v for c in present for v in pooled[c].get(d, [])]) for d in dims},
            "AVG": _mean(flat),
        }
    groups = {}
    for group, members in GROUPS.items():
        present = [t for t in members if t in types]
        if not present:
            continue
        flat = [v for t in present for c in types[t]["categories"] for d in
                (DIMENSIONS if t in WITH_KP else DIMENSIONS[:3]) for v in pooled[c].get(d, [])]
        groups[group] = {"types": present, "AVG": _mean(flat)}
    every = [v for t in types for c in types[t]["categories"]
             for d in (DIMENSIONS if t in WITH_KP else DIMENSIONS[:3]) for v in pooled[c].get(d, [])]
    return {
        "name": NAME,
        "source": "ByteDance-Seed/Bagel eval/gen/kris/summarize.py (judging: mercurystraw/Kris_Bench metrics_*.py)",
        "formula": "each 1-5 score s as (s-1)*25; per dimension the mean over the samples; AVG of a type, "
                   "a knowledge group and Overall = the mean of all their scores pooled (VC, VQ, IF, and KP "
                   "for Social Science, Natural Science, Logical Reasoning)",
        "failures_as": failures_as,
        "categories": categories,
        "types": types,
        "groups": groups,
        "Overall": {"AVG": _mean(every)},
    }


def console(block: dict) -> str:
    """summarize.py's printout: each type's VC, VQ, IF (KP), AVG, then the groups' and the Overall AVG."""
    lines = [f"{NAME}: category, meta-category, and overall average scores (100-point scale):"]
    for type_name, t in block["types"].items():
        lines.append(f"{type_name}:  {_counts(t)}")
        for d in (*DIMENSIONS, "AVG"):
            if d in t:
                lines.append(f"  {d}: {_num(t[d])}")
    for group, g in block["groups"].items():
        lines += [f"{group}:", f"  AVG: {_num(g['AVG'])}"]
    lines += ["Overall:", f"  AVG: {_num(block['Overall']['AVG'])}"]
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    head = "".join(f"<th>{e(LABELS[d])} ({d})</th>" for d in DIMENSIONS)
    parts = [f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             + ("failures count as 0" if block["failures_as"] == "zero" else "failures left out") + "</p>",
             f"<table><tr><th>type</th><th>samples</th><th>scored</th><th>failures</th>{head}<th>AVG</th></tr>"]
    for type_name, t in block["types"].items():
        parts.append(f"<tr><td>{e(type_name)}</td><td class='num'>{t['samples']}</td><td class='num'>{t['scored']}</td>"
                     f"<td class='num'>{t['failures']}</td>"
                     + "".join(f"<td class='num'>{_num(t[d]) if d in t else ''}</td>" for d in DIMENSIONS)
                     + f"<td class='num'><b>{_num(t['AVG'])}</b></td></tr>")
    for group, g in block["groups"].items():
        parts.append(f"<tr><th>{e(group)}</th><td></td><td></td><td></td>{'<td></td>' * len(DIMENSIONS)}"
                     f"<td class='num'><b>{_num(g['AVG'])}</b></td></tr>")
    parts.append(f"<tr><th>Overall</th><td></td><td></td><td></td>{'<td></td>' * len(DIMENSIONS)}"
                 f"<td class='num'><b>{_num(block['Overall']['AVG'])}</b></td></tr></table>")
    parts.append(f"<h3>{e(NAME)} per category</h3><table><tr><th>category</th><th>samples</th><th>scored</th>"
                 f"<th>failures</th>{head}</tr>")
    for name, c in block["categories"].items():
        parts.append(f"<tr><td>{e(name)}</td><td class='num'>{c['samples']}</td><td class='num'>{c['scored']}</td>"
                     f"<td class='num'>{c['failures']}</td>"
                     + "".join(f"<td class='num'>{_num(c[d]) if d in c else ''}</td>" for d in DIMENSIONS) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)
