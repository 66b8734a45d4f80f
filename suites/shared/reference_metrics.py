"""What the reference-metric suites (MagicBrush, Emu Edit; judge.backend metrics) share: a sample's
metric values from its score line, and the pooled mean of each metric per group and overall, as
their official scripts average them (every pair counts once; no mean of means).

A sample's values are its score line's sub-scores (one per metric question, named as the question);
a PARSE_FAILED line keeps those of its questions that were read ("parsed.<name>"), which count in
their metric's mean as the official scripts count each metric on its own, while the sample counts as
a failure. A failed edit has no value in any metric: it is left out of the means and counted
(`--failures zero` is not applied: a distance of 0 would be the best score, not a failure's).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from editfleet_common import statuses
from suites.shared.numbers import counts, num, outcome, parsed_values


def protocol_labels(path: Path) -> dict[str, str]:
    """metric name -> its name in tables with its direction ("L1 \u2193", "CLIP-I \u2191"), as the suite's
    protocol file declares them (each question's `label:` and `better:`): declared there once."""
    from .combine import GENERIC_RULES
    from .protocol import parse_protocol

    protocol = parse_protocol(Path(path).read_text(encoding="utf-8"), Path(path), GENERIC_RULES)
    return {q.name: q.shown for q in protocol.questions}


def values(score: dict | None) -> dict[str, float]:
    """metric name -> value of a score line ({} where it has none)."""
    if not score:
        return {}
    if score.get("status") == statuses.OK:
        return {name: float(v) for name, v in (score.get("sub_scores") or {}).items()
                if v is not None and "." not in name}
    return parsed_values(score)


def table(samples, edits: dict, scores: dict, metrics: tuple[str, ...], group) -> dict:
    """{"groups": {name: entry}, "overall": entry}; entry: samples, scored, failures, pending and each
    metric's pooled mean (None over nothing) with its count n_<metric>. group(sample) -> its group name."""
    def new() -> dict:
        return {"samples": 0, "scored": 0, "failures": 0, "pending": 0, "_values": {m: [] for m in metrics}}

    groups: dict[str, dict] = {}
    overall = new()
    for sample in samples:
        score = scores.get(sample.id)
        found = values(score)
        judged = bool(score) and score.get("status") == statuses.OK
        where = outcome(edits.get(sample.id), score, judged)
        for entry in (groups.setdefault(group(sample), new()), overall):
            entry["samples"] += 1
            entry[{"": "scored", "pending": "pending"}.get(where, "failures")] += 1
            for m in metrics:
                if m in found:
                    entry["_values"][m].append(found[m])
    return {"groups": {name: _finish(entry) for name, entry in groups.items()}, "overall": _finish(overall)}


def _finish(entry: dict) -> dict:
    pooled = entry.pop("_values")
    for m, vals in pooled.items():
        entry[m] = math.fsum(vals) / len(vals) if vals else None
        entry[f"n_{m}"] = len(vals)
    return entry


def console_rows(block: dict, metrics: tuple[str, ...], labels: dict[str, str], *, overall: str = "Overall") -> list[str]:
    width = max([len(overall), *map(len, block["groups"])]) + 2
    lines = ["  " + " " * width + "".join(f"{labels[m]:>10}" for m in metrics)]
    for name, entry in [*block["groups"].items(), (overall, block["overall"])]:
        lines.append(f"  {name:<{width}}" + "".join(f"{num(entry[m], 4):>10}" for m in metrics)
                     + f"  {counts(entry)}")
    return lines


def html_table(block: dict, metrics: tuple[str, ...], labels: dict[str, str], *, first: str,
               overall: str = "Overall") -> str:
    e = html.escape
    parts = [f"<table><tr><th>{e(first)}</th><th>samples</th><th>scored</th><th>failures</th>"
             + "".join(f"<th>{e(labels[m])}</th>" for m in metrics) + "</tr>"]
    for name, entry in [*block["groups"].items(), (overall, block["overall"])]:
        cell = "th" if name == overall and entry is block["overall"] else "td"
        parts.append(f"<tr><{cell}>{e(name)}</{cell}><td class='num'>{entry['samples']}</td>"
                     f"<td class='num'>{entry['scored']}</td><td class='num'>{entry['failures']}</td>"
                     + "".join(f"<td class='num'>{num(entry[m], 4)}</td>" for m in metrics) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)
