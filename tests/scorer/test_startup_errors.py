"""Start-up mistakes of the scorer service itself (issue 27 item 6), run as a user would
(`python -m scorer_service ...`): one `error:` line naming the flag, exit 2, before a port is bound or
torch is imported, never a transformers or torch traceback. The checks are the orchestrator preflight's
own (editfleet_common/model_checks.py); `--gpus K` beyond the GPUs there is in test_split_judge.py."""

from __future__ import annotations

import subprocess

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from scorer_service.__main__ import build_parser, startup_problems
from tests.fake_hub import FakeHub


def scorer_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".cache" / "home-startup-tests")}
    return subprocess.run([venv_python("scorer"), "-m", "scorer_service", "--port", str(free_port()), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env={**base, **(env or {})})


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one `error:` line of a start that stopped at once (exit 2); the protocol-budget warnings
    said before it are the only other lines."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


def test_the_judge_model_and_device_are_checked_before_anything_starts(tmp_path):
    cache = {"HF_HUB_CACHE": str(tmp_path / "hub")}
    with FakeHub() as hub:
        line = error_line(scorer_cli("--model", "typo-folder", env={**cache, "HF_ENDPOINT": hub.url}))
        assert line.startswith("error: judge model 'typo-folder': no such folder here and not in the local Hugging "
                               f"Face cache ({tmp_path / 'hub'}), and the hub ({hub.url}) has no model 'typo-folder'")
        assert line.endswith("(--model)") and hub.asked == ["typo-folder"]
    line = error_line(scorer_cli("--model", "models/tiny-qwen3-vl-taugth"))
    assert line == ("error: judge model models/tiny-qwen3-vl-taugth: no such folder (models/ is a folder here, so this "
                    "is a path, not a hub id) (--model); did you mean models/tiny-qwen3-vl-taught?")
    line = error_line(scorer_cli("--model", "models/tiny-qwen3-vl", "--device", "cuda", env={"CUDA_VISIBLE_DEVICES": ""}))
    assert line.startswith("error: --device cuda: ") and "no GPU" in line and line.endswith("--device cpu"), line
    # an API judge names a provider's model id and runs on no device here: nothing of this is checked
    api = build_parser().parse_args(["--model", "typo-folder", "--backend", "openai", "--device", "cuda:7"])
    assert startup_problems(api) == []


def test_a_judge_that_does_not_fit_is_refused_before_anything_loads(tmp_path):
    # Qwen3-VL-8B's real architecture (shipped configs, --load-format dummy): 8.8 B parameters, on GPUs with
    # 16 GiB free each (tests/fake_nvidia_smi.py stands in for nvidia-smi: this machine has no GPU)
    from tests.fake_nvidia_smi import fake_nvidia_smi

    gpus = fake_nvidia_smi(tmp_path / "bin", free_mib=[16384, 16384])
    line = error_line(scorer_cli("--model", "Qwen/Qwen3-VL-8B-Instruct", "--load-format", "dummy", "--device", "cuda",
                                 env=gpus))
    assert line.startswith(
        "error: judge model Qwen/Qwen3-VL-8B-Instruct does not fit on cuda (GPU 0): its weights alone take 16.3 GiB "
        "in bfloat16, and GPU 0 has 16.0 GiB free of 79.6 GiB (nvidia-smi): split it over 2 GPUs with --gpus 2 "
        "(a run: --judge-gpus-per-replica 2); free GPU 0"), line
    # a staged start holds the weights in host memory first (the GPU is the editors' until the go signal);
    # EDITFLEET_MEMORY_CAP_BYTES caps the RAM the check sees (memory_fit's test knob)
    line = error_line(scorer_cli("--model", "models/tiny-qwen3-vl", "--device", "cuda", "--stage-on-host",
                                 env={**gpus, "EDITFLEET_MEMORY_CAP_BYTES": "100000"}))
    assert line.startswith("error: judge model models/tiny-qwen3-vl does not fit on the host, where --stage-on-host "
                           "holds it (RAM): its weights alone take 323 KiB in bfloat16, and RAM has 98 KiB free"), line
    assert "(EDITFLEET_MEMORY_CAP_BYTES=100000): a staged start holds the weights in host memory" in line
