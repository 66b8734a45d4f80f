"""The reference-metrics judge end to end through the `orchestrator` CLI: MagicBrush edits made elsewhere
(a tiny test release, single-turn `_1` / `_inde_<k>` and multi-turn `_iter_<k>` files) imported, judged by
`score --judge-backend metrics` with the tiny CLIP and DINO (tools/make_tiny_clip.py, make_tiny_dino.py)
on the local fleet (judge.model CLIP, judge.dino_model DINO), reported and compared with a second
method's; Emu Edit from its Hugging Face dataset folder (a tiny Parquet) judged the same way. The
second method and Emu Edit are judged by one scorer started here (static fleet), beside the local
fleet's own. The metrics themselves are checked against the official arithmetic in
tests/scorer/test_metrics_backend.py; here: that each score line's values land in summary.json's suite
block (MagicBrush's all-turn and final-turn tables, Emu Edit's per split) as their means by hand, and on
the report page. Preflight: a missing CLIP or DINO folder is one line each, exit 2, nothing started;
so is a metrics protocol given to a judge model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_orchestrator
from editfleet_common import settings
from editfleet_common.launch import ServiceProcess, free_port, venv_python
from orchestrator.config import JudgeConfig
from suites.emu_edit import headline as emu
from suites.magicbrush import headline as mb
from test_suite_emu_edit import make_release as emu_release
from test_suite_magicbrush import make_release as magicbrush_release

CLIP, DINO = REPO / "models" / "tiny-clip", REPO / "models" / "tiny-dino"
SESSIONS = {"30": 1, "139": 3}  # test_suite_magicbrush.make_release's


def _edit(path: Path, color, size=(20, 14)) -> None:  # not the ground truth's 16x12: L1/L2 resize it first
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(color))
    pixels = np.clip(np.array(color, np.int16) + rng.integers(-40, 40, (size[1], size[0], 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def magicbrush_results(folder: Path, shift: int) -> None:
    """A method's edits in MagicBrush's layout: <img_id>/<img_id>_1, _inde_<k>, _iter_<k>."""
    for sid, turns in SESSIONS.items():
        names = [f"{sid}_1"] + [f"{sid}_{kind}_{k}" for k in range(2, turns + 1) for kind in ("inde", "iter")]
        for i, name in enumerate(names):
            _edit(folder / sid / f"{name}.png", (30 * i + shift, 90, 10 * i))


def cli(*args, timeout=240) -> tuple[int, str]:
    return run_orchestrator(*args, timeout=timeout)


def lines(run: Path) -> dict[str, dict]:
    return {d["id"]: d for d in map(json.loads, (run / "scores.jsonl").read_text().splitlines())}


def by_hand(values: list[dict], metrics) -> dict[str, float]:
    return {m: math.fsum(v[m] for v in values) / len(values) for m in metrics}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    missing = [str(p) for p in (CLIP, DINO) if not (p / "config.json").is_file()]
    if missing:
        pytest.fail(f"tiny models missing ({', '.join(missing)}): run `make models` first")
    base = tmp_path_factory.mktemp("metrics_run")
    release = magicbrush_release(base / "test")
    for method, shift in (("A", 0), ("B", 60)):
        magicbrush_results(base / "results" / method, shift)
    emu_bench = emu_release(base / "emu_edit_test_set")
    for split, idxs in (("test", (0, 1, 2)), ("validation", (0,))):
        for i in idxs:
            _edit(base / "emu_results" / "m" / split / f"{i}.png", (i * 50, 100, 20), size=(10, 8))
    out = {"base": base, "release": release}
    out["import"] = [cli("import", str(base / "results"), "--layout", "magicbrush", "--method", m, "--benchmark",
                         str(release), "--output", str(base / f"run{m}")) for m in "AB"]
    out["import"].append(cli("import", str(base / "emu_results"), "--layout", "emu_edit", "--method", "m",
                             "--benchmark", str(emu_bench), "--output", str(base / "emu_run")))
    # one scorer of our own (static fleet) for B and Emu Edit, starting while the local fleet judges A
    port = free_port()
    scorer = ServiceProcess("scorer", [venv_python("scorer"), "-m", "scorer_service", "--backend", "metrics",
                                       "--model", str(CLIP), "--dino-model", str(DINO), "--port", str(port),
                                       "--threads", "1", "--grace", "20"],
                            port, log_path=base / "scorer.log").start()
    try:
        out["scoreA"] = cli("score", str(base / "runA"), "--judge-backend", "metrics", "--judge-model", str(CLIP),
                            "--judge-dino-model", str(DINO), "--progress", "plain", "--output", str(base / "A"))
        scorer.wait_healthy(120)
        static = ("--fleet", "static", "--scorer-address", f"127.0.0.1:{port}", "--judge-backend", "metrics",
                  "--progress", "plain")
        out["scoreB"] = cli("score", str(base / "runB"), *static, "--output", str(base / "B"))
        out["scoreEmu"] = cli("score", str(base / "emu_run"), *static, "--output", str(base / "emu"))
    finally:
        scorer.stop(grace=20)
    out["report"] = cli("report", str(base / "A"))
    out["compare"] = cli("compare", str(base / "A"), str(base / "B"), "--label", "A", "--label", "B",
                         "--output", str(base / "compare"))
    return out


def test_magicbrush_headline_is_the_score_lines_aggregated(runs):
    base = runs["base"]
    for code, output in [*runs["import"], runs["scoreA"], runs["scoreB"]]:
        assert code == 0, output
    assert "Imported 6 edit(s)" in runs["import"][0][1]
    scores = lines(base / "A")
    assert set(scores) == {"30_1", "139_1", "139_2", "139_3", "139_iter_2", "139_iter_3"}
    assert all(s["status"] == "OK" and set(s["sub_scores"]) == set(mb.METRICS) for s in scores.values())
    values = {i: s["sub_scores"] for i, s in scores.items()}
    # L1 of one pair by hand: the edit resized (bicubic) to the ground truth's size, mean |a - b| in [0, 1]
    edit = Image.open(base / "results" / "A" / "139" / "139_inde_3.png").convert("RGB").resize((16, 12), Image.BICUBIC)
    truth = Image.open(runs["release"] / "images" / "139" / "139-output3.png").convert("RGB")
    l1 = np.abs(np.asarray(edit, np.float64) - np.asarray(truth, np.float64)).mean() / 255
    assert values["139_3"]["l1"] == pytest.approx(l1, rel=1e-6) and scores["139_3"]["score"] == values["139_3"]["l1"]
    summary = json.loads((base / "A" / "summary.json").read_text())
    block = summary["suite"]
    # all_turn (single-turn): every turn edited from the ground truth's input, pooled; per turn index too
    single = ["30_1", "139_1", "139_2", "139_3"]
    overall = block["overall"]
    assert (overall["samples"], overall["scored"], overall["failures"]) == (4, 4, 0)
    assert {m: overall[m] for m in mb.METRICS} == by_hand([values[i] for i in single], mb.METRICS)
    assert list(block["groups"]) == ["turn1", "turn2", "turn3"]
    assert {m: block["groups"]["turn1"][m] for m in mb.METRICS} == by_hand([values["30_1"], values["139_1"]], mb.METRICS)
    # final_turn (multi-turn): each session's last iterative edit (_1 for a session of one turn)
    multi = block["multi_turn"]
    assert multi["sessions_lacking"] == 0 and multi["overall"]["samples"] == 2
    assert {m: multi["overall"][m] for m in mb.METRICS} == by_hand([values["30_1"], values["139_iter_3"]], mb.METRICS)
    assert {m: multi["groups"]["sessions of 3 turns"][m] for m in mb.METRICS} == values["139_iter_3"]
    # judged by the backbones named: judge.dino_model reached the local fleet's scorer as --dino-model
    manifest = json.loads((base / "A" / "manifest.json").read_text())
    runtime = manifest["judge"]["model"]["runtime"]
    assert (manifest["judge"]["backend"], runtime["dino_model"]) == ("metrics", str(DINO))
    assert manifest["config"]["judge"]["dino_model"] == str(DINO)
    # what a Kubernetes run checks against a judge's GetInfo: another DINO is named as such
    other = JudgeConfig(backend="metrics", model=str(CLIP), dino_model="facebook/dino-vits16")
    found = settings.mismatches(settings.judge_settings("metrics"), other, {"model": manifest["judge"]["model"]}, "judge")
    assert found == [f"judge.dino_model: the run config says 'facebook/dino-vits16', the service runs {str(DINO)!r} "
                     "(its --dino-model)"]
    # each sample's line gives its metric values, by their names, not a judge's score and reply
    console = runs["scoreA"][1].splitlines()
    assert "[Qwen3-VL Scoring]" not in runs["scoreA"][1] and "Response:" not in runs["scoreA"][1]
    assert any(line.startswith("[Reference metrics] 6 image(s), protocol magicbrush") for line in console)
    assert "[Reference metrics] Completed!" in console and "  Score: L1 \u2193   (lower is better" in runs["scoreA"][1]
    row = next(line for line in console if line.endswith("(turn3/139_3)"))
    v = values["139_3"]
    assert row.split("] ", 1)[1] == (f"L1 {v['l1']:.4f}  L2 {v['l2']:.4f}  CLIP-I {v['clip_i']:.4f}  DINO {v['dino']:.4f}  "
                                     f"CLIP-T {v['clip_t']:.4f}  (turn3/139_3)"), row
    assert any(line.startswith("[Batch 1] Images 0-") and " done, avg L1=" in line for line in console), console
    # the console gives the same tables
    for table, name in ((block, "all turns"), (multi, "final turn")):
        row = next(line for line in console if line.strip().startswith(name))
        assert row.split()[2:7] == [f"{table['overall'][m]:.4f}" for m in mb.METRICS], row


def test_the_report_page_shows_both_settings(runs):
    code, output = runs["report"]
    assert code == 0, output
    summary = json.loads((runs["base"] / "A" / "summary.json").read_text())  # rebuilt by `report`
    block = summary["suite"]
    assert block["overall"]["l1"] == by_hand([s["sub_scores"] for i, s in lines(runs["base"] / "A").items()
                                              if "_iter_" not in i], ("l1",))["l1"]
    page = (runs["base"] / "A" / "report.html").read_text(encoding="utf-8")
    assert "<h2>MagicBrush</h2>" in page and "<th>mean L1 \u2193</th>" in page and "<th title='dino'>DINO \u2191</th>" in page
    for table, name in ((block, "all turns"), (block["multi_turn"], "final turn")):
        row = (f"<tr><th>{name}</th><td class='num'>{table['overall']['samples']}</td>"
               f"<td class='num'>{table['overall']['scored']}</td><td class='num'>0</td>"
               + "".join(f"<td class='num'>{table['overall'][m]:.4f}</td>" for m in mb.METRICS) + "</tr>")
        assert row in page, name


def test_compare_of_two_methods(runs):
    code, output = runs["compare"]
    assert code == 0, output
    data = json.loads((runs["base"] / "compare" / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["A", "B"] and data["baseline"] == "A"
    for label in "AB":
        mine = lines(runs["base"] / label)
        micro = data["overall"]["micro_mean"][label]
        assert micro["scored"] == 6 and micro["mean"] == pytest.approx(math.fsum(s["score"] for s in mine.values()) / 6)
        grid = {row["id"]: row["runs"][label] for row in data["samples"]}
        assert all(grid[i]["sub_scores"] == s["sub_scores"] for i, s in mine.items())
    assert "A" in (runs["base"] / "compare" / "compare.html").read_text(encoding="utf-8")


def test_compare_ranks_by_the_protocols_direction_per_setting(runs):
    """L1 is better lower (magicbrush.yaml `better: lower`): the run with the lower mean L1 ranks first,
    in every category and in each setting; the settings are compared apart (single-turn all turns,
    multi-turn final turns), their means MagicBrush's own (summary.json's suite block), never pooled."""
    base = runs["base"]
    data = json.loads((base / "compare" / "compare.json").read_text())
    assert (data["score"]["label"], data["score"]["better"], data["score"]["shown"]) == ("L1", "lower", "L1 \u2193")
    assert data["score"]["protocol_found"] and data["score"]["sub_scores"]["clip_i"]["better"] == "higher"
    for c, rows in data["categories"].items():
        best = min(rows, key=lambda label: rows[label]["mean"])
        assert rows[best]["rank"] == 1 and rows[best]["mean"] < max(r["mean"] for r in rows.values()), c
    for scope in ("micro_mean", "macro_mean"):
        rows = data["overall"][scope]
        assert rows[min(rows, key=lambda label: rows[label]["mean"])]["rank"] == 1
    blocks = {label: json.loads((base / label / "summary.json").read_text())["suite"] for label in "AB"}
    settings = {mb.SINGLE: lambda b: b["overall"], mb.FINAL: lambda b: b["multi_turn"]["overall"]}
    assert list(data["scopes"]) == list(settings)
    for name, table_of in settings.items():
        scope = data["scopes"][name]
        assert scope["samples"] == (4 if name == mb.SINGLE else 2)
        assert list(scope["metrics"]) == list(mb.METRICS)
        for metric, table in scope["metrics"].items():
            means = {label: table["rows"][label]["mean"] for label in "AB"}
            assert means == pytest.approx({label: table_of(blocks[label])[metric] for label in "AB"}, rel=1e-12)
            lower_first = table["better"] == "lower"
            best = (min if lower_first else max)(means, key=means.get)
            assert means["A"] != means["B"] and table["rows"][best]["rank"] == 1, (name, metric, means)
        assert scope["metrics"]["l1"]["better"] == "lower" and scope["metrics"]["dino"]["better"] == "higher"
    # the terminal: each setting's metrics with their directions and ranks, no pooled headline
    code, output = runs["compare"]
    l1 = data["scopes"][mb.SINGLE]["metrics"]["l1"]["rows"]
    best = min(l1, key=lambda label: l1[label]["mean"])
    assert f"{mb.SINGLE} (4 samples" in output and f"{mb.FINAL} (2 samples" in output, output
    assert "L1 \u2193" in output and "CLIP-I \u2191" in output, output
    row = next(line for line in output.splitlines() if line.strip().startswith(f"{best} "))
    assert f"{l1[best]['mean']:.4f} #1" in row, output
    page = (base / "compare" / "compare.html").read_text(encoding="utf-8")
    assert f"<table class='scope' data-scope='{mb.FINAL}' data-metric='l1'><tr><th>rank</th><th>run</th><th>mean L1 \u2193</th>" in page
    assert "compare.csv" and "scope:all turns (single-turn)" in (base / "compare" / "compare.csv").read_text()


def test_emu_edit_from_its_dataset_folder(runs):
    code, output = runs["scoreEmu"]
    assert code == 0, output
    base = runs["base"]
    scores = lines(base / "emu")
    assert set(scores) == {"test_0", "test_1", "test_2", "validation_0"}
    values = {i: s["sub_scores"] for i, s in scores.items()}
    assert all(set(v) == set(emu.METRICS) for v in values.values())
    block = json.loads((base / "emu" / "summary.json").read_text())["suite"]
    test = block["splits"]["test"]
    assert {m: test["overall"][m] for m in emu.METRICS} == by_hand([values[f"test_{i}"] for i in range(3)], emu.METRICS)
    assert {m: test["groups"]["background"][m] for m in emu.METRICS} == by_hand([values["test_0"], values["test_1"]],
                                                                                   emu.METRICS)
    assert {m: block["splits"]["validation"]["overall"][m] for m in emu.METRICS} == values["validation_0"]
    page = (base / "emu" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Emu Edit</h2>" in page and f"<td class='num'>{test['overall']['clip_dir']:.4f}</td>" in page


def test_preflight_names_a_missing_backbone_before_anything_starts(runs, tmp_path):
    no_config = tmp_path / "not-dino"
    no_config.mkdir()
    code, output = cli("score", str(runs["base"] / "runA"), "--judge-backend", "metrics", "--judge-model",
                       str(tmp_path / "no-clip"), "--judge-dino-model", str(no_config), "--output", str(tmp_path / "out"))
    assert code == 2, output
    assert f"metrics judge's CLIP model {tmp_path / 'no-clip'}: no such folder (--judge-model / judge.model)" in output
    assert (f"metrics judge's DINO model {no_config}: the folder has no config.json, so it is not a transformers model "
            "folder (--judge-dino-model / judge.dino_model)") in output
    assert "Traceback" not in output and not (tmp_path / "out").exists()
    # a reference-metrics protocol is not asked of a judge model (it would answer with numbers of its own)
    code, output = cli("score", str(runs["base"] / "runA"), "--judge-model", str(CLIP), "--output", str(tmp_path / "out"))
    assert code == 2 and "judge protocol 'magicbrush' is reference metrics (`combine: metrics`), computed by judge.backend " \
                         "metrics" in output, output
    assert not (tmp_path / "out").exists()
