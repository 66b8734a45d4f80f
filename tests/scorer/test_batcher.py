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
