"""A board-faithful interpreter: the MicroPython unix port built 32-bit
(objects the size of an ESP32's or ESP8266's) with lws frozen in by a
board's own manifest selection, Mbed TLS 3.6 as on the ESP32 port and a
`deflate` module that can compress.

The source is, in this order: `src` (MPY_SRC: a tree or a tarball), the
pinned tree beside this repository (../shared/micropython), or a clone of
the pinned upstream commit with its lib/mbedtls submodule. It is unpacked
(or cloned) into build/micropython once; each board's interpreter is
build/unix32/<board>/micropython, rebuilt only when the source, the
manifest or a frozen file changed.

    from lwstool import unix32
    exe = unix32.build("esp8266")     # or unix32.find("esp8266") if built
"""
import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from .errors import LwsToolError
from .unixport import FIRMWARE, REPO

#: the upstream commit ../shared/micropython holds (v1.29.0-preview-731)
PINNED = "1c3c201149f37fe8d81246191b3127bb198d6306"
UPSTREAM = "https://github.com/micropython/micropython.git"
SHARED = REPO.parent / "shared" / "micropython" / "micropython-src.tar.xz"
TREE = REPO / "build" / "micropython"
OUT = REPO / "build" / "unix32"
CROSS = "i686-linux-gnu-"
#: boards with a 32-bit build: their lws selection (a manifest include)
BOARDS = {"esp8266": REPO / "boards" / "esp8266" / "lws_manifest.py",
          "esp32": REPO / "boards" / "esp32" / "lws_manifest.py"}
# what the standard unix variant's manifest freezes, less micropython-lib;
# the simulated network (a board's is in its firmware, costing no heap);
# then the board's lws selection
_MANIFEST = ('include("$(MPY_DIR)/extmod/asyncio")\n'
             'module("network.py", base_path=%r)\ninclude(%r)\n')
_MAKE = ["VARIANT=standard", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0",
         "MICROPY_PY_THREAD=0", "MPY_CROSS_FLAGS=-march=x86",
         "CFLAGS_EXTRA=-DMICROPY_PY_DEFLATE_COMPRESS=1"]


def missing():
    """Why a 32-bit build cannot be made here, or None."""
    if not shutil.which(CROSS + "gcc"):
        return ("no %sgcc: install Debian's gcc-i686-linux-gnu and "
                "libc6-i386 (make debs)" % CROSS)
    if not shutil.which("make"):
        return "no make"
    return None


def _say(msg):
    print("unix32: " + msg, flush=True)


def source(src=None):
    """The MicroPython tree to build from (unpacked or cloned once)."""
    src = src or os.environ.get("MPY_SRC")
    if src:
        p = Path(src).expanduser().resolve()
        if p.is_dir():
            return _checked(p)
        if not p.is_file():
            raise LwsToolError("MPY_SRC=%s: no such tree or tarball" % src)
        return _unpack(p)
    if SHARED.is_file():
        return _unpack(SHARED)
    return _clone()


def _checked(tree):
    if not (tree / "ports" / "unix" / "Makefile").is_file():
        raise LwsToolError("%s is not a MicroPython tree (no ports/unix)"
                           % tree)
    if not (tree / "lib" / "mbedtls" / "library").is_dir():
        raise LwsToolError("%s has no lib/mbedtls: git submodule update "
                           "--init lib/mbedtls" % tree)
    (tree / "lib" / "micropython-lib").mkdir(exist_ok=True)
    return tree


