"""A board on a serial port: port discovery and the raw REPL.

Device work is sent as small Python snippets over the raw REPL through
mpremote's SerialTransport; the board needs no agent. The connection is
opened lazily, once, and the raw REPL entered once.
"""
import ast
import os
import re
import sys
import time

from .errors import LwsToolError

READ_TIMEOUT = 15     # seconds without a byte from a board that owes one
_REPL_TRIES = 3       # attempts at the raw REPL before a board is given up

# USB-serial bridges found on ESP boards (CP210x, CH340/CH9102, FTDI,
# Espressif's own USB-JTAG/serial)
ESP_VIDS = {0x10C4, 0x1A86, 0x0403, 0x303A}


def devs():
    """[(device, serial_number, vid:pid, manufacturer, description)] like
    `mpremote devs`: the serial ports, then the virtual boards that run
    (lwstool emulate), newest first."""
    from serial.tools import list_ports

    from . import registry
    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vp = "%04x:%04x" % (p.vid, p.pid) if p.vid is not None else "0000:0000"
        out.append((p.device, p.serial_number or "None", vp,
                    p.manufacturer or "None", p.description or "None"))
    for vb in registry.virtual_boards():
        out.append((vb["path"], "None", "0000:0000", "microlws",
                    registry.describe(vb)))
    return out


def find_port(port=None):
    """A device path from -p: a path, `auto` (the first USB serial port,
    an ESP bridge first, else the newest virtual board that runs), or
    None meaning $LWSTOOL_PORT else auto."""
    port = port or os.environ.get("LWSTOOL_PORT") or "auto"
    if port != "auto":
        return port
    from serial.tools import list_ports

    from . import registry
    usb = [p for p in list_ports.comports() if p.vid is not None]
    usb.sort(key=lambda p: (p.vid not in ESP_VIDS, p.device))
    if usb:
        return usb[0].device
    vbs = registry.virtual_boards()
    if vbs:
        return vbs[0]["path"]
    raise LwsToolError("no board found (lwstool devs lists serial ports "
                       "and virtual boards; pass -p PORT)")


# what snippets leave in the REPL's globals, removed when a session ends
# (and the modules they imported, but `network`: the simulated one keeps
# the radio's state), to give the heap back
_MARK = "import sys,gc\n_lws_mods=set(sys.modules)\ngc.collect()"
_CLEANUP = ("for _n in ('f','w','_s','_h','_w','_d','_k','_f','wlan'):\n"
            " try:\n  del globals()[_n]\n except KeyError:\n  pass\n"
            "for _n in [m for m in sys.modules if m not in _lws_mods and "
            "m!='network']:\n"
            " del sys.modules[_n]\n"
            "del _n,_lws_mods\ngc.collect()")


# a virtual board asks its bridge for a hard reset with this exit status
# (lwstool.vboard.HARD_RESET_EXIT)
_VBOARD_HARD_RESET = 76
# an idle REPL answers a return within this many seconds
_PROBE_WAIT = 0.5

SERVER_STOPPED = ("the board's server (main.py) was stopped to run this; "
                  "`lwstool reset` starts it again")


