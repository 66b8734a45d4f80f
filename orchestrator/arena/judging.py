"""Pair judgments over the judge fleet, kept in the arena folder's judgments.jsonl.

One request per pair of edits of one sample (its questions, in one or both orders, answered by the
scorer: scorer_service's pairwise protocols), over the run's stream loop (orchestrator.judge_stream:
every judge replica fed from one queue; a replica takes the next pair whenever it has room, a stream
that dies or stalls gives its pairs without a result back, the fleet restarts the replica where it can). Each
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

from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common import statuses
from scorer_service.client import make_request, result_to_dict

from ..benchmark import Sample
from ..fleet.base import Endpoint
from ..results import JsonlStore
from ..judge_stream import StreamJudge
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


class PairJudge(StreamJudge):
    """Judges PairTasks over one or more judge replicas from one queue (each pair once; see the
    module docstring): the stream loop is orchestrator.judge_stream.StreamJudge's, as the run's Scorer's."""

    noun = "pair"
    tag = "[judge]"
    stops = "arena"

    def __init__(self, *, judgments: Judgments, ui, protocol: str, orders: str, batch_size: int,
                 max_in_flight: int, max_attempts: int, client_factory, restart=None, judge_hash: str = "",
                 stall_timeout_s: float = 600.0, total: int | None = None, done_before: int = 0):
        super().__init__(ui=ui, batch_size=batch_size, max_in_flight=max_in_flight, max_attempts=max_attempts,
                         client_factory=client_factory, restart=restart, stall_timeout_s=stall_timeout_s)
        self.judgments = judgments
        self.protocol = protocol
        self.orders = orders
        self.judge_hash = judge_hash
        self.total = total
        self.count = done_before

    def run(self, endpoints: list[Endpoint], tasks: list[PairTask]) -> JudgingOutcome:
        outcome = JudgingOutcome()
        self._total = self.total or len(tasks)
        queue, failures = self.serve(endpoints, tasks, outcome)
        if queue.left:
            outcome.unjudged = list(queue.left)
            self.ui.log(f"[judge] giving up on {len(queue.left)} pair(s) after {self.max_attempts} attempts: "
                        f"{failures[-1] if failures else 'no judge left'}")
        return outcome

    def request(self, task: PairTask):
        return pair_request(task, self.protocol, self.orders)

    def received(self, task: PairTask, result, replica: str) -> tuple[dict, str]:
        record = judgment_record(task, result_to_dict(result), judge_hash=self.judge_hash, orders=self.orders)
        if replica:
            record["judge_replica"] = replica
        return record, ""

    def keep(self, task: PairTask, record: dict, outcome: JudgingOutcome, reason: str) -> None:
        self.judgments.append(record)
        self.count += 1
        if record["status"] == statuses.OK:
            outcome.judged += 1
        else:
            outcome.failed += 1
        self.ui.print(verdict_line(self.count, self._total, record))
