"""LabBench's own combine rule: the judge's 0-5, doubled onto 0-10."""

from suites.shared.combine import Rule


def _double(protocol, scores):
    (question,) = protocol.questions
    value = scores[question.name][0]
    return value * 2, [("raw", value)]


def _check(protocol):
    return None if len(protocol.questions) == 1 else "combine 'labbench-double' needs one question"


RULES = {"labbench-double": Rule(_double, _check)}
