"""What every suite module's numbers and lines share: a mean that is None over nothing, a number as
the console and the report print it, and a block entry's counts."""

from __future__ import annotations

import math


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
