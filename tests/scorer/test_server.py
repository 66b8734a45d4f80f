"""The scorer over real gRPC on loopback, with the tiny random Qwen3-VL judge."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import grpc
import pytest

from editfleet_common.channels import ServiceError
from scorer_service.client import ScorerClient, info_to_dict, make_request, status_name

from suites.catalog import catalog

from .conftest import TEST_PROTOCOLS, png, start_scorer

# the shipped suites' protocols and the tests' own (tests/scorer/protocols/)
KNOWN = ", ".join(sorted([*catalog().protocol_names(), *(p.stem for p in TEST_PROTOCOLS.glob("*.yaml"))]))

SEED_VARS = {"original_description": "a red square on a white table"}
SUITES = Path(__file__).resolve().parents[2] / "suites"


def seed_request(sample_id: str, **overrides):
    fields = dict(
        edited_image=png((64, 64), (30, 200, 30)),
        source_image=png((64, 48), (200, 30, 30)),
        instruction="make the square green",
        category="physical",
        protocol="seed-0-10",
        variables=SEED_VARS,
    )
    fields.update(overrides)
    return make_request(sample_id, **fields)


def test_concurrent_clients_share_device_batches_and_every_sample_gets_one_result(scorer):
    with ScorerClient(scorer.address) as client:
        before = client.info().batch_stats
    results: dict[str, list] = {}
    lock = threading.Lock()
    errors = []

    def unary_client(k: int):
        try:
            with ScorerClient(scorer.address) as c:
                for j in range(3):
                    r = c.score(seed_request(f"u{k}-{j}", category=["physical", "因果", "", "社会"][k]), timeout=120)
                    with lock:
                        results.setdefault(r.sample_id, []).append(r)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def stream_client():
        try:
            with ScorerClient(scorer.address) as c:
                for r in c.score_many((seed_request(f"s-{j}") for j in range(6)), timeout=120):
                    with lock:
                        results.setdefault(r.sample_id, []).append(r)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=unary_client, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=stream_client))
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors

    expected_ids = {f"u{k}-{j}" for k in range(4) for j in range(3)} | {f"s-{j}" for j in range(6)}
    assert set(results) == expected_ids
    assert all(len(v) == 1 for v in results.values()), "a sample got more than one result"
    assert all(r[0].sample_id == sid for sid, r in results.items())
    assert max(r[0].batch_size for r in results.values()) > 1

    with ScorerClient(scorer.address) as client:
        after = client.info().batch_stats
    assert after.samples - before.samples == len(expected_ids)
    grown = {size: after.batch_size_counts[size] - before.batch_size_counts.get(size, 0)
             for size in after.batch_size_counts}
    assert any(size > 1 and n > 0 for size, n in grown.items()), grown
    assert all(size <= 4 for size in after.batch_size_counts)  # --max-batch 4


def test_random_judge_gibberish_is_parse_failed_with_raw_text_and_an_expected_score(scorer):
    with ScorerClient(scorer.address) as client:
        result = client.score(seed_request("gibberish"), timeout=120)
    assert status_name(result) == "PARSE_FAILED"
    assert not result.HasField("score")  # never a default, never a guess
    assert result.attempts == 2  # asked again with the stricter suffix
    assert len(result.raw_responses) == 2 and all(result.raw_responses)
    assert result.HasField("expected_score") and 0.0 <= result.expected_score <= 10.0
    assert result.protocol == "seed-0-10"
    assert result.protocol_hash == hashlib.sha256((SUITES / "seed" / "seed-0-10.yaml").read_bytes()).hexdigest()
    assert result.error  # the parser's reason
    assert result.batch_size >= 1 and result.latency_s > 0


def test_viescore_gibberish_keeps_every_raw_reply(scorer):
    request = seed_request("vie", protocol="viescore", variables={})
    with ScorerClient(scorer.address) as client:
        result = client.score(request, timeout=120)
    assert status_name(result) == "PARSE_FAILED"
    assert not result.HasField("score") and not result.sub_scores
    # two questions (SC, PQ), each asked twice
    assert result.attempts == 2 and len(result.raw_responses) == 4
    assert "SC:" in result.error and "PQ:" in result.error
    assert not result.HasField("expected_score")  # its headline is not a single token


INVALID = [
    ("corrupt edited image", dict(edited_image=b"\x89PNG not really"), "edited_image: cannot decode"),
    ("missing edited image", dict(edited_image=b""), "edited_image: missing"),
    ("corrupt source image", dict(source_image=b"GIF89a..."), "source_image: cannot decode"),
    ("viescore without a source", dict(protocol="viescore", source_image=b"", variables={}), "source_image: missing"),
    ("unknown protocol", dict(protocol="gedit-v9"), f"unknown protocol 'gedit-v9'; known: {KNOWN}"),
    ("missing template variable", dict(variables={}), "missing template variable(s): original_description"),
    ("missing instruction", dict(instruction=""), "missing template variable(s): edit_instruction"),
]


@pytest.mark.parametrize("case,overrides,message", INVALID, ids=[c[0] for c in INVALID])
def test_bad_unary_requests_get_invalid_argument(scorer, case, overrides, message):
    with ScorerClient(scorer.address) as client, pytest.raises(ServiceError) as err:
        client.score(seed_request("bad", **overrides), timeout=60)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details


def test_a_bad_item_in_a_stream_gets_an_invalid_result_and_the_stream_goes_on(scorer):
    requests = [
        seed_request("ok-1"),
        seed_request("corrupt", edited_image=b"not an image"),
        seed_request("ok-2"),
        seed_request("unknown-protocol", protocol="nope"),
        seed_request("no-vars", variables={}),
        seed_request("ok-3"),
    ]
    with ScorerClient(scorer.address) as client:
        results = {r.sample_id: r for r in client.score_many(iter(requests), timeout=120)}
    assert set(results) == {r.sample_id for r in requests}
    assert status_name(results["corrupt"]) == "INVALID" and "cannot decode" in results["corrupt"].error
    assert status_name(results["unknown-protocol"]) == "INVALID" and "known: " in results["unknown-protocol"].error
    assert status_name(results["no-vars"]) == "INVALID" and "original_description" in results["no-vars"].error
    for sid in ("ok-1", "ok-2", "ok-3"):
        assert status_name(results[sid]) == "PARSE_FAILED"  # judged (the random judge never parses)
        assert len(results[sid].raw_responses) == 2


def test_get_info_names_the_model_and_the_protocols_with_their_hashes(scorer, tiny_judge_dir):
    with ScorerClient(scorer.address) as client:
        info = info_to_dict(client.info())
    model = info["model"]
    assert model["model"] == str(tiny_judge_dir)
    assert model["model_class"] == "Qwen3VLForConditionalGeneration"
    assert model["dtype"] == "float32" and model["device"] == "cpu" and model["load_format"] == "auto"
    assert model["runtime"] == {"decode": "dynamic", "decode_attention": "grouped_sdpa", "expected_score": "shared_prefill"}
    assert len(model["content_hash"]) == 64
    files = {
        "seed-0-10": SUITES / "seed" / "seed-0-10.yaml",
        "viescore": SUITES / "gedit" / "viescore.yaml",
        "mini-seed": TEST_PROTOCOLS / "mini-seed.yaml",
    }
    for name, path in files.items():
        assert info["protocols"][name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["protocols"]["seed-0-10"]["variables"] == ["edit_instruction", "original_description"]
    assert info["protocols"]["viescore"]["variables"] == ["edit_instruction"]
    assert info["default_protocol"] == "seed-0-10"
    assert info["max_batch_size"] == 4 and info["max_wait_s"] == pytest.approx(0.3)


def test_default_protocol_is_used_when_none_is_named(scorer):
    with ScorerClient(scorer.address) as client:
        result = client.score(seed_request("default", protocol=""), timeout=120)
    assert result.protocol == "seed-0-10"


def test_a_stream_of_up_to_max_batch_requests_forms_one_device_batch(tiny_judge_dir, tmp_path):
    # Requests are decoded several at once and the idle device waits (up to --max-wait-ms) for company:
    # a burst of max_batch samples is one batch, not 1 + the rest.
    process = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", "--max-batch", "6", "--max-wait-ms", "1500")
    try:
        big = png((512, 512), (10, 120, 240))
        with ScorerClient(process.address) as client:
            results = list(client.score_many(
                (seed_request(f"b{j}", edited_image=big, source_image=big) for j in range(6)), timeout=120))
            stats = client.info().batch_stats
    finally:
        process.stop(grace=20)
    assert sorted(r.sample_id for r in results) == [f"b{j}" for j in range(6)]
    assert {r.batch_size for r in results} == {6}
    assert dict(stats.batch_size_counts) == {6: 1}  # the warm-up does not count
