"""How a protocol's answers become its scores (its `combine:` rule), one function per rule.

    COMBINERS[name](protocol, scores) -> (headline, sub_scores)
        scores: question name -> the numbers its reply gave, for the questions ASKED of this sample
                (a question's `when` may skip it); sub_scores: [(name, value), ...] in a fixed order
    CHECKS[name](protocol) -> message or None
        at load time: whether the protocol's questions fit the rule (parse_protocol raises the message)
    parsed_sub_scores(protocol, scores) -> sub_scores
        a sample where some questions' replies could not be parsed is PARSE_FAILED (no headline, nothing
        guessed), but the questions that did parse keep their values: PARTS[name] (a rule whose suite
        counts each question on its own) or, for other rules, each question's numbers as they came
        ("<question>" or "<question>.<score>"), every name prefixed with PARSED ("parsed.IF"), so that
        nothing reading a PARSE_FAILED line's sub-scores can take them for a judged sample's

Adding a rule: one function in each table (PARTS optional). The headline is what per-category tables show; a suite's
own numbers (suites/<name>/headline.py) are computed from the sub-scores. No torch, no gRPC.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .protocol import Protocol

Combined = tuple[float, list[tuple[str, float]]]


def _single(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    (question,) = protocol.questions
    return scores[question.name][0], []


def _check_single(protocol: "Protocol") -> str | None:
    if len(protocol.questions) != 1 or len(protocol.questions[0].scores) != 1:
        return "combine 'single' needs one question with one score"
    return None


def _mean_2dp(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # ImgEdit-Bench (step1_get_avgscore.py): round(sum / len, 2) over the reply's scores
    (question,) = protocol.questions
    values = scores[question.name]
    return round(sum(values) / len(values), 2), list(zip(question.scores, values))


def _check_mean_2dp(protocol: "Protocol") -> str | None:
    return None if len(protocol.questions) == 1 else "combine 'mean-2dp' needs one question"


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


def _re_edit_parts(protocol: "Protocol", scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    # RE-Edit (single_scoring_part_vllm/statistics_calculator.py), each metric from its own question
    # (the official code runs each metric separately): the dimension answer as "yes" (yes 1, no 0); IF
    # as given; SC = (editing success + over-editing) / 2 (its "average"); SC_min = their min, the SC of
    # the RE-Edit pipeline (src/data/iterative_data.py)
    subs: list[tuple[str, float]] = []
    if "dimension" in scores:
        subs.append(("yes", scores["dimension"][0]))
    if "IF" in scores:
        subs.append(("IF", scores["IF"][0]))
    if "SC" in scores:
        success, over = scores["SC"]
        subs += [("SC.editing_success", success), ("SC.overediting", over), ("SC", (success + over) / 2),
                 ("SC_min", min(success, over))]
    return subs


def _re_edit(protocol: "Protocol", scores: dict[str, list[float]]) -> Combined:
    # the sample's dimension answer is the headline
    return scores["dimension"][0], _re_edit_parts(protocol, scores)


def _check_re_edit(protocol: "Protocol") -> str | None:
    shape = {q.name: (q.answer, len(q.scores), bool(q.when)) for q in protocol.questions}
    wanted = {"dimension": ("yes-no", 1, False), "IF": ("number", 1, False), "SC": ("number", 2, False)}
    if shape != wanted:
        return ("combine 're-edit' needs questions dimension (yes-no), IF (one number) and SC (two numbers), "
                "all always asked")
    return None


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
    r = dims["Reasoning"]
    if "VisualPlausibility" not in dims:       # logical
        headline = 0.3 * dims["ApprConsistency"] + 0.7 * r
    elif "ApprConsistency" not in dims:        # consistency_free
        headline = 0.2 * dims["VisualPlausibility"] + 0.8 * r
    else:
        headline = 0.3 * dims["ApprConsistency"] + 0.5 * r + 0.2 * dims["VisualPlausibility"]
    if r == 1:
        headline = max(1.0, headline * 0.5)
    complete = 1.0 if all(v == 5 for v in dims.values()) else 0.0
    return headline, [*dims.items(), ("complete", complete)]


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


COMBINERS: dict[str, Callable[["Protocol", dict[str, list[float]]], Combined]] = {
    "single": _single,
    "viescore": _viescore,
    "mean-2dp": _mean_2dp,
    "mean": _mean,
    "kris": _kris,
    "re-edit": _re_edit,
    "rise": _combine_rise,
}
# Rules whose suites count each question's answer on its own, as their official scripts do (RE-Edit:
# each metric is a separate run; KRIS-Bench: summarize.py drops a None score one dimension at a time):
# the sub-scores the parsed questions of a PARSE_FAILED sample give, by the rule's own names.
PARTS: dict[str, Callable[["Protocol", dict[str, list[float]]], list[tuple[str, float]]]] = {
    "re-edit": _re_edit_parts,
    "kris": _kris_parts,
}
PARSED = "parsed."


def parsed_sub_scores(protocol: "Protocol", scores: dict[str, list[float]]) -> list[tuple[str, float]]:
    """The kept values of a PARSE_FAILED sample's parsed questions (`scores`: those questions only),
    each name prefixed with PARSED (see the module docstring)."""
    parts = PARTS.get(protocol.combine, _per_question)
    return [(PARSED + name, value) for name, value in parts(protocol, scores)]


CHECKS: dict[str, Callable[["Protocol"], str | None]] = {
    "single": _check_single,
    "viescore": _check_viescore,
    "mean-2dp": _check_mean_2dp,
    "mean": lambda protocol: None,
    "kris": _check_kris,
    "re-edit": _check_re_edit,
    "rise": _check_rise,
}
