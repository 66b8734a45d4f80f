"""Multi-turn chains (issue 31 item 4): a sample's input is another sample's edit (`input_from`).

One real run, shared: two real editors on the tiny Qwen-Image-Edit (a static fleet, so they outlive
the orchestrator), a native file with a three-turn chain t1 -> t2 -> t3, a chain f1 -> f2 -> f3 -> f4
whose second turn the editor refuses (guidance 1000: INVALID_ARGUMENT, editor_service/checks.py), and
two single samples. The orchestrator is killed (SIGKILL) once t2's edit is recorded, while t3 (eight
steps) is being edited, and run again on the same folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from editfleet_common.launch import ServiceProcess, free_port, venv_python
from editor_service.client import EditorClient
from orchestrator.benchmark import BenchmarkError, load_benchmark
from orchestrator.chains import CHAIN_FAILED
from orchestrator.config import EditorConfig
from orchestrator.dispatch import edit_fields, sample_seed
from orchestrator.results import RunDir

from conftest import REPO, TINY_EDITOR, orchestrator_cmd, png_bytes, write_native
from test_e2e import lines

SETTINGS = EditorConfig(steps=2, guidance=1.0, width=32, height=32)
RECORDS = [
    {"id": "t1", "image": "room.png", "instruction": "Add a lamp", "category": "room"},
    {"id": "t2", "input_from": "t1", "instruction": "Make the lamp red", "category": "room"},
    {"id": "t3", "input_from": "t2", "instruction": "Paint the wall blue", "category": "wall",
     "extras": {"num_inference_steps": 8}},  # slow enough to be killed during
    {"id": "s1", "image": "room.png", "instruction": "Make it night", "category": "room"},
    {"id": "f1", "image": "cat.png", "instruction": "Add a hat", "category": "cat"},
    {"id": "f2", "input_from": "f1", "instruction": "Make the hat green", "category": "cat",
     "extras": {"guidance_scale": 1000}},
    {"id": "f3", "input_from": "f2", "instruction": "Add a scarf", "category": "cat"},
    {"id": "f4", "input_from": "f3", "instruction": "Add boots", "category": "cat"},
    {"id": "s2", "image": "cat.png", "instruction": "Make it winter", "category": "cat"},
]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def editors(tmp_path_factory):
    if not (TINY_EDITOR / "model_index.json").exists():
        pytest.fail(f"{TINY_EDITOR} missing: run `make models` first")
    logs = tmp_path_factory.mktemp("editors")
    started = []
    for n in range(2):
        port = free_port()
        argv = [venv_python("editor"), "-m", "editor_service", "--model", str(TINY_EDITOR), "--device", "cpu",
                "--port", str(port), "--threads", "1"]
        started.append(ServiceProcess(f"e{n}", argv, port, log_path=logs / f"e{n}.log").start())
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda e: e.wait_healthy(240), started))
        yield started
    finally:
        for editor in started:
            editor.stop()


@pytest.fixture(scope="module")
def chain_run(editors, tmp_path_factory):
    root = tmp_path_factory.mktemp("chains")
    bench = write_native(root / "bench", RECORDS, {"room.png": png_bytes((32, 32), (40, 90, 200)),
                                                   "cat.png": png_bytes((32, 32), (200, 120, 20))})
    out = root / "out"
    config = root / "run.yaml"  # the edit settings of SETTINGS
    config.write_text("editor:\n  steps: 2\n  guidance: 1.0\n  width: 32\n  height: 32\n")
    args = orchestrator_cmd("run", "--config", str(config), "--benchmark", str(bench), "--fleet", "static",
                            "--editor-address", editors[0].address, "--editor-address", editors[1].address,
                            "--no-score", "--output", str(out), "--progress", "plain")
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(line["id"] == "t2" for line in lines(out / "edits.jsonl")):
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "t2 was not edited in 120 s"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    before = lines(out / "edits.jsonl")
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    return {"out": out, "bench": bench, "before": before, "second": second,
            "edits": lines(out / "edits.jsonl"), "manifest": json.loads((out / "manifest.json").read_text())}


def by_id(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in records:
        out.setdefault(record["id"], []).append(record)
    return out


def test_the_killed_chain_goes_on_from_its_third_turn(chain_run):
    second = chain_run["second"]
    assert second.returncode == 3, second.stdout + second.stderr  # f2-f4 failed: some samples not edited
    before = by_id(chain_run["before"])
    assert "t1" in before and "t2" in before and "t3" not in before  # killed during turn 3
    edits = by_id(chain_run["edits"])
    # finished turns are read from disk, not sent again: one line each over both sessions
    assert all(len(records) == 1 for records in edits.values()), edits
    assert set(edits) == {r["id"] for r in RECORDS}
    sessions = chain_run["manifest"]["sessions"]
    assert sessions[0]["status"] == "interrupted"
    ok_before = sum(r[0]["status"] == "ok" for r in before.values())
    ok_now = sum(r[0]["status"] == "ok" for r in edits.values())
    assert sessions[-1]["edited"] == ok_now - ok_before
    assert "Resuming: " in second.stdout


def test_each_turn_edits_the_png_of_the_turn_before(chain_run):
    out, edits = chain_run["out"], {r["id"]: r for r in chain_run["edits"]}
    t1, t2, t3 = edits["t1"], edits["t2"], edits["t3"]
    assert t1["status"] == t2["status"] == t3["status"] == "ok"
    assert "input_from" not in t1
    for turn, before in ((t2, t1), (t3, t2)):
        png = (out / before["path"]).read_bytes()
        assert turn["input_from"] == before["id"]
        assert turn["input_sha256"] == before["sha256"] == sha(png)
        assert turn["images"] == [str(out / before["path"])]
        assert turn["seed"] == sample_seed(0, turn["id"])  # its own seed: no matter which editor or when
    assert (t3["path"], t3["steps"]) == ("edits/wall/t3.png", 8)  # a chain may cross categories


def test_the_editor_was_sent_exactly_that_png(chain_run, editors):
    """t3's edit is what the editor makes of t2's PNG with t3's seed, and not what it makes of the source."""
    out, edits = chain_run["out"], {r["id"]: r for r in chain_run["edits"]}
    samples = {s.id: s for s in load_benchmark(chain_run["bench"]).samples}
    fields = edit_fields(samples["t3"], SETTINGS)
    with EditorClient(editors[1].address) as client:
        again = client.edit([(out / edits["t2"]["path"]).read_bytes()], samples["t3"].instruction, **fields)
        from_source = client.edit([samples["t1"].source_bytes()], samples["t3"].instruction, **fields)
    assert sha(again.image_png) == edits["t3"]["sha256"]
    assert sha(from_source.image_png) != edits["t3"]["sha256"]


