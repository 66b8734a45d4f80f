"""The scorer image holds what a dummy load needs: its file set (the COPY lines of
docker/scorer.Dockerfile, less what .dockerignore drops) laid out as in the image, and a judge
loaded and scoring from there alone, with the repository (tools/ included) off the import path."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys

from editfleet_common.launch import REPO_ROOT

from .conftest import small_dummy_configs

DOCKERFILE = REPO_ROOT / "docker" / "scorer.Dockerfile"


def image_app_dir(root):
    """The image's /app: each `COPY <src> /app/<dst>` of the Dockerfile, from the build context."""
    ignored = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip().startswith("**/")]
    copies = re.findall(r"^COPY\s+(\S+)\s+/app/(\S+)\s*$", DOCKERFILE.read_text(), re.M)
    assert {dst for _, dst in copies} >= {"editfleet_common", "scorer_service", "gen"}, copies
    app = root / "app"
    for src, dst in copies:
        shutil.copytree(REPO_ROOT / src, app / dst, ignore=lambda _d, names: [
            n for n in names if any(fnmatch.fnmatch(n, pattern.removeprefix("**/")) for pattern in ignored)])
    return app


def test_a_dummy_judge_loads_and_scores_from_the_image_files_alone(tmp_path):
    app = image_app_dir(tmp_path)
    (tmp_path / "configs").mkdir()
    configs = small_dummy_configs(tmp_path / "configs")
    repo_paths = [str(REPO_ROOT), str(REPO_ROOT / "gen")]  # what the venv's editfleet.pth adds
    script = f"""
import sys
sys.path[:] = [{str(app)!r}, {str(app / "gen")!r}] + [p for p in sys.path if p and p not in {repo_paths!r}]
from scorer_service.judge import Judge
from suites.protocols import load_protocols
from scorer_service.samples import warmup_sample
import scorer_service
assert scorer_service.__file__.startswith({str(app)!r}), scorer_service.__file__
judge = Judge.load({str(configs)!r}, load_format="dummy", max_new_tokens=2)
outcome = judge.score([warmup_sample(load_protocols())])[0]
assert "tools" not in sys.modules and not any(m.startswith("tools.") for m in sys.modules)
print("STATUS", outcome.status, judge.identity.load_format)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "STATUS PARSE_FAILED dummy" in done.stdout  # judged (random weights never parse), not ERROR
