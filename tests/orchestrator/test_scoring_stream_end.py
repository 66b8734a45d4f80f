"""A sample taken by a stream's request generator just as the stream ends is not lost (issue 28, noticed
in `orchestrator/scoring.py` `_one_stream`; the loop is now orchestrator/judge_stream.py's StreamJudge,
shared by the run's Scorer and the arena's PairJudge: both are put through the same interleaving).

The generator runs on gRPC's own request thread. When the stream ends (the judge closed an idle stream,
or it failed), the stream's samples without a result go back to the queue; a generator that was
already past its stop check could then take one more sample and yield it onto the ended call, where
gRPC drops it: the sample stayed "left" but was never pending again, and the pass waited for its
result for ever.

The interleaving is forced, not hoped for: a stand-in for the scorer client (a real one cannot be
made to end its stream between two lines of the generator) reads the requests on its own thread as
gRPC does, and the queue's take() of the second sample waits until the ended stream has handed its
samples back. The pass must then finish, each sample judged once, within seconds (it hung before).
"""

from __future__ import annotations

import io
import queue as queue_module
import threading

import pytest

from conftest import png_bytes

from editfleet.v1 import scorer_pb2
from orchestrator import judge_stream
from orchestrator.arena.judging import Judgments, PairJudge, PairTask
from orchestrator.arena.players import Player
from orchestrator.fleet.base import Endpoint
from orchestrator.results import RunDir
from orchestrator.scoring import Scorer, ScoreItem
from orchestrator.ui import PlainUI
from suites.shared.samples import Sample

END = object()


class Stream:
    """One ScoreStream as the client sees it: its requests read on a thread of their own (as gRPC's
    request consumer does), results given back for those received. first: answer the first request
    once `answer_first` is set, then end (as a judge that closes the stream does)."""

    def __init__(self, requests, *, first: bool, answer_first: threading.Event):
        self.received: queue_module.Queue = queue_module.Queue()
        self.first, self.answer_first = first, answer_first
        self.ended = threading.Event()
        self.sent_after_end: list[str] = []
        threading.Thread(target=self._consume, args=(requests,), daemon=True).start()

    def _consume(self, requests) -> None:
        for request in requests:
            if self.ended.is_set():  # gRPC drops what the generator yields onto a finished call
                self.sent_after_end.append(request.sample_id)
                continue
            self.received.put(request)
        self.received.put(END)

    def __iter__(self):
        request = self.received.get(timeout=10)
        if self.first:
            assert self.answer_first.wait(10), "the generator never came back for a second sample"
            yield result_for(request)
            self.ended.set()
            return
        while request is not END:
            yield result_for(request)
            request = self.received.get(timeout=10)

    def cancel(self) -> None:
        self.ended.set()


def result_for(request) -> scorer_pb2.ScoreResult:
    pairwise = [scorer_pb2.PairVerdict(question="overall", winner="A")] if request.edited_image_b else []
    return scorer_pb2.ScoreResult(sample_id=request.sample_id, status=scorer_pb2.SCORE_STATUS_OK, score=7.0,
                                  protocol="seed-0-10", attempts=1, batch_size=1, pairwise=pairwise)


def scorer(tmp_path, samples, image, client):
    """The run's judging phase: one ScoreItem per sample; its results in scores.jsonl."""
    items = [ScoreItem(i, sample, {"sha256": "x"}, image) for i, sample in enumerate(samples, 1)]
    (tmp_path / "run").mkdir()
    judge = Scorer(run_dir=RunDir(tmp_path / "run"), ui=PlainUI(io.StringIO()), protocol="seed-0-10", batch_size=2,
                   max_in_flight=2, max_attempts=2, client_factory=client, stall_timeout_s=0)
    return (lambda: judge.run("fake:0", items), lambda outcome: (outcome.scored, outcome.unscored),
            lambda: sorted(r["id"] for r in RunDir(tmp_path / "run").scores.read()))


def pair_judge(tmp_path, samples, image, client):
    """The arena's: one PairTask (two players' edits) per sample; its lines in judgments.jsonl."""
    a, b = (Player(name, tmp_path, {}, tmp_path, {s.id: {"path": image.name, "sha256": name} for s in samples})
            for name in ("A", "B"))
    tasks = [PairTask(i, sample, a, b, ("overall",)) for i, sample in enumerate(samples, 1)]
    judgments = Judgments(tmp_path / "judgments.jsonl")
    judge = PairJudge(judgments=judgments, ui=PlainUI(io.StringIO()), protocol="seed-0-10", orders="one",
                      batch_size=2, max_in_flight=2, max_attempts=2, client_factory=client, stall_timeout_s=0)
    return (lambda: judge.run([Endpoint("scorer", "fake:0")], tasks), lambda outcome: (outcome.judged, outcome.unjudged),
            lambda: sorted(r["prompt"] for r in judgments.read()))


@pytest.mark.parametrize("make_judge", [scorer, pair_judge], ids=["scorer", "arena"])
def test_a_sample_taken_as_the_stream_ends_goes_back_and_is_judged(tmp_path, monkeypatch, make_judge):
    image = tmp_path / "source.png"
    image.write_bytes(png_bytes())
    samples = [Sample(id=f"s{i}", category="c", instruction="Make it blue.", image_path=image) for i in range(2)]

    # the queue's second take() (the generator asking for sample s1 while s0 is out) waits until the
    # ended first stream has handed its samples back
    second_take, handed_back, second_taken = threading.Event(), threading.Event(), threading.Event()
    takes = []
    real_take, real_give_back = judge_stream._Queue.take, judge_stream._Queue.give_back

    def take(self):
        takes.append(1)
        if len(takes) != 2:
            return real_take(self)
        second_take.set()
        assert handed_back.wait(10)
        try:
            return real_take(self)
        finally:
            second_taken.set()

    def give_back(self, items):
        real_give_back(self, items)
        handed_back.set()

    monkeypatch.setattr(judge_stream._Queue, "take", take)
    monkeypatch.setattr(judge_stream._Queue, "give_back", give_back)

    streams: list[Stream] = []

    class Client:
        def __init__(self, address):
            if streams:  # a next stream opens once the ended one's generator has taken its sample
                assert second_taken.wait(10)

        def score_many(self, requests):
            streams.append(Stream(requests, first=not streams, answer_first=second_take))
            return streams[-1]

        def close(self):
            pass

    run, counts, written = make_judge(tmp_path, samples, image, Client)
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(run()), daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), ("the pass waits for ever for a sample its ended stream took: "
                                   f"sent after the end: {streams[0].sent_after_end}")
    assert streams[0].sent_after_end == []  # nothing was yielded onto the ended call
    assert len(streams) >= 2  # s1 went back to the queue and a new stream judged it
    assert counts(outcome[0]) == (2, [])
    assert written() == ["s0", "s1"]
