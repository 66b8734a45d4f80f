"""RISEBench's combine rule `rise`: each asked dimension, `complete` and the weighted score."""

from __future__ import annotations

from suites.shared.combine import Rule

# RISEBench (PhoenixZ810/RISEBench gpt_eval.py): one question per dimension, the asked ones chosen by
# `when`. Each family below gives one dimension; logical questions answer 0/1, read as 4*s + 1 (1 or 5),
# as gpt_eval.py's `4 * min(score, 1) + 1` (the parser has already refused anything but 0 or 1).
RISE_DIMENSIONS = {
    "ApprConsistency": {"consistency": False, "consistency_reference": False,
                        "logical_consistency_answer": True, "logical_consistency": True},
    "Reasoning": {"reasoning": False, "reasoning_input": False, "reasoning_reference": False,
                  "logical_reasoning_answer": True, "logical_reasoning": True, "logical_reasoning_no_problem": True},
    "VisualPlausibility": {"plausibility": False},
}


def _combine_rise(protocol, scores: dict[str, list[float]]) -> tuple[float, list[tuple[str, float]]]:
    """The sample's dimensions (those asked), `complete` (1.0 when every one is 5: gpt_eval.py's
    calculate_completion) and, as the headline, its weighted score (calculate_score, with the row's
    own consistency_free: no consistency asked): 0.3*C + 0.5*R + 0.2*VP, 0.2*VP + 0.8*R without C,
    0.3*C + 0.7*R for logical rows (no VP); halved, at least 1, when R = 1. The published per-file
    rule and the means: suites/rise/headline.py."""
    dims: dict[str, float] = {}
    for dim, family in RISE_DIMENSIONS.items():
        asked = [name for name in family if name in scores]
        if len(asked) > 1:
            raise ValueError(f"rise: questions {', '.join(asked)} both give {dim}")
        if asked:
            value = scores[asked[0]][0]
            dims[dim] = 4 * value + 1 if family[asked[0]] else value
    if "Reasoning" not in dims:
        raise ValueError("rise: no reasoning question was asked")
    complete = 1.0 if all(v == 5 for v in dims.values()) else 0.0
    return weighted(dims), [*dims.items(), ("complete", complete)]


def weighted(dims: dict[str, float]) -> float:
    """calculate_score on the dimensions judged (RISEBench++'s gemini_eval.py keeps it): 0.3C + 0.5R + 0.2VP;
    0.2VP + 0.8R without consistency (consistency_free); 0.3C + 0.7R without plausibility (logical);
    halved when R = 1, but at least 1."""
    r = dims["Reasoning"]
    if "VisualPlausibility" not in dims:       # logical
        value = 0.3 * dims["ApprConsistency"] + 0.7 * r
    elif "ApprConsistency" not in dims:        # consistency_free
        value = 0.2 * dims["VisualPlausibility"] + 0.8 * r
    else:
        value = 0.3 * dims["ApprConsistency"] + 0.5 * r + 0.2 * dims["VisualPlausibility"]
    if r == 1:
        value = max(1.0, value * 0.5)
    return value


def _check_rise(protocol) -> str | None:
    names = {q.name for q in protocol.questions}
    known = {n for family in RISE_DIMENSIONS.values() for n in family}
    unknown = sorted(names - known)
    if unknown:
        return f"combine 'rise' does not know question(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
    if not names & set(RISE_DIMENSIONS["Reasoning"]):
        return "combine 'rise' needs a reasoning question"
    several = [q.name for q in protocol.questions if len(q.scores) != 1]
    if several:
        return f"combine 'rise': each question gives one score ({', '.join(several)} give more)"
    return None


RULES = {"rise": Rule(_combine_rise, _check_rise)}
