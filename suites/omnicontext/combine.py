"""OmniContext's combine rule `omnicontext`: prompt following (PF), subject consistency (SC) and the
sample's overall score sqrt(PF * SC) (VectorSpaceLab/OmniGen2 omnicontext/calculate_statistics.py,
analyze_scores)."""

from __future__ import annotations

import math

from suites.shared.combine import Rule

# question -> dimension: each sample is asked one PF and one SC question (the Scene prompts or the
# Single_and_Multiple ones, picked by `when`)
DIMENSIONS = {"prompt_following": "PF", "prompt_following_scene": "PF",
              "subject_consistency": "SC", "subject_consistency_scene": "SC"}


def _parts(protocol, scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    got: dict[str, float] = {}
    for name, values in scores.items():
        dim = DIMENSIONS[name]
        if dim in got:
            raise ValueError(f"omnicontext: {dim} asked twice of one sample")
        got[dim] = values[0]
    return [(d, got[d]) for d in ("PF", "SC") if d in got]


def _combine(protocol, scores: dict[str, list[float]]) -> tuple[float, list[tuple[str, float]]]:
    """Sub-scores PF and SC (0-10, as the judge gave them); the headline sqrt(PF * SC)."""
    subs = _parts(protocol, scores)
    got = dict(subs)
    if set(got) != {"PF", "SC"}:
        raise ValueError("omnicontext: a sample needs one prompt-following and one subject-consistency answer")
    return math.sqrt(got["PF"] * got["SC"]), subs


def _check(protocol) -> str | None:
    unknown = sorted(q.name for q in protocol.questions if q.name not in DIMENSIONS)
    if unknown:
        return f"combine 'omnicontext' does not know question(s) {', '.join(unknown)} (known: {', '.join(DIMENSIONS)})"
    several = [q.name for q in protocol.questions if len(q.scores) != 1]
    if several:
        return f"combine 'omnicontext': each question gives one score ({', '.join(several)} give more)"
    if protocol.low < 0:
        return "combine 'omnicontext' needs scores of at least 0 (sqrt(PF * SC))"
    return None


RULES = {"omnicontext": Rule(_combine, _check, parts=_parts)}
