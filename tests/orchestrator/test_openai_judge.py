"""Whole `orchestrator run` and `orchestrator score` runs judged over an OpenAI-compatible API
(judge.backend openai): the real CLI, a real editor and scorer, and a real `transformers serve`
hosting the tiny Qwen3-VL on loopback behind the tests' fault proxy (rate limits, server errors, a
content filter, a scripted answer, a key check). Runs are shared between assertions to keep CI short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLE, REPO, TINY_EDITOR, TINY_JUDGE, orchestrator_cmd, require_tiny_models
from tests.openai_endpoint import FILTER_MESSAGE, Fault, FaultProxy, TransformersServe

KEY_ENV = "EDITFLEET_TEST_API_KEY"
KEY = "sk-editfleet-orch-9d41e07bc5"
INSTRUCTIONS = {
    "phys-01": "Show the ice cube after it has been left in the hot sun for an hour.",
    "phys-02": "Show the glass a moment after it is pushed off the table.",
    "env-01": "Show the same tree in the middle of winter.",
    "env-02": "Show the river after a week of heavy rain.",
}


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []


def about(sample_id):
    return lambda body: INSTRUCTIONS[sample_id] in str(body.get("messages"))


def cli(args, log: Path, *, key: str | None = KEY, wait=True, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    out = open(log, "w")
    proc = subprocess.Popen(orchestrator_cmd(*args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    if not wait:
        return proc, out
    try:
        proc.wait(timeout)
    finally:
        out.close()
    return proc.returncode, log.read_text(encoding="utf-8")


def judge_section(proxy, serve, **extra):
    return {"backend": "openai", "base_url": proxy.url, "model": serve.model, "api_key_env": KEY_ENV,
            "max_concurrency": 2, "request_timeout_s": 5, "max_retries": 4, "protocol": "seed-0-10",
            "server_args": ["--retry-base-s", "0.05", "--max-new-tokens", "12"], **extra}


def no_key_anywhere(*roots: Path, texts=()):
    """The key in no file under the roots (manifest, logs, scores, summary, report, ...) nor any text."""
    needle = KEY.encode()
    hits = [str(p) for root in roots for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
    hits += [f"text {i}" for i, t in enumerate(texts) if KEY in t]
    assert not hits, f"the API key leaked into: {hits}"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    require_tiny_models()
    server = TransformersServe(TINY_JUDGE, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(serve):
    p = FaultProxy(serve.url, api_key=KEY).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def api_run(serve, proxy, tmp_path_factory):
    """One whole `orchestrator run` (1 CPU editor, 4 samples) judged through the proxy, with a 429, a
    500, a content filter and a scripted OK answer on its way."""
    base = tmp_path_factory.mktemp("api-run")
    bench = base / "bench"
    shutil.copytree(EXAMPLE.parent, bench)
    config = {
        "benchmark": {"path": str(bench / "benchmark.jsonl"), "limit": 4},
        "editor": {"model": str(TINY_EDITOR), "steps": 2, "width": 64, "height": 64, "threads": 1},
        "judge": judge_section(proxy, serve),
        "devices": {"editors": 1},
        "output": str(base / "out"),
    }
    (base / "run.yaml").write_text(yaml.safe_dump(config))
    proxy.when(about("phys-01"), Fault("429", retry_after=1))
    proxy.when(about("phys-02"), Fault("500"), Fault("500"))
    proxy.when(about("env-01"), Fault("filter400"), forever=True)
    proxy.when(about("env-02"), Fault("reply", text='{"score": 6, "response": "fine"}', fingerprint="fp_0a1b2c"),
               forever=True)
    # a refusal and unreadable replies among the samples: exit 0 only with --allow-failures
    code, output = cli(["run", "--config", str(base / "run.yaml"), "--progress", "plain", "--allow-failures"],
                       base / "cli.log")
    return {"code": code, "output": output, "out": base / "out", "config": base / "run.yaml", "base": base}


def test_a_whole_run_is_judged_over_the_api(api_run, serve, proxy):
    assert api_run["code"] == 0, api_run["output"]
    out = api_run["out"]
    scores = {r["id"]: r for r in lines(out / "scores.jsonl")}
    assert len(lines(out / "scores.jsonl")) == 4  # every sample judged once, faults and all
    assert {i: r["status"] for i, r in scores.items()} == {
        "phys-01": "PARSE_FAILED", "phys-02": "PARSE_FAILED", "env-01": "REFUSED", "env-02": "OK"}
    assert scores["env-02"]["score"] == 6 and scores["env-02"]["response"] == "fine"
    assert FILTER_MESSAGE in scores["env-01"]["error"] and scores["env-01"]["score"] is None
    assert len(scores["phys-01"]["raw_responses"]) == 2  # the tiny judge's gibberish, re-asked once
    assert all(r["expected_score"] is None for r in scores.values())  # transformers serve: no logprobs
    for r in scores.values():
        if r["status"] != "REFUSED":
            assert r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 and r["served_model"] == f"{serve.model}@main"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["categories"]["environmental"]["refused"] == 1 and summary["categories"]["physical"]["refused"] == 0
    assert summary["refused"] == 1 and summary["scored"] == 1
    tokens = summary["judge_tokens"]
    assert tokens == {"prompt": sum(r["prompt_tokens"] for r in scores.values()),
                      "completion": sum(r["completion_tokens"] for r in scores.values())}
    assert f"Judge tokens: {tokens['prompt']} prompt + {tokens['completion']} completion" in api_run["output"]
    assert "refused: 1" in api_run["output"]

    manifest = json.loads((out / "manifest.json").read_text())
    judge = manifest["judge"]
    assert judge["backend"] == "openai"
    api = judge["api"]
    assert api["endpoint_host"] == proxy.url.split("//")[1].split("/")[0]
    assert api["model_requested"] == serve.model and api["served_models"] == [f"{serve.model}@main"]
    assert api["system_fingerprints"] == ["fp_0a1b2c"] and scores["env-02"]["system_fingerprint"] == "fp_0a1b2c"
    assert api["tokens"]["prompt"] == tokens["prompt"] and set(api["tokens"]["per_sample"]) == set(scores)
    assert api["tokens"]["per_sample"]["phys-02"]["prompt"] == scores["phys-02"]["prompt_tokens"]
    assert manifest["sessions"][-1]["judge_tokens"] == tokens
    assert manifest["config"]["judge"]["api_key_env"] == KEY_ENV
    report = (out / "report.html").read_text()
    assert "REFUSED" in report and "content management policy" in report and f"{tokens['prompt']} prompt" in report

    # the faults were met and retried: 429 (after its Retry-After), two 500s, then the real answers
    seen = proxy.chat_requests
    phys01 = [s for s in seen if about("phys-01")(s.body)]
    assert [s.fault for s in phys01][:2] == ["429", ""] and phys01[1].at - phys01[0].at >= 1.0
    assert [s.fault for s in seen if about("phys-02")(s.body)][:3] == ["500", "500", ""]
    assert all(s.body["temperature"] == 0 and s.body["seed"] == 0 for s in seen)
    no_key_anywhere(out, texts=[api_run["output"]])


def test_a_refused_key_stops_the_run_before_any_sample_naming_the_variable(api_run, serve, proxy, tmp_path):
    before = len(proxy.chat_requests)
    code, output = cli(["score", str(api_run["out"]), "--output", str(tmp_path / "rejudge"), "--progress", "plain"],
                       tmp_path / "cli.log", key="sk-not-the-right-one")
    assert code != 0
    assert f"${KEY_ENV}" in output and "HTTP 401" in output and "Traceback" not in output
    assert "sk-not-the-right-one" not in output
    assert len(proxy.chat_requests) == before + 1  # the scorer's one-token warm-up, no sample
    assert lines(tmp_path / "rejudge" / "scores.jsonl") == []
    no_key_anywhere(tmp_path)


def test_a_key_revoked_mid_run_stops_it_and_a_rerun_finishes(api_run, serve, proxy, tmp_path):
    proxy.when(about("env-01"), Fault("401"))
    args = ["score", str(api_run["out"]), "--output", str(tmp_path / "rejudge"), "--progress", "plain",
            "--allow-failures"]
    code, output = cli(args, tmp_path / "cli.log")
    assert code != 0 and f"${KEY_ENV}" in output and "the judge stopped the run" in output, output
    assert "env-01" not in {r["id"] for r in lines(tmp_path / "rejudge" / "scores.jsonl")}
    code, output = cli(args, tmp_path / "cli2.log")
    assert code == 0, output
    final = [r for r in lines(tmp_path / "rejudge" / "scores.jsonl") if r["status"] != "ERROR"]
    assert sorted(r["id"] for r in final) == sorted(INSTRUCTIONS)  # each judged exactly once
    no_key_anywhere(tmp_path, texts=[output])


def test_the_server_killed_mid_run_every_sample_is_judged_once_after_a_rerun(api_run, serve, proxy, tmp_path):
    """`orchestrator score` with the API server SIGKILLed after the first result: the samples it could
    not answer are ERROR (retried, then given up), and the rerun judges exactly those. (Last in this
    file: it kills the module's server and brings up another on its port.)"""
    proxy.when(lambda body: True, Fault("slow", seconds=0.4), forever=True)  # a slow API: the kill lands mid-run
    out = tmp_path / "rejudge"
    args = ["score", str(api_run["out"]), "--output", str(out), "--progress", "plain", "--allow-failures"]
    proc, log = cli(args, tmp_path / "cli.log", wait=False)
    deadline = time.monotonic() + 120
    while not lines(out / "scores.jsonl") and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    serve.kill()
    proc.wait(180)
    log.close()
    first = lines(out / "scores.jsonl")
    statuses = [r["status"] for r in first]
    assert "ERROR" in statuses and any(s != "ERROR" for s in statuses), statuses
    errors = {r["id"] for r in first if r["status"] == "ERROR"}
    assert all("HTTP 502" in r["error"] for r in first if r["status"] == "ERROR")

    again = TransformersServe(TINY_JUDGE, tmp_path / "serve2.log", port=serve.port).start()
    try:
        before = len(proxy.chat_requests)
        code, output = cli(args, tmp_path / "cli2.log")
        assert code == 0, output
        rejudged = {s.body["messages"][1]["content"][1]["text"] for s in proxy.chat_requests[before:]}
        assert {i for i in INSTRUCTIONS if any(INSTRUCTIONS[i] in t for t in rejudged)} == errors  # only those
        final = [r for r in lines(out / "scores.jsonl") if r["status"] != "ERROR"]
        assert sorted(r["id"] for r in final) == sorted(INSTRUCTIONS)  # every sample judged exactly once
        no_key_anywhere(out, texts=[output])
    finally:
        again.stop()