class Board:
    """One board: `with Board(port) as b: b.eval("1+1")`.

    Entering the raw REPL stops what runs (main.py's server, by Ctrl-C);
    `stopped` then says that a program was running (an idle REPL answers
    a return at once, a running program does not read the console).
    Unlike mpremote it soft-resets only when asked (soft_reset=True, as
    deploy does for a clean heap; $LWSTOOL_SOFT_RESET=1 or 0 overrides):
    a soft reset runs boot.py, and where the port cannot tell it from a
    boot (esp8266, the unix port) the firmware's boot.py counts it towards
    safe mode (three boots that never got the server up), so a soft reset
    per command would lock main.py out after a few commands. Instead the
    names and modules the snippets leave behind are dropped and the heap
    collected when the connection closes.
    """

    def __init__(self, port=None, baud=115200, soft_reset=False):
        self.port = port
        self.baud = baud
        self.soft_reset = _soft_reset(soft_reset)
        self.stopped = False
        self._t = None

    # the connection, opened on first use
    @property
    def transport(self):
        if self._t is None:
            from mpremote.transport import TransportError
            from mpremote.transport_serial import SerialTransport
            self.port = find_port(self.port)
            try:
                # a read timeout: a board that stops answering is an
                # error, not a hang
                self._t = SerialTransport(self.port, baudrate=self.baud,
                                          timeout=READ_TIMEOUT)
            except (TransportError, OSError) as e:
                hint = ""
                if os.path.exists(self.port):
                    hint = " (is another program, lwstool monitor or a " \
                        "terminal, using it?)"
                raise LwsToolError("cannot open %s: %s%s"
                                   % (self.port, e, hint))
            for attempt in range(_REPL_TRIES):
                t0 = time.monotonic()
                try:
                    self.stopped = _busy(self._t.serial) or self.stopped
                    self._t.enter_raw_repl(soft_reset=self.soft_reset)
                    self._t.exec(_MARK)
                    break
                except (TransportError, OSError) as e:
                    if attempt + 1 < _REPL_TRIES and \
                            time.monotonic() - t0 < 5:
                        # a board still booting (a virtual one just
                        # started on a busy machine) answers a moment
                        # later; a silent one is not waited for again
                        time.sleep(0.5)
                        continue
                    self.close()
                    raise LwsToolError("no MicroPython REPL on %s (%s)"
                                       % (self.port, e))
        return self._t

    def clean(self):
        """A soft reset in the raw REPL, for a clean heap (boot.py runs,
        main.py does not); only when $LWSTOOL_SOFT_RESET is not 0."""
        if not _soft_reset(True):
            return
        if self._t is None:
            self.soft_reset = True
            self.transport
            return
        from mpremote.transport import TransportError
        try:
            self._t.enter_raw_repl(soft_reset=True)
            self._t.exec(_MARK)
        except (TransportError, OSError) as e:
            self.detach()
            raise LwsToolError("%s: the board did not come back from a "
                               "soft reset (%s)" % (self.port, e))

    def close(self):
        """Drop what the snippets left, leave the raw REPL, close."""
        if self._t is not None:
            try:
                self._t.exec(_CLEANUP)
            except Exception:
                pass
            try:
                if self._t.in_raw_repl:
                    self._t.exit_raw_repl()
            except Exception:
                pass
            self.detach()

    def detach(self):
        """Close the port and say nothing more to the board (after a
        reset, or with a program left running)."""
        if self._t is not None:
            try:
                self._t.close()
            except Exception:
                pass
            self._t = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- resets -----------------------------------------------------------

    def reboot(self, timeout=10):
        """A soft reset at the friendly REPL, as a board does at Ctrl-D:
        boot.py runs, then main.py. The connection ends."""
        t = self.transport
        try:
            t.exit_raw_repl()
            t.serial.write(b"\x04")
            data = t.read_until(1, b"soft reboot\r\n", timeout=timeout)
        except OSError as e:
            raise LwsToolError("%s: the board went away (%s)"
                               % (self.port, e))
        finally:
            self.detach()
        if not data.endswith(b"soft reboot\r\n"):
            raise LwsToolError("%s: the board did not soft-reboot at "
                               "Ctrl-D" % self.port)

    def hard_reset(self, timeout=10):
        """machine.reset(); on a virtual board (the unix port has no
        machine.reset) the bridge starts the interpreter again, as a
        board that powers up: boot.py, then main.py. An LwsToolError when
        the board cannot do it (the connection then stays open); else
        the connection ends."""
        from mpremote.transport import TransportError
        can = self.call(
            "_d={}\ntry:\n import machine\n _d['h']=hasattr(machine,'reset')"
            "\nexcept ImportError:\n _d['h']=False\nimport os\n"
            "_d['v']=getattr(os,'getenv',lambda k:None)('LWS_VBOARD')",
            "_d")
        if not can.get("v") and not can.get("h"):
            # the connection stays, as the board does
            raise LwsToolError(
                "%s has no machine.reset(): no hard reset there "
                "(lwstool reset does a soft one)" % self.port)
        t = self.transport
        try:
            if can.get("v"):
                t.exec_raw_no_follow("import sys\nsys.exit(%d)"
                                     % _VBOARD_HARD_RESET)
                data = t.read_until(1, b"hard reset\r\n", timeout=timeout)
                if not data.endswith(b"hard reset\r\n"):
                    raise LwsToolError("%s: the virtual board did not "
                                       "restart" % self.port)
                return
            t.exec_raw_no_follow("import time,machine\ntime.sleep_ms(50)\n"
                                 "machine.reset()")
            try:
                out, err = t.follow(2)
            except (TransportError, OSError):
                return      # it went: no answer, or a USB port that left
            msg = err.decode(errors="replace").strip().splitlines()
            raise LwsToolError("%s: machine.reset() did not reset the board"
                               "%s" % (self.port, ": " + msg[-1] if msg
                                       else ""))
        except (TransportError, OSError) as e:
            raise LwsToolError("%s: the board stopped answering (%s)"
                               % (self.port, e))
        finally:
            self.detach()

    def exec(self, code, secret=None, timeout=30):
        """Run code on the board, return its output (bytes); a board-side
        exception becomes an LwsToolError naming its last line. secret is
        scrubbed from any message."""
        import struct
        from mpremote.transport import TransportError
        t = self.transport
        try:
            out, err = t.exec_raw(code, timeout=timeout)
        except (TransportError, struct.error) as e:
            raise LwsToolError("%s: the board stopped answering (%s)"
                               % (self.port, e or "timeout"))
        except OSError as e:
            raise LwsToolError("%s: the board went away (%s)"
                               % (self.port, e))
        if err:
            msg = err.decode(errors="replace").strip().splitlines()[-1]
            if secret:
                msg = msg.replace(secret, "***")
            m = re.search(r"no module named '(lws[\w.]*)'", msg)
            if m:
                raise LwsToolError("%s has no %s (%s): run lwstool deploy "
                                   "first" % (self.port, m.group(1), msg))
            raise LwsToolError("on the board: " + msg)
        return out

    def eval(self, expr, secret=None):
        """The value of a board expression, parsed as a Python literal."""
        out = self.exec("print(repr(%s))" % expr, secret=secret)
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError):
            raise LwsToolError("unexpected answer from the board: %r"
                               % out[:200])

    def call(self, code, expr, secret=None):
        """Run code, then return the value of expr; anything the code
        prints (log lines) is passed over."""
        out = self.exec("%s\nprint('\\n@@' + repr(%s))" % (code, expr),
                        secret=secret).decode(errors="replace")
        last = out[out.rfind("@@") + 2:].strip() if "@@" in out else ""
        try:
            return ast.literal_eval(last)
        except (ValueError, SyntaxError):
            raise LwsToolError("unexpected answer from the board: %r"
                               % out[-200:])

    # -- files ------------------------------------------------------------

    def read(self, path):
        """A board file's bytes, or None when it does not exist."""
        code = ("try:\n f=open(%r,'rb')\nexcept OSError:\n print('None')\n"
                "else:\n print(repr(f.read()))\n f.close()" % path)
        out = self.exec(code).decode().strip()
        return None if out == "None" else ast.literal_eval(out)

    def write(self, path, data, progress=None, chunk=256):
        """Write a file atomically: under a temporary name, synced to the
        flash (os.sync, where the port has one), then renamed."""
        self.mkdirs(path)
        tmp = path + ".tmp"
        self.exec("f=open(%r,'wb')\nw=f.write" % tmp)
        done = 0
        for i in range(0, len(data), chunk):
            self.exec("w(%r)" % data[i:i + chunk])
            done += len(data[i:i + chunk])
            if progress:
                progress(done, len(data))
        self.exec("f.close()\nimport os\ntry:\n os.sync()\n"
                  "except AttributeError:\n pass\nos.rename(%r,%r)\ndel f,w"
                  % (tmp, path))

    def mkdirs(self, path):
        parts = path.split("/")[:-1]
        if parts:
            self.exec("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n"
                      " except OSError:\n  pass"
                      % ["/".join(parts[:i + 1]) for i in range(len(parts))])

    def remove(self, paths, dirs=False):
        """Remove files; dirs=True: and then the folders they were in,
        deepest first, those left empty (an empty lws/ folder would be
        imported as a package of nothing)."""
        if not paths:
            return
        self.exec("import os\nfor p in %r:\n try:\n  os.remove(p)\n"
                  " except OSError:\n  pass" % list(paths))
        if dirs:
            folders = sorted({p.rsplit("/", i)[0] for p in paths
                              for i in range(1, p.count("/") + 1)},
                             key=lambda d: -d.count("/"))
            self.exec("import os\nfor d in %r:\n try:\n  os.rmdir(d)\n"
                      " except OSError:\n  pass" % folders)

    def hashes(self, paths):
        """{path: sha256 hex or None}, computed on the board."""
        code = (
            "import hashlib,binascii\n"
            "def _h(p):\n"
            " try:\n  f=open(p,'rb')\n except OSError:\n  return None\n"
            " h=hashlib.sha256();b=bytearray(256);m=memoryview(b)\n"
            " while True:\n  n=f.readinto(b)\n  if not n:\n   break\n"
            "  h.update(m[:n])\n"
            " f.close()\n return binascii.hexlify(h.digest()).decode()\n")
        out = {}
        paths = list(paths)
        self.exec(code)
        for i in range(0, len(paths), 20):
            out.update(self.eval("dict((p,_h(p)) for p in %r)"
                                 % paths[i:i + 20]))
        return out

    def frozen(self, package="lws"):
        """True if the board's image has package frozen in (importable
        from .frozen alone, whatever the filesystem holds)."""
        return self.call(
            "def _lws_frozen(name):\n"
            " import sys\n"
            " p = sys.path[:]\n"
            " had = sys.modules.pop(name, None)\n"
            " sys.path[:] = ['.frozen']\n"
            " try:\n"
            "  __import__(name)\n"
            "  return True\n"
            " except ImportError:\n"
            "  return False\n"
            " finally:\n"
            "  sys.path[:] = p\n"
            "  sys.modules.pop(name, None)\n"
            "  if had is not None:\n"
            "   sys.modules[name] = had\n",
            "_lws_frozen(%r)" % package)

    def info(self):
        """(sys.platform, sys.implementation._mpy, version string)."""
        return self.eval("(__import__('sys').platform,"
                         "getattr(__import__('sys').implementation,'_mpy',0),"
                         "__import__('sys').version)")


