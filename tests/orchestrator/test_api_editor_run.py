"""Whole `orchestrator run`s whose editor is an API editor (editor.backend openai-images, issue 29): the
real CLI, the local fleet's one editor process in API mode with request slots, pointed at a real
editfleet editor's OpenAI Images route (--http-port, tiny model, CPU), directly and through the
tests' fault proxy (tests/openai_endpoint.py: 429 + Retry-After, 500, a stall, a content-policy 400,
a cut body, a 401). Every sample is edited exactly once or recorded with its failure kind, a rerun
re-sends nothing that finished, and the canary key is in no output file, log or report.
The upstream editor is shared by the runs (its start is most of the time)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLE, REPO, TAUGHT_JUDGE, TINY_EDITOR, orchestrator_cmd, require_tiny_models
from editfleet_common.launch import ServiceProcess, free_port, venv_python
from tests.openai_endpoint import MODERATION_MESSAGE, Fault, FaultProxy

KEY_ENV = "EDITFLEET_TEST_EDITOR_API_KEY"
KEY = "sk-editfleet-canary-5b0e1d7a3c"
INSTRUCTIONS = {  # the example benchmark's, by sample id
    "phys-01": "Show the ice cube after it has been left in the hot sun for an hour.",
    "phys-02": "Show the glass a moment after it is pushed off the table.",
    "env-01": "Show the same tree in the middle of winter.",
    "env-02": "Show the river after a week of heavy rain.",
    "cult-01": "Decorate the house for the Lunar New Year.",
    "cult-02": "Set the table for a traditional Thanksgiving dinner.",
}


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []


def about(sample_id):
    return lambda body: body.get("prompt") == INSTRUCTIONS[sample_id]


def cli(args, log: Path, timeout=400) -> tuple[int, str]:
    env = {**os.environ, KEY_ENV: KEY}
    with open(log, "w") as out:
        code = subprocess.run(orchestrator_cmd(*args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env,
                              timeout=timeout).returncode
    return code, log.read_text(encoding="utf-8")


def no_key_anywhere(*roots: Path, texts=()):
    needle = KEY.encode()
    hits = [str(p) for root in roots for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
    hits += [f"text {i}" for i, t in enumerate(texts) if KEY in t]
    assert not hits, f"the API key leaked into: {hits}"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A real editfleet editor (tiny Qwen-Image-Edit, CPU) serving OpenAI's Images API."""
    require_tiny_models(demo_judge=True)
    http_port = free_port()
    port = free_port()
    proc = ServiceProcess(
        name="upstream editor", port=port,
        argv=[venv_python("editor"), "-m", "editor_service", "--model", str(TINY_EDITOR), "--device", "cpu",
              "--port", str(port), "--http-port", str(http_port), "--threads", "2", "--max-queue", "8"],
        env={"OMP_NUM_THREADS": "2"}, log_path=tmp_path_factory.mktemp("upstream") / "editor.log").start()
    try:
        proc.wait_healthy(timeout=300)
        proc.url = f"http://127.0.0.1:{http_port}/v1"
        yield proc
    finally:
        proc.stop(grace=10)


def write_config(base: Path, url: str, *, limit: int, **editor) -> Path:
    bench = base / "bench"
    shutil.copytree(EXAMPLE.parent, bench)
    config = {
        "benchmark": {"path": str(bench / "benchmark.jsonl"), "limit": limit},
        "editor": {"backend": "openai-images", "provider": "editfleet", "base_url": url, "model": str(TINY_EDITOR),
                   "api_key_env": KEY_ENV, "max_concurrency": 2, "request_timeout_s": 120, "max_retries": 4,
                   "steps": 2, "width": 32, "height": 32, "server_args": ["--retry-base-s", "0.05"], **editor},
        "judge": {"model": str(TAUGHT_JUDGE), "max_batch": 4, "prestart": False},  # examples/config.yaml's
        "output": str(base / "out"),
    }
    path = base / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def direct_run(upstream, tmp_path_factory):
    """4 samples, edited over the upstream editor's HTTP route (2 request slots), then judged."""
    base = tmp_path_factory.mktemp("api-direct")
    config = write_config(base, upstream.url, limit=4)
    code, output = cli(["run", "--config", str(config), "--progress", "plain"], base / "cli.log")
    return {"code": code, "output": output, "out": base / "out", "base": base}


