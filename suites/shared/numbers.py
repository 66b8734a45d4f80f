"""What every suite module's numbers and lines share: a mean that is None over nothing, a number as
the console and the report print it, a block entry's counts, and the kept values of a sample that
failed in some of its questions."""

from __future__ import annotations

import math

from editfleet_common import statuses
from suites.shared.combine import PARSED


def mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def num(value, digits: int = 2) -> str:
    """A number with `digits` decimals, "n/a" where there is none."""
    return f"{value:.{digits}f}" if value is not None else "n/a"


def counts(entry: dict, done: str = "scored") -> str:
    """"[scored/samples scored, F failed, P pending]" of a group's entry (`done`: its count's key)."""
    return (f"[{entry[done]}/{entry['samples']} {done}" + (f", {entry['failures']} failed" if entry["failures"] else "")
            + (f", {entry['pending']} pending" if entry["pending"] else "") + "]")


def outcome(edit: dict | None, score: dict | None, judged: bool) -> str:
    """A sample's place in a suite's counts: "" judged (`judged`: its score line gave the suite's
    values), "edit" its edit failed, "score" judged but without the values, "pending" not judged yet."""
    if edit is not None and edit.get("status") == "failed":
        return "edit"
    if score is None:
        return "pending"  # counted, in no mean
    return "" if judged else "score"


def parsed_values(score: dict | None) -> dict[str, float]:
    """The values a PARSE_FAILED line kept from its questions that did parse (sub-scores
    "parsed.<name>", scorer_service/combine.py), by <name>; {} for any other line. Only a suite whose
    official scripts count each question on its own (RE-Edit, KRIS-Bench) reads them: the sample is
    still a failure in every count."""
    if not score or score.get("status") != statuses.PARSE_FAILED:
        return {}
    return {name[len(PARSED):]: float(value) for name, value in (score.get("sub_scores") or {}).items()
            if name.startswith(PARSED) and value is not None}
