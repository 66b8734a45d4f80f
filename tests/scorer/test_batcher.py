"""The dynamic batcher with real threads: batches form from concurrent submits, a full queue is
refused, cancelled items never run, a failing batch reaches every caller."""

from __future__ import annotations

import threading
import time

import pytest

from editfleet_common.errors import NotReady, Overloaded
from scorer_service.batcher import Batcher


class Recorder:
    """A batch function that records the batches it ran; `gate` holds the device busy."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items):
        self.gate.wait(10)
        self.batches.append(list(items))
        return [f"done:{x}" for x in items]


def test_concurrent_submits_share_batches_up_to_the_limit():
    run = Recorder()
    batcher = Batcher(run, max_batch=4, max_wait_s=0.5).start()
    futures = {}
    lock = threading.Lock()

    def submit(i):
        f = batcher.submit(i)
        with lock:
            futures[i] = f

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = {i: f.result(10) for i, f in futures.items()}
    batcher.stop()
    assert {i: r.value for i, r in results.items()} == {i: f"done:{i}" for i in range(10)}
    assert sorted(x for b in run.batches for x in b) == list(range(10))  # each item ran exactly once
    assert all(len(b) <= 4 for b in run.batches)
    assert max(len(b) for b in run.batches) > 1
    assert all(r.batch_size == len(next(b for b in run.batches if i in b)) for i, r in results.items())
    stats = batcher.stats()
    assert stats["samples"] == 10 and stats["batches"] == len(run.batches)
    assert sum(size * n for size, n in stats["batch_size_counts"].items()) == 10


def test_a_lone_request_waits_at_most_max_wait():
    batcher = Batcher(Recorder(), max_batch=8, max_wait_s=0.2).start()
    t0 = time.monotonic()
    result = batcher.submit("x").result(5)
    elapsed = time.monotonic() - t0
    batcher.stop()
    assert result.batch_size == 1
    assert 0.15 < elapsed < 2.0


def test_full_queue_is_refused_and_cancelled_items_never_run():
    run = Recorder()
    run.gate.clear()  # the device is busy
    batcher = Batcher(run, max_batch=1, max_wait_s=0.0, max_queue=2).start()
    first = batcher.submit("running")
    time.sleep(0.2)  # the worker has taken it and is blocked on the device
    queued = batcher.submit("queued")
    cancelled = batcher.submit("cancelled")
    with pytest.raises(Overloaded, match="queue is full"):
        batcher.submit("one too many")
    assert cancelled.cancel()
    run.gate.set()
    assert first.result(5).value == "done:running"
    assert queued.result(5).value == "done:queued"
    batcher.stop()
    assert ["cancelled"] not in run.batches
    with pytest.raises(NotReady):
        batcher.submit("after stop")


def test_a_failing_batch_fails_every_caller():
    def explode(items):
        raise RuntimeError("device lost")

    batcher = Batcher(explode, max_batch=4, max_wait_s=0.2).start()
    futures = [batcher.submit(i) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="device lost"):
            f.result(5)
    batcher.stop()


def test_requests_arriving_one_by_one_while_idle_fill_one_batch():
    run = Recorder()
    batcher = Batcher(run, max_batch=6, max_wait_s=1.0).start()
    futures = []
    for i in range(6):  # a stream whose items arrive 30 ms apart (decoding, network)
        futures.append(batcher.submit(i))
        time.sleep(0.03)
    sizes = [f.result(5).batch_size for f in futures]
    batcher.stop()
    assert run.batches == [list(range(6))]
    assert sizes == [6] * 6
    assert batcher.stats()["batch_size_counts"] == {6: 1}


def test_a_submit_that_races_stop_is_refused_not_stranded():
    """submit() checks for stop, then queues; a stop() that slips in between puts its marker first.
    The late item must be answered (NotReady), never left with a future that stays pending."""
    import queue as queue_module

    in_put, release = threading.Event(), threading.Event()

    class PausingQueue(queue_module.Queue):
        def put(self, item, block=True, timeout=None):
            if item is not None and item.item == "late":
                in_put.set()
                release.wait(5)  # stop() runs here, between submit's check and its put
            super().put(item, block, timeout)

    batcher = Batcher(Recorder(), max_batch=2, max_wait_s=0.0)
    batcher._queue = PausingQueue(maxsize=8)
    batcher.start()
    late: list = []
    submitter = threading.Thread(target=lambda: late.append(batcher.submit("late")))
    submitter.start()
    assert in_put.wait(5)
    batcher.stop(timeout=5)
    release.set()
    submitter.join(5)
    with pytest.raises(NotReady):
        late[0].result(timeout=2)


def test_pipelined_batches_overlap_and_keep_filling_while_the_first_stage_is_busy():
    """max_in_flight 2: a second batch runs while the first is still running; while ready_for_next()
    says no, the batch being collected keeps filling past max_wait instead of closing small."""
    started: list[list] = []
    release = threading.Event()
    first_stage_busy = threading.Event()

    def run(items):
        started.append(list(items))
        if len(started) == 1:
            release.wait(10)  # the first batch stays in flight
        return list(items)

    batcher = Batcher(run, max_batch=4, max_wait_s=0.05, max_in_flight=2,
                      ready_for_next=lambda: not first_stage_busy.is_set()).start()
    first = [batcher.submit(i) for i in range(4)]  # a full batch: starts, then blocks
    deadline = time.monotonic() + 5
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    first_stage_busy.set()
    second = [batcher.submit(10)]
    time.sleep(0.3)  # six times max_wait: the lone item keeps waiting for company meanwhile
    assert len(started) == 1
    second.append(batcher.submit(11))
    first_stage_busy.clear()
    assert [f.result(5).value for f in second] == [10, 11]  # ran while the first batch is in flight
    assert not any(f.done() for f in first)
    assert started[1] == [10, 11]
    release.set()
    assert [f.result(5).value for f in first] == [0, 1, 2, 3]
    batcher.stop(5)


def test_at_most_max_in_flight_batches_run_at_once():
    running, peak = [0], [0]
    lock = threading.Lock()

    def run(items):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return list(items)

    batcher = Batcher(run, max_batch=1, max_wait_s=0.0, max_in_flight=2).start()
    futures = [batcher.submit(i) for i in range(6)]
    assert [f.result(5).value for f in futures] == list(range(6))
    batcher.stop(5)
    assert peak[0] == 2
