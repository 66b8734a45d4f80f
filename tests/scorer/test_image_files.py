"""The scorer image holds what a dummy load needs: the image installs the project's wheel
(docker/scorer.Dockerfile), so its files are the wheel's. The wheel is built here (setup.py's hook
generating the stubs) from a copy of the sources, unpacked, and a judge loaded and scoring from its
files alone, with the repository (tools/ included) off the import path. The wheel installed with its
dependencies and run end to end: tools/try_installed.sh (make test-installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from editfleet_common.launch import REPO_ROOT

from .conftest import small_dummy_configs

DOCKERFILE = REPO_ROOT / "docker" / "scorer.Dockerfile"
NOT_SOURCES = {".git", ".venv", ".cache", "models", "runs", "gen", "build", "dist", "__pycache__", "tests", "bench",
               "docs", "k8s", "examples"}


def wheel_files(root):
    """The scorer image's Python files: the wheel, built without isolation (this environment has the
    build-system requirements: make installs them) from a copy of the checkout, and unpacked."""
    assert "editfleet-*.whl)[scorer]" in DOCKERFILE.read_text(), "the scorer image installs the wheel"
    source = root / "src"
    shutil.copytree(REPO_ROOT, source, ignore=lambda d, names: [
        n for n in names if n in NOT_SOURCES or n.endswith(".egg-info")] if d == str(REPO_ROOT) else
        [n for n in names if n == "__pycache__"])
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-w", str(root / "dist"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (wheel,) = (root / "dist").glob("editfleet-*.whl")
    app = root / "app"
    zipfile.ZipFile(wheel).extractall(app)
    return app


def test_a_dummy_judge_loads_and_scores_from_the_wheel_files_alone(tmp_path):
    app = wheel_files(tmp_path)
    assert not (app / "tools").exists() and not (app / "tests").exists()
    (tmp_path / "configs").mkdir()
    configs = small_dummy_configs(tmp_path / "configs")
    repo = str(REPO_ROOT)
    script = f"""
import sys
sys.path[:] = [{str(app)!r}] + [p for p in sys.path if p and (not p.startswith({repo!r}) or p.startswith(sys.prefix))]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
from scorer_service.judge import Judge
from suites.protocols import load_protocols
from scorer_service.samples import warmup_sample
import editfleet.v1.scorer_pb2, scorer_service
for module in (scorer_service, editfleet.v1.scorer_pb2):
    assert module.__file__.startswith({str(app)!r}), module.__file__
judge = Judge.load({str(configs)!r}, load_format="dummy", max_new_tokens=2)
outcome = judge.score([warmup_sample(load_protocols())])[0]
assert "tools" not in sys.modules and not any(m.startswith("tools.") for m in sys.modules)
print("STATUS", outcome.status, judge.identity.load_format, judge.identity.editfleet_version)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "STATUS PARSE_FAILED dummy" in done.stdout  # judged (random weights never parse), not ERROR
