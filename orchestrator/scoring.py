"""The judging phase: every finished edit goes to a judge over a ScoreStream; results come back in
any order and are appended to scores.jsonl as they arrive, printed in the seed's format. With
several judge replicas (`judge.replicas`) each has its own stream, all fed from one queue: a
replica takes the next sample whenever it has room, so faster ones judge more, and each sample is
judged once.

A scorer that dies, drops the stream or stalls (no result for `judge.stall_timeout_s` while samples are
out: a hung device or process) is restarted (local fleet) and only the samples without a result are
sent again (to any replica), at most `judge.max_attempts` failed streams per replica. What the judge says is never replaced:
PARSE_FAILED stays PARSE_FAILED, with the raw text kept.

A stream the judge ends as permanent (INVALID_ARGUMENT, FAILED_PRECONDITION) is not tried again. When the
first K results of a pass (`stop_after_failures`) are all INVALID with the same reason (a sample the judge
cannot take, for a reason every other sample shares), the pass stops there (`ScoringOutcome.stopped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common import statuses
from scorer_service.client import make_request, result_to_dict

from .benchmark import Sample
from .dispatch import SameFailureStop
from .judge_stream import FATAL_CODES, ScoringError, StreamJudge, _Queue  # noqa: F401 - FATAL_CODES, _Queue: re-exported
from .results import RunDir, score_key
from . import ui as ui_lines


@dataclass
class ScoreItem:
    index: int        # position in this scoring pass: the number in "[Sample   i]"
    sample: Sample
    edit: dict        # the edit's line in edits.jsonl
    edit_path: Path   # read when sent, so a large benchmark is never held in memory at once
    repeat: int = 0   # `score --repeats K`: which of the K judgements of this edit (0-based)
    repeats: int = 1  # K: with K > 1 every line records its repeat

    @property
    def key(self) -> str:
        """Its sample_id on the stream and its key in scores.jsonl (results.score_key)."""
        return score_key(self.sample.id, self.repeat)


@dataclass
class ScoringOutcome:
    scored: int = 0
    failed: int = 0
    unscored: list[str] = field(default_factory=list)  # ids without a result (scorer kept failing, or stopped)
    restarts: int = 0
    stopped: str = ""  # why the pass stopped early (SameFailureStop), "" when it did not


def build_score_request(item: ScoreItem, protocol: str):
    sample = item.sample
    return make_request(
        item.key,
        source_image=sample.source_bytes(),
        more_source_images=sample.more_sources(),
        reference_images=[path.read_bytes() for path in sample.reference_images],
        edited_image=item.edit_path.read_bytes(),
        instruction=sample.instruction,
        category=sample.category,
        protocol=protocol,
        variables=sample.judge_variables(),
    )


def result_record(item: ScoreItem, result, judge_hash: str) -> dict:
    """The scores.jsonl line: the judge's result as it came, plus what ties it to the edit."""
    record = result_to_dict(result)
    record.pop("sample_id")
    record.update(
        id=item.sample.id,
        category=item.sample.category,
        instruction=item.sample.instruction,
        latency_s=round(record["latency_s"], 4),
        edit_sha256=item.edit["sha256"],
        judge_hash=judge_hash,
    )
    if item.repeats > 1:
        record["repeat"] = item.repeat
    if record["status"] not in statuses.STATUSES:
        record["error"] = record["error"] or f"status {record['status']}"
        record["status"] = statuses.ERROR
    if record["status"] == statuses.OK and record["score"] is None:  # a contract breach: never invent a score
        record["status"], record["error"] = statuses.ERROR, "scorer said OK but sent no score"
    return record


def failed_reply(record: dict, questions: list[str]) -> str | None:
    """The reply that could not be read, of a PARSE_FAILED record: the last reply to the first question
    its `error` names. The judge sends every reply of a sample in question order (`questions`, as the
    protocol asks them of it), each question's first answer then its re-ask; a question that failed was
    re-asked as often as the record's `attempts` says, one that parsed once or as often. None where the
    replies cannot be told apart."""
    raw = record.get("raw_responses") or []
    failed = [part.split(":", 1)[0].strip() for part in (record.get("error") or "").split("; ")]
    failed = [name for name in failed if name in questions]
    if not raw or not failed:
        return None
    attempts = max(1, int(record.get("attempts") or 1))
    parsed = [q for q in questions if q not in failed]
    before = questions[:questions.index(failed[0])]  # all parsed: it is the first that failed
    reasked = len(raw) - attempts * len(failed) - len(parsed)  # how many parsed questions took a re-ask
    if reasked == 0:
        offset = len(before)
    elif reasked == len(parsed):
        offset = len(before) * attempts
    elif not before:
        offset = 0
    else:
        return None  # some parsed questions were re-asked, some not, and some came before it
    index = offset + attempts - 1
    return str(raw[index]) if 0 <= index < len(raw) else None


