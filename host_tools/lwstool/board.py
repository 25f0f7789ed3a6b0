"""A board on a serial port: port discovery and the raw REPL.

Device work is sent as small Python snippets over the raw REPL through
mpremote's SerialTransport; the board needs no agent. The connection is
opened lazily, once, and the raw REPL entered once.
"""
import ast
import os
import sys

from .errors import LwsToolError

READ_TIMEOUT = 15     # seconds without a byte from a board that owes one

# USB-serial bridges found on ESP boards (CP210x, CH340/CH9102, FTDI,
# Espressif's own USB-JTAG/serial)
ESP_VIDS = {0x10C4, 0x1A86, 0x0403, 0x303A}


def devs():
    """[(device, serial_number, vid:pid, manufacturer, product)] like
    `mpremote devs`."""
    from serial.tools import list_ports
    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vp = "%04x:%04x" % (p.vid, p.pid) if p.vid is not None else "0000:0000"
        out.append((p.device, p.serial_number or "None", vp,
                    p.manufacturer or "None", p.description or "None"))
    return out


def find_port(port=None):
    """A device path from -p: a path, `auto` (the first USB serial port,
    an ESP bridge first), or None meaning $LWSTOOL_PORT else auto."""
    port = port or os.environ.get("LWSTOOL_PORT") or "auto"
    if port != "auto":
        return port
    from serial.tools import list_ports
    usb = [p for p in list_ports.comports() if p.vid is not None]
    usb.sort(key=lambda p: (p.vid not in ESP_VIDS, p.device))
    if not usb:
        raise LwsToolError("no board found (lwstool devs lists serial ports; "
                           "pass -p PORT)")
    return usb[0].device


# what snippets leave in the REPL's globals, removed when a session ends
# (and the modules they imported), to give the heap back
_MARK = "import sys,gc\n_lws_mods=set(sys.modules)\ngc.collect()"
_CLEANUP = ("for _n in ('f','w','_s','_h','_w','_d','_k','_f','wlan'):\n"
            " try:\n  del globals()[_n]\n except KeyError:\n  pass\n"
            "for _n in [m for m in sys.modules if m not in _lws_mods]:\n"
            " del sys.modules[_n]\n"
            "del _n,_lws_mods\ngc.collect()")


class Board:
    """One board: `with Board(port) as b: b.eval("1+1")`.

    Entering the raw REPL stops what runs (main.py's server, by Ctrl-C).
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
        env = os.environ.get("LWSTOOL_SOFT_RESET")
        if env in ("0", "1"):
            soft_reset = env == "1"
        self.port = port
        self.baud = baud
        self.soft_reset = soft_reset
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
                raise LwsToolError("cannot open %s: %s" % (self.port, e))
            try:
                self._t.enter_raw_repl(soft_reset=self.soft_reset)
                self._t.exec(_MARK)
            except TransportError as e:
                self.close()
                raise LwsToolError("no MicroPython REPL on %s (%s)"
                                   % (self.port, e))
        return self._t

    def close(self):
        if self._t is not None:
            try:
                self._t.exec(_CLEANUP)
            except Exception:
                pass
            try:
                if self._t.in_raw_repl:
                    self._t.exit_raw_repl()
                self._t.close()
            except Exception:
                pass
            self._t = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

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

    def remove(self, paths):
        if paths:
            self.exec("import os\nfor p in %r:\n try:\n  os.remove(p)\n"
                      " except OSError:\n  pass" % list(paths))

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

    def info(self):
        """(sys.platform, sys.implementation._mpy, version string)."""
        return self.eval("(__import__('sys').platform,"
                         "getattr(__import__('sys').implementation,'_mpy',0),"
                         "__import__('sys').version)")


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
