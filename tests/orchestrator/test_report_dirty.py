"""report.html names the changed paths that made a run's code "dirty", escaped; older manifests
(only "dirty", or no git state at all) still render. Through `orchestrator report` on a run folder."""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner

from orchestrator.benchmark import load_benchmark
from orchestrator.cli import main
from orchestrator.manifest import git_state
from orchestrator.results import RunDir, write_json_atomic

from conftest import git, png_bytes, write_native

pytestmark = pytest.mark.usefixtures("isolated_git_config")


def report_git_row(tmp_path, git_info) -> tuple[str, str]:
    """(raw HTML, text a reader sees) of the report's git row, for a run whose manifest has `git_info`."""
    bench_path = write_native(tmp_path / "bench", [{"id": "s1", "image": "s1.png", "instruction": "add snow",
                                                    "category": "env"}], {"s1.png": png_bytes()})
    run = RunDir(tmp_path / "run").create()
    config = {"benchmark": {"path": str(bench_path)}, "editor": {"model": "m"}, "judge": {"model": "j"},
              "output": str(run.path)}
    manifest = {"config": config, "benchmark": load_benchmark(bench_path).describe()}
    if git_info is not None:
        manifest["git"] = git_info
    write_json_atomic(run.manifest_path, manifest)
    result = CliRunner().invoke(main, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    page = run.report_path.read_text(encoding="utf-8")
    (row,) = re.findall(r"<tr><th>git</th><td>(.*?)</td></tr>", page)
    return row, html.unescape(re.sub(r"<[^>]+>", "", row))


def test_the_report_lists_the_changed_paths_escaped(git_repo, tmp_path):
    (git_repo / "tool.py").write_text("print('v2')\n")
    (git_repo / "a<b>.py").write_text("x = 1\n")
    (git_repo / "c.txt").write_text("note\n")
    state = git_state(git_repo)

    row, seen = report_git_row(tmp_path, state)
    commit = git(git_repo, "rev-parse", "HEAD")
    assert seen == f"{commit} (dirty: 3 changed paths — tool.py, a<b>.py, c.txt)"
    assert "a&lt;b&gt;.py" in row and "<b>" not in row


def test_more_changes_than_the_manifest_kept_are_counted(git_repo, tmp_path):
    for i in range(7):
        (git_repo / f"new{i}.py").write_text("")
    state = git_state(git_repo)

    _, seen = report_git_row(tmp_path, state)
    assert seen.endswith(" (dirty: 7 changed paths — new0.py, new1.py, new2.py, new3.py, new4.py, and 2 more)")


@pytest.mark.parametrize(("git_info", "seen"), [
    ({"commit": "abc1234", "dirty": True}, "abc1234 (dirty)"),  # written before the paths were kept
    ({"commit": "abc1234", "dirty": False}, "abc1234"),
    ({"commit": "abc1234", "dirty": None}, "abc1234 (dirty: unknown, git status failed)"),
    ({"commit": None}, "unknown commit"),  # git could not run
    (None, "unknown commit"),  # no git state in the manifest at all
])
def test_older_and_partial_manifests_still_render(tmp_path, git_info, seen):
    assert report_git_row(tmp_path, git_info)[1] == seen
