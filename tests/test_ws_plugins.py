"""The test server's WebSocket protocols with real peers: CPython
websockets, and Debian's libwebsockets test client."""
import asyncio
import json
import re
import socket
import subprocess
import time

import pytest
import websockets

from conftest import arun as run, peer
from wsraw import frame, handshake, read_frame

pytestmark = pytest.mark.timeout(90)



def test_dumb_increment_counters_are_per_connection(server):
    async def go():
        async with websockets.connect(server.ws_url("/"), subprotocols=["dumb-increment-protocol"]) as a:
            for _ in range(5):
                await a.recv()
            async with websockets.connect(server.ws_url("/"), subprotocols=["dumb-increment-protocol"]) as b:
                assert int(await b.recv()) < 2  # its own counter, from 0
                assert int(await a.recv()) >= 5
    run(go())


def test_mirror_reaches_everyone(server):
    async def go():
        conns = [await websockets.connect(server.ws_url("/"), subprotocols=["lws-mirror-protocol"])
                 for _ in range(3)]
        try:
            for i, c in enumerate(conns):
                await c.send("from %d" % i)
                for d in conns:
                    assert await asyncio.wait_for(d.recv(), 5) == "from %d" % i
            await conns[0].send(b"\x00binary\xff")
            for d in conns:
                assert await d.recv() == b"\x00binary\xff"
        finally:
            for c in conns:
                await c.close()
    run(go())


def test_mirror_too_big_is_1009(server):
    async def go():
        async with websockets.connect(server.ws_url("/"), subprotocols=["lws-mirror-protocol"]) as ws:
            await ws.send("x" * 300)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
    run(go())


MIRROR_APP = """
import lws
from lws.plugins.http_test import HttpTest
from lws.plugins.mirror import Mirror

class SmallSendBuffers(Mirror):
    # the test server's mirror, each socket's send buffer fixed small (no
    # autotuning, which takes megabytes on loopback): what a reader does
    # not take piles up in the ring, not in the kernel
    def on_established(self, conn):
        conn.sock.setsockopt(1, 7, 4096)  # SOL_SOCKET, SO_SNDBUF
        super().on_established(conn)

vh = lws.Vhost("mirror", {port}, [lws.Mount("/t", "callback://lws-http-test")],
               [SmallSendBuffers(), HttpTest()])
lws.Context([vh]).run()
"""


@pytest.fixture
def mirror_app(tmp_path):
    from conftest import free_port, start
    port = free_port()
    script = tmp_path / "mirror_app.py"
    script.write_text(MIRROR_APP.format(port=port))
    srv = start(tmp_path, script=script, port=port)
    yield srv
    srv.stop()


def test_mirror_slow_reader_loses_the_oldest(mirror_app):
    """A client that stops reading (a small receive window, a raw socket)
    while another sends many numbered messages: the sender and a third
    client are served all along, every message, and so is plain HTTP;
    when the slow one reads at last it gets messages in order, the newest
    at the end, and a gap where the ring dropped the oldest it had not
    read."""
    srv = mirror_app
    N = 600
    slow, _ = handshake(srv.port, "/", "lws-mirror-protocol", rcvbuf=2048)

    async def go():
        proto = ["lws-mirror-protocol"]
        async with websockets.connect(srv.ws_url("/"),
                                      subprotocols=proto) as fast, \
                websockets.connect(srv.ws_url("/"),
                                   subprotocols=proto) as other:
            seen = []

            async def watch():
                while len(seen) < N:
                    seen.append(int((await other.recv())[:4]))
            watcher = asyncio.create_task(watch())
            t0 = time.monotonic()
            for i in range(N):
                msg = "%04d" % i + "m" * 250
                await fast.send(msg)
                assert await asyncio.wait_for(fast.recv(), 5) == msg
                if i % 100 == 0:
                    st, _, _ = await asyncio.to_thread(srv.get, "/t/info")
                    assert st == 200
            await asyncio.wait_for(watcher, 10)
            return time.monotonic() - t0, seen
    took, seen = run(go())
    assert took < 30
    assert seen == list(range(N))  # the other reader kept up: lost nothing
    slow.settimeout(3)
    got = []
    try:
        while True:
            f = read_frame(slow)
            if f is None:
                break
            got.append(int(f[2][:4]))
            if got[-1] == N - 1:
                break
    except socket.timeout:
        pass
    slow.close()
    # in order, each once, up to the newest
    assert got and got == sorted(set(got)) and got[-1] == N - 1, got
    # the newest ones in a row at the end (the ring keeps 16)
    run_len = 1
    while run_len < len(got) and got[-run_len - 1] == got[-run_len] - 1:
        run_len += 1
    assert run_len >= 8, got[-20:]
    # before them a gap: the oldest it had not read were dropped, most of
    # the 600 (the sockets hold a few dozen)
    assert run_len < len(got) and len(got) < N // 2, got
    assert srv.alive()


