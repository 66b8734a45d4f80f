"""RISEBench++'s combine rule `risebench-pp`: each asked dimension, `complete` and the weighted score
(PhoenixZ810/RISEBench RISEBench++/gemini_eval.py: main, calculate_score, calculate_completion)."""

from __future__ import annotations

from suites.rise.combine import weighted  # calculate_score, as RISEBench's
from suites.shared.combine import Rule

# question -> (dimension, a 0/1 answer read as 4*s + 1)
DIMENSION_OF = {
    "consistency": ("ApprConsistency", False), "consistency_spatial": ("ApprConsistency", False),
    "consistency_logical": ("ApprConsistency", True), "consistency_logical_answer": ("ApprConsistency", True),
    "reasoning_reference_image": ("Reasoning", False), "reasoning_with_input": ("Reasoning", False),
    "reasoning": ("Reasoning", False), "reasoning_spatial_reference_image": ("Reasoning", False),
    "reasoning_spatial_with_input": ("Reasoning", False), "reasoning_spatial": ("Reasoning", False),
    "reasoning_logical_reference_image": ("Reasoning", True), "reasoning_logical_with_input": ("Reasoning", True),
    "reasoning_logical": ("Reasoning", True),
    "plausibility": ("VisualPlausibility", False), "plausibility_counterfactual": ("VisualPlausibility", False),
    "plausibility_spatial": ("VisualPlausibility", False),
}
DIMENSIONS = ("ApprConsistency", "Reasoning", "VisualPlausibility")


def dimensions_of(scores: dict[str, list[float]]) -> dict[str, float]:
    """The judged dimensions (1-5) of a sample's answers; a 0/1 answer as 4*min(s, 1) + 1."""
    dims: dict[str, float] = {}
    for name, values in scores.items():
        dim, binary = DIMENSION_OF[name]
        if dim in dims:
            raise ValueError(f"risebench-pp: two questions give {dim}")
        dims[dim] = 4 * min(values[0], 1) + 1 if binary else values[0]
    return dims


def _parts(protocol, scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    dims = dimensions_of(scores)
    return [(d, dims[d]) for d in DIMENSIONS if d in dims]


def _combine(protocol, scores: dict[str, list[float]]) -> tuple[float, list[tuple[str, float]]]:
    """The judged dimensions, `complete` (1.0 when every one is 5: calculate_completion) and, as the
    headline, the weighted score (calculate_score)."""
    dims = dimensions_of(scores)
    if "Reasoning" not in dims or not ({"ApprConsistency", "VisualPlausibility"} & set(dims)):
        raise ValueError("risebench-pp: a sample needs a reasoning answer and a consistency or plausibility one")
    complete = 1.0 if all(v == 5 for v in dims.values()) else 0.0
    return weighted(dims), [*((d, dims[d]) for d in DIMENSIONS if d in dims), ("complete", complete)]


def _check(protocol) -> str | None:
    unknown = sorted(q.name for q in protocol.questions if q.name not in DIMENSION_OF)
    if unknown:
        return f"combine 'risebench-pp' does not know question(s) {', '.join(unknown)}"
    several = [q.name for q in protocol.questions if len(q.scores) != 1]
    if several:
        return f"combine 'risebench-pp': each question gives one score ({', '.join(several)} give more)"
    return None


RULES = {"risebench-pp": Rule(_combine, _check, parts=_parts)}
