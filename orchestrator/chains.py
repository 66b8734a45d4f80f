"""Multi-turn chains: a sample whose input image is another sample's edit (`Sample.input_from`).

A chain is checked when the benchmark is loaded (suites/shared/samples.py `chain_problems`: an id that
names no sample, or one the run's filters leave out, a cycle). Then:

- the dispatcher (`ChainPlan`) sends turn k+1 as soon as turn k's edit is on disk, to whichever editor
  is free; its seed is its own sample's (`sample_seed(base, id)`), so the edit does not depend on the
  number of editors or on the order. The edit's line records `input_from` and `input_sha256`, the
  sha256 of the very bytes sent.
- a turn that fails (for good, or after its attempts) fails every later turn of its chain: each gets a
  failure line of its own (code CHAIN_FAILED, `failed_turn`: the turn that failed), final exactly when
  that turn's failure is; the source image is never sent in its place.
- resuming (`consistent`): a turn's edit or its own failure counts only while it was made from the
  current edit of the turn before (`input_sha256`), and a chain failure only while that turn's failure
  is kept; a chain stopped at turn 3 goes on from turn 3 with turns 1-2 read from disk.
- judging and the report (`with_inputs`): a turn's input is the edit it was made from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from editfleet_common.images import MAX_IMAGE_FILE_BYTES
from editfleet_common.safe_files import read_regular
from suites.shared.samples import Sample, chain_turns

CHAIN_FAILED = "CHAIN_FAILED"  # the code of a turn not edited because a turn before it failed


@dataclass(frozen=True)
class ChainInput:
    """A turn's input: the edit of sample `from_id` at `path` (sha256 as its edit line recorded it)."""

    from_id: str
    path: Path
    sha256: str

    def read(self) -> bytes:
        return read_regular(self.path, MAX_IMAGE_FILE_BYTES)


def in_chain_order(samples: list[Sample]) -> list[Sample]:
    """The samples with an input_from, each after the turn it takes its input from."""
    turns = chain_turns(samples)
    return sorted((s for s in samples if s.input_from), key=lambda s: turns.get(s.id, 0))


def consistent(samples: list[Sample], done: dict[str, dict], failed: dict[str, dict]) -> None:
    """Drop from `done` / `failed` (RunDir.edit_state: the valid edit line per id, the final failures
    kept) what a chain's turn recorded from an input that is no longer its input's edit: an edit or a
    failure of its own whose input_sha256 is not the current edit of the turn before, a chain failure
    whose failed turn is not kept as failed. Those turns are edited again. An imported edit (`orchestrator
    import`: made elsewhere, from an input not known here) is taken as the layout holds it."""
    for sample in in_chain_order(samples):
        before = done.get(sample.input_from)
        record = done.get(sample.id)
        if (record is not None and not (record.get("provenance") or {}).get("imported")
                and (before is None or record.get("input_sha256") != before.get("sha256"))):
            del done[sample.id]
        record = failed.get(sample.id)
        if record is None:
            continue
        if record.get("code") == CHAIN_FAILED:
            holds = sample.input_from in failed
        else:
            holds = before is not None and record.get("input_sha256") == before.get("sha256")
        if not holds:
            del failed[sample.id]


def with_inputs(samples: list[Sample], edit_path: Callable[[Sample], Path], done: dict[str, dict]) -> list[Sample]:
    """The samples, each chained one whose input's edit is done with that edit as its input image (what
    the judge is shown and the report's source column); the others as they are."""
    by_id = {s.id: s for s in samples}
    out = []
    for sample in samples:
        before = by_id.get(sample.input_from) if sample.input_from else None
        if before is not None and (done.get(before.id) or {}).get("status") == "ok" and sample.image_path is None:
            sample = dataclasses.replace(sample, image_path=edit_path(before))
        out.append(sample)
    return out


