"""Pair judgments over the judge fleet, kept in the arena folder's judgments.jsonl.

One request per pair of edits of one sample (its questions, in one or both orders, answered by the
scorer: scorer_service's pairwise protocols), every judge replica fed from one queue (the run's
`orchestrator.scoring._Queue`): a replica takes the next pair whenever it has room, a stream that dies
or stalls gives its pairs without a result back, the fleet restarts the replica where it can. Each
result is one line appended (fsynced) to judgments.jsonl as it arrives, so a kill at any moment loses
at most the pairs in flight, and a rerun judges only the pairs (and questions) without a line.

A line (`judgment_record`): the match key `<prompt>_pair_<A>_vs_<B>` (A: the edit sent as
edited_image), the prompt (sample id) and its category, both players and their edits' sha256, the
questions asked and the verdict of each ("A", "B", "tie" or null: none), the scorer's pairwise
block (every order's answer, probabilities and raw replies), the status, error and every raw reply,
the protocol (name, sha256), the orders asked, the judge (content hash) and where it came from
("judge", or "matches:<file>" for verdicts read from a GEditBench v2 match file).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common import statuses
from editfleet_common.channels import ServiceError
from scorer_service.client import make_request, result_to_dict

from ..benchmark import Sample
from ..fleet.base import Endpoint
from ..results import JsonlStore
from ..scoring import FATAL_CODES, ScoringError, _Queue
from .matches import make_key
from .players import Player

FINAL = statuses.FINAL  # a line with one of these is kept by a rerun; ERROR is judged again


@dataclass
class PairTask:
    index: int
    sample: Sample
    a: Player                       # its edit sent as edited_image ("A")
    b: Player
    questions: tuple[str, ...]

    @property
    def key(self) -> str:
        """The match key, and the request's sample_id on the stream."""
        return make_key(self.sample.id, self.a.name, self.b.name)


def pair_request(task: PairTask, protocol: str, orders: str):
    sample = task.sample
    return make_request(
        task.key,
        source_image=sample.source_bytes(),
        more_source_images=sample.more_sources(),
        reference_images=[path.read_bytes() for path in sample.reference_images],
        edited_image=task.a.edit_path(sample).read_bytes(),
        edited_image_b=task.b.edit_path(sample).read_bytes(),
        instruction=sample.instruction,
        category=sample.category,
        protocol=protocol,
        variables=sample.judge_variables(),
        questions=list(task.questions),
        pair_orders=orders,
    )


def judgment_record(task: PairTask, result: dict, *, judge_hash: str, orders: str) -> dict:
    """The judgments.jsonl line of a scorer result (result_to_dict's record)."""
    status = result["status"]
    error = result["error"]
    if status not in statuses.STATUSES:
        status, error = statuses.ERROR, error or f"status {status}"
    pairwise = result.get("pairwise") or []
    verdicts = {q: None for q in task.questions}
    for verdict in pairwise:
        verdicts[verdict["question"]] = verdict["winner"]
    if status == statuses.OK and (not pairwise or all(v is None for v in verdicts.values())):
        status, error = statuses.ERROR, "scorer said OK but sent no pairwise verdict"  # never invent one
    sample = task.sample
    return {
        "key": task.key, "prompt": sample.id, "category": sample.category,
        "model_a": task.a.name, "model_b": task.b.name,
        "edit_a_sha256": task.a.edits[sample.id]["sha256"], "edit_b_sha256": task.b.edits[sample.id]["sha256"],
        "questions": list(task.questions), "verdicts": verdicts, "status": status, "error": error,
        "pairwise": pairwise, "raw_responses": result["raw_responses"], "response": result["response"],
        "protocol": result["protocol"], "protocol_hash": result["protocol_hash"], "orders": orders,
        "attempts": result["attempts"], "latency_s": round(result["latency_s"], 4),
        "prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"],
        "judge_hash": judge_hash, "source": "judge",
    }


def pair_id(prompt: str, a: str, b: str) -> tuple[str, frozenset]:
    return prompt, frozenset((a, b))


class Judgments:
    """judgments.jsonl: read the lines, keep the latest per (prompt, pair, question)."""

    def __init__(self, path: Path):
        self.store = JsonlStore(path)
        self.path = Path(path)

    def append(self, record: dict) -> None:
        self.store.append(record)

    def read(self) -> list[dict]:
        return self.store.read()

    def latest(self) -> dict[tuple, dict]:
        """(prompt, {A, B}, question) -> the last line that asked that question of that pair; each
        record carries its place in the file as `_line` (not written)."""
        out: dict[tuple, dict] = {}
        for n, record in enumerate(self.read()):
            record["_line"] = n
            for question in record.get("questions") or []:
                out[(*pair_id(record["prompt"], record["model_a"], record["model_b"]), question)] = record
        return out


@dataclass
class JudgingOutcome:
    judged: int = 0
    failed: int = 0                  # lines written that are not OK (PARSE_FAILED, REFUSED, ERROR, ...)
    unjudged: list[str] = field(default_factory=list)
    restarts: int = 0


def verdict_line(n: int, total: int, record: dict) -> str:
    verdicts = ", ".join(f"{q} {w or '-'}" for q, w in record["verdicts"].items())
    tail = "" if record["status"] == statuses.OK else f" [{record['status']}: {record['error'][:80]}]"
    return f"[pair {n}/{total}] {record['prompt']}: {record['model_a']} vs {record['model_b']}: {verdicts}{tail}"