def _soft_reset(wanted):
    env = os.environ.get("LWSTOOL_SOFT_RESET")
    return env == "1" if env in ("0", "1") else bool(wanted)


def _busy(ser, wait=_PROBE_WAIT):
    """Does a program run on the board (main.py's server)? An idle REPL
    answers a return at once with a new prompt; a running program does
    not read the console, and the byte waits for the REPL. (A board left
    in the raw REPL does not answer either: taken as busy.)"""
    old = ser.timeout
    try:
        ser.timeout = 0
        end = time.monotonic() + 0.2
        while ser.read(4096) and time.monotonic() < end:
            pass              # what the board said before
        ser.write(b"\r")
        ser.timeout = 0.02
        seen = b""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            seen = (seen + ser.read(ser.in_waiting or 1))[-256:]
            if b">>> " in seen:
                return False
        return True
    finally:
        ser.timeout = old


class Session:
    """The board the commands of one lwstool invocation share, as
    mpremote does: opened on first use and once (a command given another
    port closes it and opens that one); commands that need the port to
    themselves (flash, repl, monitor) take it with release().

        with Session("/dev/ttyUSB0") as s:
            deploy("esp32", conn=s.board(soft_reset=True))
            wifi_add("home", "password", conn=s.board())
            s.reset()

    `stopped` is True when entering the raw REPL stopped a running program
    (main.py's server) and no reset has started it again since.
    """

    def __init__(self, port=None):
        self.port = port
        self.stopped = False
        self._b = None

    def use(self, port):
        """The port for the commands that follow (None: keep this one)."""
        if port is not None and port != self.port:
            self.close()
            self.port = port

    def board(self, soft_reset=False):
        """The open Board (its raw REPL entered); soft_reset: a clean heap
        first (see Board.clean)."""
        if self._b is None:
            b = Board(self.port, soft_reset=soft_reset)
            b.transport
            self._b = b
        elif soft_reset:
            self._b.clean()
        self.stopped = self.stopped or self._b.stopped
        return self._b

    def reset(self, hard=False):
        """Soft (boot.py, then main.py) or hard reset; the connection ends,
        and the next command opens a new one. Returns the port."""
        b = self.board()
        try:
            if hard:
                b.hard_reset()
            else:
                b.reboot()
        finally:
            if b._t is None:        # it reset, or went away
                self._b = None
        self.stopped = False
        return b.port

    def detach(self):
        """Forget the connection without a word to the board (a program
        left running on it)."""
        if self._b is not None:
            b, self._b = self._b, None
            b.detach()

    def release(self):
        """Close the connection; returns the port's device path."""
        self.close()
        return find_port(self.port)

    def close(self):
        if self._b is not None:
            b, self._b = self._b, None
            b.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def reset(port=None, hard=False, conn=None):
    """Reset a board (see Session.reset); returns its port. A conn given
    is used, and its connection ends."""
    b = conn or Board(port)
    try:
        if hard:
            b.hard_reset()
        else:
            b.reboot()
    finally:
        if conn is None:
            b.close()         # when the board could not reset
    return b.port


