"""Fixtures: the firmware runs on the MicroPython unix port, as a child."""
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host_tools"))

from lwstool import unixport  # noqa: E402

FIRMWARE = REPO / "firmware"


# The programs the tests use as real peers, and the Debian package each
# comes in (`make debs` installs them; `make test` stops when it cannot).
PEERS = {
    "curl": "curl",
    "openssl": "openssl",
    "libwebsockets-test-client": "libwebsockets-test-server",
    "libwebsockets-test-server": "libwebsockets-test-server",
    "dig": "bind9-dnsutils",
    "chromium": "chromium",
}


def peer(tool):
    """The path of a real peer a test needs. A missing one fails the test,
    naming its Debian package: it is never a reason to skip."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s is missing: install the Debian package %s "
                    "(make debs)" % (tool, PEERS[tool]), pytrace=False)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


class Server:
    """A firmware process on the unix port, its log in a file."""

    def __init__(self, proc, port, log):
        self.proc = proc
        self.port = port
        self.logpath = log

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def ws_url(self, path="/"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def log(self):
        return self.logpath.read_text(errors="replace")

    def conn(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def get(self, path, headers=None, method="GET", body=None):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def raw(self, data, timeout=5, read=True):
        """Send bytes on a new connection, return all bytes until close."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=timeout) as s:
            s.sendall(data)
            if not read:
                return b""
            return recv_all(s)

    def alive(self):
        """A good request from another client is still served."""
        assert self.proc.poll() is None, "server died:\n" + self.log()
        st, _, body = self.get("/t/info" if self.has_t else "/")
        assert st == 200
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pool_whole(srv, timeout=5.0):
    """Wait until every header buffer of srv is back in the pool and
    nobody waits for one (GET /t/pool of the test server); the last
    state seen if that never happens, for the assertion to show."""
    import json
    end = time.monotonic() + timeout
    while True:
        st, _, body = srv.get("/t/pool")
        assert st == 200, body
        p = json.loads(body)
        if (p["free"] + p["held"] == p["buffers"] and not p["waiting"]) \
                or time.monotonic() > end:
            return p
        time.sleep(0.1)


def cpu_seconds(proc):
    """CPU time (user + system) a child process has used so far."""
    f = Path("/proc/%d/stat" % proc.pid).read_text().rpartition(")")[2]
    f = f.split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def recv_all(s, limit=1 << 24):
    out = b""
    while len(out) < limit:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    return out


def start(tmp_path, script=None, args=(), heap=None, env=None,
          wait=True, path=None, port=None, exe=None):
    """Start a firmware script (default: the test server) on a free port
    (exe: another interpreter than the PyPI unix port)."""
    port = port or free_port()
    log = tmp_path / ("server-%d.log" % port)
    if script is None:
        script = FIRMWARE / "test_server.py"
    argv = unixport.command(script, [str(a).replace("{port}", str(port))
                                     for a in args], heap, exe=exe)
    if script == FIRMWARE / "test_server.py":
        argv += ["-p", str(port)]
    e = unixport.environment(path)
    if env:
        e.update(env)
    f = open(log, "wb")
    proc = subprocess.Popen(argv, env=e, stdout=f, stderr=subprocess.STDOUT,
                            cwd=str(tmp_path))
    srv = Server(proc, port, log)
    srv.has_t = "--docroot" not in [str(a) for a in args]
    if wait:
        try:
            wait_port(port, proc)
        except RuntimeError:
            srv.stop()
            raise RuntimeError("server did not start:\n" + srv.log())
    return srv


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def make(*args, **kw):
        s = start(tmp_path, *args, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The test server with a short timeout, shared by a module's tests."""
    s = start(tmp_path_factory.mktemp("srv"), args=["--timeout", "3"])
    yield s
    s.stop()


def arun(coro, timeout=60):
    """Run a coroutine (a websockets client, say), bounded in time."""
    import asyncio
    return asyncio.run(asyncio.wait_for(coro, timeout))


def run_mpy(code, timeout=30, heap=None, cwd=None):
    """Run a MicroPython snippet with the firmware on its path."""
    argv = [unixport.micropython()]
    if heap:
        argv += ["-X", "heapsize=%s" % heap]
    argv += ["-c", code]
    return subprocess.run(argv, env=unixport.environment(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


os.environ.setdefault("MICROPYTHON", unixport.micropython())


class PeerHandler(http.server.BaseHTTPRequestHandler):
    """CPython's http.server as a peer of our client and proxy: HTTP/1.1,
    quiet, with _send(status, body, ctype, extra headers)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
