"""KRIS-Bench's combine rule `kris`: the dimensions VC, VQ, IF (and KP) and their 0-100 mean."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from suites.shared.combine import Combined, Rule

if TYPE_CHECKING:
    from suites.shared.protocol import Protocol


# KRIS-Bench (mercurystraw/Kris_Bench metrics_*.py; summarize.py of ByteDance-Seed/Bagel): the JSON keys
# its replies carry -> its dimensions, in summarize.py's order
KRIS_DIMENSIONS = {"consistency_score": "VC", "quality_score": "VQ", "instruction_score": "IF",
                   "knowledge_score": "KP"}


def _kris_parts(protocol: "Protocol", scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    # VC, VQ, IF (and KP) as the judge gave them (1-5), from the questions in `scores`. Which question
    # gave a dimension depends on the category (`when`): each dimension comes from exactly one question.
    got: dict[str, float] = {}
    for question in protocol.questions:
        for name, value in zip(question.scores, scores.get(question.name, ())):
            dim = KRIS_DIMENSIONS[name]
            if dim in got:
                raise ValueError(f"protocol {protocol.name!r}: {dim} asked twice of one sample")
            got[dim] = value
    return [(d, got[d]) for d in KRIS_DIMENSIONS.values() if d in got]


def _kris(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # sub-scores VC, VQ, IF (and KP) (_kris_parts); the headline: their mean on 0-100, each as
    # summarize.py's normalize_score (s - 1) * 25
    subs = _kris_parts(protocol, scores)
    got = dict(subs)
    missing = [d for d in ("VC", "VQ", "IF") if d not in got]
    if missing:
        raise ValueError(f"protocol {protocol.name!r}: no question for {', '.join(missing)} was asked of this "
                         "sample (its category is none the protocol's `when` knows)")
    return math.fsum((v - 1) * 25 for _, v in subs) / len(subs), subs


def _check_kris(protocol: "Protocol") -> str | None:
    for question in protocol.questions:
        unknown = [n for n in question.scores if n not in KRIS_DIMENSIONS]
        if unknown or len(set(question.scores)) != len(question.scores):
            return (f"combine 'kris': question {question.name!r} scores must be distinct names among "
                    f"{', '.join(KRIS_DIMENSIONS)}, got {list(question.scores)}")
    given = {n for q in protocol.questions for n in q.scores}
    if not {"consistency_score", "quality_score", "instruction_score"} <= given:
        return "combine 'kris' needs questions for consistency_score, quality_score and instruction_score"
    if (protocol.low, protocol.high) != (1.0, 5.0):
        return "combine 'kris' needs range [1, 5] (its (s - 1) * 25 maps 1-5 to 0-100)"
    return None


RULES = {"kris": Rule(_kris, _check_kris, parts=_kris_parts)}