class PairJudge:
    """Judges PairTasks over one or more judge replicas from one queue (each pair once; see the
    module docstring). As orchestrator.scoring.Scorer does for single edits."""

    def __init__(self, *, judgments: Judgments, ui, protocol: str, orders: str, batch_size: int,
                 max_in_flight: int, max_attempts: int, client_factory, restart=None, judge_hash: str = "",
                 stall_timeout_s: float = 600.0, total: int | None = None, done_before: int = 0):
        self.judgments = judgments
        self.ui = ui
        self.protocol = protocol
        self.orders = orders
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.client_factory = client_factory
        self.restart = restart
        self.judge_hash = judge_hash
        self.stall_timeout_s = stall_timeout_s
        self.total = total
        self.count = done_before
        self._lock = threading.Lock()

    def run(self, endpoints: list[Endpoint], tasks: list[PairTask]) -> JudgingOutcome:
        outcome = JudgingOutcome()
        queue = _Queue(tasks)
        failures: list[str] = []
        self._fatal: list[BaseException] = []
        self._replicas = len(endpoints)
        self._total = self.total or len(tasks)
        named = len(endpoints) > 1
        threads = [threading.Thread(target=self._replica, args=(e, queue, outcome, failures, named),
                                    name=f"arena-judge-{e.name}", daemon=True) for e in endpoints]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._fatal:
            raise self._fatal[0]
        if queue.left:
            outcome.unjudged = list(queue.left)
            self.ui.log(f"[judge] giving up on {len(queue.left)} pair(s) after {self.max_attempts} attempts: "
                        f"{failures[-1] if failures else 'no judge left'}")
        return outcome

    def _replica(self, endpoint, queue, outcome, failures, named) -> None:
        try:
            address, attempts = endpoint.address, 0
            while queue.wait_for_work():
                error = self._one_stream(address, queue, outcome, endpoint.name if named else "")
                if not error:
                    continue
                attempts += 1
                with self._lock:
                    failures.append(error)
                if attempts >= self.max_attempts:
                    return
                self.ui.log(f"[judge {endpoint.name}] stream ended with {len(queue.left)} pair(s) left ({error}); retrying")
                if self.restart is not None:
                    new_address = self.restart(endpoint)
                    if new_address:
                        address = new_address
                        with self._lock:
                            outcome.restarts += 1
                time.sleep(1.0)
        except BaseException as exc:  # noqa: BLE001 - stops the whole pass; raised again by run()
            self._fatal.append(exc)
            queue.abort()

    def _one_stream(self, address, queue: _Queue, outcome: JudgingOutcome, replica: str) -> str:
        slots = threading.Semaphore(self.max_in_flight)
        stop = threading.Event()
        mine: dict[str, PairTask] = {}
        mine_lock = threading.Lock()
        local_error: list[BaseException] = []

        def requests():
            while not stop.is_set():
                if not slots.acquire(timeout=0.5):
                    continue
                if self._replicas > 1:
                    share = max(self.batch_size, -(-len(queue.left) // self._replicas))
                    with mine_lock:
                        full = len(mine) >= share
                    if full:
                        slots.release()
                        time.sleep(0.02)
                        continue
                task = queue.take()
                if task is None:
                    slots.release()
                    with mine_lock:
                        idle = not mine
                    if (idle and not queue.pending) or queue.aborted:
                        return
                    time.sleep(0.05)
                    continue
                with mine_lock:
                    mine[task.key] = task
                try:
                    request = pair_request(task, self.protocol, self.orders)
                except OSError as exc:
                    local_error.append(ScoringError(f"pair {task.key!r}: cannot read its images: {exc}"))
                    return
                yield request

        client = self.client_factory(address)
        call = client.score_many(requests())
        last = [time.monotonic()]
        stalled: list[str] = []
        if self.stall_timeout_s > 0:
            threading.Thread(target=self._watch, args=(call, last, stop, stalled), daemon=True).start()
        try:
            for result in call:
                last[0] = time.monotonic()
                with mine_lock:
                    task = mine.pop(result.sample_id, None)
                if task is None or not queue.done(result.sample_id):
                    self.ui.log(f"[judge] result for an unknown or repeated pair {result.sample_id!r}: ignored")
                    continue
                slots.release()
                record = judgment_record(task, result_to_dict(result), judge_hash=self.judge_hash, orders=self.orders)
                if replica:
                    record["judge_replica"] = replica
                with self._lock:
                    self.judgments.append(record)
                    self.count += 1
                    if record["status"] == statuses.OK:
                        outcome.judged += 1
                    else:
                        outcome.failed += 1
                    self.ui.print(verdict_line(self.count, self._total, record))
            if local_error:
                raise local_error[0]
            with mine_lock:
                return "stream ended early" if mine else ""
        except ServiceError as exc:
            if local_error:
                raise local_error[0] from None
            if stalled:
                return stalled[0]
            if exc.code_name in FATAL_CODES:
                raise ScoringError(f"the judge stopped the arena: {exc.details}") from None
            return str(exc)
        finally:
            stop.set()
            client.close()
            with mine_lock:
                queue.give_back(list(mine.values()))
                mine.clear()

    def _watch(self, call, last, stop, stalled) -> None:
        while not stop.wait(min(1.0, self.stall_timeout_s / 4)):
            idle = time.monotonic() - last[0]
            if idle > self.stall_timeout_s:
                stalled.append(f"no result for {idle:.0f}s (judge.stall_timeout_s {self.stall_timeout_s:g}): judge stalled")
                call.cancel()
                return
