"""Dynamic batching: requests from any number of concurrent callers share device batches.

One worker thread owns the device. It takes the oldest waiting item, then keeps collecting until
the batch holds `max_batch` items or the oldest item has waited `max_wait_s`, and runs the batch.
While the device is busy new items pile up, so under load batches fill at once and nobody waits
for the timer; when idle, a lone request waits at most `max_wait_s` for company. For a judge whose
batch takes seconds, a wait of a fraction of that (the service's default is 0.5 s) lets a burst of
streamed requests (decoded several at once by the server) become one full batch.

Pipelining (`max_in_flight` > 1, for a judge whose batches go through stages on different
resources, e.g. prefill and decode): up to that many batches run at once, each on its own runner
thread. The next batch is collected while the others run; it closes when full, or once the oldest
item has waited `max_wait_s` and `ready_for_next()` says the first stage can take it, so batches
are as large as with one batch at a time.

The queue is bounded: `submit(block=False)` raises Overloaded when it is full (unary calls get
RESOURCE_EXHAUSTED); `submit(block=True)` waits for room (streams: back-pressure to the client).
Cancelled futures are dropped before they reach the device.

Its state for health (guards.HealthWatch): `stalled_for()` is how long a batch has been running with
no batch finishing (0 while idle), `dead` whether the worker has ended without being stopped (then
`submit` refuses with NotReady).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

from editfleet_common.errors import NotReady, Overloaded

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Completed(Generic[R]):
    value: R
    batch_size: int  # how many items shared the device batch
    queued_s: float  # time from submit to the batch starting
    run_s: float  # time the batch took on the device


@dataclass
class _Job(Generic[T]):
    item: T
    future: Future
    submitted: float


class Batcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 8,
        max_wait_s: float = 0.5,
        max_queue: int = 256,
        name: str = "batcher",
        max_in_flight: int = 1,
        ready_for_next: Callable[[], bool] | None = None,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._stats_lock = threading.Lock()
        self._batches = 0
        self._samples = 0
        self._size_counts: dict[int, int] = {}
        self._stopping = threading.Event()
        self._closed = threading.Event()  # the worker has ended: nothing queued from now on runs
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.max_in_flight = max_in_flight
        self._ready_for_next = ready_for_next or (lambda: True)
        self._in_flight = threading.Semaphore(max_in_flight)
        self._runners: list[threading.Thread] = []
        self._name = name
        self._running: dict[int, float] = {}  # batch number -> when it started (monotonic)
        self._started_batches = 0
        self._last_progress = time.monotonic()  # when a batch last finished (or the batcher started)

    # -- public -------------------------------------------------------------------------------

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def submit(self, item: T, *, block: bool = False, timeout: float | None = None) -> Future:
        if self._stopping.is_set():
            raise NotReady("scorer is shutting down")
        if self.dead:
            raise NotReady("the judge's batch worker has ended: no sample can be judged (restart the scorer)")
        job = _Job(item, Future(), time.monotonic())
        try:
            self._queue.put(job, block=block, timeout=timeout)
        except queue.Full:
            raise Overloaded(
                f"scorer queue is full ({self.max_queue} waiting); retry later or raise --max-queue"
            ) from None
        if self._closed.is_set():  # stop() came between the check above and the put
            self._refuse_leftovers()
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Finish what is queued, then end the worker."""
        self._stopping.set()
        self._queue.put(None)  # wakes the worker; it drains everything queued before this
        self._thread.join(timeout)

    def stats(self) -> dict:
        with self._stats_lock:
            return {
                "batches": self._batches,
                "samples": self._samples,
                "batch_size_counts": dict(self._size_counts),
            }

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def dead(self) -> bool:
        """The worker has ended although nobody stopped it (nothing queued would ever run)."""
        return self._thread.ident is not None and not self._thread.is_alive() and not self._stopping.is_set()

    def stalled_for(self) -> float:
        """Seconds since the later of: the oldest running batch's start, the last batch's end; 0 when
        no batch runs. With several batches in flight, one finishing is progress."""
        with self._stats_lock:
            if not self._running:
                return 0.0
            since = max(min(self._running.values()), self._last_progress)
        return max(0.0, time.monotonic() - since)

    # -- worker -------------------------------------------------------------------------------

    def _collect(self) -> tuple[list[_Job], bool]:
        """The next batch, and whether the stop marker was seen."""
        first = self._queue.get()
        if first is None:
            return [], True
        jobs = [first]
        deadline = first.submitted + self.max_wait_s
        while len(jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not self._ready_for_next():
                remaining = 0.01  # past the wait, but the first stage is busy: keep filling meanwhile
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                if time.monotonic() < deadline or not self._ready_for_next():
                    continue
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _loop(self) -> None:
        stop_seen = False
        while not stop_seen:
            self._in_flight.acquire()  # at most max_in_flight batches collected or running
            jobs, stop_seen = self._collect()
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not live:
                self._in_flight.release()
            elif self.max_in_flight == 1:
                self._run_and_release(live)
            else:
                runner = threading.Thread(target=self._run_and_release, args=(live,), daemon=True,
                                          name=f"{self._name}-run")
                self._runners = [r for r in self._runners if r.is_alive()] + [runner]
                runner.start()
        for runner in self._runners:
            runner.join()
        self._closed.set()
        self._refuse_leftovers()

    def _run_and_release(self, jobs: list[_Job]) -> None:
        try:
            self._run(jobs)
        finally:
            self._in_flight.release()

    def _refuse_leftovers(self) -> None:
        """Answer items queued behind the stop marker (their submit raced stop()) instead of
        leaving their callers waiting for ever."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(NotReady("scorer is shutting down"))

    def _run(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        with self._stats_lock:
            self._started_batches += 1
            number = self._started_batches
            self._running[number] = started
        try:
            results = list(self.run_batch([j.item for j in jobs]))
            if len(results) != len(jobs):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(jobs)} items")
        except BaseException as exc:  # noqa: BLE001 - every waiting caller learns of the failure
            log.exception("batch of %d failed", len(jobs))
            for job in jobs:
                job.future.set_exception(exc)
            return
        finally:
            with self._stats_lock:
                del self._running[number]
                self._last_progress = time.monotonic()
        run_s = time.monotonic() - started
        with self._stats_lock:
            self._batches += 1
            self._samples += len(jobs)
            self._size_counts[len(jobs)] = self._size_counts.get(len(jobs), 0) + 1
        for job, value in zip(jobs, results):
            job.future.set_result(Completed(value, len(jobs), started - job.submitted, run_s))
