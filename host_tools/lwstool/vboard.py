"""A virtual board: the MicroPython unix port on a pty, like a serial board.

    vb = VirtualBoard("esp8266", root="build/vboard")
    vb.run()               # foreground; vb.path is the pty to connect to

The bridge sits between two ptys: the user's (its path is what mpremote,
ampy and lwstool open) and the interpreter's. It does what a board does and
the unix port does not (the facts are in the design notes):

- both ptys are raw with echo off (a cooked pty turns \\r\\n into \\r\\r\\n
  and mpremote "could not enter raw repl");
- the root folder is the board's flash: mounted at / (os.VfsPosix; the
  host's files stay reachable under /host, as a board's SD card under
  /sd), the working folder, and first on the path. On (re)start boot.py
  runs, then main.py when the board comes up in the friendly REPL, as on
  a board;
- a soft reset (Ctrl-D at the friendly REPL or at an empty raw REPL) makes
  the unix port exit: the bridge prints `MPY: soft reboot` and starts it
  again, back in the raw REPL if that is where it was;
- the unix REPL flushes its tty when it starts: input is held until the
  first `>>> ` prompt;
- the unix port reads Ctrl-C only while it waits for input (and in
  raw-paste mode not until the code ends): a Ctrl-C while code runs is
  turned into SIGINT for the interpreter.

The heap is capped with -X heapsize from the board profile. The module
path is a board's ('', '.frozen', '/lib') and then boards/unix (the
simulated `network`, under /host); firmware/ is added only with
with_firmware=True (a board with the firmware frozen in). By default the
board holds only what was deployed to it, as a freshly flashed board
does.
"""
import errno
import json
import os
import pty
import select
import signal
import subprocess
import termios
import time
import tty
from pathlib import Path

from . import profiles, unixport
from .errors import LwsToolError

BOARDS = unixport.REPO / "boards"

# run boot.py, then main.py unless the board comes up in the raw REPL
# The root folder becomes the board's "/" (the host's files stay under
# /host, like a board's /sd), then boot.py runs, and main.py unless the
# board comes up in the raw REPL. %(root)r, %(extra)r, %(main)r are filled
# in.
_LAUNCH = """\
def _lws_boot():
    import os, sys
    try:
        os.umount('/')
        os.mount(os.VfsPosix(%(root)r), '/')
        os.mount(os.VfsPosix('/'), '/host')
        os.chdir('/')
        sys.path[:] = ['', '.frozen', '/lib'] + ['/host' + p
                                                 for p in %(extra)r]
    except Exception as e:
        print('vboard: root folder not mounted at /:', e)
_lws_boot()
def _lws_run(f):
    import os, sys
    try:
        os.stat(f)
    except OSError:
        return
    try:
        try:
            run = execfile    # compiled as it is read, as a board does
        except NameError:
            run = lambda f: exec(open(f).read(), globals())
        run(f)
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        sys.print_exception(e)
_lws_run('boot.py')
if %(main)r:
    _lws_run('main.py')
del _lws_run, _lws_boot
"""

# the access points a virtual board sees when no --aps is given: written
# to ROOT/fake_aps.json when that does not exist (the README's steps join
# "home", whose password is "password")
DEFAULT_APS = {"seed": 1, "aps": [
    {"ssid": "home", "password": "password", "rssi": -48, "channel": 6,
     "connect_delay": 0.5},
    {"ssid": "cafe-free", "password": "", "rssi": -67, "channel": 1},
    {"ssid": "neighbours", "password": "not-yours-42", "rssi": -81,
     "channel": 11},
]}

# the exit status with which the board asks for a hard reset (lwstool
# reset --hard: the unix port has no machine.reset); the interpreter is
# started again as a board that powers up, boot.py then main.py
HARD_RESET_EXIT = 76

_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_PROMPTS = (b">>> ", b"... ", b"=== ", b"\r\n>", b"\x04>")


_TRACE = os.environ.get("LWSTOOL_TRACE")


def _trace(who, data):
    with open(_TRACE, "a") as f:
        f.write("%d %.3f %s %r\n" % (os.getpid(), time.monotonic(), who,
                                      data))


def _raw_tty(fd):
    tty.setraw(fd)
    a = termios.tcgetattr(fd)
    a[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG)
    termios.tcsetattr(fd, termios.TCSANOW, a)