@dataclass
class ChainFailure:
    sample: Sample
    input_from: str   # the turn before it
    failed_turn: str  # the turn whose own failure this is
    error: str        # that turn's error
    final: bool       # as that turn's failure is

    def record(self) -> dict:
        """The keyword arguments of RunDir.record_edit_failure for this turn."""
        via = "" if self.failed_turn == self.input_from else f" (turn {self.failed_turn!r} failed)"
        error = (f"not edited: its input is the edit of {self.input_from!r}, which failed{via}: "
                 + _short(self.error))
        return {"error": error, "final": self.final, "code": CHAIN_FAILED, "attempts": 0,
                "input_from": self.input_from, "failed_turn": self.failed_turn, "failed_turn_error": self.error}


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


class ChainPlan:
    """Which of the samples to edit can go now, and which wait for the edit of the turn before them.

    todo: the samples to edit this session; every_sample: the benchmark's (their inputs among them);
    finished: the kept edit or failure line per id of samples not in todo; edit_path: where an edit lies.
    Not thread-safe: the dispatcher calls it under its lock."""

    def __init__(self, todo: list[Sample], every_sample: list[Sample], finished: dict[str, dict],
                 edit_path: Callable[[Sample], Path]):
        self.by_id = {s.id: s for s in every_sample}
        self.by_id.update({s.id: s for s in todo})
        self.edit_path = edit_path
        self.waiting: dict[str, list[Sample]] = {}
        self.ready: list[tuple[Sample, ChainInput | None]] = []
        self.failed_now: list[ChainFailure] = []  # turns whose input failed in an earlier session
        todo_ids = {s.id for s in todo}
        for sample in todo:
            before = sample.input_from
            if not before:
                self.ready.append((sample, None))
            elif before in todo_ids:
                self.waiting.setdefault(before, []).append(sample)
            else:
                record = finished.get(before) or {}
                if record.get("status") == "ok":
                    self.ready.append((sample, self._input(before, record)))
                else:
                    failure = self._failure(sample, before, record)
                    self.failed_now.append(failure)
                    self.failed_now += self.failed(sample.id, failure.error, failure.final, failure.failed_turn)

    def _input(self, before: str, line: dict) -> ChainInput:
        return ChainInput(before, self.edit_path(self.by_id[before]), str(line.get("sha256", "")))

    @staticmethod
    def _failure(sample: Sample, before: str, record: dict) -> ChainFailure:
        if record.get("code") == CHAIN_FAILED:
            return ChainFailure(sample, before, record.get("failed_turn") or before,
                                str(record.get("failed_turn_error") or record.get("error", "")), bool(record.get("final")))
        if record.get("status") == "failed":
            return ChainFailure(sample, before, before, str(record.get("error", "")), bool(record.get("final")))
        # Not edited and not failed for good (it cannot happen with the states the run computes): redone next time.
        return ChainFailure(sample, before, before, "it was not edited", False)

    def edited(self, sample_id: str, line: dict) -> list[tuple[Sample, ChainInput]]:
        """The turns that can go now that `sample_id`'s edit (its edits.jsonl line) is on disk."""
        return [(after, self._input(sample_id, line)) for after in self.waiting.pop(sample_id, [])]

    def failed(self, sample_id: str, error: str, final: bool, failed_turn: str | None = None) -> list[ChainFailure]:
        """Every later turn of `sample_id`'s chain, now that it failed (error: its failure; failed_turn:
        the turn whose own failure it is, `sample_id` by default)."""
        failed_turn = failed_turn or sample_id
        out = []
        stack = [(sample_id, after) for after in self.waiting.pop(sample_id, [])]
        while stack:
            before, after = stack.pop(0)
            out.append(ChainFailure(after, before, failed_turn, error, final))
            stack += [(after.id, later) for later in self.waiting.pop(after.id, [])]
        return out

    def left(self) -> list[Sample]:
        """The turns still waiting for their input (the editing stopped before it was made)."""
        return [sample for turns in self.waiting.values() for sample in turns]
