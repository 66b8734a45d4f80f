"""ImgEdit-Bench's combine rule `mean-2dp`: the reply's scores averaged, rounded to 2 decimals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from suites.shared.combine import Combined, Rule

if TYPE_CHECKING:
    from suites.shared.protocol import Protocol


def _mean_2dp(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # ImgEdit-Bench (step1_get_avgscore.py): round(sum / len, 2) over the reply's scores
    (question,) = protocol.questions
    values = scores[question.name]
    return round(sum(values) / len(values), 2), list(zip(question.scores, values))


def _check_mean_2dp(protocol: "Protocol") -> str | None:
    return None if len(protocol.questions) == 1 else "combine 'mean-2dp' needs one question"


RULES = {"mean-2dp": Rule(_mean_2dp, _check_mean_2dp)}
