"""The judge over an OpenAI-compatible API (--backend openai): a real scorer service in front of a
real `transformers serve` hosting the tiny Qwen3-VL on loopback, with the tests' fault proxy between
them for what a provider does that the local server does not (rate limits, errors, stalls, content
filters, cut-off bodies, a key check)."""

from __future__ import annotations

import base64
import io
import math
import os
import random
import time

import grpc
import pytest
from PIL import Image

from editfleet_common.channels import ServiceError
from scorer_service.backends.openai_api import backoff_delay, expected_from_logprobs, retry_after_seconds
from scorer_service.client import ScorerClient, info_to_dict, make_request, status_name
from tests.openai_endpoint import FILTER_MESSAGE, Fault, FaultProxy, TransformersServe

from .conftest import png, start_scorer

KEY_ENV = "EDITFLEET_TEST_JUDGE_KEY"
KEY = "sk-editfleet-test-3f9c2a7d1b"
SOURCE = png((64, 48), (200, 30, 30))
EDITED = png((48, 64), (30, 30, 200))


@pytest.fixture(scope="module")
def serve(tiny_judge_dir, tmp_path_factory):
    server = TransformersServe(tiny_judge_dir, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(serve):
    p = FaultProxy(serve.url, api_key=KEY).start()
    yield p
    p.stop()


def api_scorer(serve, proxy, log_path, *extra, wait=True, key=KEY):
    os.environ[KEY_ENV] = key
    try:
        return start_scorer(serve.model, log_path, "--backend", "openai", "--base-url", proxy.url,
                            "--api-key-env", KEY_ENV, "--max-retries", "4", "--retry-base-s", "0.05",
                            "--request-timeout-s", "2", "--max-concurrency", "4", *extra, wait=wait)
    finally:
        os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def scorer_log(tmp_path_factory):
    return tmp_path_factory.mktemp("api-scorer") / "scorer.log"


@pytest.fixture(scope="module")
def scorer(serve, proxy, scorer_log):
    process = api_scorer(serve, proxy, scorer_log)
    yield process
    process.stop(grace=20)


def request(sample_id, instruction, category="physical", protocol="mini-seed"):
    return make_request(sample_id, source_image=SOURCE, edited_image=EDITED, instruction=instruction,
                        category=category, protocol=protocol, variables={"original_description": "a red card"})


def about(instruction):
    return lambda body: instruction in str(body.get("messages"))


def test_a_stream_goes_through_the_api_with_the_protocols_prompts(scorer, proxy, serve):
    with ScorerClient(scorer.address) as client:
        info = info_to_dict(client.info())
        results = {r.sample_id: r for r in client.score_many(
            [request(f"s{i}", f"make it blue {i}") for i in range(3)], timeout=60)}
    assert info["model"]["load_format"] == "api" and info["model"]["runtime"]["backend"] == "openai"
    assert info["model"]["runtime"]["served_model"] == f"{serve.model}@main"  # as the server names it
    assert info["model"]["model"] == serve.model  # as given
    assert set(results) == {"s0", "s1", "s2"}
    for r in results.values():
        # the tiny judge answers gibberish: asked again with the strict suffix, then PARSE_FAILED, raw kept
        assert status_name(r) == "PARSE_FAILED", r.error
        assert r.attempts == 2 and len(r.raw_responses) == 2 and all(r.raw_responses)
        assert not r.HasField("score") and not r.HasField("expected_score")  # no logprobs returned: absent
        assert r.prompt_tokens > 0 and 0 < r.completion_tokens <= 24
        assert r.served_model == f"{serve.model}@main"
    sent = [s for s in proxy.chat_requests if "make it blue 1" in str(s.body["messages"])]
    assert len(sent) == 2
    first, strict = (s.body for s in sent)
    assert first["temperature"] == 0 and first["seed"] == 0 and first["max_tokens"] == 12
    assert first["logprobs"] is True and first["top_logprobs"] == 20  # asked: the protocol has a prefix
    assert first["model"] == serve.model
    system, user = first["messages"]
    assert system == {"role": "system", "content": "Judge physics."}
    image, text = user["content"]
    assert text == {"type": "text", "text": "Edit: make it blue 1"}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (48, 64)  # the edited image
    assert "Strict JSON only." in strict["messages"][1]["content"][1]["text"]
    assert all(s.authorization == f"Bearer {KEY}" for s in sent)


def test_rate_limits_errors_stalls_and_cut_bodies_are_retried(scorer, proxy):
    proxy.when(about("retry me"), Fault("429", retry_after=1), Fault("500"),
               Fault("stall", seconds=3), Fault("cut"))  # the stall: past --request-timeout-s 2
    with ScorerClient(scorer.address) as client:
        result = client.score(request("r", "retry me"), timeout=60)
    assert status_name(result) == "PARSE_FAILED", result.error  # the judge's own answer, after 4 faults
    seen = [s for s in proxy.chat_requests if "retry me" in str(s.body["messages"])]
    assert [s.fault for s in seen[:5]] == ["429", "500", "stall", "cut", ""]
    assert seen[1].at - seen[0].at >= 1.0  # Retry-After honoured (the backoff alone is 0.05 s)


def test_a_request_that_keeps_failing_is_error_after_max_retries(scorer, proxy):
    proxy.when(about("always down"), Fault("500"), forever=True)
    with ScorerClient(scorer.address) as client:
        result = client.score(request("d", "always down"), timeout=60)
    assert status_name(result) == "ERROR"
    assert "HTTP 500" in result.error and "after 5 attempt(s)" in result.error
    assert len([s for s in proxy.chat_requests if "always down" in str(s.body["messages"])]) == 5


def test_a_content_filter_is_refused_with_the_providers_reason(scorer, proxy):
    proxy.when(about("filter me"), Fault("filter400"), forever=True)
    proxy.when(about("finish filtered"), Fault("filter200"), forever=True)
    with ScorerClient(scorer.address) as client:
        results = {r.sample_id: r for r in client.score_many(
            [request("f", "filter me"), request("g", "finish filtered")], timeout=60)}
    f, g = results["f"], results["g"]
    assert status_name(f) == "REFUSED" and FILTER_MESSAGE in f.error and "violence" in f.error
    assert status_name(g) == "REFUSED" and "content_filter" in g.error
    assert not f.HasField("score") and not g.HasField("score")
    # a refusal is final: not retried, not re-asked
    assert len([s for s in proxy.chat_requests if "filter me" in str(s.body["messages"])]) == 1


def test_a_scripted_answer_is_scored_with_its_expected_score_from_top_logprobs(scorer, proxy):
    top = [("7", math.log(0.6)), ("8", math.log(0.3)), ("x", math.log(0.1))]
    tokens = [('{"', []), ("score", []), ('":', []), (" ", []), ("7", top), (",", []), (' "response": "good"}', [])]
    proxy.when(about("answer seven"), Fault("reply", text='{"score": 7, "response": "good"}', logprobs=tokens),
               forever=True)
    with ScorerClient(scorer.address) as client:
        result = client.score(request("a", "answer seven"), timeout=60)
    assert status_name(result) == "OK", result.error
    assert result.score == 7 and result.response == "good" and result.attempts == 1
    assert result.expected_score == pytest.approx((7 * 0.6 + 8 * 0.3) / 0.9)


def test_a_key_refused_mid_run_ends_the_stream_naming_the_variable(scorer, proxy, scorer_log):
    proxy.when(about("revoked"), Fault("401"))
    with ScorerClient(scorer.address) as client:
        with pytest.raises(ServiceError) as err:
            list(client.score_many([request("k", "revoked")], timeout=60))
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and not err.value.retryable
    assert KEY_ENV in err.value.message and KEY not in err.value.message
    assert KEY not in scorer_log.read_text()


def test_a_wrong_key_stops_the_start_before_any_sample(serve, proxy, tmp_path):
    before = len(proxy.chat_requests)
    process = api_scorer(serve, proxy, tmp_path / "scorer.log", wait=False, key="sk-wrong-key-0000")
    try:
        assert process.proc.wait(60) != 0
    finally:
        process.kill()
    log = (tmp_path / "scorer.log").read_text()
    assert f"${KEY_ENV}" in log and "HTTP 401" in log and "sk-wrong-key-0000" not in log
    assert "Traceback" not in log
    assert len(proxy.chat_requests) == before + 1  # the one-token warm-up, nothing else


def test_a_missing_key_variable_is_named(serve, proxy, tmp_path):
    os.environ.pop(KEY_ENV, None)
    process = start_scorer(serve.model, tmp_path / "scorer.log", "--backend", "openai", "--base-url", proxy.url,
                           "--api-key-env", KEY_ENV, wait=False)
    try:
        assert process.proc.wait(60) != 0
    finally:
        process.kill()
    assert f"environment variable {KEY_ENV} (judge.api_key_env) is not set" in (tmp_path / "scorer.log").read_text()


# -- the parts without a server -------------------------------------------------------------------


def test_backoff_is_exponential_with_jitter_and_honours_retry_after():
    rng = random.Random(0)
    for retry in range(6):
        step = min(60.0, 0.5 * 2 ** retry)
        delays = [backoff_delay(retry, 0.5, rng=rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays) and len(set(delays)) > 1
    assert backoff_delay(0, 0.5, retry_after_s=7, rng=rng) == 7
    assert backoff_delay(20, 0.5, rng=rng) <= 60
    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after_seconds({"retry-after": when}) <= 31
    assert retry_after_seconds({}) is None and retry_after_seconds({"retry-after": "soon"}) is None


def lp(p):
    return math.log(p)


def test_expected_score_from_top_logprobs_never_guesses():
    prefix = '{"score": '
    # numbers as single tokens (GPT-style " 7"): a weighted mean over the listed in-range integers
    reply = [('{"score":', []), (" 7", [(" 7", lp(0.5)), (" 10", lp(0.25)), (" 11", lp(0.2)), (" a", lp(0.05))])]
    assert expected_from_logprobs(reply, prefix, 0, 10) == pytest.approx((7 * 0.5 + 10 * 0.25) / 0.75)
    # inside a fence, after prose
    fenced = [("```json\n", []), ('{"', []), ('score": ', []), ("3", [("3", lp(0.9)), ("4", lp(0.1))])]
    assert expected_from_logprobs(fenced, prefix, 0, 10) == pytest.approx(3.1)
    # digit by digit (Qwen): "1" may start "10"; the reply went "1" then "0", so both positions are known
    split = [('{"score": ', []), ("1", [("1", lp(0.8)), ("9", lp(0.2))]), ("0", [("0", lp(0.75)), (",", lp(0.25))])]
    p1, p10 = 0.8 * 0.25, 0.8 * 0.75
    assert expected_from_logprobs(split, prefix, 0, 10) == pytest.approx((1 * p1 + 10 * p10 + 9 * 0.2) / 1.0)
    # ... but when the reply took another digit, the split of "1" is unknown: absent, not estimated
    other = [('{"score": ', []), ("9", [("9", lp(0.7)), ("1", lp(0.3))]), (",", [])]
    assert expected_from_logprobs(other, prefix, 0, 10) is None
    # no prefix in the reply, no logprobs, no number at the position: absent
    assert expected_from_logprobs([("Seven", [("Seven", lp(1.0))])], prefix, 0, 10) is None
    assert expected_from_logprobs(None, prefix, 0, 10) is None
    assert expected_from_logprobs([('{"score": ', []), ('"', [('"', lp(1.0))])], prefix, 0, 10) is None
