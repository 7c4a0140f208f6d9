"""Series hygiene: checkpatch --strict on every patch, and (unless
--checkpatch-only) a kernel build after each patch in order (bisectability)."""

from __future__ import annotations

import os
import shutil
import subprocess

from . import kconfig
from . import kernel as kmod
from .errors import BuildError, SeriesError
from .paths import cache_dir
from .printer import log


def _compiler_id() -> str:
    cc = shutil.which("gcc")
    if not cc:
        return "no-gcc"
    out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return (out.splitlines() or ["?"])[0]


def result_key(tree: str, config_hash: str, compiler: str) -> str:
    """What decides whether a tree builds: its content (the git tree hash
    after the patch), the resulting .config and the compiler."""
    import hashlib

    return hashlib.sha256(f"{tree}\n{config_hash}\n{compiler}".encode()).hexdigest()[:24]


def checkpatch(bt: kmod.BaseTree, files) -> list[str]:
    problems = []
    for p in files:
        r = subprocess.run(["perl", str(bt.path / "scripts/checkpatch.pl"), "--strict",
                            "--no-signoff" if p.name.startswith("0000") else "--signoff",
                            "--quiet", str(p)],
                           cwd=bt.path, capture_output=True, text=True)
        if p.name.startswith("0000"):
            continue  # the cover letter is not code
        if r.returncode != 0 or r.stdout.strip():
            problems.append(f"{p.name}:\n{r.stdout.strip()}")
            log("checkpatch", f"{p.name}: NOT clean")
        else:
            log("checkpatch", f"{p.name}: clean")
    return problems


def build_each(bt: kmod.BaseTree, files) -> list[str]:
    wt = kmod._worktree(bt, "bisect")
    kmod._reset(wt, bt.base)
    out = wt / "_build"
    frags = kconfig.fragment_paths(kconfig.COMMON + kconfig.SERIES)
    problems = []
    env = kmod._ccache_env(bt)
    # a tree state that built once builds again: remember successes by
    # (tree, config, compiler), unless KEXP_BISECT_NOCACHE=1
    okdir = cache_dir() / "bisect-ok"
    okdir.mkdir(parents=True, exist_ok=True)
    use_cache = os.environ.get("KEXP_BISECT_NOCACHE") != "1"
    compiler = _compiler_id()
    for i, p in enumerate(files, 1):
        if p.name.startswith("0000"):
            continue
        r = kmod.git(wt, "am", "-q", str(p), check=False)
        if r.returncode:
            kmod.git(wt, "am", "--abort", check=False)
            raise SeriesError(f"{p.name} does not apply in order")
        # the series' options may not exist yet at this patch: merge them all,
        # require only the common ones to survive
        chash = kmod.configure(wt, out, frags, validate=kconfig.fragment_paths(kconfig.COMMON))
        tree = kmod.git(wt, "rev-parse", "HEAD^{tree}").stdout.strip()
        stamp = okdir / result_key(tree, chash, compiler)
        if use_cache and stamp.is_file():
            log("bisect", f"{i}/{len(files)} {p.name}: builds (built before: tree {tree[:12]}, "
                          f"config {chash})")
            continue
        try:
            kmod._make_build(wt, out, env, 3, ["bzImage"])
            stamp.write_text(f"{p.name}\ntree {tree}\nconfig {chash}\n{compiler}\n")
            log("bisect", f"{i}/{len(files)} {p.name}: builds")
        except BuildError as e:
            problems.append(f"{p.name}: build fails\n{e}")
    return problems


def main(checkpatch_only: bool = False, ksrc: str | None = None) -> int:
    bt = kmod.base_tree(ksrc)
    files = kmod.series_files()
    code = [f for f in files if not f.name.startswith("0000")]
    log("series", f"{len(code)} patch(es) in patches/series")
    problems = checkpatch(bt, files)
    if not checkpatch_only and code:
        problems += build_each(bt, files)
    for p in problems:
        print(p)
    if problems:
        log("series", f"{len(problems)} problem(s)")
        return 1
    log("series", "clean")
    return 0