class VirtualBoard:
    def __init__(self, board="esp32", root=None, link=None, heap=None,
                 with_firmware=False, aps=None, log=None, console=None,
                 register=True, stock=False):
        """console(bytes): what the board writes while it is not in the
        raw REPL (boot.py, main.py, the log, the friendly REPL), as a
        board's UART shows it; register: list it for `lwstool devs` and
        `-p auto` while it runs (lwstool.registry); stock: the unix port
        from PyPI, as a board flashed with stock MicroPython, rather than
        the board's custom image (lwstool.unix32: 32-bit, lws frozen in)
        where there is one."""
        self.profile = profiles.load(board)
        self.exe = None   # the board's image; None: the stock unix port
        self.note = None  # why not, when one was wanted
        if not stock:
            from . import unix32
            if board in unix32.BOARDS:
                try:
                    self.exe = unix32.build(board, quiet=True)
                except LwsToolError as e:
                    self.note = "no %s image (%s): the stock unix port" % (
                        board, e)
        self.board = board
        self.root = Path(root or unixport.REPO / "build" / "vboard" /
                         board).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.link = Path(link) if link else None
        # an image is 32-bit, as the board: its heap is the profile's own
        self.heap = heap or (self.profile.get("heap_budget") if self.exe
                             else self.profile.get("emulate_heap") or
                             profiles.unix_heap(self.profile))
        self.with_firmware = with_firmware
        self.aps = aps
        if not aps:
            self.default_aps()
        self.log = log
        self.console = console
        self.register = register
        self._entry = None
        self.proc = None
        self.path = None
        self._stop = False

    def aps_file(self):
        """The fake access points' file the board reads."""
        return Path(self.aps).resolve() if self.aps else \
            self.root / "fake_aps.json"

    def default_aps(self):
        """Write DEFAULT_APS to ROOT/fake_aps.json unless there is one."""
        f = self.root / "fake_aps.json"
        if not f.exists():
            f.write_text(json.dumps(DEFAULT_APS, indent=1) + "\n")

    def ap_names(self):
        """The SSIDs in the fake access points' file (for the banner)."""
        try:
            d = json.loads(self.aps_file().read_text())
        except (OSError, ValueError):
            return []
        aps = d.get("aps", []) if isinstance(d, dict) else d
        return [a.get("ssid", "?") for a in aps if isinstance(a, dict)]

    # -- the interpreter --------------------------------------------------

    def argv(self, raw, main=True):
        argv = [str(self.exe or unixport.micropython())]
        if self.heap:
            argv += ["-X", "heapsize=%s" % self.heap]
        return argv + ["-i", "-c", _LAUNCH % {
            "root": str(self.root), "extra": self.extra_path(),
            "main": bool(main and not raw)}]

    def extra_path(self):
        """Host folders on the board's path after its own: the simulated
        network, and the firmware when it counts as frozen in (an image
        has both frozen in)."""
        if self.exe:
            return []
        path = [str(BOARDS / "unix")]
        if self.with_firmware:
            path.append(str(unixport.FIRMWARE))
        return path

    def env(self):
        env = dict(os.environ)
        # what the path is until the launcher mounts the root at /
        path = [str(self.root), ".frozen", str(self.root / "lib")]
        env["MICROPYPATH"] = ":".join(path + self.extra_path())
        if self.aps:
            # the board sees the host's files under /host
            env["LWS_FAKE_APS"] = "/host" + str(Path(self.aps).resolve())
        env["LWS_VBOARD"] = self.board
        return env

    def _spawn(self, raw, main=True):
        self._mfd, sfd = pty.openpty()
        _raw_tty(sfd)
        self._sigint_at = -1.0
        self.proc = subprocess.Popen(self.argv(raw, main), stdin=sfd, stdout=sfd,
                                     stderr=sfd, cwd=str(self.root),
                                     env=self.env(), start_new_session=True)
        os.close(sfd)
        os.set_blocking(self._mfd, False)
        self._spawned_at = time.monotonic()
        self._started = False     # seen the first >>> prompt
        self._swallow = raw       # hide the banner, then enter the raw REPL
        self._tail = b""
        self._raw = False

    def _reap(self):
        try:
            os.close(self._mfd)
        except OSError:
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    # -- the bridge -------------------------------------------------------

    def open(self):
        """Make the user's pty (and the link); returns its path."""
        self._ufd, self._usfd = pty.openpty()
        _raw_tty(self._usfd)     # kept open: no EIO when a client leaves
        os.set_blocking(self._ufd, False)
        self.path = os.ttyname(self._usfd)
        if self.link:
            try:
                self.link.unlink()
            except FileNotFoundError:
                pass
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.symlink_to(self.path)
        if self.register:
            from . import registry
            self._entry = registry.register(
                self.path, link=str(self.link) if self.link else None,
                board=self.board, root=str(self.root))
        return self.path

    def close(self):
        self._stop = True
        if self._entry is not None:
            from . import registry
            registry.unregister(self._entry)
            self._entry = None
        self._reap()
        for fd in (getattr(self, "_ufd", None), getattr(self, "_usfd", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.link and self.link.is_symlink():
            self.link.unlink()

    def _to_user(self, data):
        try:
            os.write(self._ufd, data)
        except BlockingIOError:
            pass          # no one reads the port: output is lost, as on a UART
        if self.console and not self._raw:
            try:
                self.console(data)
            except OSError:
                self.console = None     # its reader went away

    def _idle(self):
        return self._tail.endswith(_PROMPTS)

    def _from_board(self, data):
        if _TRACE:
            _trace("B>", data)
        self._tail = (self._tail + data)[-256:]
        # the REPL the board is in: whichever banner came last
        r, f = self._tail.rfind(_RAW_BANNER), self._tail.rfind(b">>> ")
        if r != f:
            self._raw = r > f
        if not self._started and b">>> " in self._tail:
            self._started = True
            self._started_at = time.monotonic()
            if self._swallow:
                os.write(self._mfd, b"\x01")
                self._tail = b""
                self._swbuf = b""
                return
        if self._swallow:
            if self._started:
                self._swbuf += data
                i = self._swbuf.find(_RAW_BANNER)
                if i >= 0:
                    self._swallow = False
                    self._to_user(b"\r\n" + self._swbuf[i:])
                    self._swbuf = b""
            return
        self._to_user(data)

    def _from_user(self, data):
        if _TRACE:
            _trace("U>", data)
        self._held += data
        out = bytearray()
        for b in self._held:
            if b == 3 and not (self._started and self._idle()):
                self._interrupt()
                if self._raw or not self._started:
                    continue
                # friendly REPL: the byte too, for a half-typed line (a
                # SIGINT at the prompt is harmless)
            out.append(b)
        self._held = bytes(out)

    def _interrupt(self):
        """Ctrl-C as SIGINT. The unix port dies on a second SIGINT before
        it has raised the first, and on one that comes between two pieces
        of code: one at a time, and a death soon after it is taken for the
        interrupt it was meant to be (see _restart)."""
        now = time.monotonic()
        if self.proc.poll() is None and now - self._sigint_at > 0.5:
            self.proc.send_signal(signal.SIGINT)
            self._sigint_at = now

    def _flush_held(self):
        if not self._held or not self._started or self._swallow:
            return
        if time.monotonic() - self._started_at < 0.05:
            return
        try:
            n = os.write(self._mfd, self._held)
        except BlockingIOError:
            return
        self._held = self._held[n:]

    def run(self, ready=None):
        """Serve until close() or a signal; ready(path) once the pty is up."""
        if self.path is None:
            self.open()
        self._held = b""
        self._spawn(raw=False)
        if ready:
            ready(self.path)
        while not self._stop:
            try:
                r, _, _ = select.select([self._ufd, self._mfd], [], [],
                                        0.02 if self._held else 0.5)
            except InterruptedError:
                continue
            if self._mfd in r:
                try:
                    data = os.read(self._mfd, 4096)
                except BlockingIOError:
                    data = None
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    self._from_board(data)
                elif data == b"" or self.proc.poll() is not None:
                    self._restart()
                    continue
            elif self.proc.poll() is not None:
                self._restart()
                continue
            if self._ufd in r:
                try:
                    data = os.read(self._ufd, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self._from_user(data)
            self._flush_held()

    def _restart(self):
        raw = self._raw
        recent = time.monotonic() - self._sigint_at < 2
        self._reap()
        # killed by the Ctrl-C meant to stop main.py (SIGINT outside its
        # handler, or a second one: exit(1)): come back without main.py
        interrupted = recent and self.proc.returncode in (1, -signal.SIGINT)
        if self._stop:
            return
        if self.proc.returncode == HARD_RESET_EXIT:
            # asked for: the board powers up again, in the friendly REPL
            self._raw = False
            self._to_user(b"vboard: hard reset\r\n")
            if self.log:
                self.log("hard reset")
            self._spawn(raw=False)
            return
        if time.monotonic() - self._spawned_at < 1:
            time.sleep(0.5)     # an interpreter that dies at once: no spin
        self._to_user(b"MPY: soft reboot\r\n")
        if self.log:
            self.log("soft reboot (%s REPL)" % ("raw" if raw else "friendly"))
        self._spawn(raw=raw, main=not interrupted)


def _die_with_parent():
    """In the child: SIGTERM when the process that started it ends (Linux),
    so a test run that is killed leaves no virtual boards behind."""
    try:
        import ctypes
        _PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                signal.SIGTERM)
    except Exception:
        pass


def start(board="esp32", root=None, heap=None, with_firmware=False,
          aps=None, link=None, timeout=20, stderr=None,
          stdout=subprocess.DEVNULL, stock=False):
    """Start `lwstool emulate` as a child; returns (Popen, pty path).
    stdout: where its console goes (what the board prints)."""
    import sys
    import tempfile
    fd, pf = tempfile.mkstemp(prefix="lwstool-vboard-", suffix=".path")
    os.close(fd)
    os.unlink(pf)
    argv = [sys.executable, "-m", "lwstool", "emulate", "--board", board,
            "--port-file", pf]
    if root:
        argv += ["--root", str(root)]
    if heap:
        argv += ["--heap", str(heap)]
    if with_firmware:
        argv.append("--with-firmware")
    if stock:
        argv.append("--stock")
    if aps:
        argv += ["--aps", str(aps)]
    if link:
        argv += ["--link", str(link)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(unixport.REPO / "host_tools") + (
        ":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.Popen(argv, env=env, stdout=stdout,
                         stderr=stderr, preexec_fn=_die_with_parent)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if p.poll() is not None:
                raise LwsToolError("emulate exited with status %s"
                                   % p.returncode)
            try:
                path = Path(pf).read_text().strip()
            except FileNotFoundError:
                path = ""
            if path:
                return p, path
            time.sleep(0.05)
        p.kill()
        raise LwsToolError("virtual board did not start in %ss" % timeout)
    finally:
        try:
            os.unlink(pf)
        except FileNotFoundError:
            pass


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
