"""GEdit-Bench's combine rule `viescore` (VIEScore): the protocol's SC and PQ answers -> O."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from suites.shared.combine import Combined, Rule

if TYPE_CHECKING:
    from suites.shared.protocol import Protocol


def _viescore(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # GEdit-Bench / VIEScore: SC = min(SC parts), PQ = min(PQ parts), O = sqrt(SC * PQ)
    subs: list[tuple[str, float]] = []
    for question in protocol.questions:
        for name, value in zip(question.scores, scores[question.name]):
            subs.append((f"{question.name}.{name}", value))
    sc = min(scores["SC"])
    pq = min(scores["PQ"])
    overall = math.sqrt(sc * pq)
    subs += [("SC", sc), ("PQ", pq), ("O", overall)]
    return overall, subs


def _check_viescore(protocol: "Protocol") -> str | None:
    names = {q.name for q in protocol.questions}
    if names != {"SC", "PQ"} or any(q.when for q in protocol.questions):
        return "combine 'viescore' needs questions SC and PQ, both always asked"
    return None


RULES = {"viescore": Rule(_viescore, _check_viescore)}
