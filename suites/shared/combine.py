"""How a protocol's answers become its scores (its `combine:` rule). A rule is three functions:

    combine(protocol, scores) -> (headline, sub_scores)
        scores: question name -> the numbers its reply gave, for the questions ASKED of this sample
                (a question's `when` may skip it); sub_scores: [(name, value), ...] in a fixed order
    check(protocol) -> message or None
        at load time: whether the protocol's questions fit the rule (parse_protocol raises the message)
    better(protocol) -> "higher" | "lower"  (optional)
        which way the headline is better, for a rule whose headline is one question's number (its
        `better:`); without it the headline is taken as higher-is-better (protocol.py, "Direction")
    parts(protocol, scores) -> sub_scores   (optional)
        a sample where some questions' replies could not be parsed is PARSE_FAILED (no headline, nothing
        guessed), but the questions that did parse keep their values (parsed_sub_scores): `parts` for a
        rule whose suite counts each question on its own, else each question's numbers as they came
        ("<question>" or "<question>.<score>"); every name prefixed with PARSED ("parsed.IF"), so that
        nothing reading a PARSE_FAILED line's sub-scores can take them for a judged sample's

The generic rules (single, mean) are here; a suite's own rule lives in its folder (combine.py) and is
declared in its Suite's `rules`; suites.catalog gathers them. The headline is what per-category tables
show; a suite's own numbers (suites/<name>/headline.py) are computed from the sub-scores. No torch, no gRPC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

Protocol = Any  # a suites.shared.protocol.Protocol (not imported: protocol.py imports Rule from here)
Combined = tuple[float, list[tuple[str, float]]]


@dataclass(frozen=True)
class Rule:
    """A `combine:` rule (see the module docstring)."""
    combine: Callable[["Protocol", dict[str, list[float]]], Combined]
    check: Callable[["Protocol"], str | None]
    parts: Callable[["Protocol", dict[str, list[float]]], list[tuple[str, float]]] | None = None
    better: Callable[["Protocol"], str] | None = None


def _single(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    (question,) = protocol.questions
    return scores[question.name][0], []


def _check_single(protocol: "Protocol") -> str | None:
    if len(protocol.questions) != 1 or len(protocol.questions[0].scores) != 1:
        return "combine 'single' needs one question with one score"
    return None


def _per_question(protocol: "Protocol", scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    # each number of the questions in `scores` as it came: "<question>", or "<question>.<score>" where
    # the question gives several
    subs: list[tuple[str, float]] = []
    for question in protocol.questions:
        if question.name in scores:
            values = scores[question.name]
            names = [question.name] if len(values) == 1 else [f"{question.name}.{n}" for n in question.scores]
            subs += list(zip(names, values))
    return subs


def _mean(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # the plain mean of every number of the questions asked; each is a sub-score
    subs = _per_question(protocol, scores)
    return math.fsum(v for _, v in subs) / len(subs), subs


def _first_question(protocol: "Protocol") -> str:
    # the headline is the first question's number: its direction
    return protocol.questions[0].better


DISTANCES = ("l1", "l2")  # metrics whose lower value is the better (scorer_service/backends/metrics)


def _check_metrics(protocol: "Protocol") -> str | None:
    if not all(len(q.scores) == 1 for q in protocol.questions):
        return "combine 'metrics' needs one score (the metric) per question"
    wrong = [q.name for q in protocol.questions if q.scores[0] in DISTANCES and q.better != "lower"]
    if wrong:
        return (f"question(s) {', '.join(wrong)}: a distance ({', '.join(DISTANCES)}) is better lower: "
                "declare `better: lower`")
    return None


def _metrics(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # reference metrics (judge.backend metrics): each question's value a sub-score; the headline is the first's
    subs = _per_question(protocol, scores)
    return subs[0][1], subs


# The rules any suite's protocol may name; a suite adds its own (its folder's combine.py, declared in
# its Suite's `rules`) and the catalog of suites gathers them all (suites.catalog).
GENERIC_RULES: dict[str, Rule] = {
    "single": Rule(_single, _check_single, better=_first_question),
    "mean": Rule(_mean, lambda protocol: None),
    "metrics": Rule(_metrics, _check_metrics, better=_first_question),
}
PARSED = "parsed."


def parsed_sub_scores(protocol: "Protocol", scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    """The kept values of a PARSE_FAILED sample's parsed questions (`scores`: those questions only),
    each name prefixed with PARSED (see the module docstring)."""
    parts = protocol.rule.parts or _per_question
    return [(PARSED + name, value) for name, value in parts(protocol, scores)]
