"""RE-Edit's headline numbers, as Yixuan-Ding-ZJU/RE-Edit computes them
(single_scoring_part_vllm/statistics_calculator.py), from the re-edit protocol's sub-scores:

    per dimension  yes_rate = 100 * yes / samples of that subset, each judged with its own
                   dimension's prompt ("yes" = 1: the protocol's sub-score "yes")
    IF             the mean of the 0-10 instruction-following scores (sub-score "IF")
    SC             the mean over samples of (editing success + over-editing) / 2 (sub-score "SC",
                   statistics_calculator's "average"); also each part's mean (avg_0, avg_1)
    SC_min         the mean of min(editing success, over-editing): what the RE-Edit pipeline
                   (src/data/iterative_data.py, global_primary_sc_avg) reports as SC instead
    overall        the yes rate pooled over every judged sample (calculate_overall_statistics;
                   the README's table gives the five dimensions, IF and SC, and no overall)
    expected       the mean over the samples of P("yes") (the judge's next-token probability,
                   renormalised over yes/no): the expected yes rate, where the judge gives one

IF, SC and the overall are given over all samples and per subset. The README table's columns are
the five yes rates (%) and IF and SC (0-10), one decimal.

Failures. The official statistics keep a reply they cannot parse in a dimension's denominator (it
counts as not "yes") but leave it out of IF and SC; they pick the kind of statistic from the first
result's score, so a first reply that did not parse (or gave a list for IF) makes the whole metric 0;
an item whose edit file is missing is skipped. Here a failure (edit failed, judge reply not parsed
or refused) is left out and counted (`--failures exclude`), or, with `--failures zero`, treated as
the official code treats it: a reply not read (or refused) counts as "no" in its dimension and is
left out of IF and SC, a failed edit is left out; never guessed. (The first-reply rule is not
reproduced: a metric here never becomes 0 because of its first sample.) The official code runs each
metric separately, so a sample whose IF (or SC) reply cannot be read still has its dimension answer
counted: likewise here a sample failing in some of its three questions is PARSE_FAILED (a failure in
every count, raw replies kept), but the values its other questions gave (the scorer keeps them as
sub-scores "parsed.<name>") count in their own statistics: its dimension answer in the yes share, its
IF in IF, its SC in SC. Each entry says how many values each statistic has (`answers`, `IF_n`, `SC_n`).
"""

from __future__ import annotations

import html

from suites.reedit.data import SUBSETS
from suites.shared.numbers import counts, mean as _mean, num, outcome, parsed_values

_num = num


def _counts(entry: dict) -> str:
    return counts(entry, "judged")


NAME = "RE-Edit"
# The README table's column names.
LABELS = {"physical": "Physical", "environmental": "Environmental", "cultural": "Cultural", "causal": "Causal",
          "referential": "Referential"}
SC_PARTS = ("SC.editing_success", "SC.overediting")


def _pct(values: list[float]) -> float | None:
    mean = _mean(values)
    return None if mean is None else 100.0 * mean


SC_GROUP = ("SC", "SC_min", *SC_PARTS)  # what the SC question gives
METRICS = ("yes", "IF", *SC_GROUP)


def sample_values(score: dict | None) -> dict | None:
    """The re-edit sub-scores of one OK line ({yes, IF, SC, SC_min, SC parts}), or None."""
    if not score or score.get("status") != "OK":
        return None
    subs = score.get("sub_scores") or {}
    if any(name not in subs for name in METRICS):
        return None
    return {name: float(subs[name]) for name in METRICS}


def partial_values(score: dict | None) -> dict:
    """What a PARSE_FAILED line's parsed questions gave, each metric on its own: "yes" (the
    dimension), "IF", and the SC group (all of it or none); {} for any other line."""
    kept = parsed_values(score)
    out = {name: kept[name] for name in ("yes", "IF") if name in kept}
    if all(name in kept for name in SC_GROUP):
        out.update({name: kept[name] for name in SC_GROUP})
    return out


