"""A suite's own headline numbers (summary.json's `suite`, the console, the report), computed as the
suite's official scripts compute them. One module per suite with `headline(samples, edits, scores,
failures_as=...) -> dict`, `console(block) -> str`, `report_html(block) -> str` and PROTOCOL (the
judge protocol the numbers need), and one entry in SUITES, keyed by the benchmark format whose
samples it scores."""

from __future__ import annotations

from suites.gedit import headline as gedit
from suites.imgedit import headline as imgedit
from suites.kris import headline as kris
from suites.reedit import headline as reedit
from suites.rise import headline as rise

SUITES = {"gedit": gedit, "imgedit": imgedit, "kris": kris, "re-edit": reedit, "rise": rise}


def headline(benchmark_format: str | None, protocol: str | None, samples, edits: dict, scores: dict, *,
             failures_as: str) -> dict | None:
    """The suite's block, or None: not a suite's benchmark, or not judged with the suite's protocol."""
    suite = SUITES.get(benchmark_format or "")
    if suite is None or protocol != suite.PROTOCOL:
        return None
    return {"format": benchmark_format, **suite.headline(samples, edits, scores, failures_as=failures_as)}


def console(block: dict | None) -> str:
    return SUITES[block["format"]].console(block) if block else ""


def report_html(block: dict | None) -> str:
    return SUITES[block["format"]].report_html(block) if block else ""
