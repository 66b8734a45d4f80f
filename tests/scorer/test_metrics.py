"""Prometheus metrics of a real scorer process: scraped over HTTP from --metrics-port and parsed with
prometheus_client's own parser; the values move when samples are scored."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from editfleet_common.launch import free_port
from scorer_service.client import ScorerClient

from .conftest import png, start_scorer


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_scorer_metrics_move_with_a_score(tiny_judge_dir, tmp_path):
    metrics_port = free_port()
    scorer = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", "--metrics-port", str(metrics_port))
    try:
        before = scrape(metrics_port)
        assert before[("editfleet_model_load_seconds", ())] > 0
        (labels,) = [dict(labels) for (name, labels) in before if name == "editfleet_build_info"]
        assert labels["service"] == "scorer" and labels["model"] == str(tiny_judge_dir)
        assert labels["decode"] == "dynamic" and labels["content_hash"]
        assert before.get(("editfleet_scorer_batch_size_count", ()), 0) == 0
        tokens_before = before[("editfleet_scorer_generated_tokens_total", ())]  # the warm-up's
        with ScorerClient(scorer.address) as client:
            requests = [dict(sample_id=f"m{i}", edited_image=png(), source_image=png(), instruction="make it red",
                             category="physical", variables={"original_description": "a red car"}) for i in range(3)]
            results = list(client.score_many(requests, timeout=120))
        assert len(results) == 3
        after = scrape(metrics_port)
        assert after[("editfleet_scorer_samples_total", (("status", "PARSE_FAILED"),))] == 3  # the random judge
        assert after[("editfleet_scorer_batch_size_sum", ())] == 3
        assert after[("editfleet_scorer_judge_seconds_count", ())] == after[("editfleet_scorer_batch_size_count", ())] >= 1
        assert after[("editfleet_scorer_generated_tokens_total", ())] > tokens_before
        assert after[("editfleet_scorer_queue_depth", ())] == 0
    finally:
        scorer.stop()
