"""Kernel pipeline: fetch pristine v6.12.y, apply the series, configure, build.

Layout under the cache directory (see paths.cache_dir):

    apt/                 private apt state (deb-src for Debian's 6.12 LTS suite)
    src/                 downloaded Debian source package files
    linux/               the pristine tree as git, one commit tagged kexp-base
    trees/<id>/work/{baseline,patched}   git worktrees (detached)
    trees/<id>/work/<kind>/_build[-debug]    O= build directories
    ccache/              shared by every build

``<id>`` is ``debian-<version>`` for the fetched tree or ``ksrc-<hash>`` for a
user tree given with KSRC=.  The user's tree is never modified beyond the
worktree metadata git keeps for the detached worktrees the harness makes
(trees/<id>/work/*); no other worktree of theirs is touched (no prune).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import kconfig
from .errors import BuildError, ConfigError, FetchError, SeriesError
from .paths import PATCHES, cache_dir
from .printer import log

BASE_TAG = "kexp-base"
PACKAGE = "linux"
SUITE = "trixie"  # Debian 13: its kernel is the 6.12 LTS
ARCH = "x86_64"
GIT_ID = {
    "GIT_AUTHOR_NAME": "kexp",
    "GIT_AUTHOR_EMAIL": "kexp@localhost",
    "GIT_COMMITTER_NAME": "kexp",
    "GIT_COMMITTER_EMAIL": "kexp@localhost",
}


def _run(cmd, cwd=None, env=None, check=True, err=FetchError, capture=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(
        cmd, cwd=cwd, env=e, text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    if check and p.returncode != 0:
        out = (p.stdout or "")[-3000:]
        raise err(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{out}")
    return p


def git(tree: Path, *args, check=True, err=SeriesError, env=None):
    e = dict(GIT_ID)
    if env:
        e.update(env)
    return _run(["git", "-C", str(tree), *args], env=e, check=check, err=err)


# --------------------------------------------------------------------------
# fetch


def _debian_uris(files: list[Path] | None = None) -> tuple[str | None, str | None]:
    """(main archive URI, security URI) from the machine's own apt entries."""
    main = sec = None
    texts = []
    if files is None:
        files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for p in files:
        if p.is_file() and (p.suffix in (".list", ".sources") or p.name == "sources.list"):
            texts.append((p.suffix, p.read_text(errors="replace")))
    for suffix, text in texts:
        if suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                f = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith((" ", "#")):
                        k, v = line.split(":", 1)
                        f[k.strip().lower()] = v.strip()
                if "deb" not in f.get("types", "").split():
                    continue
                for uri in f.get("uris", "").split():
                    suites = f.get("suites", "").split()
                    if any(s.endswith("-security") for s in suites):
                        sec = sec or uri
                    elif "debian" in uri:
                        main = main or uri
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    if parts[2].endswith("-security"):
                        sec = sec or parts[1]
                    elif "debian" in parts[1]:
                        main = main or parts[1]
    return main, sec


def _version_key(v: str):
    nums = [int(x) for x in re.findall(r"\d+", v)]
    return nums


@dataclass
class BaseTree:
    path: Path
    base: str  # commit id
    version: str  # e.g. 6.12.107
    origin: str  # "debian linux 6.12.107-1 orig tarball" or "KSRC=/path"
    ident: str


def _tree_version(path: Path) -> str:
    mk = (path / "Makefile").read_text(errors="replace")[:2000]
    vals = {}
    for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{k} = (\d+)", mk, re.M)
        vals[k] = m.group(1) if m else "?"
    return f"{vals['VERSION']}.{vals['PATCHLEVEL']}.{vals['SUBLEVEL']}"