def test_a_whole_run_with_an_api_editor(direct_run, upstream):
    assert direct_run["code"] == 0, direct_run["output"]
    out = direct_run["out"]
    edits = [e for e in lines(out / "edits.jsonl") if e.get("status") == "ok"]
    assert sorted(Counter(e["id"] for e in edits).values()) == [1, 1, 1, 1]  # each sample edited once
    assert len(lines(out / "scores.jsonl")) == 4
    assert "Editing 4 of 4 samples on 2 request slot(s) of the API editor: API 1, API 2" in direct_run["output"]
    assert "[API 1] " in direct_run["output"] and ": request sent" in direct_run["output"]  # a line per slot
    for edit in edits:
        made = {k: json.loads(v) for k, v in edit["call_arguments"].items()}  # JSON values
        assert made["provider"] == "editfleet" and made["attempts"] == 1 and made["request_id"].startswith("req_")
        assert made["seed_sent"] is True and made["seed"] == edit["seed"] and made["size"] == "32x32"
        assert edit["editor"] in ("API 1", "API 2") and edit["timings"]["run_s"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    editor = manifest["editor"]["model"]
    assert editor["load_format"] == "api" and editor["runtime"]["backend"] == "openai-images"
    assert editor["runtime"]["provider"] == "editfleet" and editor["runtime"]["served_model"] == str(TINY_EDITOR)
    assert editor["runtime"]["seed"].startswith("sent")  # editfleet's route takes the seed
    assert manifest["config"]["editor"]["api_key_env"] == KEY_ENV
    assert (out / "report.html").is_file()
    # run totals: summary.json, the manifest, the console and the report say the same
    totals = json.loads((out / "summary.json").read_text())["editor_api"]
    assert totals == manifest["editor_api"]
    assert (totals["provider"], totals["model_requested"], totals["served_models"]) == (
        "editfleet", str(TINY_EDITOR), [str(TINY_EDITOR)])
    assert (totals["calls"], totals["requests"], totals["retries"], totals["edits"], totals["refusals"]) == (4, 4, 0, 4, 0)
    assert totals["requests_exact"] and totals["cost"] is None and totals["seed"]["takes_seed"] is True
    assert "  API requests: 4 for 4 image(s)   retries: 0   refusals: 0" in direct_run["output"]
    assert "  API cost: not reported by the provider" in direct_run["output"]
    assert "API requests: 4 for 4 image(s)" in (out / "report.html").read_text()
    # the edit is the one the same editor makes over gRPC for that seed: one core behind both routes
    from editor_service.client import EditorClient

    first = edits[0]
    source = (EXAMPLE.parent / f"images/{first['id']}.png").read_bytes()
    with EditorClient(upstream.address) as client:
        direct = client.edit(source, first["instruction"], steps=2, seed=first["seed"], width=32, height=32)
    [saved] = (out / "edits").rglob(f"{first['id']}.png")
    assert saved.read_bytes() == direct.image_png
    no_key_anywhere(out, texts=[direct_run["output"]])


@pytest.fixture(scope="module")
def faulty_run(upstream, tmp_path_factory):
    """6 samples through the fault proxy, each meeting one fault; edits only (--no-score), then rerun."""
    proxy = FaultProxy(upstream.url, api_key=KEY).start()
    try:
        proxy.when(about("phys-01"), Fault("429", retry_after=1))
        # phys-02: its first call gives up after 5 requests (editor.max_retries 4), the sample is handed out
        # again, and its second call is answered at its second request
        proxy.when(about("phys-02"), *[Fault("500")] * 6)
        proxy.when(about("env-01"), Fault("stall", seconds=3))
        proxy.when(about("env-02"), Fault("moderation400"), forever=True)
        proxy.when(about("cult-01"), Fault("cut"))
        proxy.when(about("cult-02"), Fault("401"))
        base = tmp_path_factory.mktemp("api-faults")
        config = write_config(base, proxy.url, limit=6)
        code, output = cli(["run", "--config", str(config), "--progress", "plain", "--no-score"], base / "cli.log")
        sent_first = len(proxy.image_requests)
        rerun_code, rerun_output = cli(["run", "--config", str(config), "--progress", "plain", "--no-score"],
                                       base / "rerun.log")
        yield {"code": code, "output": output, "out": base / "out", "base": base, "proxy": proxy,
               "seen": list(proxy.image_requests), "sent_first": sent_first, "rerun_code": rerun_code,
               "rerun_output": rerun_output}
    finally:
        proxy.stop()


def test_faults_on_the_way_every_sample_edited_once_or_recorded_with_its_kind(faulty_run):
    # a sample whose edit failed for good: exit 0 or, where the CLI tells "some failed" apart, 3
    assert faulty_run["code"] in (0, 3), faulty_run["output"]
    out = faulty_run["out"]
    records = lines(out / "edits.jsonl")
    ok = Counter(r["id"] for r in records if r.get("status") == "ok")
    assert ok == Counter({i: 1 for i in INSTRUCTIONS if i != "env-02"}), records
    refused = [r for r in records if r.get("status") == "failed"]
    assert [(r["id"], r["code"], r["final"]) for r in refused] == [("env-02", "PERMISSION_DENIED", True)]
    assert MODERATION_MESSAGE in refused[0]["error"] and "moderation_blocked" in refused[0]["error"]
    assert not list((out / "edits").rglob("env-02.png"))  # never replaced by the source image

    seen = faulty_run["seen"][:faulty_run["sent_first"]]
    faults = {sample: [s.fault for s in seen if about(sample)(s.body)] for sample in INSTRUCTIONS}
    assert faults["phys-01"] == ["429", ""] and faults["phys-02"] == ["500"] * 6 + [""]
    assert faults["env-01"] == ["stall", ""] and faults["cult-01"] == ["cut", ""]
    assert faults["env-02"] == ["moderation400"] and faults["cult-02"] == ["401", ""]
    phys01 = [s for s in seen if about("phys-01")(s.body)]
    assert phys01[1].at - phys01[0].at >= 1.0  # after its Retry-After
    # exactly one request per sample reached the editor and came back whole
    assert Counter(i for i in INSTRUCTIONS for s in seen if about(i)(s.body) and not s.fault) == Counter(
        {i: 1 for i in INSTRUCTIONS if i != "env-02"})
    by_id = {r["id"]: r for r in records if r.get("status") == "ok"}
    attempts = {i: json.loads(r["call_arguments"]["attempts"]) for i, r in by_id.items()}
    assert attempts["phys-02"] == 2 and attempts["env-01"] == 2 and attempts["cult-01"] == 2
    # the call handed out again: a line of its own (no `id`: it settles nothing) with the requests it sent
    handed_back = [r for r in records if r.get("status") == "handed_back"]
    assert [(r["sample_id"], r["attempt"], r["code"], r["api_requests"]) for r in handed_back] == [
        ("phys-02", 1, "UNAVAILABLE", 5)] and "id" not in handed_back[0]
    assert "after 5 attempt(s)" in handed_back[0]["error"] and by_id["phys-02"]["attempts"] == 2
    assert "back to the queue (attempt 1/3)" in faulty_run["output"]
    # a passing 401 (the models list still took the key) is retried like a 5xx; a revoked key stops the
    # API editor (tests/editor/test_api_editor.py)
    assert attempts["cult-02"] == 2 and "editor restart" not in faulty_run["output"]
    # the run totals count every request the provider saw, exactly: the refused one's and the handed-back call's
    totals = json.loads((out / "summary.json").read_text())["editor_api"]
    assert (totals["requests"], totals["calls"], totals["retries"]) == (faulty_run["sent_first"], 7, 9) == (16, 7, 9)
    assert (totals["edits"], totals["refusals"], totals["failures"]) == (5, 1, 0)
    assert (totals["requests_exact"], totals["unrecorded_calls"]) == (True, 0)
    assert "after 1 attempt(s)" in refused[0]["error"] and refused[0]["api_requests"] == 1
    assert "  API requests: 16 for 5 image(s)   retries: 9   refusals: 1   other failures: 0" in faulty_run["output"]
    no_key_anywhere(out, texts=[faulty_run["output"], faulty_run["rerun_output"]])


def test_a_rerun_sends_nothing_that_finished(faulty_run):
    assert faulty_run["rerun_code"] in (0, 3), faulty_run["rerun_output"]
    assert len(faulty_run["seen"]) == faulty_run["sent_first"]  # no image request at all: all were done or final
    records = lines(faulty_run["out"] / "edits.jsonl")
    assert Counter(r["id"] for r in records if r.get("status") == "ok") == Counter(
        {i: 1 for i in INSTRUCTIONS if i != "env-02"})
    assert json.loads((faulty_run["out"] / "summary.json").read_text())["editor_api"]["requests"] == 16


@pytest.fixture(scope="module")
def killed_run(upstream, tmp_path_factory):
    """6 samples over 2 slots through the proxy, a provider file of the lab's own that takes no seed and
    streams 2 partial images; one sample's request stalls, the orchestrator is killed with SIGKILL once
    the 5 others are recorded, then the same command is run again."""
    base = tmp_path_factory.mktemp("api-kill")
    profile = json.loads((REPO / "editor_service/providers/editfleet.json").read_text())
    profile.update(name="editfleet-no-seed", takes_seed=False, fields={**profile["fields"], "seed": None})
    (base / "no-seed.json").write_text(json.dumps(profile))
    proxy = FaultProxy(upstream.url, api_key=KEY).start()
    stalled = "phys-01"
    proxy.when(about(stalled), Fault("stall", seconds=60))  # in flight when the orchestrator dies
    try:
        config = write_config(base, proxy.url, limit=6, provider=str(base / "no-seed.json"),
                              server_args=["--retry-base-s", "0.05", "--partial-images", "2"])
        args = ["run", "--config", str(config), "--progress", "plain", "--no-score"]
        log = open(base / "killed.log", "w")
        proc = subprocess.Popen(orchestrator_cmd(*args), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, KEY_ENV: KEY})
        deadline = time.monotonic() + 120
        while sum(r.get("status") == "ok" for r in lines(base / "out/edits.jsonl")) < 5:
            assert proc.poll() is None and time.monotonic() < deadline, (base / "killed.log").read_text()
            time.sleep(0.1)
        in_flight = [s for s in proxy.image_requests if about(stalled)(s.body)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()
        before = list(proxy.image_requests)
        code, output = cli(args, base / "rerun.log")
        yield {"base": base, "out": base / "out", "before": before, "after": list(proxy.image_requests),
               "in_flight": in_flight, "code": code, "output": output, "stalled": stalled,
               "killed_output": (base / "killed.log").read_text()}
    finally:
        proxy.stop()


def test_kill_9_mid_run_then_a_rerun_resends_nothing_that_finished(killed_run):
    assert killed_run["code"] == 0, killed_run["output"]
    stalled, before, after = killed_run["stalled"], killed_run["before"], killed_run["after"]
    assert [s.fault for s in killed_run["in_flight"]] == ["stall"]  # it was in flight at the kill
    finished = [i for i in INSTRUCTIONS if i != stalled]
    sent = Counter(i for i in INSTRUCTIONS for s in after if about(i)(s.body))
    assert {i: sent[i] for i in finished} == {i: 1 for i in finished}, sent  # none of them sent again
    rerun = [s for s in after[len(before):] if about(stalled)(s.body)]
    assert len(rerun) == 1 and not rerun[0].fault and len(after) - len(before) == 1  # the rerun sent only that one
    assert "Resuming: 5 edit(s) done, 0 recorded failure(s) kept, 1 to edit" in killed_run["output"]
    records = lines(killed_run["out"] / "edits.jsonl")
    assert Counter(r["id"] for r in records if r.get("status") == "ok") == Counter({i: 1 for i in INSTRUCTIONS})
    manifest = json.loads((killed_run["out"] / "manifest.json").read_text())
    killed, rerun_session = manifest["sessions"]
    assert killed["status"] == "interrupted" and rerun_session["exit_code"] == 0  # edits only: not judged yet
    # the provider takes no seed: "same seed, same edit" is said not to apply, everywhere the totals are
    totals = manifest["editor_api"]
    assert totals["seed"]["takes_seed"] is False and totals["provider"] == "editfleet-no-seed"
    assert manifest["editor"]["model"]["runtime"]["seed"].startswith("not applicable")
    assert all(json.loads(r["call_arguments"]["seed_sent"]) is False for r in records if r.get("status") == "ok")
    note = "Same seed, same edit: not applicable: the API takes no seed"
    assert note in killed_run["output"] and note in (killed_run["out"] / "report.html").read_text()
    assert json.loads((killed_run["out"] / "summary.json").read_text())["editor_api"] == totals
    # the stream's partial images: a line per slot as they come, counted in the totals' usage
    assert re.search(r"\[API [12]\] \w+/[\w-]+: partial image 1/2 after \d+\.\ds", killed_run["killed_output"])
    assert totals["edits_with_usage"] == 6 and totals["usage"]["total_tokens"] == 0
    no_key_anywhere(killed_run["out"], texts=[killed_run["output"], killed_run["killed_output"]])


def test_run_totals_from_known_edit_lines():
    """api_usage.totals over lines as the dispatcher writes them: an OpenRouter image with its cost, an OpenAI
    one with its tokens, a refusal and a failure given up after two calls (their requests from the messages),
    an image whose first call was handed out again (its requests unknown)."""
    from orchestrator.api_usage import totals

    args = lambda **kw: {k: json.dumps(v) for k, v in kw.items()}  # noqa: E731 - as call_arguments are stored
    identity = {"model": {"model": "google/gemini-2.5-flash-image", "load_format": "api", "runtime": {
        "backend": "openai-chat-image", "provider": "openrouter", "endpoint_host": "openrouter.ai",
        "max_concurrency": "4", "seed": "sent: the provider takes a seed"}}}
    edit_lines = [
        {"id": "a", "status": "ok", "attempts": 1, "call_arguments": args(
            attempts=3, latency_s=2.5, served_model="google/gemini-2.5-flash-image",
            usage={"prompt_tokens": 1290, "completion_tokens": 1300, "cost": 0.0387})},
        {"id": "b", "status": "ok", "attempts": 2, "call_arguments": args(
            attempts=1, latency_s=1.5, served_model="", usage={
                "input_tokens": 50, "output_tokens": 4160, "input_tokens_details": {"image_tokens": 40, "text_tokens": 10}})},
        {"id": "c", "status": "failed", "code": "PERMISSION_DENIED", "final": True,
         "error": "refused by openrouter (content policy; HTTP 400 moderation): flagged (after 2 attempt(s))"},
        {"id": "d", "status": "failed", "code": "UNAVAILABLE", "final": False,
         "error": "gave up after 2 attempts: API 1: HTTP 500 (after 6 attempt(s); editor.max_retries 5) | "
                  "API 2: HTTP 503 (after 6 attempt(s); editor.max_retries 5)"},
        {"id": "e", "status": "failed", "code": "INVALID_ARGUMENT", "final": True, "error": "instruction: empty"},
    ]
    t = totals(edit_lines, identity)
    assert (t["samples"], t["calls"], t["requests"], t["retries"]) == (5, 5, 3 + 1 + 2 + 12, 18 - 5)
    assert (t["edits"], t["refusals"], t["failures"], t["unrecorded_calls"], t["requests_exact"]) == (2, 1, 2, 1, False)
    assert t["usage"] == {"prompt_tokens": 1290, "completion_tokens": 1300, "input_tokens": 50, "output_tokens": 4160,
                          "input_tokens_details.image_tokens": 40, "input_tokens_details.text_tokens": 10}
    assert (t["cost"], t["edits_with_cost"], t["edits_with_usage"], t["latency_s"]) == (0.0387, 1, 2, 4.0)
    assert t["served_models"] == ["google/gemini-2.5-flash-image"] and t["max_concurrency"] == 4
    assert t["seed"]["takes_seed"] is True


def test_run_totals_count_handed_back_calls_exactly():
    """Lines as the dispatcher writes them now: a call handed out again has a line of its own, a failure line
    names its own call's requests (api_requests); a "gave up" message quoting calls already counted, and a
    chain's turn quoting its input's failure, add nothing; a call whose requests no one knows (the editor died
    under it) leaves the totals a lower bound. Lines of both formats in one folder (a run resumed by this
    version) add up."""
    from orchestrator.api_usage import totals

    args = lambda **kw: {k: json.dumps(v) for k, v in kw.items()}  # noqa: E731
    identity = {"model": {"model": "gpt-image-1.5", "load_format": "api", "runtime": {"provider": "openai"}}}
    gave_up = ("gave up after 2 attempts: API 1: HTTP 500 (after 6 attempt(s); editor.max_retries 5) | "
               "API 2: HTTP 503 (after 6 attempt(s); editor.max_retries 5)")
    back = lambda sid, n, code="UNAVAILABLE": {"status": "handed_back", "sample_id": sid, "attempt": 1,  # noqa: E731
                                               "code": code, "error": "HTTP 500", "api_requests": n}
    new = [
        back("a", 6), {"id": "a", "status": "ok", "attempts": 2, "call_arguments": args(attempts=2)},
        back("b", 6), {"id": "b", "status": "failed", "code": "UNAVAILABLE", "final": False, "attempts": 2,
                       "error": gave_up, "api_requests": 6},
        {"id": "b2", "status": "failed", "code": "CHAIN_FAILED", "final": False, "attempts": 0, "api_requests": 0,
         "error": "not edited: its input is the edit of 'b', which failed: " + gave_up},
        {"id": "c", "status": "failed", "code": "INVALID_ARGUMENT", "final": True, "error": "prompt: empty",
         "api_requests": 0},
    ]
    t = totals(new, identity)
    assert (t["calls"], t["requests"], t["retries"], t["unrecorded_calls"], t["requests_exact"]) == (4, 20, 16, 0, True)
    assert (t["samples"], t["edits"], t["failures"]) == (4, 1, 3)
    # a handed-back call of unknown requests, and an old-format chain line (its input's requests not again)
    t = totals([*new, back("d", None, "DEADLINE_EXCEEDED"),
                {"id": "d", "status": "ok", "attempts": 2, "call_arguments": args(attempts=1)},
                {"id": "b3", "status": "failed", "code": "CHAIN_FAILED", "final": False, "error": gave_up}], identity)
    assert (t["calls"], t["requests"], t["unrecorded_calls"], t["requests_exact"]) == (5, 21, 1, False)
    from orchestrator.api_usage import console_lines

    assert "  API requests: 21+ (1 call(s) of unknown requests) for 2 image(s)   retries: 16" in console_lines(t)[1]
    # a handed-back line from a killed session settles nothing: the next session's image is counted as itself
    t = totals([back("e", 3), {"id": "e", "status": "ok", "attempts": 1, "call_arguments": args(attempts=1)}], identity)
    assert (t["calls"], t["requests"], t["unrecorded_calls"], t["samples"]) == (2, 4, 0, 1)


def test_bars_show_a_line_per_request_slot_with_its_seconds_and_partial_images(capsys):
    """With a terminal (BarsUI): each slot's line names the sample in flight, the seconds since its request
    went out (redrawn without any event) and the partial images received; no denoise-step bars."""
    import io
    import threading

    from orchestrator.benchmark import Sample
    from orchestrator.ui import BarsUI

    ui = BarsUI(io.StringIO())
    ui.TICK_S = 0.05
    ui.start_editing(3, 0, ["API 1", "API 2"], api=True)
    sample = Sample(id="phys-01", category="physical", instruction=INSTRUCTIONS["phys-01"])
    ui.editor_begin(0, "API 1", sample, 0)
    ui.editor_step(0, 1, 3)  # the first of 2 partial images (the completed image is step 3 of 3)
    time.sleep(0.3)
    assert re.fullmatch(r"phys-01 0\.[2-9]s, partial images 1/2", ui.slot_text(0)) and ui.slot_text(1) == "idle"
    drawn = capsys.readouterr().err
    assert re.search(r"\[API 1\] request, phys-01 0\.[1-9]s, partial images 1/2", drawn)  # redrawn as time goes
    assert "[API 2] request, idle" in drawn and "Denoising" not in drawn
    ui.editor_end(0, "API 1", sample, ok=True, text="1024x1024 in 0.3s", done=True)
    assert ui.slot_text(0) == "idle"
    ui.finish_editing()
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "ui-slots"]


