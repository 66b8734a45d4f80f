"""manifest.git_state on real temporary git repositories: what makes a run's code "dirty"."""

from __future__ import annotations

import subprocess

import pytest

from orchestrator.manifest import DIRTY_PATHS_SHOWN, git_state


def git(root, *args) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def no_user_git_config(monkeypatch, tmp_path):
    # A developer's global excludesFile or status settings must not change what the tests see.
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text(".venv/\nmodels/\ngen/\nruns/\n__pycache__/\n")
    (root / "tool.py").write_text("print('v1')\n")
    git(root, "add", ".gitignore", "tool.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_a_fresh_commit_is_clean(repo):
    assert git_state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_ignored_files_leave_it_clean(repo):
    for rel in (".venv/bin/python", "models/tiny/weights.bin", "gen/editfleet/v1/x_pb2.py",
                "runs/r1/manifest.json", "pkg/__pycache__/m.cpython-311.pyc"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    (repo / "scratch.log").write_text("x")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    with open(repo / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write("scratch.log\n")
    assert git_state(repo)["dirty"] is False


def test_an_untracked_source_file_makes_it_dirty(repo):
    (repo / "new_module.py").write_text("x = 1\n")
    state = git_state(repo)
    assert state["dirty"] is True
    assert state["dirty_count"] == 1
    assert state["dirty_paths"] == ["?? new_module.py"]


def test_a_new_untracked_directory_is_one_entry(repo):
    (repo / "newpkg" / "sub").mkdir(parents=True)
    for name in ("a.py", "b.py", "sub/c.py"):
        (repo / "newpkg" / name).write_text("x")
    assert git_state(repo)["dirty_paths"] == ["?? newpkg/"]


def test_a_modified_tracked_file_makes_it_dirty(repo):
    (repo / "tool.py").write_text("print('v2')\n")
    state = git_state(repo)
    assert state["dirty"] is True
    assert state["dirty_paths"] == [" M tool.py"]


def test_many_changes_are_counted_and_only_a_few_listed(repo):
    for i in range(DIRTY_PATHS_SHOWN + 3):
        (repo / f"m{i}.py").write_text("x")
    state = git_state(repo)
    assert state["dirty_count"] == DIRTY_PATHS_SHOWN + 3
    assert len(state["dirty_paths"]) == DIRTY_PATHS_SHOWN


def test_not_a_checkout(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file.py").write_text("x")
    assert git_state(plain) == {"commit": None, "dirty": None}


def test_git_not_installed(repo, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert git_state(repo) == {"commit": None}
