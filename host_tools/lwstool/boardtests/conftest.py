"""The board under test, from $LWSTOOL_TARGET:

- vboard: a virtual board is started (lwstool emulate, its own flash in a
  temporary folder, fake access points), deployed to and configured to
  serve on a free port with the echo protocol at /echo;
- serial:PORT: a board already deployed (lwstool deploy); its server is
  started with a soft reset (main.py) and reached at $LWSTOOL_HOST, else
  at the address its station interface reports, on lws.json's port;
- net:HOST[:PORT]: only the network checks, against a running server.
"""
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

FAKE_AP = {"ssid": "lwstool-test-ap", "password": "test-pass-123",
           "rssi": -42, "channel": 6, "connect_delay": 0.2}


class Target:
    def __init__(self, spec, board):
        self.spec = spec
        self.board = board
        self.kind, _, rest = spec.partition(":")
        self.port = None          # serial device
        self.host, self.http_port = None, None
        self.proc = None
        self.root = None
        self.fake_ap = FAKE_AP
        if self.kind == "serial":
            self.port = rest
        elif self.kind == "net":
            host, _, p = rest.partition(":")
            self.host, self.http_port = host, int(p or 80)
        elif self.kind != "vboard":
            raise pytest.UsageError("LWSTOOL_TARGET: vboard | serial:PORT | "
                                    "net:HOST[:PORT], not %r" % spec)

    @property
    def serial(self):
        return self.port is not None

    def start(self):
        if self.kind == "vboard":
            self._start_vboard()
        elif self.kind == "serial":
            from lwstool import configure
            cfg = configure.config_read(port=self.port)
            srv = cfg.get("server", cfg)
            self.http_port = int(srv.get("port", 80))
            self.reset()
            self.host = os.environ.get("LWSTOOL_HOST")
            if not self.host:
                # the station's address once main.py has the WLAN up, else
                # the board's own access point
                time.sleep(3)
                ip = configure.wifi_status(port=self.port).get("ip")
                self.host = ip if ip and ip != "0.0.0.0" else "192.168.4.1"
                self.reset()
            self.wait_serving(30)

    def _start_vboard(self):
        from lwstool import configure, deploy, vboard
        self.root = Path(tempfile.mkdtemp(prefix="lwstool-vboard-"))
        (self.root / "fake_aps.json").write_text(json.dumps(
            {"seed": 1, "aps": [FAKE_AP]}))
        self.proc, self.port = vboard.start(self.board, root=self.root)
        deploy.deploy(self.board, port=self.port, out=lambda *a: None,
                      progress=None)
        self.host, self.http_port = "127.0.0.1", free_port()
        configure.config_push_data({
            "server": {"port": self.http_port,
                       "mounts": [["/echo", "callback://echo"]],
                       "protocols": ["lws.plugins.echo.Echo"],
                       "options": {"timeout_secs": 10}},
            "wlan": {"wait": 5, "timeout": 3}}, port=self.port)
        self.reset()
        self.wait_serving(30)

    def reset(self):
        """A soft reset into the friendly REPL: boot.py, then main.py."""
        from lwstool.board import Board
        b = Board(self.port, soft_reset=False)
        t = b.transport
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        t.read_until(1, b"soft reboot\r\n", timeout=10)
        t.close()
        b._t = None

    def serving(self):
        try:
            with socket.create_connection((self.host, self.http_port), 1):
                return True
        except OSError:
            return False

    def wait_serving(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.serving():
                return
            time.sleep(0.1)
        raise RuntimeError("the board does not serve on %s:%s"
                           % (self.host, self.http_port))

    def stop(self):
        if self.proc is not None:
            from lwstool import vboard
            vboard.stop(self.proc)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def target():
    t = Target(os.environ.get("LWSTOOL_TARGET", "vboard"),
               os.environ.get("LWSTOOL_BOARD", "esp32"))
    t.start()
    yield t
    t.stop()


@pytest.fixture
def net(target):
    """The board's server, running (restarted if a serial check stopped
    it): (host, port)."""
    if not target.serving():
        if not target.serial:
            pytest.fail("the server at %s:%s is not answering"
                        % (target.host, target.http_port))
        target.reset()
        target.wait_serving(30)
    return target.host, target.http_port


@pytest.fixture
def board(target):
    """A raw-REPL connection to the board (stops its server)."""
    if not target.serial:
        pytest.skip("no serial port for this target")
    from lwstool.board import Board
    b = Board(target.port)
    yield b
    b.close()
