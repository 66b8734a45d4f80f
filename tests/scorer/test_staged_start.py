"""Staged start (--stage-on-host): the judge waits in host memory until the go signal (SIGUSR1),
answering NOT_SERVING / UNAVAILABLE until then; after it, it serves with the same identity as a
normal start. Also: packing weights into (here unpinned) blocks keeps the model's outputs."""

from __future__ import annotations

import signal
import time

import grpc
import pytest
import torch

from editfleet_common.channels import ServiceError, health_status, make_channel
from scorer_service.client import STAGED_HEALTH_SERVICE, ScorerClient, info_to_dict, make_request, status_name
from scorer_service.staging import pack_into_pinned

from .conftest import png, start_scorer


def _request(sample_id: str):
    return make_request(sample_id, edited_image=png((64, 64), (30, 200, 30)), source_image=png(),
                        instruction="make the square green", category="physical",
                        variables={"original_description": "a red square"})


def _wait_health(channel, service: str, want: str, process, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), "the scorer exited"
        if health_status(channel, service, timeout=1.0) == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"health {service!r} not {want} after {timeout}s")


def test_staged_scorer_waits_for_the_go_signal_then_serves_like_a_normal_start(tiny_judge_dir, tmp_path, scorer):
    process = start_scorer(tiny_judge_dir, tmp_path / "staged.log", "--stage-on-host", wait=False)
    channel = make_channel(process.address)
    try:
        _wait_health(channel, STAGED_HEALTH_SERVICE, "SERVING", process)
        time.sleep(0.5)  # staged and idle: nothing moves without the signal
        assert health_status(channel) == "NOT_SERVING"
        with ScorerClient(process.address) as client:
            for call in (lambda: client.info(timeout=5), lambda: client.score(_request("early"), timeout=5)):
                with pytest.raises(ServiceError) as err:
                    call()
                assert err.value.code == grpc.StatusCode.UNAVAILABLE
                assert "staged" in err.value.details and "SIGUSR1" in err.value.details

        process.proc.send_signal(signal.SIGUSR1)
        _wait_health(channel, "", "SERVING", process)
        with ScorerClient(process.address) as client:
            result = client.score(_request("after-go"), timeout=60)
            staged_info = info_to_dict(client.info())
        assert result.sample_id == "after-go" and status_name(result) == "PARSE_FAILED"  # random judge
        assert result.raw_responses and result.HasField("expected_score")
        with ScorerClient(scorer.address) as client:
            normal_info = info_to_dict(client.info())
        assert staged_info["model"] == normal_info["model"]  # content hash, dtype, device: identical
        assert staged_info["protocols"] == normal_info["protocols"]
        log = (tmp_path / "staged.log").read_text()
        assert "STAGED in" in log and "go signal -> SERVING" in log
        assert process.stop(grace=20) == 0
    finally:
        channel.close()
        process.kill()


def test_a_go_signal_sent_before_staging_ends_is_remembered(tiny_judge_dir, tmp_path):
    process = start_scorer(tiny_judge_dir, tmp_path / "early.log", "--stage-on-host", wait=False)
    channel = make_channel(process.address)
    try:
        _wait_health(channel, "", "NOT_SERVING", process)  # the server is up: the handler is installed
        process.proc.send_signal(signal.SIGUSR1)
        _wait_health(channel, "", "SERVING", process)
    finally:
        channel.close()
        process.stop(grace=20)


def test_sigterm_while_staged_exits_cleanly(tiny_judge_dir, tmp_path):
    process = start_scorer(tiny_judge_dir, tmp_path / "term.log", "--stage-on-host", wait=False)
    channel = make_channel(process.address)
    try:
        _wait_health(channel, STAGED_HEALTH_SERVICE, "SERVING", process)
        assert process.stop(grace=20) == 0
    finally:
        channel.close()
        process.kill()


def test_packing_weights_into_blocks_keeps_outputs_and_tied_weights(tiny_judge_dir):
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_judge_dir, dtype=torch.float32).eval()
    ids = torch.randint(0, 200, (1, 12))
    with torch.inference_mode():
        before = model(input_ids=ids).logits.clone()
    tied_before = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    blocks = []

    def alloc(nbytes):
        blocks.append(torch.empty(nbytes, dtype=torch.uint8))
        return blocks[-1]

    largest = max(p.numel() * p.element_size() for p in model.parameters())
    sizes = pack_into_pinned(model, block_bytes=largest // 2, alloc=alloc)  # small blocks + oversized tensors
    assert sizes["blocks"] == len(blocks) > 1
    assert sizes["bytes"] >= sizes["weights_bytes"]
    storages = {b.untyped_storage().data_ptr() for b in blocks}
    assert all(p.untyped_storage().data_ptr() in storages for p in model.parameters())
    assert (model.get_input_embeddings().weight is model.get_output_embeddings().weight) == tied_before
    with torch.inference_mode():
        after = model(input_ids=ids).logits
    assert torch.equal(before, after)
