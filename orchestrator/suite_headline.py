"""A suite's own headline numbers (summary.json's `suite`, the console, the report), computed by the
suite's `numbers` module (suites/<name>/headline.py) as its official scripts compute them, and only
from scores of the suite's own protocol: judged with another, the numbers are absent, and
summary.json's `suite_absent`, the console and the report say so and why."""

from __future__ import annotations

import html

from .benchmark import suite_of


def headline(benchmark_format: str | None, protocol: str | None, samples, edits: dict, scores: dict, *,
             failures_as: str) -> dict | None:
    """The suite's block, or None: not a suite with numbers of its own, or not judged with its protocol."""
    suite = suite_of(benchmark_format)
    if suite is None or suite.numbers is None or protocol != suite.default_protocol:
        return None
    return {"format": benchmark_format, **suite.numbers.headline(samples, edits, scores, failures_as=failures_as)}


def absent(benchmark_format: str | None, protocol: str | None) -> dict | None:
    """Why a suite's own numbers are not given (summary.json's `suite_absent`), or None where they are
    (or the suite has none)."""
    suite = suite_of(benchmark_format)
    if suite is None or suite.numbers is None or protocol == suite.default_protocol:
        return None
    return {"suite": suite.name, "title": suite.title, "protocol": protocol, "needs": suite.default_protocol,
            "why": f"{suite.title}'s own numbers are absent: this run was judged with protocol {protocol!r}, and "
                   f"they are computed only from its own protocol {suite.default_protocol!r} "
                   f"(judge the edits with it: orchestrator score RUN_DIR --protocol {suite.default_protocol})"}


def console(block: dict | None) -> str:
    return suite_of(block["format"]).numbers.console(block) if block else ""


def report_html(block: dict | None, missing: dict | None = None) -> str:
    if missing:
        return f"<p class='muted'><b>{html.escape(missing['why'])}</b></p>"
    return suite_of(block["format"]).numbers.report_html(block) if block else ""