def fetch(refresh: bool = False) -> BaseTree:
    """Obtain pristine Linux 6.12.y from Debian's orig tarball (cached)."""
    cache = cache_dir()
    tree = cache / "linux"
    meta = cache / "linux.json"
    if (tree / ".git").is_dir() and meta.is_file() and not refresh:
        info = json.loads(meta.read_text())
        base = git(tree, "rev-parse", f"{BASE_TAG}^{{commit}}", err=FetchError).stdout.strip()
        # the tree is ours: if anything changed it (an interrupted run), restore it
        if git(tree, "status", "--porcelain", "--untracked-files=no", err=FetchError).stdout.strip():
            log("fetch", f"{tree} was modified; restoring it to {BASE_TAG}")
            git(tree, "checkout", "-q", "-f", BASE_TAG, err=FetchError)
        log("fetch", f"reusing Linux {info['version']} ({info['origin']}) at {tree}")
        return BaseTree(tree, base, info["version"], info["origin"], f"debian-{info['version']}")

    main, sec = _debian_uris()
    if not main:
        raise FetchError("no Debian archive URI found in /etc/apt/sources.list{,.d}")
    aptd = cache / "apt"
    (aptd / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    opt = f"[signed-by={keyring}] " if keyring.is_file() else ""
    lines = [f"deb-src {opt}{main} {SUITE} main", f"deb-src {opt}{main} {SUITE}-updates main"]
    if sec:
        lines.append(f"deb-src {opt}{sec} {SUITE}-security main")
    (aptd / "sources.list").write_text("\n".join(lines) + "\n")
    aopts = [
        "-o", f"Dir::Etc::SourceList={aptd / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={aptd / 'lists'}",
        "-o", "APT::Sandbox::User=root",
    ]
    log("fetch", f"apt-get update (deb-src {SUITE}, private state in {aptd})")
    _run(["apt-get", "-q", *aopts, "update"])
    out = _run(["apt-cache", *aopts, "showsrc", PACKAGE]).stdout
    versions = sorted(
        {v for v in re.findall(r"^Version: (\S+)$", out, re.M) if v.startswith("6.12.")},
        key=_version_key, reverse=True,
    )
    want = os.environ.get("KEXP_DEB_VERSION")
    if want:
        versions = [v for v in versions if v == want]
    if not versions:
        raise FetchError(f"no 6.12.y version of source package {PACKAGE!r} offered by {SUITE}")
    src = cache / "src"
    src.mkdir(exist_ok=True)
    chosen = None
    for v in versions:
        upstream = v.split("-")[0]
        orig = src / f"{PACKAGE}_{upstream}.orig.tar.xz"
        if orig.is_file():
            chosen = (v, orig)
            break
        log("fetch", f"downloading {PACKAGE} {v} source (orig tarball ~150 MB)")
        p = _run(["apt-get", "-q", *aopts, "source", "--download-only", f"{PACKAGE}={v}"],
                 cwd=src, check=False)
        if p.returncode == 0 and orig.is_file():
            chosen = (v, orig)
            break
        log("fetch", f"{v} not downloadable here, trying an older one")
    if not chosen:
        raise FetchError(f"could not download any of {versions[:5]}")
    debver, orig = chosen
    version = debver.split("-")[0]
    tmp = cache / "linux.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    log("fetch", f"unpacking {orig.name}")
    _run(["tar", "-xJf", str(orig), "-C", str(tmp), "--strip-components=1"])
    if _tree_version(tmp) != version:
        raise FetchError(f"{orig.name} unpacked to Linux {_tree_version(tmp)}, expected {version}")
    log("fetch", "creating git tree with one base commit")
    git(tmp, "init", "-q", "-b", "kexp-base-branch", err=FetchError)
    git(tmp, "add", "-A", err=FetchError)
    fixed = {"GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}
    git(tmp, "commit", "-q", "-m", f"Linux {version}\n\nDebian {PACKAGE} {debver} orig tarball.",
        err=FetchError, env=fixed)
    git(tmp, "tag", BASE_TAG, err=FetchError)
    shutil.rmtree(tree, ignore_errors=True)
    tmp.rename(tree)
    origin = f"Debian {PACKAGE} {debver} orig tarball"
    meta.write_text(json.dumps({"version": version, "debian_version": debver, "origin": origin}))
    base = git(tree, "rev-parse", "HEAD", err=FetchError).stdout.strip()
    log("fetch", f"Linux {version} ready at {tree} (base {base[:12]})")
    return BaseTree(tree, base, version, origin, f"debian-{version}")


def user_tree(ksrc: str) -> BaseTree:
    """Validate a user-supplied tree (KSRC=): a clean git tree at 6.12.y."""
    path = Path(ksrc).expanduser().resolve()
    if not (path / "Makefile").is_file():
        raise FetchError(f"KSRC={ksrc}: no kernel Makefile there")
    version = _tree_version(path)
    if not version.startswith("6.12."):
        raise FetchError(f"KSRC={ksrc}: Linux {version}, this series targets 6.12.y")
    if not (path / ".git").exists():
        raise FetchError(f"KSRC={ksrc}: not a git tree (the series is applied with git am)")
    dirty = git(path, "status", "--porcelain", "--untracked-files=no", err=FetchError).stdout
    if dirty.strip():
        raise FetchError(f"KSRC={ksrc}: tree has uncommitted changes:\n{dirty[:1000]}")
    if (path / ".config").exists():
        raise FetchError(f"KSRC={ksrc}: has a .config in the source dir; O= builds need "
                         "a clean tree (make mrproper)")
    base = git(path, "rev-parse", "HEAD", err=FetchError).stdout.strip()
    ident = "ksrc-" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return BaseTree(path, base, version, f"KSRC={path}", ident)


def base_tree(ksrc: str | None = None, refresh: bool = False) -> BaseTree:
    return user_tree(ksrc) if ksrc else fetch(refresh)


# --------------------------------------------------------------------------
# series


def series_files(patches: Path = PATCHES, listing: str = "series") -> list[Path]:
    """The patches named, in order, by ``patches/<listing>``: ``series`` for
    the patched kernel, ``probe`` for the probe kernel (the base tree with
    only the series' measuring tests, to take mainline's figures)."""
    sf = patches / listing
    if not sf.is_file():
        return []
    out = []
    for line in sf.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        p = patches / line
        if not p.is_file():
            raise SeriesError(f"patches/{listing} names {line}, which does not exist")
        out.append(p)
    return out


def series_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16] if files else "empty"


def _registered(repo: Path, wt: Path) -> bool:
    """Whether ``repo`` has a worktree registered at ``wt`` (present or not)."""
    out = git(repo, "worktree", "list", "--porcelain", err=SeriesError).stdout
    want = wt.resolve()
    return any(Path(ln[len("worktree "):]).resolve() == want
               for ln in out.splitlines() if ln.startswith("worktree "))


def _worktree(bt: BaseTree, name: str) -> Path:
    wt = cache_dir() / "trees" / bt.ident / "work" / name
    if not (wt / ".git").exists():
        wt.parent.mkdir(parents=True, exist_ok=True)
        # Our worktree directory is gone (e.g. the cache was cleaned) but the
        # base repository may still list it, and then `worktree add` refuses
        # the path.  Forget that one registration only: with KSRC= the base
        # repository is the user's own, and `git worktree prune` would also
        # drop the metadata of every other worktree of theirs that is missing
        # right now (one on an unmounted disk, say).  `git worktree remove
        # --force` is git's own way of dropping one worktree, whatever its
        # metadata format (a missing directory is accepted since git 2.22);
        # it runs only when the directory is absent, so it deletes no files.
        if _registered(bt.path, wt):
            if wt.is_dir() and not any(wt.iterdir()):
                wt.rmdir()
            if wt.exists():
                raise SeriesError(f"{wt} is registered as a worktree of {bt.path} but is not one "
                                  f"(no .git): delete that directory and try again")
            git(bt.path, "worktree", "remove", "--force", str(wt), err=SeriesError)
        git(bt.path, "worktree", "add", "-q", "--detach", str(wt), bt.base, err=SeriesError)
    return wt


def _head(wt: Path) -> str:
    return git(wt, "rev-parse", "HEAD").stdout.strip()


def _reset(wt: Path, commit: str) -> None:
    git(wt, "am", "--abort", check=False)
    git(wt, "checkout", "-q", "--detach", "-f", commit)
    git(wt, "reset", "-q", "--hard", commit)


def apply_series(wt: Path, base: str, files: list[Path]) -> str:
    """Apply ``files`` with git am on top of ``base`` in worktree ``wt``.

    Returns the resulting HEAD.  An already-applied series (recorded hash and
    matching HEAD) is detected and left alone so builds stay incremental.  A
    patch that does not apply raises SeriesError naming the patch and the
    rejected hunk(s).
    """
    shash = series_hash(files)
    stamp = wt / ".kexp-series"
    if stamp.is_file():
        rec = json.loads(stamp.read_text())
        if rec.get("hash") == shash and rec.get("base") == base and rec.get("head") == _head(wt):
            log("series", f"already applied ({len(files)} patches, {shash})")
            return rec["head"]
    _reset(wt, base)
    for i, p in enumerate(files, 1):
        r = git(wt, "am", "-q", "--keep-cr", str(p), check=False)
        if r.returncode != 0:
            chk = _run(["git", "-C", str(wt), "apply", "--check", "-v", str(p)], check=False)
            rejected = "\n".join(
                ln for ln in (chk.stdout or "").splitlines()
                if ln.startswith(("error:", "Checking patch", "Hunk", "Applied")) or "patch failed" in ln
            )
            git(wt, "am", "--abort", check=False)
            raise SeriesError(f"patch {i}/{len(files)} {p.name} does not apply:\n{rejected or r.stdout}")
        log("series", f"applied {i}/{len(files)} {p.name}")
    head = _head(wt)
    stamp.write_text(json.dumps({"hash": shash, "base": base, "head": head}))
    if not files:
        log("series", "empty series: patched kernel = base commit")
    return head


# --------------------------------------------------------------------------
# config + build


# patched: the series; baseline: the base tree; probe: the base tree with only
# the patches listed in patches/probe (tests that measure mainline's behaviour)
KINDS = ("patched", "baseline", "probe")


@dataclass
class Kernel:
    kind: str  # one of KINDS
    image: str
    release: str  # make kernelrelease
    version: str
    base: str
    head: str
    series_hash: str
    config_hash: str
    origin: str
    out: str
    src: str
    debug: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _ccache_env(bt: BaseTree) -> dict:
    env = {
        "CCACHE_DIR": os.environ.get("CCACHE_DIR", str(cache_dir() / "ccache")),
        "CCACHE_BASEDIR": str(cache_dir() / "trees" / bt.ident / "work"),
        "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "3G"),
        "CCACHE_NOHASHDIR": "1",
        "KBUILD_BUILD_USER": "kexp",
        "KBUILD_BUILD_HOST": "kexp",
    }
    return env


def configure(src: Path, out: Path, fragments: list[Path],
              validate: list[Path] | None = None) -> str:
    """tinyconfig + fragments + olddefconfig into ``out``; validate; return hash.

    ``validate`` (default: all fragments) are the fragments whose every option
    must survive; the others are merged but may name options the tree lacks."""
    validate = fragments if validate is None else validate
    out.mkdir(parents=True, exist_ok=True)
    fhash = kconfig.fragments_hash(fragments) + "-" + _head(src)[:12]
    stamp = out / ".kexp-config"
    cfg = out / ".config"
    if stamp.is_file() and stamp.read_text() == fhash and cfg.is_file():
        kconfig.check_or_raise(cfg, validate)
        return hashlib.sha256(cfg.read_bytes()).hexdigest()[:16]
    tmp = out.parent / (out.name + "-cfgtmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log("config", f"tinyconfig + {', '.join(f.stem for f in fragments)} -> {out.name}")
    mk = ["make", "-s", "-C", str(src), f"O={tmp}", f"ARCH={ARCH}"]
    _run([*mk, "tinyconfig"], err=ConfigError)
    _run([str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(tmp),
          str(tmp / ".config"), *map(str, fragments)], cwd=src, err=ConfigError)
    _run([*mk, "olddefconfig"], err=ConfigError)
    kconfig.check_or_raise(tmp / ".config", validate)
    new = (tmp / ".config").read_bytes()
    if not cfg.is_file() or cfg.read_bytes() != new:
        cfg.write_bytes(new)
    shutil.rmtree(tmp, ignore_errors=True)
    stamp.write_text(fhash)
    return hashlib.sha256(new).hexdigest()[:16]


def _make_build(src: Path, out: Path, env: dict, jobs: int, targets: list[str]) -> None:
    cc = "ccache gcc" if shutil.which("ccache") else "gcc"
    cmd = ["make", "-C", str(src), f"O={out}", f"ARCH={ARCH}", f"CC={cc}", f"-j{jobs}", *targets]
    logf = out / "build.log"
    e = dict(os.environ)
    e.update(env)
    t0 = time.monotonic()
    last = t0
    objs = 0
    tail: list[str] = []
    log("build", f"{' '.join(cmd)}  (log: {logf})")
    # one kernel build at a time on this machine (two harness runs, or a run
    # and check-series): they would only slow each other down
    lockf = open(cache_dir() / "build.lock", "w")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("build", "waiting for another kernel build on this machine to finish")
        fcntl.flock(lockf, fcntl.LOCK_EX)
        t0 = last = time.monotonic()
    with lockf, open(logf, "w") as lf:
        p = subprocess.Popen(cmd, env=e, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, bufsize=1)
        assert p.stdout is not None
        for line in p.stdout:
            lf.write(line)
            tail.append(line.rstrip())
            del tail[:-60]
            if line.startswith("  CC "):
                objs += 1
            now = time.monotonic()
            if now - last >= 30:
                log("build", f"{out.name}: {objs} objects compiled, {now - t0:.0f}s, at {line.strip()[:60]}")
                last = now
        rc = p.wait()
    if rc != 0:
        errs = [ln for ln in tail if "error" in ln.lower() or "Error" in ln]
        raise BuildError(f"kernel build failed in {out} (rc={rc}); last lines:\n"
                         + "\n".join((errs or tail)[-25:]))
    log("build", f"{out.name}: done in {time.monotonic() - t0:.0f}s ({objs} objects compiled)")


def build(kind: str = "patched", ksrc: str | None = None, debug: bool = False,
          jobs: int | None = None, refresh: bool = False) -> Kernel:
    """Fetch (cached), apply the series (patched), none of it (baseline) or
    only its measuring tests (probe, for ``make bench``), configure, build."""
    if kind not in KINDS:
        raise ValueError(kind)
    bt = base_tree(ksrc, refresh)
    files = series_files(listing="probe/series" if kind == "probe" else "series")
    wt = _worktree(bt, kind)
    if kind in ("patched", "probe"):
        head = apply_series(wt, bt.base, files)
    else:
        if _head(wt) != bt.base:
            _reset(wt, bt.base)
        head = bt.base
    extra = {"patched": kconfig.SERIES, "probe": kconfig.PROBE}.get(kind, [])
    names = kconfig.COMMON + extra + (kconfig.DEBUG if debug else [])
    frags = kconfig.fragment_paths(names)
    # O= inside the worktree: kbuild then uses srctree "..", so compiler
    # command lines are identical for both worktrees and ccache hits across them.
    out = wt / ("_build" + ("-debug" if debug else ""))
    chash = configure(wt, out, frags)
    env = _ccache_env(bt)
    env["KBUILD_BUILD_VERSION"] = head[:12]  # uname -v shows the commit that was built
    t0 = time.monotonic()
    _make_build(wt, out, env, jobs or (os.cpu_count() or 2) + 1, ["bzImage"])
    release = _run(["make", "-s", "-C", str(wt), f"O={out}", f"ARCH={ARCH}", "kernelrelease"],
                   err=BuildError).stdout.strip().splitlines()[-1]
    image = out / "arch/x86/boot/bzImage"
    if not image.is_file():
        raise BuildError(f"build finished but {image} is missing")
    k = Kernel(kind=kind, image=str(image), release=release, version=bt.version, base=bt.base,
               head=head, series_hash=series_hash(files) if kind != "baseline" else "none",
               config_hash=chash, origin=bt.origin, out=str(out), src=str(wt), debug=debug)
    (out / "kexp-kernel.json").write_text(json.dumps(k.to_dict(), indent=1))
    log("kernel", f"{kind}: {release} image {image} ({time.monotonic() - t0:.0f}s build step)")
    return k


def load_built(kind: str = "patched", ksrc: str | None = None, debug: bool = False) -> Kernel | None:
    """The last build record for ``kind`` (no building)."""
    bt_ident = None
    if ksrc:
        bt_ident = user_tree(ksrc).ident
    else:
        meta = cache_dir() / "linux.json"
        if not meta.is_file():
            return None
        bt_ident = "debian-" + json.loads(meta.read_text())["version"]
    build_dir = "_build" + ("-debug" if debug else "")
    rec = cache_dir() / "trees" / bt_ident / "work" / kind / build_dir / "kexp-kernel.json"
    if not rec.is_file():
        return None
    return Kernel(**json.loads(rec.read_text()))