def test_the_example_api_editor_config_plans_request_slots():
    """examples/api-editor.yaml (docs/api-editors.md's run) is a valid run config: its dry run plans the
    API editor's request slots and starts nothing (the key's variable set: it is checked, never sent)."""
    done = subprocess.run(orchestrator_cmd("run", "--config", "examples/api-editor.yaml", "--dry-run"), cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OPENAI_API_KEY": KEY})
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("editors     4 request slots of an API editor (openai-images, provider openai, https://api.openai.com/v1): "
            "gpt-image-1.5; steps default, guidance default, 1024x1024, base seed 0") in done.stdout
    assert KEY not in done.stdout + done.stderr


def test_a_missing_api_key_variable_stops_the_run_before_anything_starts(tmp_path):
    """editor.api_key_env (and judge.api_key_env of an API judge) naming a variable unset or empty in the
    orchestrator's environment, which the local fleet's services inherit: one line naming the variable and
    the key, exit 2, no output folder (was: the API editor's start failed after the run folder was made, and an
    API judge's only after every edit). The value of a variable that is set is never shown."""
    def cli_run(*args, **env):
        base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", KEY_ENV, "EDITFLEET_TEST_JUDGE_KEY")}
        done = subprocess.run(orchestrator_cmd("run", *args), cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**base, **env})
        return done.returncode, done.stdout + done.stderr

    editor_line = ("editor.api_key_env: the environment variable OPENAI_API_KEY is not set or empty here, and the API "
                   "editor (openai-images) reads its API key from it (export OPENAI_API_KEY=...; or editor.api_key_env: "
                   "'' for an endpoint that takes no key)")
    code, output = cli_run("--config", "examples/api-editor.yaml", "--dry-run", OPENAI_API_KEY="")  # empty
    assert code == 2 and editor_line in output and output.count("api_key_env") == 2, output  # the line, alone
    out = tmp_path / "out"
    code, output = cli_run("--config", "examples/api-editor.yaml", "--output", str(out))  # unset, a real run
    assert code == 2 and editor_line in output and not out.exists(), output
    # an API judge's key: the editor's variable set (its value never shown), the judge's unset
    config = yaml.safe_load((REPO / "examples/api-editor.yaml").read_text())
    config["benchmark"]["path"] = str(EXAMPLE)
    config["editor"]["api_key_env"] = KEY_ENV
    config["judge"] = {"backend": "openai", "model": "gpt-4.1-2025-04-14", "base_url": "https://api.example.com/v1",
                       "api_key_env": "EDITFLEET_TEST_JUDGE_KEY"}
    config["output"] = str(out)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, output = cli_run("--config", str(tmp_path / "run.yaml"), **{KEY_ENV: KEY})
    assert code == 2 and not out.exists(), output
    assert ("judge.api_key_env: the environment variable EDITFLEET_TEST_JUDGE_KEY is not set or empty here, and the "
            "API judge (judge.backend openai) reads its API key from it") in output
    assert "editor.api_key_env" not in output and KEY not in output
    code, output = cli_run("--config", str(tmp_path / "run.yaml"), "--dry-run", "--no-score", **{KEY_ENV: KEY})
    assert code == 0 and "judge.api_key_env" not in output, output  # no judging: its key is not needed


