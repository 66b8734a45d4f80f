"""RE-Edit's combine rule `re-edit`: the dimension answer, IF and SC per sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

from suites.shared.combine import Combined, Rule

if TYPE_CHECKING:
    from suites.shared.protocol import Protocol


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


RULES = {"re-edit": Rule(_re_edit, _check_re_edit, parts=_re_edit_parts)}
