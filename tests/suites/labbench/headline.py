"""LabBench's headline: the mean raw 0-5 answer over judged samples, and how many there were."""

from __future__ import annotations

import html

NAME = "LabBench"


def headline(samples, edits: dict, scores: dict, *, failures_as: str = "exclude") -> dict:
    raw = [s["sub_scores"]["raw"] for s in scores.values() if s.get("status") == "OK"]
    return {"name": NAME, "raw_mean": sum(raw) / len(raw) if raw else None, "judged": len(raw),
            "samples": len(samples)}


def console(block: dict) -> str:
    return f"{NAME} raw mean: {block['raw_mean']} over {block['judged']}/{block['samples']} samples"


def report_html(block: dict) -> str:
    return f"<h2>{html.escape(NAME)}</h2><p>raw mean {block['raw_mean']}</p>"
