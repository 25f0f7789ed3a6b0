"""Running virtual boards, for `lwstool devs` and `-p auto`.

A virtual board (`lwstool emulate`) writes one small JSON file here while
it runs, and removes it when it stops:

    {"path": "/dev/pts/5", "link": "/tmp/board", "board": "esp32",
     "root": "/home/me/microlws/build/vboard/esp32", "pid": 4242}

The folder is $LWSTOOL_RUN_DIR, else $XDG_RUNTIME_DIR/lwstool, else
lwstool-UID in the system's temporary folder. An entry whose process is
gone (a board that was killed) is removed when the boards are listed.
"""
import json
import os
import tempfile
from pathlib import Path


def run_dir():
    d = os.environ.get("LWSTOOL_RUN_DIR")
    if d:
        return Path(d)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "lwstool"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / ("lwstool-%d" % uid)


def _entry(path):
    return run_dir() / ("vboard-%d-%s.json" % (
        os.getpid(), os.path.basename(path)))


def register(path, **info):
    """Say that a virtual board serves on the pty `path`; returns the
    entry's file (for unregister)."""
    f = _entry(path)
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        info = dict(info, path=path, pid=os.getpid())
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, f)
    except OSError:
        return None       # a board that cannot register still works
    return f


def unregister(entry):
    if entry is not None:
        try:
            os.unlink(entry)
        except OSError:
            pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True       # someone else's, but there
    except (OSError, ValueError, TypeError):
        return False
    return True


def virtual_boards():
    """The running virtual boards, newest first: [{"path", "link",
    "board", "root", "pid"}]. Stale entries are removed."""
    out = []
    try:
        files = list(run_dir().glob("vboard-*.json"))
    except OSError:
        return out
    for f in files:
        try:
            info = json.loads(f.read_text())
            mtime = f.stat().st_mtime
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not _alive(info.get("pid")) or \
                not os.path.exists(info.get("path", "")):
            unregister(f)
            continue
        out.append((mtime, info))
    out.sort(key=lambda e: -e[0])
    return [info for _, info in out]


def describe(info):
    """A devs line's description of a virtual board."""
    return "virtual board (unix port, %s profile), root %s%s" % (
        info.get("board", "?"), info.get("root", "?"),
        ", link %s" % info["link"] if info.get("link") else "")
