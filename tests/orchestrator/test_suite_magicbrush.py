"""MagicBrush (suites/magicbrush): the test release folder as image_eval.py reads it, the single-turn
means computed by hand from known metric values, the results layout. The metrics themselves:
tests/scorer/test_metrics_backend.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image

from orchestrator.benchmark import load_benchmark
from suites.magicbrush import data, headline, layout


def make_release(root: Path, *, captions: bool = True) -> Path:
    sessions = {"30": 1, "139": 3}
    edit_sessions, local = {}, {}
    for sid, turns in sessions.items():
        folder = root / "images" / sid
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), (10, 20, 30)).save(folder / f"{sid}-input.png")
        edit_sessions[sid] = []
        for k in range(1, turns + 1):
            Image.new("RGB", (16, 12), (40 * k, 20, 30)).save(folder / f"{sid}-output{k}.png")
            edit_sessions[sid].append({"input": f"{sid}-input.png" if k == 1 else f"{sid}-output{k - 1}.png",
                                       "mask": f"{sid}-mask{k}.png", "output": f"{sid}-output{k}.png",
                                       "instruction": f"edit {k} of {sid}"})
            local.setdefault(sid, {})[f"{sid}-output{k}.png"] = f"caption {k} of {sid}"
    (root / "edit_sessions.json").write_text(json.dumps(edit_sessions))
    if captions:
        (root / "local_descriptions.json").write_text(json.dumps(local))
    return root


def test_the_release_loads_one_sample_per_turn_from_the_ground_truths_input(tmp_path):
    root = make_release(tmp_path / "test")
    benchmark = load_benchmark(root)
    assert benchmark.format == "magicbrush"
    by_id = {s.id: s for s in benchmark.samples if s.category.startswith("turn")}  # single-turn (iter<k>: chains)
    assert list(by_id) == ["30_1", "139_1", "139_2", "139_3"]
    turn3 = by_id["139_3"]
    assert (turn3.category, turn3.instruction) == ("turn3", "edit 3 of 139")
    assert turn3.image_path.name == "139-output2.png"  # single-turn: turn k edits the ground truth of k-1
    assert [p.name for p in turn3.reference_images] == ["139-output3.png"]
    assert turn3.variables == {"output_caption": "caption 3 of 139"}
    assert {k: turn3.extras[k] for k in ("session", "turn", "turns")} == {"session": "139", "turn": 3, "turns": 3}
    assert [layout.edit_relpath(by_id[i]) for i in ("30_1", "139_1", "139_2")] == [
        "30/30_1.png", "139/139_1.png", "139/139_inde_2.png"]
    # without a caption file: no variable (CLIP-T is then not asked, magicbrush.yaml's `when`)
    bare = make_release(tmp_path / "bare", captions=False)
    assert all(not s.variables for s in data.load(bare, {})[0])


def test_bad_sessions_name_the_session_the_turn_and_the_field(tmp_path):
    root = make_release(tmp_path / "test")
    sessions = json.loads((root / "edit_sessions.json").read_text())
    del sessions["139"][1]["instruction"]
    sessions["139"][2]["output"] = "../../../etc/passwd"
    sessions["7"] = []
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    local = json.loads((root / "local_descriptions.json").read_text())
    del local["30"]["30-output1.png"]
    (root / "local_descriptions.json").write_text(json.dumps(local))
    samples, problems = data.load(root, {})
    text = "\n".join(map(str, problems))
    assert "edit_sessions.json['139'][1]: sample '139_2': missing or non-string field(s): instruction" in text
    assert "edit_sessions.json['139'][2]: sample '139_3': output: image path '../../../etc/passwd' escapes" in text
    assert "edit_sessions.json['7']: sample '7': expected a non-empty list of turns" in text
    assert "sample '30_1': no caption for '30-output1.png' in local_descriptions.json" in text
    assert [s.id for s in samples if s.category.startswith("turn")] == ["139_1"]


def test_single_turn_means_are_image_evals_pooled_means(tmp_path):
    samples = [s for s in data.load(make_release(tmp_path / "test"), {})[0] if s.category.startswith("turn")]
    values = {"30_1": (0.1, 0.02, 0.9, 0.8, 0.3), "139_1": (0.2, 0.04, 0.7, 0.6, 0.25),
              "139_2": (0.4, 0.16, 0.5, 0.4, 0.2)}
    scores = {sid: {"status": "OK", "score": v[0], "sub_scores": dict(zip(headline.METRICS, v))}
              for sid, v in values.items()}
    # 139_3: its clip_t could not be read: the other four count in their means, the sample is a failure
    scores["139_3"] = {"status": "PARSE_FAILED", "score": None,
                       "sub_scores": {"parsed.l1": 0.6, "parsed.l2": 0.36, "parsed.clip_i": 0.3, "parsed.dino": 0.2}}
    block = headline.headline(samples, {}, scores)
    overall = block["overall"]
    assert (overall["samples"], overall["scored"], overall["failures"]) == (4, 3, 1)
    for name, by_hand in (("l1", (0.1 + 0.2 + 0.4 + 0.6) / 4), ("l2", (0.02 + 0.04 + 0.16 + 0.36) / 4),
                          ("clip_i", (0.9 + 0.7 + 0.5 + 0.3) / 4), ("dino", (0.8 + 0.6 + 0.4 + 0.2) / 4),
                          ("clip_t", (0.3 + 0.25 + 0.2) / 3)):
        assert math.isclose(overall[name], by_hand, abs_tol=1e-15), name
    assert overall["n_clip_t"] == 3 and list(block["groups"]) == ["turn1", "turn2", "turn3"]
    assert math.isclose(block["groups"]["turn1"]["l1"], 0.15, abs_tol=1e-15)
    assert block["groups"]["turn3"]["clip_t"] is None
    # a failed edit: no value, counted as a failure
    failed = headline.headline(samples, {"30_1": {"status": "failed"}}, {k: v for k, v in scores.items() if k != "30_1"})
    assert failed["overall"]["failures"] == 2 and math.isclose(failed["overall"]["l1"], 0.4, abs_tol=1e-15)
    text = headline.console(block)
    assert "all turns" in text and "0.3250" in text  # the overall L1 to 4 decimals
    page = headline.report_html(block)  # each metric with its direction, as magicbrush.yaml declares it
    assert "<th>CLIP-T \u2191</th>" in page and "<th>L1 \u2193</th>" in page and "L2 \u2193" in text
