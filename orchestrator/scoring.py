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

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common.channels import ServiceError
from editfleet_common import statuses
from scorer_service.client import make_request, result_to_dict

from .benchmark import Sample
from .dispatch import PERMANENT_CODES, SameFailureStop
from .fleet.base import Endpoint
from .results import RunDir, score_key
from . import ui as ui_lines


# Stream endings that stop the run at once (the samples without a result are judged by the next run).
FATAL_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


class ScoringError(Exception):
    """A problem on the orchestrator's side of the judging phase (named sample, no retry)."""


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

    def __init__(self, ui, total: int, batch_size: int, questions=None):
        self.ui = ui
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
        self.ui.print(ui_lines.score_line(index, record, failed_raw=failed))
        while self.next_batch * self.batch_size < self.total:
            first = self.next_batch * self.batch_size
            last = min(first + self.batch_size, self.total) - 1
            if not all(i in self.results for i in range(first, last + 1)):
                break
            values = [self.results[i]["score"] for i in range(first, last + 1) if self.results[i]["status"] == statuses.OK]
            self.next_batch += 1
            self.ui.print(ui_lines.batch_line(self.next_batch, first, last, values))


class _Queue:
    """The samples of one scoring pass, shared by every judge replica: each is handed to one stream at
    a time, comes back when that stream ends without its result, and is done at its first result."""

    def __init__(self, items: list[ScoreItem]):
        self.pending: deque[ScoreItem] = deque(items)
        self.left = {item.key: item for item in items}  # not judged yet (pending or out on a stream)
        self.changed = threading.Condition()
        self.aborted = False  # a replica hit an error that stops the pass (nothing more is handed out)

    def take(self) -> ScoreItem | None:
        with self.changed:
            return self.pending.popleft() if self.pending and not self.aborted else None

    def abort(self) -> None:
        with self.changed:
            self.aborted = True
            self.changed.notify_all()

    def give_back(self, items) -> None:
        with self.changed:
            self.pending.extendleft(reversed([i for i in items if i.key in self.left]))
            self.changed.notify_all()

    def done(self, key: str) -> bool:
        """True for the first result of a sample (of one repeat: its ScoreItem.key); a later one is ignored."""
        with self.changed:
            first = self.left.pop(key, None) is not None
            self.changed.notify_all()
            return first

    def wait_for_work(self) -> bool:
        """Until something is pending (True) or every sample is judged (False)."""
        with self.changed:
            while self.left and not self.pending and not self.aborted:
                self.changed.wait(0.5)
            return bool(self.left) and not self.aborted


