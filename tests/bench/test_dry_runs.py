"""Every bench script's CPU dry run on the tiny models, so that a broken script fails CI.

A bench script (bench/*.py with a `__main__` block) documents its dry run in its docstring as one
command line ending in `# dry run (ENV)`, ENV the venv it runs in (editor, scorer, orchestrator), one
such line per model family it is written for (each is run):

    python bench/editor_speed.py --model models/tiny-qwen-image-edit --device cpu --steps 2  # dry run (editor)

`$OUT` and `$TMP` in the line are a fresh temporary folder. A new script adds its line and is run
here; a script without one fails this test. Run from the repo root with any venv:
`.venv/orchestrator/bin/python -m pytest -q tests/bench`.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from editfleet_common.launch import REPO_ROOT, venv_python

DRY_RUN = re.compile(r"^\s*python (bench/\S+\.py.*?)\s+# dry run \((editor|scorer|orchestrator)\)\s*$", re.M)


def scripts() -> list[Path]:
    return sorted(p for p in (REPO_ROOT / "bench").glob("*.py") if "__main__" in p.read_text())


def dry_runs(script: Path) -> list[tuple[str, str]]:
    """(command, venv) of each dry-run line of the script's docstring."""
    doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    return [(m.group(1), m.group(2)) for m in DRY_RUN.finditer(doc)
            if m.group(1).split()[0] == f"bench/{script.name}"]


def all_dry_runs() -> list:
    return [pytest.param(command, env_name, id=script.stem + (f"-{i + 1}" if i else ""))
            for script in scripts() for i, (command, env_name) in enumerate(dry_runs(script))]


def test_every_script_documents_its_dry_run():
    assert len(scripts()) >= 8
    for script in scripts():
        assert dry_runs(script), \
            f"{script.name}: its docstring needs a line `python bench/{script.name} ...  # dry run (ENV)`"


@pytest.mark.parametrize("command, env_name", all_dry_runs())
def test_dry_run(command, env_name, tmp_path):
    argv = [os.path.expandvars(arg) for arg in shlex.split(command.replace("$OUT", str(tmp_path))
                                                       .replace("$TMP", str(tmp_path)))]
    env = {**os.environ, "EDITFLEET_CACHE_DIR": str(tmp_path / "cache"), "EDITFLEET_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'gen'}"}
    done = subprocess.run([venv_python(env_name), *argv], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{command}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-4000:]}"
