"""Prometheus metrics of a real editor process: scraped over HTTP from --metrics-port and parsed with
prometheus_client's own parser; the values move when an edit happens (and when one is refused)."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from editfleet_common.channels import ServiceError
from editfleet_common.launch import free_port
from editor_service.client import EditorClient

from .conftest import png_bytes, start_editor, tiny_model  # noqa: F401 - fixture


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_editor_metrics_move_with_an_edit(tiny_model, tmp_path):  # noqa: F811
    metrics_port = free_port()
    editor = start_editor(tmp_path, "--metrics-port", str(metrics_port), "--default-steps", "2")
    try:
        editor.wait_healthy(300)
        before = scrape(metrics_port)
        assert before[("editfleet_model_load_seconds", ())] > 0
        info = [labels for (name, labels) in before if name == "editfleet_build_info"]
        assert len(info) == 1 and dict(info[0])["model"] == str(tiny_model) and dict(info[0])["service"] == "editor"
        assert dict(info[0])["content_hash"] and dict(info[0])["speed_mode"] == "reference"  # CPU runs reference
        assert before.get(("editfleet_editor_edits_total", (("status", "OK"),)), 0) == 0
        assert before[("editfleet_editor_queue_depth", ())] == 0 == before[("editfleet_editor_edits_in_flight", ())]
        assert before[("editfleet_device_memory_allocated_bytes", ())] == 0  # CPU

        with EditorClient(editor.address) as client:
            client.edit(png_bytes(32, 32), "make it blue", steps=2, seed=1, width=32, height=32, timeout=120)
            with pytest.raises(ServiceError):
                client.edit(b"not a png", "x", steps=2, timeout=60)
        after = scrape(metrics_port)
        assert after[("editfleet_editor_edits_total", (("status", "OK"),))] == 1
        assert after[("editfleet_editor_edits_total", (("status", "INVALID_ARGUMENT"),))] == 1
        assert after[("editfleet_editor_denoise_steps_total", ())] == before[("editfleet_editor_denoise_steps_total", ())] + 2
        assert after[("editfleet_editor_edit_seconds_count", ())] == 1
        assert after[("editfleet_editor_edit_seconds_sum", ())] > 0
        assert after[("editfleet_editor_queue_wait_seconds_count", ())] == 1
        assert after[("editfleet_editor_edits_in_flight", ())] == 0
    finally:
        editor.stop()


def test_metrics_are_off_by_default(tiny_model):  # noqa: F811
    from editor_service.__main__ import parse_args

    assert parse_args(["--model", "m"]).metrics_port == 0
    assert parse_args(["--model", "m", "--metrics-port", "9100"]).metrics_port == 9100