def monitor(port=None, out=None, keys=None, baud=115200, timeout=None):
    """Show what a board writes on its console (boot.py, main.py, the
    log), read-only, as idf.py monitor and a terminal do: nothing is sent
    to the board. Ends at Ctrl-] or Ctrl-C typed on `keys` (a terminal's
    file descriptor, default stdin when it is a terminal), at a SIGINT,
    or after `timeout` seconds. out: a binary stream (default stdout).
    Returns the port."""
    import select
    import serial
    port = find_port(port)
    out = out or sys.stdout.buffer
    if keys is None and sys.stdin.isatty():
        keys = sys.stdin.fileno()
    try:
        # locked as mpremote locks it: lwstool's own commands are told
        # the port is busy rather than having their bytes taken
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0,
                                    exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        raise LwsToolError("cannot open %s: %s" % (port, e))
    old = None
    if keys is not None:
        import termios
        import tty
        old = termios.tcgetattr(keys)
        tty.setraw(keys)       # Ctrl-] and Ctrl-C come as bytes
        a = termios.tcgetattr(keys)
        a[1] |= termios.OPOST | termios.ONLCR   # the unix port writes \n
        termios.tcsetattr(keys, termios.TCSANOW, a)
    end = None if timeout is None else time.monotonic() + timeout
    try:
        while end is None or time.monotonic() < end:
            fds = [ser.fileno()] + ([keys] if keys is not None else [])
            r, _, _ = select.select(fds, [], [], 0.2)
            if ser.fileno() in r:
                try:
                    data = ser.read(ser.in_waiting or 1)
                except (serial.SerialException, OSError) as e:
                    raise LwsToolError("%s went away (%s)" % (port, e))
                if data:
                    out.write(data)
                    out.flush()
            if keys is not None and keys in r:
                typed = os.read(keys, 64)
                if not typed or b"\x1d" in typed or b"\x03" in typed:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        if old is not None:
            import termios
            termios.tcsetattr(keys, termios.TCSADRAIN, old)
        ser.close()
    return port


def progress_bar(label, done, total, width=30, stream=None):
    """One line, redrawn in place on a terminal."""
    stream = stream or sys.stdout
    frac = done / total if total else 1.0
    n = int(frac * width)
    line = "%s [%s%s] %3d%%" % (label, "#" * n, "." * (width - n),
                                frac * 100)
    if stream.isatty():
        stream.write("\r" + line + ("\n" if done >= total else ""))
    elif done >= total:
        stream.write(line + "\n")
    stream.flush()
