"""Score statuses by name, the one place they are spelled: the ScoreStatus enum of scorer.proto
without its prefix, as the judge's outcomes, the clients and scores.jsonl name them.
No torch (the orchestrator imports this)."""

from __future__ import annotations

from editfleet.v1 import scorer_pb2

OK = "OK"
PARSE_FAILED = "PARSE_FAILED"  # the judge answered, twice, with nothing that parses: raw texts kept (and the
                               # values of the sample's other questions that did parse: parsed.<name> sub-scores)
INVALID = "INVALID"            # the request was at fault (a stream item; a unary call gets INVALID_ARGUMENT)
ERROR = "ERROR"                # the judge failed on it (device trouble...): worth another try
REFUSED = "REFUSED"            # the judge refused (an API's model or its content filter): the reason kept
STATUSES = (OK, PARSE_FAILED, INVALID, ERROR, REFUSED)
# kept by a rerun; ERROR may be transient and is retried on the next run
FINAL = frozenset({OK, PARSE_FAILED, INVALID, REFUSED})

_PREFIX = "SCORE_STATUS_"


def status_code(name: str) -> int:
    """The enum value of a status name."""
    return scorer_pb2.ScoreStatus.Value(_PREFIX + name)


def status_name(code: int) -> str:
    """'OK', 'PARSE_FAILED', 'INVALID', 'ERROR', 'REFUSED' (or 'UNSPECIFIED')."""
    return scorer_pb2.ScoreStatus.Name(code).removeprefix(_PREFIX)
