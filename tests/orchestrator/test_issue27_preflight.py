"""Issue 27 item 1 and the smaller items of 8, before anything starts: the real CLI as a subprocess,
no service. Every mistake the issue found only after the editing phase (or as a service's traceback)
is refused at once, every problem listed together, exit 2, nothing created; `run --dry-run` prints the
plan and stops.

GPUs are counted with `nvidia-smi -L`: the tests put a stand-in `nvidia-smi` first on PATH, so that
they say the same on a machine with GPUs and on one without.
"""

from __future__ import annotations

import json
import os
import subprocess

from PIL import Image

from conftest import EXAMPLE, REPO, TINY_EDITOR, TAUGHT_JUDGE, orchestrator_cmd, png_bytes, write_native

EXIT_PREFLIGHT = 2


def cli(*args: str, env: dict | None = None, gpus: int | None = 0, timeout: float = 120) -> tuple[int, str]:
    """gpus: how many GPUs the stand-in nvidia-smi lists (None: the machine's own)."""
    environment = {**os.environ, **(env or {})}
    if gpus is not None:
        bin_dir = REPO / ".cache" / f"fake-nvidia-smi-{gpus}"
        bin_dir.mkdir(parents=True, exist_ok=True)
        script = bin_dir / "nvidia-smi"
        script.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i})'\n"
                                                  for i in range(gpus)))
        script.chmod(0o755)
        environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    done = subprocess.run(orchestrator_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=environment)
    return done.returncode, done.stdout + done.stderr


def run_args(out, *extra: str, bench=EXAMPLE) -> list[str]:
    return ["run", "--benchmark", str(bench), "--editor-model", str(TINY_EDITOR), "--judge-model", str(TAUGHT_JUDGE),
            "--editors", "1", "--output", str(out), "--progress", "plain", *extra]


def test_every_mistake_is_listed_at_once_and_nothing_starts(tmp_path):
    # the issue's cases: a misspelled judge folder (was: the staged judge died during editing, "Please
    # check your internet connection"), a misspelled protocol (was: "the judge has no protocol" after
    # editing), a misspelled editor folder (was: a diffusers traceback about the hub cache), --gpus 0 on a
    # machine without a GPU (was: a 34-line torch traceback)
    out = tmp_path / "out"
    code, output = cli("run", "--benchmark", str(EXAMPLE), "--editor-model", "models/tiny-qwen-image-edt",
                       "--judge-model", "models/tiny-qwen3-vl-taugth", "--protocol", "viescor", "--gpus", "0",
                       "--output", str(out))
    assert code == EXIT_PREFLIGHT, output
    assert "Traceback" not in output and "internet" not in output
    assert "nothing was started; 4 problems found before the first edit:" in output
    assert ("editor model models/tiny-qwen-image-edt: no such folder" in output
            and "did you mean models/tiny-qwen-image-edit?" in output)
    assert "judge model models/tiny-qwen3-vl-taugth: no such folder" in output
    assert "did you mean models/tiny-qwen3-vl-taught?" in output
    assert "judge protocol 'viescor' not found" in output and "(did you mean 'viescore'?)" in output
    gpu_line = next(line for line in output.splitlines() if "GPU 0" in line)
    assert "this machine has no GPU" in gpu_line and "--editors N" in gpu_line
    assert not out.exists()  # no run folder, no logs: nothing was started


def test_a_model_folder_must_hold_what_its_service_loads_and_hub_ids_must_be_cached_offline(tmp_path):
    empty = tmp_path / "models" / "judge-without-config"
    empty.mkdir(parents=True)
    code, output = cli(*run_args(tmp_path / "out", "--judge-model", str(empty), "--dry-run"))
    assert code == EXIT_PREFLIGHT, output
    assert f"judge model {empty}: the folder has no config.json" in output
    # a hub id, offline: in the local cache or refused (never a download attempt, never a traceback)
    cache = tmp_path / "hub"
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    code, output = cli(*run_args(tmp_path / "out", "--judge-model", "someorg/some-judge", "--dry-run"), env=offline)
    assert code == EXIT_PREFLIGHT, output
    assert "judge model 'someorg/some-judge': not in the local Hugging Face cache" in output
    assert "HF_HUB_OFFLINE=1" in output
    snapshot = cache / "models--someorg--some-judge" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    code, output = cli(*run_args(tmp_path / "out", "--judge-model", "someorg/some-judge", "--dry-run"), env=offline)
    assert code == 0, output
    assert "judge       someorg/some-judge" in output


