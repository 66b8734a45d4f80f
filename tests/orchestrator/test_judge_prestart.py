"""Judge pre-start on the local fleet: the scorer stages in host memory while the editors work,
turns SERVING only after the go signal, and a staged judge that died is replaced by a normal start.
Real scorer processes on the tiny judge (CPU)."""

from __future__ import annotations

import time

from editfleet_common.channels import health_status, make_channel
from orchestrator.config import build_config
from orchestrator.fleet import make_fleet
from scorer_service.client import STAGED_HEALTH_SERVICE, ScorerClient

from conftest import TINY_JUDGE, require_tiny_models


def _fleet(tmp_path, **judge):
    require_tiny_models()
    config = build_config({"judge": {"model": str(TINY_JUDGE), "threads": 1, **judge}})
    return make_fleet(config, tmp_path / "logs")


def _wait(address: str, service: str, want: str, alive, timeout: float = 120.0) -> None:
    channel = make_channel(address)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert alive(), "the scorer exited"
            if health_status(channel, service, timeout=1.0) == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"{service or 'health'} not {want} after {timeout}s")
    finally:
        channel.close()


def test_staged_judge_serves_only_after_the_go_signal(tmp_path):
    fleet = _fleet(tmp_path)
    try:
        assert fleet.prestart_scorer()
        staged = fleet.scorer
        _wait(staged.address, STAGED_HEALTH_SERVICE, "SERVING", staged.alive)
        time.sleep(0.5)
        channel = make_channel(staged.address)
        assert health_status(channel) == "NOT_SERVING"  # staged: waits for the editors to be down
        channel.close()
        fleet.scorer_go()
        endpoint = fleet.start_scorer()
        assert endpoint.address == staged.address  # the staged process itself, not a new one
        assert fleet.scorer_start_mode() == "staged"
        with ScorerClient(endpoint.address) as client:
            assert client.info(timeout=10).model.content_hash
        assert "--stage-on-host" in staged.argv
    finally:
        fleet.close()


def test_a_staged_judge_that_died_is_replaced_by_a_normal_start(tmp_path):
    fleet = _fleet(tmp_path)
    try:
        assert fleet.prestart_scorer()
        staged = fleet.scorer
        staged.kill()
        endpoint = fleet.start_scorer()
        assert fleet.scorer is not staged and "--stage-on-host" not in fleet.scorer.argv
        assert fleet.scorer_start_mode().startswith("normal start: the staged judge failed (exited with code")
        _wait(endpoint.address, "", "SERVING", fleet.scorer.alive, timeout=5)
    finally:
        fleet.close()


def test_prestart_off_starts_the_judge_normally(tmp_path):
    fleet = _fleet(tmp_path, prestart="false")
    try:
        assert fleet.prestart_scorer() is False and fleet.scorer is None
        fleet.scorer_go()  # nothing staged: nothing happens
        fleet.start_scorer()
        assert fleet.scorer_start_mode() == "normal" and "--stage-on-host" not in fleet.scorer.argv
    finally:
        fleet.close()


def test_prestart_must_be_true_or_false():
    import pytest

    from orchestrator.config import ConfigError

    assert build_config({"judge": {"prestart": False}}).judge.prestart is False
    assert build_config({}).judge.prestart is True
    with pytest.raises(ConfigError, match="judge.prestart must be true or false"):
        build_config({"judge": {"prestart": "maybe"}})
