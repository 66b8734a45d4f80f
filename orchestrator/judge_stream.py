"""Judging over ScoreStreams, shared by the run's judging phase (orchestrator.scoring.Scorer: one edit
per request) and the arena's (orchestrator.arena.judging.PairJudge: two edits per request): the work
queue every judge replica is fed from, a replica's loop of streams, and one stream.

Every replica (a fleet Endpoint) takes the next item from one queue whenever its stream has room, so
faster ones judge more and each item is judged once. A stream that dies, drops or stalls (no result
for `stall_timeout_s` while items are out) gives its items without a result back to the queue; the
replica is restarted where the fleet can (`restart`), at most `max_attempts` failed streams each. A
stream the judge ends as permanent (PERMANENT_CODES) is not tried again; FATAL_CODES stop the pass.

A subclass says what an item's request is (`request`), what its result becomes and whether the pass
stops there (`received`, before the item's slot frees), and keeps it (`keep`, one result at a time).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from editfleet_common.channels import ServiceError

from .dispatch import PERMANENT_CODES
from .fleet.base import Endpoint

# Stream endings that stop the pass at once (the items without a result are judged by the next run).
FATAL_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


class ScoringError(Exception):
    """A problem on the orchestrator's side of judging (named sample, no retry), or a judge that stops it."""


class _Queue:
    """The items of one judging pass, shared by every judge replica: each is handed to one stream at a
    time, comes back when that stream ends without its result, and is done at its first result. An item
    has a `key`: its sample_id on the stream."""

    def __init__(self, items: list):
        self.pending: deque = deque(items)
        self.left = {item.key: item for item in items}  # not judged yet (pending or out on a stream)
        self.changed = threading.Condition()
        self.aborted = False  # a replica hit an error that stops the pass (nothing more is handed out)

    def take(self):
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
        """True for the first result of an item (its key); a later one is ignored."""
        with self.changed:
            first = self.left.pop(key, None) is not None
            self.changed.notify_all()
            return first

    def wait_for_work(self) -> bool:
        """Until something is pending (True) or every item is judged (False)."""
        with self.changed:
            while self.left and not self.pending and not self.aborted:
                self.changed.wait(0.5)
            return bool(self.left) and not self.aborted