def _table(rows: list[tuple]) -> dict:
    """rows: (values or None, kind: '' judged / 'edit' / 'score' failed / 'pending', P(yes) or None).
    A failed sample's values are those of its questions that parsed (and "no" for an unread dimension
    answer with --failures zero)."""
    values = [v for v, _, _ in rows if v]
    expected = [p for _, _, p in rows if p is not None]

    def of(name):
        return [v[name] for v in values if name in v]

    answers = of("yes")
    yes = sum(1 for v in answers if v == 1.0)
    return {
        "samples": len(rows),
        "judged": sum(1 for v, kind, _ in rows if v and not kind),
        "yes": yes,
        "no": len(answers) - yes,
        "answers": len(answers),
        "IF_n": len(of("IF")),
        "SC_n": len(of("SC")),
        "failures": sum(1 for _, kind, _ in rows if kind in ("edit", "score")),
        "pending": sum(1 for _, kind, _ in rows if kind == "pending"),
        "yes_rate": _pct(answers),
        "expected_yes_rate": _pct(expected),
        "expected_n": len(expected),
        "IF": _mean(of("IF")),
        "SC": _mean(of("SC")),
        "SC_min": _mean(of("SC_min")),
        "SC_editing_success": _mean(of("SC.editing_success")),
        "SC_overediting": _mean(of("SC.overediting")),
    }


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    """The RE-Edit block of summary.json: per dimension (subset) and over all samples."""
    rows: dict[str, list[tuple]] = {}
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        values = sample_values(score)
        kind = outcome(edit, score, values is not None)
        if kind == "edit":
            values = None
        elif kind == "score":
            values = partial_values(score)  # each question that parsed counts on its own
        if kind == "score" and failures_as == "zero":
            # the official rule: an unreadable (or refused) reply stays in its dimension's denominator
            # as not "yes", IF and SC leave it out; a missing edit is skipped (left out, as here)
            values = {"yes": 0.0, **(values or {})}
        expected = score.get("expected_score") if score is not None and kind != "edit" else None
        rows.setdefault(sample.category, []).append((values, kind, None if expected is None else float(expected)))
    order = [s for s in SUBSETS if s in rows] + [s for s in rows if s not in SUBSETS]
    dimensions = {name: _table(rows[name]) for name in order}
    overall = _table([row for name in order for row in rows[name]])
    missing = [name for name, t in dimensions.items() if t["yes_rate"] is None]
    return {
        "name": NAME,
        "source": "Yixuan-Ding-ZJU/RE-Edit single_scoring_part_vllm/statistics_calculator.py "
                  "(SC_min: src/data/iterative_data.py)",
        "formula": "dimension = 100 * share of \"yes\" over its subset (its own prompt); IF = mean 0-10; "
                   "SC = mean of (editing success + over-editing)/2; SC_min = mean of their min; "
                   "overall = yes rate pooled over all samples; each over the samples whose reply to that "
                   "question was read",
        "failures_as": failures_as,
        "dimensions": dimensions,
        "overall": overall,
        "missing_dimensions": missing,
    }


def _answered(t: dict) -> str:
    """Where a statistic has values from failed samples' parsed questions (or lacks a judged one's)."""
    if t["answers"] == t["IF_n"] == t["SC_n"] == t["judged"]:
        return ""
    return f"  (values: dimension {t['answers']}, IF {t['IF_n']}, SC {t['SC_n']})"


def console(block: dict) -> str:
    lines = [f"{NAME}, share of \"yes\" per reasoning dimension (%), IF and SC (0-10):"]
    for name, t in block["dimensions"].items():
        expected = f"  expected {_num(t['expected_yes_rate'])}" if t["expected_n"] else ""
        lines.append(f"  {LABELS.get(name, name)}: {_num(t['yes_rate'])}  ({t['yes']} yes){expected}  "
                     f"IF {_num(t['IF'])}  SC {_num(t['SC'])}  {_counts(t)}{_answered(t)}")
    o = block["overall"]
    lines.append(f"  IF: {_num(o['IF'])}  SC: {_num(o['SC'])}  (editing success {_num(o['SC_editing_success'])}, "
                 f"over-editing {_num(o['SC_overediting'])}; SC_min {_num(o['SC_min'])})")
    expected = f", expected {_num(o['expected_yes_rate'])}" if o["expected_n"] else ""
    lines.append(f"  overall yes rate (pooled): {_num(o['yes_rate'])}{expected}  {_counts(o)}{_answered(o)}"
                 + (f"  (no score in: {', '.join(block['missing_dimensions'])})" if block["missing_dimensions"] else ""))
    row = [f"{LABELS.get(n, n)} {_num(t['yes_rate'], 1)}" for n, t in block["dimensions"].items()]
    lines.append(f"  as the README table: {' | '.join(row)} | IF {_num(o['IF'], 1)} | SC {_num(o['SC'], 1)}")
    return "\n".join(lines)


def report_html(block: dict) -> str:
    e = html.escape
    parts = [f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
             + ("an unread reply counts as \"no\" in its dimension and is left out of IF and SC; failed edits "
                "left out (the official rule)" if block["failures_as"] == "zero" else "failures left out") + "</p>",
             "<table><tr><th>dimension</th><th>samples</th><th>judged</th><th>failures</th><th>yes</th>"
             "<th>yes rate (%)</th><th>expected (%)</th><th>IF</th><th>SC</th><th>SC_min</th></tr>"]
    rows = [(LABELS.get(n, n), t) for n, t in block["dimensions"].items()] + [("overall (pooled)", block["overall"])]
    for label, t in rows:
        bold = label.startswith("overall")
        cell = (lambda v: f"<b>{v}</b>") if bold else (lambda v: v)
        parts.append(f"<tr><td>{e(label)}</td><td class='num'>{t['samples']}</td><td class='num'>{t['judged']}</td>"
                     f"<td class='num'>{t['failures']}</td><td class='num'>{t['yes']}</td>"
                     f"<td class='num'>{cell(_num(t['yes_rate']))}</td><td class='num'>{_num(t['expected_yes_rate'])}</td>"
                     f"<td class='num'>{cell(_num(t['IF']))}</td><td class='num'>{cell(_num(t['SC']))}</td>"
                     f"<td class='num'>{_num(t['SC_min'])}</td></tr>")
    parts.append("</table>")
    uneven = [(label, t) for label, t in rows if _answered(t)]
    if uneven:
        parts.append("<p class='muted'>values per statistic where a failed sample's questions that were read count "
                     "on their own (or a judged one lacks one): " + "; ".join(
                         f"{e(label)}: dimension {t['answers']}, IF {t['IF_n']}, SC {t['SC_n']}" for label, t in uneven)
                     + "</p>")
    return "\n".join(parts)
