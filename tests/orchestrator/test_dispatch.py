"""The dynamic queue's policy, against scripted in-process editors that fail on cue.

The real editor cannot be told to answer UNAVAILABLE for one chosen sample; these servers speak
the same Editor contract (progress events, then a result) and fail exactly where a test says.
The real editor and a real SIGKILL are exercised in test_e2e.py.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from PIL import Image

from editfleet.v1 import common_pb2, editor_pb2, editor_pb2_grpc
from editfleet_common.launch import free_port
from orchestrator.benchmark import Sample
from orchestrator.config import EditorConfig
from orchestrator.dispatch import Dispatcher
from orchestrator.fleet.base import Endpoint
from editor_service.client import EditorClient
from orchestrator.fleet.static import StaticFleet
from orchestrator.results import RunDir
from orchestrator.ui import PlainUI

from conftest import png_bytes


class ScriptedEditor(editor_pb2_grpc.EditorServicer):
    """`script[sample_id]` is a list of actions, one per call: "ok", a StatusCode, or "die"."""

    def __init__(self, name: str, delay: float = 0.0, script: dict | None = None, content_hash: str = "sha256:m1"):
        self.name, self.delay, self.script, self.content_hash = name, delay, script or {}, content_hash
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        editor_pb2_grpc.add_EditorServicer_to_server(self, self.server)
        self.health = health.HealthServicer()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def Edit(self, request, context):
        with self.lock:
            self.calls.append(request.sample_id)
            actions = self.script.get(request.sample_id, [])
            action = actions.pop(0) if actions else "ok"
        yield editor_pb2.EditEvent(progress=editor_pb2.EditProgress(step=1, total_steps=2))
        if action == "die":
            self.server.stop(0)
            time.sleep(1)
            return
        if isinstance(action, grpc.StatusCode):
            context.abort(action, f"scripted {action.name}")
        time.sleep(self.delay)
        yield editor_pb2.EditEvent(progress=editor_pb2.EditProgress(step=2, total_steps=2))
        # The "edit" is a function of the seed only, like a deterministic pipeline.
        color = tuple(request.seed.to_bytes(8, "big")[:3])
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), color).save(buf, format="PNG")
        yield editor_pb2.EditEvent(result=editor_pb2.EditResult(
            sample_id=request.sample_id, image_png=buf.getvalue(), width=8, height=8, seed=request.seed,
            num_inference_steps=2))

    def GetInfo(self, request, context):
        return editor_pb2.EditorInfo(model=common_pb2.ModelIdentity(content_hash=self.content_hash,
                                                                     runtime={"accelerator": self.name}))

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def editors():
    made = []

    def make(*args, **kw):
        editor = ScriptedEditor(*args, **kw)
        made.append(editor)
        return editor

    yield make
    for editor in made:
        editor.stop()


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i:02d}", category="c", instruction="x", image_bytes=png_bytes()) for i in range(n)]


class RestartingFleet(StaticFleet):
    """Static addresses, but a dead editor "comes back" as `replacement` (a pod rescheduled elsewhere)."""

    def __init__(self, addresses, replacement: ScriptedEditor):
        super().__init__(addresses, None)
        self.replacement = replacement

    def restart_editor(self, endpoint: Endpoint) -> Endpoint | None:
        return Endpoint(endpoint.name, self.replacement.address)


def run_dispatch(tmp_path, servers, items, fleet=None, **settings):
    fleet = fleet or StaticFleet([s.address for s in servers], None)
    endpoints = fleet.start_editors(len(servers))
    with EditorClient(endpoints[0].address) as client:
        identity = dataclasses.asdict(client.info())  # as the run takes it, from the first editor
    run_dir = RunDir(tmp_path / "run").create()
    out = io.StringIO()
    dispatcher = Dispatcher(fleet, endpoints, items, settings=EditorConfig(steps=2, **settings), run_dir=run_dir,
                            ui=PlainUI(out), client_factory=EditorClient, identity=identity)
    dispatcher.ui.start_editing(len(items), 0, [e.name for e in endpoints])
    outcome = dispatcher.run()
    lines = run_dir.edits.read()
    return outcome, lines, out.getvalue()


def test_free_editors_pull_the_next_sample_no_shards(tmp_path, editors):
    fast, slow = editors("fast", delay=0.0), editors("slow", delay=0.4)
    outcome, lines, _ = run_dispatch(tmp_path, [fast, slow], samples(12))
    assert outcome.edited == 12 and outcome.remaining == []
    assert sorted(l["id"] for l in lines) == [f"s{i:02d}" for i in range(12)]  # each exactly once
    assert len(fast.calls) >= 8 and len(slow.calls) <= 4  # the fast editor is not held to half


def test_unavailable_goes_back_to_the_queue(tmp_path, editors):
    a = editors("a", script={"s00": [grpc.StatusCode.UNAVAILABLE]})
    outcome, lines, log = run_dispatch(tmp_path, [a], samples(3))
    assert outcome.edited == 3 and outcome.failed == 0
    s00 = [l for l in lines if l["id"] == "s00"]
    assert len(s00) == 1 and s00[0]["status"] == "ok" and s00[0]["attempts"] == 2
    assert "back to the queue (attempt 1/3)" in log


def test_permanent_failure_is_recorded_not_retried(tmp_path, editors):
    a = editors("a", script={"s01": [grpc.StatusCode.INVALID_ARGUMENT] * 5})
    b = editors("b", script={"s01": [grpc.StatusCode.INVALID_ARGUMENT] * 5})
    outcome, lines, _ = run_dispatch(tmp_path, [a, b], samples(4))
    assert (outcome.edited, outcome.failed) == (3, 1)
    (failure,) = [l for l in lines if l["id"] == "s01"]
    assert failure["status"] == "failed" and failure["final"] is True
    assert failure["code"] == "INVALID_ARGUMENT" and "scripted INVALID_ARGUMENT" in failure["error"]
    assert (a.calls + b.calls).count("s01") == 1


def test_attempts_are_bounded_and_the_failure_is_kept_for_the_next_run(tmp_path, editors):
    a = editors("a", script={"s00": [grpc.StatusCode.UNAVAILABLE] * 9})
    b = editors("b", script={"s00": [grpc.StatusCode.UNAVAILABLE] * 9})
    outcome, lines, _ = run_dispatch(tmp_path, [a, b], samples(3), max_attempts=3)
    (failure,) = [l for l in lines if l["id"] == "s00"]
    assert failure["final"] is False and failure["attempts"] == 3 and "gave up after 3 attempts" in failure["error"]
    assert (a.calls + b.calls).count("s00") == 3
    assert outcome.edited == 2


def test_a_dead_editor_leaves_its_sample_to_the_others(tmp_path, editors):
    a = editors("a", delay=0.05)
    b = editors("b", script={"s00": ["die"], "s01": ["die"]})
    outcome, lines, log = run_dispatch(tmp_path, [a, b], samples(6))
    assert outcome.edited == 6 and outcome.remaining == []
    assert outcome.editors_lost == ["editor-1"]
    assert sorted(l["id"] for l in lines if l["status"] == "ok") == [f"s{i:02d}" for i in range(6)]
    assert "taken out of the pool" in log


def test_when_every_editor_is_gone_the_rest_is_left_for_a_rerun(tmp_path, editors):
    a = editors("a", script={"s01": ["die"]})
    outcome, lines, _ = run_dispatch(tmp_path, [a], samples(4))
    assert outcome.edited == 1
    assert sorted(s.id for s in outcome.remaining) == ["s01", "s02", "s03"]
    assert not [l for l in lines if l["status"] == "failed"]  # not failures: just not done yet


def test_the_same_seeds_whatever_the_number_of_editors(tmp_path, editors):
    one = run_dispatch(tmp_path / "one", [editors("a")], samples(6))[1]
    three = run_dispatch(tmp_path / "three", [editors("b"), editors("c"), editors("d")], samples(6))[1]
    by_id = lambda lines: {l["id"]: (l["seed"], l["sha256"]) for l in lines}  # noqa: E731
    assert by_id(one) == by_id(three)


def test_an_editor_answering_internal_to_everything_does_not_fail_the_benchmark(tmp_path, editors):
    # INTERNAL is the editor's own trouble (a CUDA error leaves its context broken, every later
    # request fails at once). It says nothing about the sample: the sample goes to another editor,
    # and the sick editor, failing fast, must not drain the queue into final failures.
    items = samples(8)
    sick = editors("sick", script={s.id: [grpc.StatusCode.INTERNAL] * 9 for s in items})
    healthy = editors("healthy", delay=0.1)
    outcome, lines, log = run_dispatch(tmp_path, [sick, healthy], items)
    assert outcome.edited == 8 and outcome.failed == 0
    assert not [l for l in lines if l["status"] == "failed"]
    assert "scripted INTERNAL; back to the queue" in log


def test_a_restarted_editor_running_another_model_is_not_used(tmp_path, editors):
    items = samples(6)
    a = editors("a", script={s.id: ["die"] for s in items})  # dies on whichever sample it takes first
    b = editors("b", delay=0.05)
    other_model = editors("a-again", content_hash="sha256:m2")
    outcome, lines, log = run_dispatch(tmp_path, [a, b], items,
                                       fleet=RestartingFleet([a.address, b.address], other_model))
    assert other_model.calls == []
    assert outcome.edited == 6 and outcome.editors_lost == ["editor-0"]
    assert "restarted editor not used" in log and "content_hash differs" in log


def test_a_restarted_editor_on_other_hardware_is_used_with_a_warning(tmp_path, editors):
    a = editors("a", script={"s01": ["die"]})
    same_model = editors("a-on-another-gpu", delay=0.05)
    outcome, lines, log = run_dispatch(tmp_path, [a], samples(4),
                                       fleet=RestartingFleet([a.address], same_model))
    assert outcome.edited == 4 and outcome.editors_lost == [] and outcome.restarts == 1
    assert "s01" in same_model.calls
    assert "warning: the restarted editor differs in accelerator" in log
