"""Shared helpers for the orchestrator tests (orchestrator venv: no torch)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "benchmark" / "benchmark.jsonl"
TINY_EDITOR = REPO / "models" / "tiny-qwen-image-edit"
TINY_JUDGE = REPO / "models" / "tiny-qwen3-vl"
TAUGHT_JUDGE = REPO / "models" / "tiny-qwen3-vl-taught"  # examples/config.yaml's judge


def png_bytes(size=(32, 32), color=(200, 50, 50)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_native(folder: Path, records: list[dict], images: dict[str, bytes] | None = None) -> Path:
    """A native JSONL benchmark in `folder`; `images` maps relative paths to file contents."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in (images or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    path = folder / "bench.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def example_copy(tmp_path) -> Path:
    """A private copy of the example benchmark (tests may add to it)."""
    dest = tmp_path / "bench"
    shutil.copytree(EXAMPLE.parent, dest)
    return dest / "benchmark.jsonl"


def orchestrator_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def start_orchestrator(*args: str, key: tuple[str, str | None] | None = None) -> subprocess.Popen:
    """`python -m orchestrator ARGS` in the repository, output on one pipe. key: (NAME, value) of the
    API key's environment variable, set to that value (None: unset)."""
    env = dict(os.environ)
    if key is not None:
        env.pop(key[0], None)
        if key[1] is not None:
            env[key[0]] = key[1]
    return subprocess.Popen(orchestrator_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def wait_orchestrator(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output


def run_orchestrator(*args: str, key: tuple[str, str | None] | None = None, timeout: float = 300) -> tuple[int, str]:
    """The exit code and output of `python -m orchestrator ARGS` (see start_orchestrator)."""
    return wait_orchestrator(start_orchestrator(*args, key=key), timeout)


def request_content(body: dict) -> list[dict]:
    """The content parts of the last message of a chat-completions request body."""
    return body["messages"][-1]["content"]


def request_text(body: dict) -> str:
    """The text parts of the last message of a chat-completions request body, joined."""
    return "".join(c.get("text", "") for c in request_content(body) if c.get("type") == "text")


def require_tiny_models(*, demo_judge: bool = False):
    """demo_judge: the taught judge of examples/config.yaml too."""
    needed = (TINY_EDITOR, TINY_JUDGE, TAUGHT_JUDGE) if demo_judge else (TINY_EDITOR, TINY_JUDGE)
    missing = [str(p) for p in needed if not (p / ".done").exists() and not p.exists()]
    if missing:
        pytest.fail(f"tiny models missing ({', '.join(missing)}): run `make models` first")


def git(root, *args) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def isolated_git_config(monkeypatch):
    # A developer's global excludesFile or status settings must not change what the tests see.
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")


@pytest.fixture
def git_repo(tmp_path, isolated_git_config) -> Path:
    """A real checkout with one commit (tool.py) and the project's usual ignores."""
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text(".venv/\nmodels/\ngen/\nruns/\n__pycache__/\n")
    (root / "tool.py").write_text("print('v1')\n")
    git(root, "add", ".gitignore", "tool.py")
    git(root, "commit", "-q", "-m", "first")
    return root