class _Printer:
    """Sample lines as results arrive; a batch line once every sample of that batch is in."""

    def __init__(self, ui, total: int, batch_size: int, questions=None, metrics=None, score_label: str = ""):
        self.ui = ui
        self.metrics = metrics          # question -> label: a reference-metrics protocol's values shown
        self.score_label = score_label  # the score's name where it is not a judge's score ("L1")
        self.batch_size = max(1, batch_size)
        self.results: dict[int, dict] = {}
        self.next_batch = 0
        self.total = total
        self.questions = questions  # (Sample) -> the question names its protocol asks, or None

    def add(self, index: int, record: dict, sample: Sample | None = None) -> None:
        self.results[index] = record
        failed = None
        if record["status"] == statuses.PARSE_FAILED:
            names = self.questions(sample) if self.questions and sample is not None else None
            failed = failed_reply(record, names) if names else None
        self.ui.print(ui_lines.score_line(index, record, failed_raw=failed, metrics=self.metrics))
        while self.next_batch * self.batch_size < self.total:
            first = self.next_batch * self.batch_size
            last = min(first + self.batch_size, self.total) - 1
            if not all(i in self.results for i in range(first, last + 1)):
                break
            values = [self.results[i]["score"] for i in range(first, last + 1) if self.results[i]["status"] == statuses.OK]
            self.next_batch += 1
            self.ui.print(ui_lines.batch_line(self.next_batch, first, last, values, self.score_label))


class Scorer(StreamJudge):
    """Judges items over one or more judge replicas from one queue (each sample once; a replica whose
    stream fails hands its samples without a result back, is restarted where the fleet can, and is
    given up on after `max_attempts` failed streams): the stream loop is judge_stream.StreamJudge's."""

    def __init__(self, *, run_dir: RunDir, ui, protocol: str, batch_size: int, max_in_flight: int,
                 max_attempts: int, client_factory, restart=None, judge_hash: str = "",
                 stall_timeout_s: float = 600.0, stop_after: int = 0, questions=None, metrics=None,
                 score_label: str = ""):
        """stop_after: stop the pass when its first this many results are INVALID for the same reason.
        questions: (Sample) -> the names of the questions the judge asks of it, in order (None: unknown),
        to show the reply that failed of a PARSE_FAILED result. metrics: question -> label of a
        reference-metrics protocol (its results' lines show their values); score_label: the score's
        name in the batch lines where it is not a judge's score (score_direction.console_metrics)."""
        super().__init__(ui=ui, batch_size=batch_size, max_in_flight=max_in_flight, max_attempts=max_attempts,
                         client_factory=client_factory, restart=restart, stall_timeout_s=stall_timeout_s)
        self.run_dir = run_dir
        self.protocol = protocol
        self.judge_hash = judge_hash
        self.tokens = {"prompt": 0, "completion": 0}  # what an API judge reported for the results so far
        self.same_failure = SameFailureStop(stop_after, "judgements")
        self.questions = questions
        self.metrics, self.score_label = metrics, score_label
        self.stopped = ""

    def run(self, endpoints, items: list[ScoreItem]) -> ScoringOutcome:
        """endpoints: the replicas (fleet Endpoints), or one address."""
        outcome = ScoringOutcome()
        self._printer = _Printer(self.ui, len(items), self.batch_size, self.questions, self.metrics, self.score_label)
        queue, failures = self.serve(endpoints, items, outcome)
        outcome.stopped = self.stopped
        if queue.left:
            outcome.unscored = list(queue.left)
            if not self.stopped:
                self.ui.log(f"[scorer] giving up on {len(queue.left)} sample(s) after {self.max_attempts} attempts: "
                            f"{failures[-1] if failures else 'no judge left'}")
        return outcome

    def request(self, item: ScoreItem):
        return build_score_request(item, self.protocol)

    def describe(self, item: ScoreItem) -> str:
        return f"sample {item.sample.id!r}"

    def received(self, item: ScoreItem, result, replica: str) -> tuple[dict, str]:
        record = result_record(item, result, self.judge_hash)
        if replica:
            record["judge_replica"] = replica
        invalid = record["status"] == statuses.INVALID
        reason = self.same_failure.settle(item.sample, (record.get("error") or "INVALID") if invalid else None)
        if reason:
            self.stopped = reason
        return record, reason

    def keep(self, item: ScoreItem, record: dict, outcome: ScoringOutcome, reason: str) -> None:
        self.run_dir.scores.append(record)
        self.tokens["prompt"] += record.get("prompt_tokens") or 0
        self.tokens["completion"] += record.get("completion_tokens") or 0
        if record["status"] == statuses.OK:
            outcome.scored += 1
        else:
            outcome.failed += 1
        self._printer.add(item.index, record, item.sample)
        if reason:
            self.ui.log(f"Stopping the judging: the first {self.same_failure.limit} judgements were "
                        "INVALID for the same reason; no more samples are sent")