def test_the_openai_provider_sends_the_options_its_reference_lists_and_refuses_the_rest(tmp_path):
    """providers/openai.json's options as OpenAI's reference lists them (its `source`): the API editor in API mode
    (the service, over gRPC) sends quality xhigh/max, complexity and moderation as multipart fields of
    /images/edits (the tests' own images server keeps each request's fields), and refuses a value the shape does
    not list (DALL-E's standard and hd, a moderation or complexity level of no such name) before sending, naming
    the option: INVALID_ARGUMENT, nothing sent."""
    from editor_service.client import EditError, EditorClient
    from tests.openai_endpoint import ImagesServer

    server = ImagesServer().start()
    port = free_port()
    proc = ServiceProcess(
        name="api-editor", port=port, log_path=tmp_path / "api-editor.log",
        argv=[venv_python("editor"), "-m", "editor_service", "--backend", "openai-images", "--provider", "openai",
              "--model", server.model, "--base-url", server.url, "--api-key-env", "", "--max-retries", "0",
              "--port", str(port)]).start()
    try:
        proc.wait_healthy(timeout=60)
        source = (EXAMPLE.parent / "images/phys-01.png").read_bytes()
        with EditorClient(proc.address) as client:
            for options in ({"quality": "xhigh", "complexity": "high", "moderation": "low"},
                            {"quality": "max", "complexity": "low", "moderation": "auto"}):
                result = client.edit(source, INSTRUCTIONS["phys-01"], sample_id="phys-01",
                                     extras=options)  # Python values: the client sends them as JSON
                sent = server.requests[-1]
                assert {k: sent.get(k) for k in options} == options and sent["prompt"] == INSTRUCTIONS["phys-01"]
                assert json.loads(result.call_arguments["options"]) == options
            before = len(server.requests)
            for key, value in (("quality", "standard"), ("quality", "hd"), ("moderation", "high"),
                               ("complexity", "max")):
                with pytest.raises(EditError) as caught:
                    client.edit(source, INSTRUCTIONS["phys-01"], sample_id="phys-01", extras={key: value})
                assert caught.value.code.name == "INVALID_ARGUMENT", caught.value.details
                assert f"extras[{key!r}]: {value!r} is not a value openai takes" in caught.value.details
            assert len(server.requests) == before  # refused before sending
    finally:
        proc.stop(grace=5)
        server.stop()
