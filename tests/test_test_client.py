"""The test client (firmware/test_client.py) through `make client` and
`lwstool client`: against our test server, against a CPython websockets
server playing a conformance suite's part, and with nothing listening."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
import websockets
from websockets.asyncio.server import serve

from conftest import REPO, free_port

pytestmark = pytest.mark.timeout(90)


def run(argv, env, timeout):
    """Run argv in a session of its own; on timeout the whole session
    (make, lwstool and the unix port under them) is killed."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def make_client(timeout=40, **vars):
    """`make client VAR=value...`; returns the CompletedProcess."""
    argv = ["make", "-s", "--no-print-directory", "-C", str(REPO), "client"]
    argv += ["%s=%s" % kv for kv in vars.items()]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    return run(argv, env, timeout)


def lwstool_client(*args, timeout=40):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "host_tools")
    return run([sys.executable, "-m", "lwstool", "client"]
               + [str(a) for a in args], env, timeout)


def lines(p):
    return p.stdout.decode().splitlines()


# -- against our test server -----------------------------------------------


def test_dumb_increment_counts(server):
    p = make_client(URL="ws://127.0.0.1:%d/" % server.port,
                    PROTOCOL="dumb-increment-protocol", COUNT=5)
    assert p.returncode == 0, p.stderr
    n = [int(x) for x in lines(p)]
    assert len(n) == 5
    assert n == list(range(n[0], n[0] + 5))
    server.alive()


def test_echo_send_hello(server):
    p = make_client(URL="ws://127.0.0.1:%d/echo" % server.port,
                    SEND="hello", COUNT=1)
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["hello"]


def test_send_with_quotes_and_query(server):
    # ? & and ' reach the client as they are
    p = make_client(URL="ws://127.0.0.1:%d/echo?case=1&agent=it's"
                    % server.port, SEND="it's & more", COUNT=1)
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["it's & more"]


def test_http_url(server):
    p = make_client(URL="http://127.0.0.1:%d/t/info" % server.port)
    assert p.returncode == 0, p.stderr
    out = lines(p)
    assert out[0] == "HTTP 200 OK"
    assert '"path": "/t/info"' in out[1]


def test_lwstool_client(server):
    p = lwstool_client("ws://127.0.0.1:%d/echo" % server.port,
                       "--send", "x", "--count", "1")
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["x"]


# -- a conformance-suite-like server: everything must come back as sent ------


BIG = bytes(range(256)) * 800  # 200 KiB

SEQUENCE = [
    "hello",
    b"\x00\x01\xfe\xff",
    "",
    b"",
    "κόσμε " * 2000,       # multibyte text far beyond one read
    BIG,
    ["frag", "ment", "ed"],  # sent as three frames
    [b"bin", b"ary", b""],
    ["a" * 5000, "b" * 5000, "c"],
]


class Fuzzer:
    """Sends SEQUENCE, checks each echo, closes with 1000."""

    def __init__(self, sequence, timeout=30, handler=None):
        self.sequence = sequence
        if handler is not None:
            self.handler = handler
        self.timeout = timeout
        self.echoed = []
        self.errors = []
        self.close_code = None
        self.ready = threading.Event()
        self.port = free_port()

    async def handler(self, ws):
        try:
            for msg in self.sequence:
                await ws.send(msg)
                want = msg if not isinstance(msg, list) else \
                    ("".join(msg) if isinstance(msg[0], str)
                     else b"".join(msg))
                got = await asyncio.wait_for(ws.recv(), 10)
                if type(got) is not type(want) or got != want:
                    self.errors.append("echo of %r... differs: %r..."
                                       % (want[:20], got[:20]))
                else:
                    self.echoed.append(want)
            await ws.close(1000, "done")
            self.close_code = ws.close_code
        except Exception as e:
            self.errors.append(repr(e))

    async def main(self):
        # max_queue=None: read on while sending, as a conformance
        # server does (a bounded queue stops reading while the handler
        # sends a long message, and the echo of it fills both ways)
        async with serve(self.handler, "127.0.0.1", self.port,
                         max_size=None, max_queue=None):
            self.ready.set()
            await asyncio.sleep(self.timeout)

    def start(self):
        self.loop = asyncio.new_event_loop()
        self.task = None

        def run():
            asyncio.set_event_loop(self.loop)
            self.task = self.loop.create_task(self.main())
            try:
                self.loop.run_until_complete(self.task)
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def stop(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


@pytest.fixture
def fuzzer():
    started = []

    def make(sequence=SEQUENCE, handler=None):
        f = Fuzzer(sequence, handler=handler).start()
        started.append(f)
        return f

    yield make
    for f in started:
        f.stop()


def test_echo_client_conformance_role(fuzzer):
    f = fuzzer()
    p = make_client(URL="ws://127.0.0.1:%d/runCase?case=1&agent=microlws"
                    % f.port, ECHO=1)
    assert f.errors == []
    assert p.returncode == 0, p.stderr
    assert len(f.echoed) == len(SEQUENCE)
    assert f.close_code == 1000
    assert p.stdout == b""


def test_echo_client_streams_long_messages_on_a_small_heap(fuzzer):
    # a message much larger than the heap goes back piece by piece
    big = os.urandom(4 << 20)
    f = fuzzer([big, "after"])
    p = lwstool_client("ws://127.0.0.1:%d/" % f.port, "--echo",
                       "--heap", "256K", timeout=60)
    assert f.errors == []
    assert p.returncode == 0, p.stderr
    assert len(f.echoed) == 2


def test_print_mode_gathers_pieces(fuzzer):
    # without --echo: one line a message, whatever pieces it came in
    seq = ["hello", b"\x00\x01", ["frag", "ment", "ed"], BIG]

    async def send_all(ws):
        for msg in seq:
            await ws.send(msg)
        await ws.close(1000)
    f = fuzzer(handler=send_all)
    p = lwstool_client("ws://127.0.0.1:%d/" % f.port)
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["hello", "<binary 2 bytes>", "fragmented",
                        "<binary %d bytes>" % len(BIG)]


# -- failing connections -----------------------------------------------------


def test_refused_connection_exits_1_with_reason():
    port = free_port()  # nothing listens there now
    p = lwstool_client("ws://127.0.0.1:%d/" % port, "--echo")
    assert p.returncode == 1
    err = p.stderr.decode().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("test_client: ")
    assert "refused" in err[0]
    # through make the failure still shows, and make fails
    p = make_client(URL="ws://127.0.0.1:%d/" % port, ECHO=1)
    assert p.returncode != 0
    assert b"test_client: connection refused" in p.stderr


def test_handshake_refused_exits_1():
    # an HTTP 404 where a WebSocket was asked for
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(20)

    def answer():
        try:
            s, _ = ls.accept()
        except OSError:
            return
        with s:
            s.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(4096)
                if not d:
                    return
                head += d
            s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                      b"\r\n")
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        p = lwstool_client("ws://127.0.0.1:%d/" % ls.getsockname()[1])
    finally:
        t.join(10)
        ls.close()
    assert p.returncode == 1
    assert p.stderr.decode() == ("test_client: WebSocket handshake refused: "
                                 "HTTP 404 Not Found\n")


def test_bad_url_exits_1():
    p = lwstool_client("ftp://127.0.0.1/")
    assert p.returncode == 1
    assert p.stderr.decode().startswith("test_client: ")
