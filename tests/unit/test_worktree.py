"""The harness's worktrees in a KSRC= repository: only its own registrations are touched."""

import shutil
import subprocess

import pytest

from harness import kernel
from harness.errors import SeriesError

ENV = dict(kernel.GIT_ID)


def g(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env={**ENV, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


def registered(repo) -> list[str]:
    return [ln.split(" ", 1)[1] for ln in g(repo, "worktree", "list", "--porcelain").splitlines()
            if ln.startswith("worktree ")]


@pytest.fixture
def user_repo(tmp_path, monkeypatch):
    """A user's repository with a stale worktree of their own (its directory is
    gone, e.g. on an unmounted disk), and the harness cache in tmp_path."""
    monkeypatch.setenv("KEXP_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "linux"
    repo.mkdir()
    (repo / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n")
    g(repo, "init", "-q", "-b", "main")
    g(repo, "add", "-A")
    g(repo, "commit", "-q", "-m", "base")
    base = g(repo, "rev-parse", "HEAD").strip()
    foreign = tmp_path / "usb" / "my-feature"
    g(repo, "worktree", "add", "-q", "--detach", str(foreign), base)
    shutil.rmtree(foreign)
    bt = kernel.BaseTree(repo.resolve(), base, "6.12.107", f"KSRC={repo}", "ksrc-test")
    return bt, str(foreign)


def test_stale_foreign_worktree_survives(user_repo):
    bt, foreign = user_repo
    wt = kernel._worktree(bt, "patched")
    assert (wt / ".git").is_file() and (wt / "Makefile").is_file()
    assert foreign in registered(bt.path)
    # our own directory disappears (cache cleaned): recreated, the user's stale
    # registration still there
    shutil.rmtree(wt)
    assert str(wt) in registered(bt.path)
    assert kernel._worktree(bt, "patched") == wt
    assert (wt / ".git").is_file()
    regs = registered(bt.path)
    assert foreign in regs and regs.count(str(wt)) == 1
    assert "prunable" in g(bt.path, "worktree", "list", "--porcelain")  # still the user's to prune


def test_existing_worktree_is_reused(user_repo):
    bt, _ = user_repo
    wt = kernel._worktree(bt, "baseline")
    (wt / "_build").mkdir()
    assert kernel._worktree(bt, "baseline") == wt
    assert (wt / "_build").is_dir()


def test_registered_dir_without_git_is_not_deleted(user_repo):
    bt, foreign = user_repo
    wt = kernel._worktree(bt, "patched")
    (wt / ".git").unlink()
    (wt / "_build").mkdir(exist_ok=True)
    with pytest.raises(SeriesError, match="not one"):
        kernel._worktree(bt, "patched")
    assert (wt / "_build").is_dir()
    assert foreign in registered(bt.path)