def test_a_failed_turn_fails_the_rest_of_its_chain(chain_run):
    out, edits = chain_run["out"], {r["id"]: r for r in chain_run["edits"]}
    assert edits["f1"]["status"] == "ok" and edits["s1"]["status"] == edits["s2"]["status"] == "ok"
    f2 = edits["f2"]
    assert (f2["status"], f2["code"], f2["final"]) == ("failed", "INVALID_ARGUMENT", True)
    assert f2["input_from"] == "f1" and f2["input_sha256"] == edits["f1"]["sha256"]
    for turn, before in (("f3", "f2"), ("f4", "f3")):
        record = edits[turn]
        assert (record["status"], record["code"], record["final"]) == ("failed", CHAIN_FAILED, True)
        assert (record["input_from"], record["failed_turn"], record["attempts"]) == (before, "f2", 0)
        assert "'f2'" in record["error"] and "guidance_scale" in record["error"]
        assert not (out / "edits" / "cat" / f"{turn}.png").exists()  # never filled in with the source
    summary = json.loads((out / "summary.json").read_text())
    assert summary["edit_failures"] == 3 and summary["edited"] == 6


def test_the_report_shows_a_turns_input_as_the_edit_before(chain_run):
    report = (chain_run["out"] / "report.html").read_text()
    (row,) = [row for row in report.split("<tr>") if "<b>t3</b>" in row]
    assert row.count("data:image/jpeg") == 2  # its input (t2's edit) and its edit