def _unpack(tarball):
    """Unpack a source tarball into build/micropython (again only when the
    tarball changed); the tree is its one top folder."""
    stamp = TREE.parent / "micropython.src"
    key = "%s %d %d" % (tarball, tarball.stat().st_size,
                        tarball.stat().st_mtime)
    if TREE.is_dir() and stamp.is_file() and stamp.read_text() == key:
        return _checked(TREE)
    _say("unpacking %s" % tarball)
    tmp = TREE.parent / "micropython.unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tarball) as t:
        t.extractall(tmp, filter="data")
    tops = [p for p in tmp.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise LwsToolError("%s: expected one top folder" % tarball)
    shutil.rmtree(TREE, ignore_errors=True)
    os.replace(tops[0], TREE)
    shutil.rmtree(tmp, ignore_errors=True)
    stamp.write_text(key)
    return _checked(TREE)


def _clone():
    """The pinned upstream commit with lib/mbedtls, where the network
    allows (outside this repository's CI, which has the tarball)."""
    if (TREE / ".git").is_dir():
        return _checked(TREE)
    _say("cloning %s at %s" % (UPSTREAM, PINNED[:12]))
    tmp = TREE.parent / "micropython.cloning"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for argv in (["git", "init", "-q", str(tmp)],
                     ["git", "-C", str(tmp), "fetch", "-q", "--depth", "1",
                      UPSTREAM, PINNED],
                     ["git", "-C", str(tmp), "checkout", "-q", "FETCH_HEAD"],
                     ["git", "-C", str(tmp), "submodule", "update", "-q",
                      "--init", "--depth", "1", "lib/mbedtls"]):
            subprocess.run(argv, check=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as e:
        raise LwsToolError("no MicroPython source: no %s, and cloning the "
                           "pinned commit failed (%s); set MPY_SRC to a "
                           "tree or tarball" % (SHARED, e))
    shutil.rmtree(TREE, ignore_errors=True)
    os.replace(tmp, TREE)
    return _checked(TREE)


def _key(tree, manifest):
    """What a build depends on, beside the C sources: the tree, the
    manifest text and every firmware file's size and mtime."""
    h = hashlib.sha256()
    h.update((str(tree) + " ".join(_MAKE) + CROSS).encode())
    for p in (tree / "py" / "mpconfig.h", manifest):
        h.update(p.read_bytes())
    for p in sorted(FIRMWARE.rglob("*.py")) + sorted(
            (REPO / "boards").glob("*/lws_manifest.py")) + [
            REPO / "boards" / "unix" / "network.py"]:
        st = p.stat()
        h.update(("%s %d %d\n" % (p, st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def find(board):
    """The board's interpreter if it is built, else None."""
    exe = OUT / board / "micropython"
    return exe if exe.is_file() else None


def build(board="esp8266", src=None, quiet=False):
    """The board's 32-bit interpreter with lws frozen in: built if need be
    (about 30 s the first time on 2 cores, a few when a frozen file
    changed), else the cached one. LwsToolError when it cannot be."""
    if board not in BOARDS:
        raise LwsToolError("no 32-bit build for %r (there is one for %s)"
                           % (board, ", ".join(sorted(BOARDS))))
    why = missing()
    if why:
        raise LwsToolError(why)
    tree = source(src)
    out = OUT / board
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.py"
    text = _MANIFEST % (str(REPO / "boards" / "unix"), str(BOARDS[board]))
    if not manifest.is_file() or manifest.read_text() != text:
        manifest.write_text(text)
    key = _key(tree, manifest)
    stamp = out / "stamp"
    exe = out / "micropython"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == key:
        return exe
    if not quiet:
        _say("building the %s interpreter (32-bit, lws frozen)" % board)
    jobs = "-j%d" % max(1, min(os.cpu_count() or 1, 4))
    log = out / "build.log"
    with open(log, "w") as f:
        for argv in (["make", "-C", str(tree / "mpy-cross"), jobs],
                     ["make", "-C", str(tree / "ports" / "unix"), jobs,
                      "BUILD=%s" % (out / "obj"), "CROSS_COMPILE=" + CROSS,
                      "FROZEN_MANIFEST=%s" % manifest] + _MAKE):
            r = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT)
            if r.returncode:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise LwsToolError("building the %s interpreter failed "
                                   "(%s):\n%s" % (board, log,
                                                  "\n".join(tail)))
    tmp = out / "micropython.tmp"
    shutil.copy2(out / "obj" / "micropython", tmp)
    os.replace(tmp, exe)
    stamp.write_text(key)
    return exe


def main(argv=None):
    """make unix32: build (or check) every board's interpreter."""
    import sys
    boards = (argv if argv is not None else sys.argv[1:]) or sorted(BOARDS)
    try:
        for b in boards:
            print("%s: %s" % (b, build(b)))
    except LwsToolError as e:
        print("unix32: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