def test_gpus_are_counted_without_torch(tmp_path):
    on_gpus = [a for a in run_args(tmp_path / "out", "--dry-run") if a not in ("--editors", "1")]
    code, output = cli(*on_gpus, "--gpus", "0,3", gpus=2)
    assert code == EXIT_PREFLIGHT, output
    assert "GPU 3 (--gpus / devices.gpus): not on this machine, which has 2 GPU(s): 0, 1" in output
    code, output = cli(*on_gpus, "--gpus", "0,1", gpus=2)
    assert code == 0, output
    assert "editors     2 on GPUs 0,1 (local fleet)" in output


def big_image_bench(tmp_path):
    """One sample of 7000x6000 = 42 M pixels: over the services' default 40 M."""
    folder = tmp_path / "big"
    folder.mkdir()
    Image.new("RGB", (7000, 6000), (90, 120, 200)).save(folder / "big.png", optimize=False, compress_level=1)
    return write_native(folder, [{"id": "big-01", "category": "c", "image": "big.png",
                                  "instruction": "Make it red.", "description": "A blue field."}])


def test_the_orchestrator_takes_the_images_the_services_take(tmp_path):
    bench = big_image_bench(tmp_path)
    out = tmp_path / "out"
    # the defaults: refused by the orchestrator as the services would
    code, output = cli(*run_args(out, "--dry-run", bench=bench))
    assert code == EXIT_PREFLIGHT and "exceeds the limit of 40000000" in output, output
    # the editors raised, the judge not: it would be edited, then refused by the judge
    config = tmp_path / "raised.yaml"
    config.write_text(json.dumps({"editor": {"server_args": ["--max-input-pixels", "50000000"]}}))
    code, output = cli(*run_args(out, "--config", str(config), "--dry-run", bench=bench))
    assert code == EXIT_PREFLIGHT, output
    assert "exceeds the limit" not in output  # the orchestrator itself takes what the editors take
    assert ("1 sample(s) have images over the judge's --max-input-pixels 40000000 (judge.server_args; the editors "
            "take up to 50000000): they would be edited, then refused by the judge: big-01 (7000x6000)") in output
    # both raised: nothing to refuse (edit only: the judge's limit does not matter)
    config.write_text(json.dumps({"editor": {"server_args": ["--max-input-pixels", "50000000"]},
                                  "judge": {"server_args": ["--max-image-pixels=50000000"]}}))
    code, output = cli(*run_args(out, "--config", str(config), "--dry-run", bench=bench))
    assert code == 0, output
    config.write_text(json.dumps({"editor": {"server_args": ["--max-input-pixels", "50000000"]}}))
    code, output = cli(*run_args(out, "--config", str(config), "--dry-run", "--no-score", bench=bench))
    assert code == 0, output
    assert not out.exists()


def test_a_lowered_limit_and_an_edit_size_over_it(tmp_path):
    config = tmp_path / "low.yaml"
    config.write_text(json.dumps({"editor": {"server_args": ["--max-input-pixels", "60000"]}}))
    code, output = cli(*run_args(tmp_path / "out", "--config", str(config), "--size", "512", "--dry-run"))
    assert code == EXIT_PREFLIGHT, output
    assert ("editor size 512x512 = 262144 pixels is over the editors' --max-input-pixels 60000: every edit "
            "would be refused") in output
    # sources over the editors' lowered limit are refused by the editors at once: said, not refused here
    code, output = cli(*run_args(tmp_path / "out", "--config", str(config), "--size", "64", "--dry-run"))
    assert code == 0, output
    assert ("10 sample(s) have images over the editors' --max-input-pixels 60000 (editor.server_args); they will be "
            "recorded as failed edits: phys-01 (256x256)") in output
    assert "they will be recorded as failed edits" in output


def test_a_protocol_the_samples_cannot_answer_is_refused_with_the_rest(tmp_path):
    # a native file without the optional description, judged with seed-0-10 (was: every score INVALID
    # after the whole editing phase)
    bench = write_native(tmp_path / "b", [{"id": f"s{i}", "category": "c", "image": "a.png", "instruction": "x"}
                                          for i in range(3)], images={"a.png": png_bytes()})
    code, output = cli(*run_args(tmp_path / "out", "--judge-model", "models/nope", bench=bench))
    assert code == EXIT_PREFLIGHT, output
    assert "nothing was started; 2 problems found before the first edit:" in output
    assert ("3 sample(s) cannot be judged with protocol 'seed-0-10': missing template variable(s): "
            "original_description (s0, s1, s2)") in output
    assert "judge model models/nope: no such folder" in output


