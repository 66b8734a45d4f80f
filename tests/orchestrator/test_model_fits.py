"""The preflight refuses a run whose models do not fit where the local fleet would load them (issue 27
item 6), before anything starts: the editor's weights on each GPU of --gpus, the judge's on its GPU
(one replica per GPU of the run), CPU editors' copies in RAM; read from the models' safetensors headers
against nvidia-smi's free memory (tests/fake_nvidia_smi.py stands in for it: this machine has no GPU)
or, on the CPU, the RAM available (capped by EDITFLEET_MEMORY_CAP_BYTES, memory_fit's test knob: the
tiny models fit any machine). The real CLI, `run --dry-run` and `run`: exit 2, no run folder.
"""

from __future__ import annotations

import os
import subprocess

from conftest import EXAMPLE, REPO, TAUGHT_JUDGE, TINY_EDITOR, orchestrator_cmd
from tests.fake_nvidia_smi import fake_nvidia_smi


def cli(*args: str, env: dict) -> tuple[int, str]:
    done = subprocess.run(orchestrator_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    return done.returncode, done.stdout + done.stderr


def run_args(out, *extra: str) -> list[str]:
    return ["run", "--benchmark", str(EXAMPLE), "--editor-model", str(TINY_EDITOR), "--judge-model", str(TAUGHT_JUDGE),
            "--output", str(out), "--progress", "plain", *extra]


def test_models_that_do_not_fit_their_gpus_or_the_ram_are_refused_before_anything_starts(tmp_path):
    out = tmp_path / "out"
    gpus = fake_nvidia_smi(tmp_path / "bin", free_mib=[40960, 0, 81000])
    path = {"PATH": f"{gpus['PATH'].split(os.pathsep)[0]}{os.pathsep}{os.environ['PATH']}"}
    code, output = cli(*run_args(out, "--gpus", "0,1"), env=path)
    assert code == 2, output
    assert "nothing was started; 2 problems found before the first edit:" in output
    assert (f"editor model {TINY_EDITOR} does not fit on GPU 1: its weights alone take 446 KiB in bfloat16 "
            "(transformer 181 KiB, text_encoder 165 KiB, vae 101 KiB), and GPU 1 has 0 KiB free of 79.6 GiB "
            "(nvidia-smi): leave GPU 1 out of --gpus; GPU 2 has room (--gpus); free GPU 1") in output
    # the judge's second replica would load on GPU 1 once the editors are down
    assert (f"judge model {TAUGHT_JUDGE} does not fit on GPU 1: its weights alone take 323 KiB in bfloat16, and GPU 1 "
            "has 0 KiB free of 79.6 GiB (nvidia-smi): GPUs 0,2 have room (devices.judge_gpu; score --gpu)") in output
    assert "Traceback" not in output and not out.exists()
    code, output = cli(*run_args(out, "--gpus", "0,2", "--dry-run"), env=path)
    assert code == 0, output  # the GPUs with room: the plan
    # CPU editors: each holds its own float32 copy
    code, output = cli(*run_args(out, "--editors", "2"), env={"EDITFLEET_MEMORY_CAP_BYTES": "1500000"})
    assert code == 2, output
    assert (f"editor model {TINY_EDITOR} does not fit in RAM 2 times over (--editors 2: each CPU editor holds its own "
            "copy): its weights take 893 KiB in float32") in output
    assert ("and RAM has 1.4 MiB free" in output
            and "(EDITFLEET_MEMORY_CAP_BYTES=1500000): fewer CPU editors (--editors 1 fit); editor.dtype: bfloat16 "
                "halves them" in output), output
    assert not out.exists()
