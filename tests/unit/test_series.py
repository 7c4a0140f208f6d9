"""Series application on a small fake tree (no kernel needed)."""

import subprocess

import pytest

from harness import kernel
from harness.errors import SeriesError

ENV = dict(kernel.GIT_ID)


def g(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env={**ENV, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "linux"
    t.mkdir()
    (t / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n")
    (t / "vmscan.c").write_text("".join(f"line {i}\n" for i in range(40)))
    g(t, "init", "-q", "-b", "main")
    g(t, "add", "-A")
    g(t, "commit", "-q", "-m", "base")
    base = g(t, "rev-parse", "HEAD").strip()
    # make a two-patch series with format-patch
    (t / "vmscan.c").write_text((t / "vmscan.c").read_text().replace("line 5\n", "line 5 hooked\n"))
    g(t, "commit", "-q", "-am", "mm: hook one")
    (t / "new.c").write_text("int x;\n")
    g(t, "add", "new.c")
    g(t, "commit", "-q", "-m", "mm: add new.c")
    pd = tmp_path / "patches"
    g(t, "format-patch", "-q", "--cover-letter", "-o", str(pd), base)
    names = sorted(p.name for p in pd.glob("*.patch"))
    (pd / "series").write_text("\n".join(names) + "\n")
    g(t, "reset", "-q", "--hard", base)
    wt = tmp_path / "wt"
    g(t, "worktree", "add", "-q", "--detach", str(wt), base)
    return t, wt, base, pd


def test_apply_and_detect_already_applied(tree):
    t, wt, base, pd = tree
    files = [f for f in kernel.series_files(pd) if not f.name.startswith("0000")]
    head = kernel.apply_series(wt, base, files)
    assert "line 5 hooked" in (wt / "vmscan.c").read_text() and (wt / "new.c").exists()
    assert len(g(wt, "rev-list", f"{base}..HEAD").split()) == 2
    mtime = (wt / "new.c").stat().st_mtime_ns
    assert kernel.apply_series(wt, base, files) == head  # detected, untouched
    assert (wt / "new.c").stat().st_mtime_ns == mtime


def test_empty_series_is_base(tree):
    t, wt, base, pd = tree
    assert kernel.apply_series(wt, base, []) == base


def test_conflict_names_patch_and_hunk(tree, tmp_path):
    t, wt, base, pd = tree
    files = [f for f in kernel.series_files(pd) if not f.name.startswith("0000")]
    # a base where line 5 changed: patch 1 cannot apply
    (t / "vmscan.c").write_text((t / "vmscan.c").read_text().replace("line 5\n", "line five\n"))
    g(t, "commit", "-q", "-am", "diverge")
    other = g(t, "rev-parse", "HEAD").strip()
    with pytest.raises(SeriesError) as e:
        kernel.apply_series(wt, other, files)
    msg = str(e.value)
    assert "patch 1/2 0001-mm-hook-one.patch does not apply" in msg
    assert "vmscan.c" in msg
    # the worktree is left usable (no am in progress)
    assert "rebase-apply" not in g(wt, "status")


def test_series_file_names_missing_patch(tmp_path):
    (tmp_path / "series").write_text("0001-nope.patch\n")
    with pytest.raises(SeriesError, match="0001-nope.patch"):
        kernel.series_files(tmp_path)


def test_series_file_comments_and_blank_lines(tree):
    t, wt, base, pd = tree
    s = (pd / "series").read_text()
    (pd / "series").write_text("# quilt order\n\n" + s)
    assert len(kernel.series_files(pd)) == 3


def test_user_tree_checks(tree):
    t, wt, base, pd = tree
    bt = kernel.user_tree(str(t))
    assert bt.version == "6.12.107" and bt.base == base and bt.ident.startswith("ksrc-")
    (t / "vmscan.c").write_text("dirty\n")
    with pytest.raises(Exception, match="uncommitted"):
        kernel.user_tree(str(t))


def test_user_tree_wrong_version(tmp_path):
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = 1\n")
    with pytest.raises(Exception, match="targets 6.12.y"):
        kernel.user_tree(str(tmp_path))


def test_debian_uris_deb822_and_oneline(tmp_path):
    a = tmp_path / "debian.sources"
    a.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
                 "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
                 "Suites: bookworm-security\nComponents: main\n")
    assert kernel._debian_uris([a]) == ("http://mirror.example/debian",
                                        "http://mirror.example/debian-security")
    b = tmp_path / "sources.list"
    b.write_text("deb [arch=amd64] http://m2.example/debian bookworm main\n"
                 "deb http://m2.example/debian-security bookworm-security main\n")
    assert kernel._debian_uris([b]) == ("http://m2.example/debian",
                                        "http://m2.example/debian-security")


def test_version_sort():
    vs = ["6.12.8-1", "6.12.107-1", "6.12.74-2", "6.12.115-2", "6.12.115-1"]
    assert sorted(vs, key=kernel._version_key, reverse=True)[:3] == [
        "6.12.115-2", "6.12.115-1", "6.12.107-1"]


def test_bisect_result_key_covers_tree_config_and_compiler():
    from harness.checkseries import result_key

    k = result_key("t1", "c1", "gcc 12")
    assert k == result_key("t1", "c1", "gcc 12")
    assert len({k, result_key("t2", "c1", "gcc 12"), result_key("t1", "c2", "gcc 12"),
                result_key("t1", "c1", "gcc 13")}) == 4
