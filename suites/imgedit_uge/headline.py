"""ImgEdit-Bench UGE's number, as PKU-YuanGroup/ImgEdit computes it (Benchmark/UGE/get_average_score.py):

    per sample  round(mean of the reply's "<name>: N" lines, 2)     (the imgedit-uge protocol's score)
    Overall     round(mean of the samples' scores, 2)               (compute_final_average: one number)

The script drops a key whose reply has no such line (and cannot read the error object UGE_bench.py
stores for a failed call); here a failure is left out and counted (`--failures zero`: scored 0).
"""

from __future__ import annotations

import html
import math

from suites.shared.numbers import counts, num

NAME = "ImgEdit-Bench UGE"


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    values, scored, failures = [], 0, 0
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        if score is not None and score.get("status") == "OK" and score.get("score") is not None:
            scored += 1
            values.append(float(score["score"]))
        elif (edit is not None and edit.get("status") == "failed") or score is not None:
            failures += 1
            if failures_as == "zero":
                values.append(0.0)
    return {
        "name": NAME,
        "suite": "uge",
        "source": "PKU-YuanGroup/ImgEdit Benchmark/UGE/get_average_score.py",
        "formula": "sample = round(mean of its '<name>: N' lines, 2); Overall = round(mean of the samples, 2)",
        "failures_as": failures_as,
        "samples": len(samples),
        "scored": scored,
        "failures": failures,
        "pending": len(samples) - scored - failures,
        "Overall": round(math.fsum(values) / len(values), 2) if values else None,
    }


def console(block: dict) -> str:
    return f"{NAME} (get_average_score): Overall {num(block['Overall'])}  {counts(block)}"


def report_html(block: dict) -> str:
    e = html.escape
    return (f"<h2>{e(NAME)}</h2><p class='muted'>{e(block['formula'])} ({e(block['source'])}); "
            + ("failures count as 0" if block["failures_as"] == "zero" else "failures left out") + "</p>"
            "<table><tr><th>samples</th><th>scored</th><th>failures</th><th>Overall</th></tr>"
            f"<tr><td class='num'>{block['samples']}</td><td class='num'>{block['scored']}</td>"
            f"<td class='num'>{block['failures']}</td><td class='num'><b>{num(block['Overall'])}</b></td></tr></table>")