class StreamJudge:
    """Items judged over one or more judge replicas from one queue (see the module docstring)."""

    noun = "sample"      # what an item is, in messages ("3 sample(s) left")
    tag = "[scorer]"     # the log lines' prefix
    stops = "run"        # what a fatal stream ending stops ("the judge stopped the run: ...")

    def __init__(self, *, ui, batch_size: int, max_in_flight: int, max_attempts: int, client_factory,
                 restart=None, stall_timeout_s: float = 600.0):
        self.ui = ui
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight  # per replica
        self.max_attempts = max_attempts
        self.client_factory = client_factory
        self.restart = restart  # (endpoint) -> new address, or None when the fleet cannot
        self.stall_timeout_s = stall_timeout_s  # 0: no watchdog
        self._lock = threading.Lock()  # results are kept and counted by one replica's thread at a time

    # -- what a subclass says ----------------------------------------------------------------------
    def request(self, item):
        """The request of an item (OSError: its files cannot be read, our side)."""
        raise NotImplementedError

    def describe(self, item) -> str:
        """The item in an error message: "sample 'x'"."""
        return f"{self.noun} {item.key!r}"

    def received(self, item, result, replica: str) -> tuple[object, str]:
        """(what the result becomes, why the pass stops here or ""), before the item's slot frees: a
        stop must not let one more item out."""
        raise NotImplementedError

    def keep(self, item, kept, outcome, reason: str) -> None:
        """Write, count and print one result (under the judge's lock: one at a time)."""
        raise NotImplementedError

    # -- the pass --------------------------------------------------------------------------------
    def serve(self, endpoints, items: list, outcome) -> tuple[_Queue, list[str]]:
        """Judge `items` over `endpoints` (fleet Endpoints, or one address) until each has a result or
        every replica gave up. Returns the queue (its `left`: items without a result) and why streams
        failed, in order. A fatal error of any replica stops the pass and is raised here."""
        if isinstance(endpoints, str):
            endpoints = [Endpoint("scorer", endpoints)]
        queue = _Queue(items)
        self._queue = queue
        failures: list[str] = []
        named = len(endpoints) > 1
        self._fatal: list[BaseException] = []
        self._replicas = len(endpoints)
        threads = [threading.Thread(target=self._replica, args=(e, queue, outcome, failures, named),
                                    name=f"judge-{e.name}", daemon=True) for e in endpoints]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._fatal:
            raise self._fatal[0]
        return queue, failures

    def _replica(self, endpoint: Endpoint, queue: _Queue, outcome, failures: list[str], named: bool) -> None:
        try:
            self._replica_streams(endpoint, queue, outcome, failures, named)
        except BaseException as exc:  # noqa: BLE001 - stops the whole pass; raised again by serve()
            self._fatal.append(exc)
            queue.abort()

    def _replica_streams(self, endpoint, queue, outcome, failures, named) -> None:
        address, attempts = endpoint.address, 0
        who = f"{self.tag[:-1]} {endpoint.name}]" if named else self.tag
        while queue.wait_for_work():
            error = self._one_stream(address, queue, outcome, endpoint.name if named else "", self._replicas)
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
                self.ui.log(f"{who} stream ended with {len(queue.left)} {self.noun}(s) left ({error}); retrying")
            if self.restart is not None:
                new_address = self.restart(endpoint)
                if new_address:
                    address = new_address
                    with self._lock:
                        outcome.restarts += 1
            time.sleep(1.0)

    def _one_stream(self, address, queue: _Queue, outcome, replica: str, replicas: int = 1) -> str:
        """One ScoreStream: takes items from the queue while it has room, until the queue is empty and
        its own are answered. Returns "" or why it ended early; its items without a result go back.
        With several replicas a stream holds at most its share of what is left (at least one batch), so
        that the first to connect does not take a small pass's items for itself and all finish together."""
        slots = threading.Semaphore(self.max_in_flight)
        stop = threading.Event()
        mine: dict = {}  # sent on this stream, no result yet (by key)
        mine_lock = threading.Lock()
        # Set under mine_lock as the stream's items go back to the queue. The request generator runs on
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
                        return  # everything is handed out and this stream's items are answered
                    time.sleep(0.05)
                    continue
                with mine_lock:
                    if closed.is_set():
                        queue.give_back([item])
                        return
                    mine[item.key] = item
                try:
                    request = self.request(item)
                except OSError as exc:  # our side (a file gone): not the judge's fault, say so
                    local_error.append(ScoringError(f"{self.describe(item)}: cannot read its images: {exc}"))
                    return
                yield request

        client = self.client_factory(address)
        call = client.score_many(requests())
        last_result = [time.monotonic()]
        stalled: list[str] = []
        if self.stall_timeout_s > 0:
            threading.Thread(target=self._watch_for_stall, args=(call, last_result, stop, stalled),
                             name="judge-stall-watch", daemon=True).start()
        try:
            for result in call:
                last_result[0] = time.monotonic()
                with mine_lock:
                    item = mine.pop(result.sample_id, None)
                if item is None or not queue.done(result.sample_id):
                    self.ui.log(f"{self.tag} result for an unknown or repeated {self.noun} {result.sample_id!r}: ignored")
                    continue
                kept, reason = self.received(item, result, replica)
                if reason:
                    queue.abort()
                slots.release()
                with self._lock:
                    self.keep(item, kept, outcome, reason)
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
                raise ScoringError(f"the judge stopped the {self.stops}: {exc.details}") from None
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
        hangs keeps its connection open, and the pass would otherwise wait for ever."""
        while not stop.wait(min(1.0, self.stall_timeout_s / 4)):
            idle = time.monotonic() - last_result[0]
            if idle > self.stall_timeout_s:
                stalled.append(f"no result for {idle:.0f}s (judge.stall_timeout_s {self.stall_timeout_s:g}): judge stalled")
                call.cancel()
                return