def test_a_bad_benchmark_alone_is_refused_with_exit_2_and_its_own_words(tmp_path):
    bench = write_native(tmp_path / "b", [{"id": "x", "image": "gone.png", "instruction": "x", "category": "c"}])
    code, output = cli(*run_args(tmp_path / "out", bench=bench))
    assert code == EXIT_PREFLIGHT, output
    assert "Error: 1 problem(s) in the benchmark; nothing was started" in output and "image not found" in output


def test_limit_0_names_the_flag_not_the_config_key():
    code, output = cli("run", "--config", "examples/config.yaml", "--limit", "0")
    assert code == 2, output
    assert "Invalid value for '--limit': 0 is not in the range x>=1" in output
    assert "examples/config.yaml" not in output and "benchmark.limit" not in output


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path):
    out = tmp_path / "out"
    code, output = cli(*run_args(out, "--protocol", "viescore", "--steps", "2", "--size", "32", "--dry-run"))
    assert code == 0, output
    assert output.startswith("Plan (dry run: nothing was started or written)")
    assert "10 sample(s) in 5 categories: physical 2, environmental 2, cultural 2, causal 2, referential 2" in output
    assert f"output      {out} (new)" in output
    assert "editors     1 on the CPU (local fleet)" in output and "steps 2" in output and "32x32" in output
    assert f"judge       {TAUGHT_JUDGE} (transformers), 1 replica(s) on the CPU (local fleet)" in output
    assert "protocol    viescore: 2 question(s) (SC, PQ) for 10 sample(s)" in output
    assert "estimate    no recorded figures for editing and judging" in output
    assert not out.exists()


# -- the console's words (orchestrator/ui.py, scoring.failed_reply) ---------------------------------
def test_reasons_are_cut_after_a_whole_word():
    from orchestrator.ui import score_line, short

    assert short("alpha beta gamma delta", 16) == "alpha beta..."
    assert short("x" * 30, 10) == "xxxxxxx..."
    reason = "protocol 'p': missing template variable(s): " + ", ".join(f"variable_number_{i}" for i in range(20))
    line = score_line(0, {"status": "INVALID", "error": reason, "category": "c", "id": "s"})
    shown = line.split("| Error: ", 1)[1].rsplit("  (c/s)", 1)[0]
    assert shown.endswith("...") and reason.startswith(shown[:-3])
    assert reason[len(shown) - 3] in " ,", shown  # the cut falls between words


def test_the_reply_that_failed_is_shown_not_the_one_that_parsed():
    from orchestrator.scoring import failed_reply
    from orchestrator.ui import score_line

    # viescore: SC failed twice (re-asked), PQ parsed at once: the replies are [SC, SC again, PQ]
    record = {"status": "PARSE_FAILED", "error": "SC: no score found", "attempts": 2, "category": "c", "id": "s",
              "raw_responses": ["sc first", "sc re-asked", '{"score": [8, 9]}']}
    assert failed_reply(record, ["SC", "PQ"]) == "sc re-asked"
    assert "Raw (SC): sc re-asked" in score_line(0, record, failed_raw=failed_reply(record, ["SC", "PQ"]))
    # PQ failed, SC parsed after a re-ask: [SC, SC again, PQ, PQ again]
    record.update(error="PQ: no score found", raw_responses=["x", '{"score": [5]}', "pq first", "pq re-asked"])
    assert failed_reply(record, ["SC", "PQ"]) == "pq re-asked"


def test_failures_zero_under_a_lower_is_better_score_is_refused(tmp_path):
    # MagicBrush's headline is L1, better lower: a failure counted as 0 would be the best value there is
    from test_suite_magicbrush import make_release

    release, out = make_release(tmp_path / "test"), tmp_path / "out"
    args = ["run", "--benchmark", str(release), "--editor-model", str(TINY_EDITOR), "--editors", "1",
            "--judge-backend", "metrics", "--judge-model", str(REPO / "models/tiny-clip"),
            "--judge-dino-model", str(REPO / "models/tiny-dino"), "--output", str(out), "--dry-run"]
    code, output = cli(*args, "--failures", "zero")
    assert code == EXIT_PREFLIGHT, output
    assert output.strip().count("\n") == 0, output  # one line
    assert ("judge.failures zero (--failures) counts a failure as 0, and protocol 'magicbrush''s score L1 is "
            "better lower") in output
    code, output = cli(*args)  # the default, exclude: the same run passes
    assert code == 0 and output.startswith("Plan (dry run"), output
    assert not out.exists()
