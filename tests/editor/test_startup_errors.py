"""Start-up mistakes of the editor service itself (issue 27 item 6), run as a user would
(`python -m editor_service ...`): each is one `error:` line naming the flag, exit 2, found before a
port is bound or a model is loaded, never a diffusers or torch traceback. The checks are the
orchestrator preflight's own (editfleet_common/model_checks.py).

  - `--model typo-folder`, a hub id neither cached nor on the hub: the hub says so (a stand-in for
    it, tests/fake_hub.py, as HF_ENDPOINT), or cannot be reached; it used to be a traceback about the
    hub cache and `local_files_only=False`;
  - `--model models/tiny-qwen-image-edt`: a missing folder (models/ is a folder here), with the
    folder meant; a folder without model_index.json;
  - `--device cuda` on a machine without a GPU: it used to be a 34-line torch traceback.
"""

from __future__ import annotations

import subprocess

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from tests.fake_hub import FakeHub


def editor_cli(*args: str, env: dict | None = None, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".cache" / "home-startup-tests")}
    return subprocess.run([venv_python("editor"), "-m", "editor_service", "--port", str(free_port()), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env={**base, **(env or {})})


def one_error(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a start that stopped at once (exit 2, nothing else said)."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


def test_a_model_that_is_neither_a_folder_nor_a_hub_model(tmp_path):
    cache = {"HF_HUB_CACHE": str(tmp_path / "hub")}  # empty: nothing is cached
    with FakeHub({"someorg/a-judge": ["config.json", "model.safetensors"]}) as hub:
        line = one_error(editor_cli("--model", "typo-folder", env={**cache, "HF_ENDPOINT": hub.url}))
        assert line.startswith("error: editor model 'typo-folder': no such folder here and not in the local Hugging "
                               f"Face cache ({tmp_path / 'hub'}), and the hub ({hub.url}) has no model 'typo-folder'")
        assert line.endswith("(--model)")
        line = one_error(editor_cli("--model", "someorg/a-judge", env={**cache, "HF_ENDPOINT": hub.url}))
        assert line == ("error: editor model 'someorg/a-judge': the hub repository has no model_index.json, so it is "
                        "not a diffusers model (--model)")
        assert hub.asked == ["typo-folder", "someorg/a-judge"]
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the hub cannot be reached
    line = one_error(editor_cli("--model", "typo-folder", env={**cache, "HF_ENDPOINT": closed}))
    assert f"and the hub ({closed}) cannot be reached to download it (ConnectError" in line
    assert line.endswith("(--model): give a model folder, or download it first (`hf download typo-folder`)")
    line = one_error(editor_cli("--model", "typo-folder", env={**cache, "HF_HUB_OFFLINE": "1"}))
    assert "not in the local Hugging Face cache" in line and "HF_HUB_OFFLINE=1 forbids downloading it (--model)" in line


def test_a_missing_or_wrong_model_folder(tmp_path):
    line = one_error(editor_cli("--model", "models/tiny-qwen-image-edt"))
    assert line == ("error: editor model models/tiny-qwen-image-edt: no such folder (models/ is a folder here, so this "
                    "is a path, not a hub id) (--model); did you mean models/tiny-qwen-image-edit?")
    line = one_error(editor_cli("--model", str(tmp_path)))
    assert line == (f"error: editor model {tmp_path}: the folder has no model_index.json, so it is not a diffusers "
                    "model folder (--model)")


def test_a_gpu_device_on_a_machine_without_one():
    # no nvidia-smi on PATH and no GPU visible to torch (CUDA_VISIBLE_DEVICES=''): whatever the machine
    for device in ("cuda", "cuda:1"):
        line = one_error(editor_cli("--model", "models/tiny-qwen-image-edit", "--device", device,
                                    env={"CUDA_VISIBLE_DEVICES": ""}))
        assert line.startswith(f"error: --device {device}: ") and "no GPU" in line, line
        assert line.endswith("run on the CPU with --device cpu")