def test_a_rerun_keeps_the_chain_and_redoes_turns_made_from_an_old_input(chain_run, tmp_path):
    """RunDir.edit_state: a turn counts as done only while its input is the current edit of the turn
    before; a chain failure only while the failed turn's failure is kept."""
    samples = load_benchmark(chain_run["bench"]).samples
    run_dir = RunDir(chain_run["out"])
    done, failed = run_dir.edit_state(samples)
    assert set(done) == {"t1", "t2", "t3", "s1", "f1", "s2"} and set(failed) == {"f2", "f3", "f4"}
    assert run_dir.edit_state(samples, retry_failed=True)[1] == {}
    # t1 edited again (another image): t2 and t3 were made from the old one
    copy = RunDir(tmp_path / "copy").create()
    for record in chain_run["edits"]:
        if record["status"] == "ok":
            source = chain_run["out"] / record["path"]
            (tmp_path / "copy" / record["path"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "copy" / record["path"]).write_bytes(source.read_bytes())
        copy.edits.append(record)
    t1 = next(s for s in samples if s.id == "t1")
    copy.save_edit(t1, png_bytes((32, 32), (1, 2, 3)), {"instruction": t1.instruction})
    done, failed = copy.edit_state(samples)
    assert {"t1", "s1"} <= set(done) and not {"t2", "t3"} & set(done)
    # f2's failure no longer kept (its instruction changed): f3 and f4 are edited again too
    changed = [s if s.id != "f2" else dataclasses.replace(s, instruction="Make the hat blue") for s in samples]
    done, failed = copy.edit_state(changed)
    assert not {"f2", "f3", "f4"} & set(failed)


def test_chains_are_checked_at_load(tmp_path):
    bench = write_native(tmp_path, [
        {"id": "a", "image": "x.png", "instruction": "i", "category": "c"},
        {"id": "b", "input_from": "a", "instruction": "i", "category": "d"},
        {"id": "c1", "input_from": "c2", "instruction": "i", "category": "c"},
        {"id": "c2", "input_from": "c1", "instruction": "i", "category": "c"},
        {"id": "u", "input_from": "nobody", "instruction": "i", "category": "c"},
        {"id": "both", "input_from": "a", "image": "x.png", "instruction": "i", "category": "c"},
    ], {"x.png": png_bytes()})
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(bench)
    message = str(caught.value)
    assert "bench.jsonl:3: sample 'c1': input_from makes a cycle: 'c1' -> 'c2' -> 'c1'" in message
    assert "bench.jsonl:5: sample 'u': input_from 'nobody': no sample with that id" in message
    assert "bench.jsonl:6: sample 'both': give input_from or image(s), not both" in message
    assert "sample 'b'" not in message
    good = write_native(tmp_path / "good", [
        {"id": "a", "image": "x.png", "instruction": "i", "category": "c"},
        {"id": "b", "input_from": "a", "instruction": "i", "category": "d"},
    ], {"x.png": png_bytes()})
    with pytest.raises(BenchmarkError, match=r"bench.jsonl:2: sample 'b': input_from 'a': that sample \(bench.jsonl:1\) "
                                             "is left out of this run by --categories"):
        load_benchmark(good, categories=["d"])
    done = subprocess.run(orchestrator_cmd("validate", str(good)), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "chains: 1 (1 of 2 turns); 2 samples in them, 1 edited from the edit of the turn before" in done.stdout


# -- MagicBrush: the multi-turn setting as chains ------------------------------------------------------

def magicbrush_release(folder):
    """A MagicBrush test folder in its release layout: sessions of 1, 3 and 2 turns."""
    sessions = {"101": 1, "202": 3, "303": 2}
    edit_sessions, captions, images = {}, {}, {}
    for session, n in sessions.items():
        turns = []
        for k in range(1, n + 1):
            given = f"{session}-input.png" if k == 1 else f"{session}-output{k - 1}.png"
            turns.append({"input": given, "mask": f"{session}-mask{k}.png", "output": f"{session}-output{k}.png",
                          "instruction": f"edit {k} of {session}"})
            images[f"images/{session}/{session}-output{k}.png"] = png_bytes((16, 16), (k * 40, int(session) % 256, 7))
            captions.setdefault(session, {})[f"{session}-output{k}.png"] = f"caption {k} of {session}"
        images[f"images/{session}/{session}-input.png"] = png_bytes((16, 16), (1, 2, 3))
        edit_sessions[session] = turns
    folder.mkdir(parents=True)
    for rel, data in images.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "edit_sessions.json").write_text(json.dumps(edit_sessions))
    (folder / "local_descriptions.json").write_text(json.dumps(captions))
    return folder


def test_magicbrush_sessions_are_chains_in_the_multi_turn_setting(tmp_path):
    folder = magicbrush_release(tmp_path / "test")
    samples = {s.id: s for s in load_benchmark(folder).samples}
    assert list(samples) == ["101_1", "202_1", "202_2", "202_3", "202_iter_2", "202_iter_3", "303_1", "303_2",
                             "303_iter_2"]
    # single-turn: each turn from the ground truth's input; multi-turn: from the edit of the turn before
    assert samples["202_2"].image_path == folder / "images" / "202" / "202-output1.png"
    assert not samples["202_2"].input_from
    assert (samples["202_iter_2"].input_from, samples["202_iter_3"].input_from) == ("202_1", "202_iter_2")
    assert samples["202_iter_3"].image_path is None
    assert samples["202_iter_3"].reference_images == samples["202_3"].reference_images
    assert samples["202_iter_3"].variables == {"output_caption": "caption 3 of 202"}
    assert (samples["202_iter_3"].category, samples["202_iter_3"].extras["setting"]) == ("iter3", "multi-turn")
    one_setting = load_benchmark(folder, categories=["turn1", "iter2", "iter3"]).samples
    assert [s.id for s in one_setting] == ["101_1", "202_1", "202_iter_2", "202_iter_3", "303_1", "303_iter_2"]
    with pytest.raises(BenchmarkError, match="sample '202_iter_2': input_from '202_1': that sample .* is left out"):
        load_benchmark(folder, categories=["iter2", "iter3"])


def test_magicbrush_reports_final_turn_and_all_turn(tmp_path):
    from suites.magicbrush import headline, layout

    samples = load_benchmark(magicbrush_release(tmp_path / "test")).samples
    l1 = {"101_1": 0.1, "202_1": 0.2, "202_2": 0.3, "202_3": 0.4, "202_iter_2": 0.5, "202_iter_3": 0.6,
          "303_1": 0.7, "303_2": 0.8, "303_iter_2": 0.9}
    edits = {i: {"status": "ok"} for i in l1}
    scores = {i: {"status": "OK", "sub_scores": {"l1": v, "l2": v / 10, "clip_i": 1 - v, "dino": 1 - v, "clip_t": v / 2}}
              for i, v in l1.items()}
    block = headline.headline(samples, edits, scores)
    # all-turn (single-turn): every turn from the ground truth's input; final-turn (multi-turn): each
    # session's last iterative edit, 101_1 for the session of one turn (image_eval.py's get_final_turn_img)
    assert block["overall"]["l1"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 0.7 + 0.8) / 6)
    assert block["overall"]["samples"] == 6 and list(block["groups"]) == ["turn1", "turn2", "turn3"]
    multi = block["multi_turn"]
    assert multi["overall"]["l1"] == pytest.approx((0.1 + 0.6 + 0.9) / 3)
    assert multi["overall"]["clip_i"] == pytest.approx(1 - (0.1 + 0.6 + 0.9) / 3)
    assert {name: g["l1"] for name, g in multi["groups"].items()} == pytest.approx(
        {"sessions of 1 turn": 0.1, "sessions of 2 turns": 0.9, "sessions of 3 turns": 0.6})
    assert "final turn" in headline.console(block) and "last turn of" in headline.report_html(block)
    # a failed turn 2 fails turn 3 (CHAIN_FAILED): that session's final turn is a failure, in no mean
    edits["202_iter_2"] = {"status": "failed", "code": "INVALID_ARGUMENT"}
    edits["202_iter_3"] = {"status": "failed", "code": CHAIN_FAILED}
    del scores["202_iter_2"], scores["202_iter_3"]
    multi = headline.headline(samples, edits, scores)["multi_turn"]
    assert (multi["overall"]["failures"], multi["overall"]["l1"]) == (1, pytest.approx((0.1 + 0.9) / 2))
    # a single-turn-only run has no multi-turn block; one cut short says which sessions lack their last turn
    single = [s for s in samples if s.category.startswith("turn")]
    assert "multi_turn" not in headline.headline(single, edits, scores)
    assert headline.headline(samples[:6], edits, scores)["multi_turn"]["sessions_lacking"] == 0
    assert headline.headline(samples[:5], edits, scores)["multi_turn"]["sessions_lacking"] == 1
    # the official results layout: _1, _inde_<k> (single-turn), _iter_<k> (multi-turn)
    assert [layout.edit_relpath(s) for s in samples if s.extras["session"] == "202"] == [
        "202/202_1.png", "202/202_inde_2.png", "202/202_inde_3.png", "202/202_iter_2.png", "202/202_iter_3.png"]


def test_magicbrush_imported_multi_turn_edits_are_kept(tmp_path):
    """Edits made elsewhere (`orchestrator import`) carry no input hash: their chain is taken as the
    layout holds it."""
    from orchestrator import layouts

    samples = load_benchmark(magicbrush_release(tmp_path / "test")).samples
    method = tmp_path / "results" / "m"
    for sample in samples:
        path = method / layouts.get("magicbrush").layout.edit_relpath(sample)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes((16, 16), (len(sample.id), 9, 9)))
    run_dir = RunDir(tmp_path / "run").create()
    result = layouts.import_edits(layouts.get("magicbrush"), samples, run_dir, tmp_path / "results", "m")
    assert result.imported == len(samples) and not result.missing
    done, _ = run_dir.edit_state(samples)
    assert set(done) == {s.id for s in samples}
