"""manifest.git_state on real temporary git repositories: what makes a run's code "dirty"."""

from __future__ import annotations

import pytest

from orchestrator.manifest import DIRTY_PATHS_SHOWN, git_state

from conftest import git

pytestmark = pytest.mark.usefixtures("isolated_git_config")


def test_a_fresh_commit_is_clean(git_repo):
    assert git_state(git_repo) == {"commit": git(git_repo, "rev-parse", "HEAD"), "dirty": False}


def test_ignored_files_leave_it_clean(git_repo):
    for rel in (".venv/bin/python", "models/tiny/weights.bin", "gen/editfleet/v1/x_pb2.py",
                "runs/r1/manifest.json", "pkg/__pycache__/m.cpython-311.pyc"):
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text("x")
    (git_repo / "scratch.log").write_text("x")
    (git_repo / ".git" / "info").mkdir(exist_ok=True)
    with open(git_repo / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write("scratch.log\n")
    assert git_state(git_repo)["dirty"] is False


def test_an_untracked_source_file_makes_it_dirty(git_repo):
    (git_repo / "new_module.py").write_text("x = 1\n")
    state = git_state(git_repo)
    assert state["dirty"] is True
    assert state["dirty_count"] == 1
    assert state["dirty_paths"] == ["?? new_module.py"]


def test_a_new_untracked_directory_is_one_entry(git_repo):
    (git_repo / "newpkg" / "sub").mkdir(parents=True)
    for name in ("a.py", "b.py", "sub/c.py"):
        (git_repo / "newpkg" / name).write_text("x")
    assert git_state(git_repo)["dirty_paths"] == ["?? newpkg/"]


def test_a_modified_tracked_file_makes_it_dirty(git_repo):
    (git_repo / "tool.py").write_text("print('v2')\n")
    state = git_state(git_repo)
    assert state["dirty"] is True
    assert state["dirty_paths"] == [" M tool.py"]


def test_many_changes_are_counted_and_only_a_few_listed(git_repo):
    for i in range(DIRTY_PATHS_SHOWN + 3):
        (git_repo / f"m{i}.py").write_text("x")
    state = git_state(git_repo)
    assert state["dirty_count"] == DIRTY_PATHS_SHOWN + 3
    assert len(state["dirty_paths"]) == DIRTY_PATHS_SHOWN


def test_not_a_checkout(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file.py").write_text("x")
    assert git_state(plain) == {"commit": None, "dirty": None}


def test_git_not_installed(git_repo, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert git_state(git_repo) == {"commit": None}
