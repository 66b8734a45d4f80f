"""The judging phase: every finished edit goes to the scorer over one ScoreStream; results come
back in any order and are appended to scores.jsonl as they arrive, printed in the seed's format.

A scorer that dies, drops the stream or stalls (no result for `judge.stall_timeout_s` while samples are
out: a hung device or process) is restarted (local fleet) and only the samples without a result are
sent again, at most `judge.max_attempts` times. What the judge says is never replaced:
PARSE_FAILED stays PARSE_FAILED, with the raw text kept.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common.channels import ServiceError
from scorer_service import statuses
from scorer_service.client import make_request, result_to_dict

from .benchmarks import Sample
from .results import RunDir
from . import ui as ui_lines


class ScoringError(Exception):
    """A problem on the orchestrator's side of the judging phase (named sample, no retry)."""


@dataclass
class ScoreItem:
    index: int        # position in this scoring pass: the number in "[Sample   i]"
    sample: Sample
    edit: dict        # the edit's line in edits.jsonl
    edit_path: Path   # read when sent, so a large benchmark is never held in memory at once


@dataclass
class ScoringOutcome:
    scored: int = 0
    failed: int = 0
    unscored: list[str] = field(default_factory=list)  # ids without a result (scorer kept failing)
    restarts: int = 0


def build_score_request(item: ScoreItem, protocol: str):
    sample = item.sample
    variables = {"original_description": sample.description} if sample.description else {}
    return make_request(
        sample.id,
        source_image=sample.source_bytes(),
        edited_image=item.edit_path.read_bytes(),
        instruction=sample.instruction,
        category=sample.category,
        protocol=protocol,
        variables=variables,
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
    if record["status"] not in statuses.STATUSES:
        record["error"] = record["error"] or f"status {record['status']}"
        record["status"] = statuses.ERROR
    if record["status"] == statuses.OK and record["score"] is None:  # a contract breach: never invent a score
        record["status"], record["error"] = statuses.ERROR, "scorer said OK but sent no score"
    return record


class _Printer:
    """Sample lines as results arrive; a batch line once every sample of that batch is in."""

    def __init__(self, ui, total: int, batch_size: int):
        self.ui = ui
        self.batch_size = max(1, batch_size)
        self.results: dict[int, dict] = {}
        self.next_batch = 0
        self.total = total

    def add(self, index: int, record: dict) -> None:
        self.results[index] = record
        self.ui.print(ui_lines.score_line(index, record))
        while self.next_batch * self.batch_size < self.total:
            first = self.next_batch * self.batch_size
            last = min(first + self.batch_size, self.total) - 1
            if not all(i in self.results for i in range(first, last + 1)):
                break
            values = [self.results[i]["score"] for i in range(first, last + 1) if self.results[i]["status"] == statuses.OK]
            self.next_batch += 1
            self.ui.print(ui_lines.batch_line(self.next_batch, first, last, values))


class Scorer:
    def __init__(self, *, run_dir: RunDir, ui, protocol: str, batch_size: int, max_in_flight: int,
                 max_attempts: int, client_factory, restart=None, judge_hash: str = "",
                 stall_timeout_s: float = 600.0):
        self.run_dir = run_dir
        self.ui = ui
        self.protocol = protocol
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.client_factory = client_factory
        self.restart = restart  # () -> new address, or None when the fleet cannot
        self.judge_hash = judge_hash
        self.stall_timeout_s = stall_timeout_s  # 0: no watchdog

    def run(self, address: str, items: list[ScoreItem]) -> ScoringOutcome:
        outcome = ScoringOutcome()
        printer = _Printer(self.ui, len(items), self.batch_size)
        left = {item.sample.id: item for item in items}
        attempt = 0
        while left:
            attempt += 1
            error = self._one_stream(address, list(left.values()), left, printer, outcome)
            if not left:
                break
            if attempt >= self.max_attempts:
                outcome.unscored = list(left)
                self.ui.log(f"[scorer] giving up on {len(left)} sample(s) after {attempt} attempts: {error}")
                break
            self.ui.log(f"[scorer] stream ended with {len(left)} sample(s) left ({error}); retrying")
            if self.restart is not None:
                new_address = self.restart()
                if new_address:
                    address = new_address
                    outcome.restarts += 1
            time.sleep(1.0)
        return outcome

    def _one_stream(self, address, items, left, printer, outcome) -> str:
        slots = threading.Semaphore(self.max_in_flight)
        stop = threading.Event()

        local_error: list[BaseException] = []

        def requests():
            for item in items:
                while not slots.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
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
                item = left.pop(result.sample_id, None)
                if item is None:
                    self.ui.log(f"[scorer] result for an unknown or repeated sample {result.sample_id!r}: ignored")
                    continue
                slots.release()
                record = result_record(item, result, self.judge_hash)
                self.run_dir.scores.append(record)
                if record["status"] == statuses.OK:
                    outcome.scored += 1
                else:
                    outcome.failed += 1
                printer.add(item.index, record)
            if local_error:
                raise local_error[0]
            return "stream ended early" if left else ""
        except ServiceError as exc:
            if local_error:
                raise local_error[0] from None
            if stalled:
                return stalled[0]
            return str(exc)
        finally:
            stop.set()
            client.close()

    def _watch_for_stall(self, call, last_result: list[float], stop: threading.Event, stalled: list[str]) -> None:
        """Cancel the stream when no result came for stall_timeout_s: a judge whose process or device
        hangs keeps its connection open, and the run would otherwise wait for ever."""
        while not stop.wait(min(1.0, self.stall_timeout_s / 4)):
            idle = time.monotonic() - last_result[0]
            if idle > self.stall_timeout_s:
                stalled.append(f"no result for {idle:.0f}s (judge.stall_timeout_s {self.stall_timeout_s:g}): judge stalled")
                call.cancel()
                return