MIRROR_UNIT = """
from lws.plugins.mirror import Mirror

class Ctx:
    def callback_on_writable_all_protocol(self, p):
        pass

class Conn:
    ctx = Ctx()
    def __init__(self):
        self.user = None
        self.sent = []
    def frame_is_binary(self):
        return False
    def send_text(self, d):
        self.sent.append(bytes(d).decode())
    send_binary = send_text
    def callback_on_writable(self):
        pass

m = Mirror()
fast, slow = Conn(), Conn()
m.on_established(fast)
m.on_established(slow)
for i in range(100):
    m.on_receive(fast, b"msg%d" % i)
    m.on_server_writeable(fast)      # the fast reader keeps up
# the slow one was never writable: it lost the oldest, keeps the newest
while slow.user.waiting():
    m.on_server_writeable(slow)
print(len(fast.sent), fast.sent[-1], slow.user.lost, slow.sent[0], slow.sent[-1], len(slow.sent))
"""


def test_mirror_drops_oldest_for_the_slow_reader_only():
    from conftest import run_mpy
    r = run_mpy(MIRROR_UNIT)
    assert r.returncode == 0, r.stderr
    n_fast, last_fast, lost, first_slow, last_slow, n_slow = r.stdout.split()
    assert (n_fast, last_fast) == ("100", "msg99")
    assert last_slow == "msg99" and int(lost) + int(n_slow) == 100
    assert int(lost) > 0 and first_slow == "msg%d" % int(lost)


def test_status_json_and_live_status(server):
    st, h, body = server.get("/status.json")
    assert st == 200 and h["Content-Type"] == "application/json"
    s = json.loads(body)
    assert s["heap"]["alloc"] > 0 and s["heap"]["free"] > 0
    assert any(c["role"] == "http" for c in s["connections"])

    async def go():
        async with websockets.connect(server.ws_url("/"), subprotocols=["dumb-increment-protocol"]):
            async with websockets.connect(server.ws_url("/"), subprotocols=["lws-status"]) as ws:
                s1 = json.loads(await ws.recv())
                protos = [c["protocol"] for c in s1["connections"]]
                assert "dumb-increment-protocol" in protos and "lws-status" in protos
                t0 = time.monotonic()
                json.loads(await ws.recv())  # pushed again about a second later
                assert 0.5 < time.monotonic() - t0 < 3
    run(go())


def test_automatic_ping_and_close_without_pong(server_factory):
    srv = server_factory(args=["--ping", "1"])
    s, _ = handshake(srv.port, "/echo")
    s.settimeout(5)
    t0 = time.monotonic()
    fin, op, data = read_frame(s)
    assert op == 9  # a PING after a quiet second
    assert 0.7 < time.monotonic() - t0 < 3
    assert read_frame(s) is None  # no PONG from us: hung up
    assert time.monotonic() - t0 < 4

    async def answers_pings():
        async with websockets.connect(srv.ws_url("/echo"), ping_interval=None) as ws:
            await asyncio.sleep(3.5)  # websockets answers PINGs by itself
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(answers_pings())


def test_libwebsockets_test_client(server, tmp_path):
    """Debian's lws test client: dumb-increment counts, mirror circles
    reach a second (CPython) mirror client."""
    exe = peer("libwebsockets-test-client")

    async def go():
        async with websockets.connect(server.ws_url("/"), subprotocols=["lws-mirror-protocol"]) as watch:
            seen = []

            async def collect():
                async for m in watch:
                    seen.append(m)
            task = asyncio.create_task(collect())
            log = open(tmp_path / "client.log", "wb")  # a pipe would fill up
            p = subprocess.Popen([exe, "127.0.0.1",
                                  "--port=%d" % server.port, "-d", "15"],
                                 stdout=log, stderr=subprocess.STDOUT)
            try:
                await asyncio.sleep(2.5)
            finally:
                p.terminate()
                p.wait(10)
                log.close()
                task.cancel()
            out = (tmp_path / "client.log").read_text(errors="replace")
            assert seen, "no mirrored circle reached the second client"
            return seen[0], out
    circle, out = run(go())
    assert re.match(r"c #[0-9A-Fa-f]{6} \d+ \d+ \d+;", circle), circle
    assert "dumb: LWS_CALLBACK_CLIENT_ESTABLISHED" in out
    counts = [int(n) for n in re.findall(r"rx \d+ '(\d+)'", out)]
    assert len(counts) >= 10 and counts == list(range(counts[0], counts[0] + len(counts)))