class Scorer:
    """Judges items over one or more judge replicas from one queue (each sample once; a replica whose
    stream fails hands its samples without a result back, is restarted where the fleet can, and is
    given up on after `max_attempts` failed streams)."""

    def __init__(self, *, run_dir: RunDir, ui, protocol: str, batch_size: int, max_in_flight: int,
                 max_attempts: int, client_factory, restart=None, judge_hash: str = "",
                 stall_timeout_s: float = 600.0, stop_after: int = 0, questions=None):
        """stop_after: stop the pass when its first this many results are INVALID for the same reason.
        questions: (Sample) -> the names of the questions the judge asks of it, in order (None: unknown),
        to show the reply that failed of a PARSE_FAILED result."""
        self.run_dir = run_dir
        self.ui = ui
        self.protocol = protocol
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight  # per replica
        self.max_attempts = max_attempts
        self.client_factory = client_factory
        self.restart = restart  # (endpoint) -> new address, or None when the fleet cannot
        self.judge_hash = judge_hash
        self.stall_timeout_s = stall_timeout_s  # 0: no watchdog
        self.tokens = {"prompt": 0, "completion": 0}  # what an API judge reported for the results so far
        self._lock = threading.Lock()  # results are written and counted by one replica's thread at a time
        self.same_failure = SameFailureStop(stop_after, "judgements")
        self.questions = questions
        self.stopped = ""

    def run(self, endpoints, items: list[ScoreItem]) -> ScoringOutcome:
        """endpoints: the replicas (fleet Endpoints), or one address."""
        if isinstance(endpoints, str):
            endpoints = [Endpoint("scorer", endpoints)]
        outcome = ScoringOutcome()
        printer = _Printer(self.ui, len(items), self.batch_size, self.questions)
        queue = _Queue(items)
        self._queue = queue
        failures: list[str] = []
        named = len(endpoints) > 1
        threads = [threading.Thread(target=self._replica, args=(e, queue, printer, outcome, failures, named),
                                    name=f"judge-{e.name}", daemon=True) for e in endpoints]
        self._fatal: list[BaseException] = []
        self._replicas = len(endpoints)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._fatal:
            raise self._fatal[0]
        outcome.stopped = self.stopped
        if queue.left:
            outcome.unscored = list(queue.left)
            if not self.stopped:
                self.ui.log(f"[scorer] giving up on {len(queue.left)} sample(s) after {self.max_attempts} attempts: "
                            f"{failures[-1] if failures else 'no judge left'}")
        return outcome

    def _replica(self, endpoint: Endpoint, queue: _Queue, printer, outcome, failures: list[str], named: bool) -> None:
        try:
            self._replica_streams(endpoint, queue, printer, outcome, failures, named)
        except BaseException as exc:  # noqa: BLE001 - stops the whole pass; raised again by run()
            self._fatal.append(exc)
            queue.abort()

    def _replica_streams(self, endpoint, queue, printer, outcome, failures, named) -> None:
        address, attempts = endpoint.address, 0
        who = f"[scorer {endpoint.name}]" if named else "[scorer]"
        while queue.wait_for_work():
            error = self._one_stream(address, queue, printer, outcome, endpoint.name if named else "", self._replicas)
            if not error:
                continue  # this stream ran out of work; more may come back from another replica
            attempts += 1
            with self._lock:
                failures.append(error)
            if attempts >= self.max_attempts:
                if named:
                    self.ui.log(f"{who} giving up on this replica after {attempts} attempts: {error}")
                return
            if queue.left:
                self.ui.log(f"{who} stream ended with {len(queue.left)} sample(s) left ({error}); retrying")
            if self.restart is not None:
                new_address = self.restart(endpoint)
                if new_address:
                    address = new_address
                    with self._lock:
                        outcome.restarts += 1
            time.sleep(1.0)

    def _one_stream(self, address, queue: _Queue, printer, outcome, replica: str, replicas: int = 1) -> str:
        """One ScoreStream: takes samples from the queue while it has room, until the queue is empty and
        its own are answered. Returns "" or why it ended early; its samples without a result go back.
        With several replicas a stream holds at most its share of what is left (at least one batch), so
        that the first to connect does not take a small run's samples for itself and all finish together."""
        slots = threading.Semaphore(self.max_in_flight)
        stop = threading.Event()
        mine: dict[str, ScoreItem] = {}  # sent on this stream, no result yet (by ScoreItem.key)
        mine_lock = threading.Lock()
        # Set under mine_lock as the stream's samples go back to the queue. The request generator runs on
        # gRPC's own thread and may be between its stop check and queue.take() when the stream ends: an
        # item it takes after that is given back by itself, never sent onto the ended call (where it
        # would be lost, and the pass would wait for its result for ever).
        closed = threading.Event()

        local_error: list[BaseException] = []

        def requests():
            while not stop.is_set():
                if not slots.acquire(timeout=0.5):
                    continue
                if replicas > 1:
                    share = max(self.batch_size, -(-len(queue.left) // replicas))
                    with mine_lock:
                        full = len(mine) >= share
                    if full:
                        slots.release()
                        time.sleep(0.02)
                        continue
                item = queue.take()
                if item is None:
                    slots.release()
                    with mine_lock:
                        idle = not mine
                    if (idle and not queue.pending) or queue.aborted:
                        return  # everything is handed out and this stream's samples are answered
                    time.sleep(0.05)
                    continue
                with mine_lock:
                    if closed.is_set():
                        queue.give_back([item])
                        return
                    mine[item.key] = item
                try:
                    request = build_score_request(item, self.protocol)
                except OSError as exc:  # our side (a file gone): not the judge's fault, say so
                    local_error.append(ScoringError(f"sample {item.sample.id!r}: cannot read its images: {exc}"))
                    return
                yield request

        client = self.client_factory(address)
        call = client.score_many(requests())
        last_result = [time.monotonic()]
        stalled: list[str] = []
        if self.stall_timeout_s > 0:
            threading.Thread(target=self._watch_for_stall, args=(call, last_result, stop, stalled),
                             name="scorer-stall-watch", daemon=True).start()
        try:
            for result in call:
                last_result[0] = time.monotonic()
                with mine_lock:
                    item = mine.pop(result.sample_id, None)
                if item is None or not queue.done(result.sample_id):
                    self.ui.log(f"[scorer] result for an unknown or repeated sample {result.sample_id!r}: ignored")
                    continue
                record = result_record(item, result, self.judge_hash)
                if replica:
                    record["judge_replica"] = replica
                # before its slot frees: a stop must not let one more sample out
                invalid = record["status"] == statuses.INVALID
                reason = self.same_failure.settle(item.sample, (record.get("error") or "INVALID") if invalid else None)
                if reason:
                    self.stopped = reason
                    queue.abort()
                slots.release()
                with self._lock:
                    self.run_dir.scores.append(record)
                    self.tokens["prompt"] += record.get("prompt_tokens") or 0
                    self.tokens["completion"] += record.get("completion_tokens") or 0
                    if record["status"] == statuses.OK:
                        outcome.scored += 1
                    else:
                        outcome.failed += 1
                    printer.add(item.index, record, item.sample)
                    if reason:
                        self.ui.log(f"Stopping the judging: the first {self.same_failure.limit} judgements were "
                                    "INVALID for the same reason; no more samples are sent")
            if local_error:
                raise local_error[0]
            with mine_lock:
                return "stream ended early" if mine else ""
        except ServiceError as exc:
            if local_error:
                raise local_error[0] from None
            if stalled:
                return stalled[0]
            if exc.code_name in FATAL_CODES:  # e.g. an API judge refusing the key: no retry can help
                raise ScoringError(f"the judge stopped the run: {exc.details}") from None
            if exc.code_name in PERMANENT_CODES:  # the judge says the stream itself cannot work: no retry
                raise ScoringError(f"the judge refused the stream ({exc.code_name}: {exc.details}); "
                                   "nothing was retried") from None
            return str(exc)
        finally:
            stop.set()
            client.close()
            with mine_lock:
                closed.set()
                queue.give_back(list(mine.values()))
                mine.clear()

    def _watch_for_stall(self, call, last_result: list[float], stop: threading.Event, stalled: list[str]) -> None:
        """Cancel the stream when no result came for stall_timeout_s: a judge whose process or device
        hangs keeps its connection open, and the run would otherwise wait for ever."""
        while not stop.wait(min(1.0, self.stall_timeout_s / 4)):
            idle = time.monotonic() - last_result[0]
            if idle > self.stall_timeout_s:
                stalled.append(f"no result for {idle:.0f}s (judge.stall_timeout_s {self.stall_timeout_s:g}): judge stalled")
                call.cancel()
                return
