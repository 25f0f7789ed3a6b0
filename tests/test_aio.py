"""The service loop under MicroPython's asyncio (lws.aio): asyncio's poll
waits for the context's sockets, async def callbacks await without
holding anyone up, the application's tasks keep their pace, ctx.stop()
ends serve(), and TLS input mbedTLS holds is not left waiting."""
import asyncio
import http.client
import json
import os
import signal
import socket
import ssl
import threading
import time

import pytest
import websockets

from conftest import (REPO, cpu_seconds, free_port, peer, recv_all, start,
                      wait_port)
from lwstool.certs import make_cert

pytestmark = pytest.mark.timeout(60)

APP = """
import asyncio, sys
import lws
from lws import log

TICKS = [0]
SEEN = []

class Slow(lws.Protocol):
    name = "slow"
    async def on_http(self, conn, req):
        ms = int(req.path.rsplit("/", 1)[-1] or 0)
        await asyncio.sleep_ms(ms)
        if req.path.startswith("/slow/boom"):
            raise ValueError("boom after the await")
        conn.respond(200, body="slept %d" % ms, content_type="text/plain")

class Post(lws.Protocol):
    name = "post"
    def new_user(self, conn):
        return bytearray()
    async def on_http(self, conn, req):
        await asyncio.sleep_ms(20)   # the body waits meanwhile
        SEEN.append("on_http")
    async def on_http_body(self, conn, data):
        conn.user.extend(data)       # (data: valid until the first await)
        await asyncio.sleep_ms(1)
    async def on_http_body_completion(self, conn):
        await asyncio.sleep_ms(5)
        conn.respond(200, body="%d %s" % (len(conn.user), SEEN[-1]),
                     content_type="text/plain")

class Echo(lws.Protocol):
    name = "echo"
    async def on_receive(self, conn, data):
        d = bytes(data)              # before the first await, as is
        binary = conn.frame_is_binary()  # what the message was
        await asyncio.sleep_ms(10)
        if binary:
            conn.send_binary(d)
        else:
            conn.send_text(d)

class Info(lws.Protocol):
    name = "info"
    def on_http(self, conn, req):
        if req.path == "/info/stop":
            conn.ctx.stop()
        body = '{"ticks": %d, "timer": %d, "tasks": %d}' % (
            TICKS[0], TIMER[0], len(STREAMS))
        conn.respond(200, body=body, content_type="application/json")

TIMER = [0]
STREAMS = []

def on_timer():
    TIMER[0] += 1

async def ticker():
    while True:
        TICKS[0] += 1
        await asyncio.sleep_ms(10)

async def stream_echo(r, w):
    # asyncio's own streams, on the same poll as the context's sockets
    STREAMS.append(1)
    while True:
        d = await r.read(100)
        if not d:
            break
        w.write(d)
        await w.drain()
    w.close()
    await w.wait_closed()

vh = lws.Vhost("localhost", {port}, [
    lws.Mount("/slow", "callback://slow"), lws.Mount("/post", "callback://post"),
    lws.Mount("/info", "callback://info")], [Slow(), Post(), Echo(), Info()],
    ws_default="echo")
ctx = lws.Context([vh])
ctx.every(20, on_timer)

async def main():
    asyncio.create_task(ticker())
    srv = await asyncio.start_server(stream_echo, "127.0.0.1", {sport})
    await ctx.serve()
    log.notice("serve() returned")
    srv.close()
    await srv.wait_closed()
    log.notice("main done")

asyncio.run(main())
"""


@pytest.fixture
def app(tmp_path):
    port, sport = free_port(), free_port()
    script = tmp_path / "app.py"
    script.write_text(APP.replace("{port}", str(port))
                      .replace("{sport}", str(sport)))
    srv = start(tmp_path, script=script, port=port)
    srv.has_t = False
    srv.sport = sport
    wait_port(sport, srv.proc)
    yield srv
    srv.stop()


def info(srv):
    st, _, body = srv.get("/info")
    assert st == 200
    return json.loads(body)


def timed_get(srv, path, out):
    t = time.monotonic()
    st, _, body = srv.get(path)
    out[path] = (st, body, time.monotonic() - t, time.monotonic())


def test_async_on_http_does_not_hold_up_others(app):
    out = {}
    slow = threading.Thread(target=timed_get, args=(app, "/slow/400", out))
    slow.start()
    time.sleep(0.1)  # the slow one is awaiting now
    for i in range(5):
        timed_get(app, "/slow/0", out)
        st, body, took, _ = out["/slow/0"]
        assert (st, body) == (200, b"slept 0")
        assert took < 0.2, took
    fast_done = time.monotonic()
    slow.join(5)
    st, body, took, done = out["/slow/400"]
    assert (st, body) == (200, b"slept 400")
    assert 0.35 < took < 1.5
    assert fast_done < done  # served while the slow one was awaiting


def test_many_async_requests_at_once_on_keepalive_connections(app):
    # 8 clients x 5 keep-alive requests, each awaiting 50 ms: one loop
    # serves them side by side (8 x 5 x 50 ms in series would be 2 s)
    errs = []

    def client():
        c = app.conn()
        try:
            for _ in range(5):
                c.request("GET", "/slow/50")
                r = c.getresponse()
                if (r.status, r.read()) != (200, b"slept 50"):
                    errs.append(r.status)
        except Exception as e:
            errs.append(e)
        finally:
            c.close()
    t = time.monotonic()
    ts = [threading.Thread(target=client) for _ in range(8)]
    for x in ts:
        x.start()
    for x in ts:
        x.join(10)
    assert not errs
    assert time.monotonic() - t < 1.5


def test_async_callback_that_raises_is_logged_and_the_loop_goes_on(app):
    st, _, body = app.get("/slow/boom/10")
    assert st == 500
    assert "boom after the await" in app.log()
    st, _, body = app.get("/slow/0")
    assert (st, body) == (200, b"slept 0")


def test_async_post_body_waits_for_on_http_then_arrives_whole(app):
    body = os.urandom(50000)
    for chunked in (False, True):
        c = app.conn()
        try:
            if chunked:
                c.putrequest("POST", "/post")
                c.putheader("Transfer-Encoding", "chunked")
                c.endheaders()
                for i in range(0, len(body), 7000):
                    piece = body[i:i + 7000]
                    c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                c.send(b"0\r\n\r\n")
            else:
                c.request("POST", "/post", body=body)
            r = c.getresponse()
            assert (r.status, r.read()) == (200, b"50000 on_http")
        finally:
            c.close()


def test_async_on_receive_echoes_in_order_with_websockets(app):
    async def go():
        async with websockets.connect(app.ws_url("/"), max_size=None) as ws:
            for i in range(20):
                await ws.send("message %d" % i)
            for i in range(20):
                assert await ws.recv() == "message %d" % i
            blob = os.urandom(3000)
            await ws.send(blob)
            assert await ws.recv() == blob
    asyncio.run(asyncio.wait_for(go(), 20))


def test_asyncio_streams_share_the_loop(app):
    with socket.create_connection(("127.0.0.1", app.sport), timeout=5) as s:
        for i in range(3):
            s.sendall(b"ping %d" % i)
            assert s.recv(100) == b"ping %d" % i
            assert app.get("/slow/0")[0] == 200  # lws meanwhile
    assert info(app)["tasks"] >= 1


def test_application_task_and_timer_keep_their_pace_under_load(app):
    stop = time.monotonic() + 1.5
    served = [0]

    def load():
        c = app.conn()
        while time.monotonic() < stop:
            c.request("GET", "/slow/0")
            r = c.getresponse()
            r.read()
            served[0] += 1
        c.close()
    a = info(app)
    t0 = time.monotonic()
    ts = [threading.Thread(target=load) for _ in range(4)]
    for x in ts:
        x.start()
    for x in ts:
        x.join(10)
    b = info(app)
    dt = time.monotonic() - t0
    assert served[0] > 100  # it was under load
    # every 10 ms asks for 100 a second; sleep_ms(10) plus a round of the
    # loop makes fewer, but not by much
    assert (b["ticks"] - a["ticks"]) / dt > 60, (b, a, dt)
    assert (b["timer"] - a["timer"]) / dt > 35, (b, a, dt)


def test_idle_loop_sleeps(app):
    """Idle, the loop waits in poll (the ticker's 10 ms and the context's
    tick): no busy polling."""
    time.sleep(0.3)
    c0 = cpu_seconds(app.proc)
    time.sleep(2)
    assert cpu_seconds(app.proc) - c0 < 0.25


def test_stop_ends_serve_and_closes_everything(app):
    idle = socket.create_connection(("127.0.0.1", app.port), timeout=5)

    async def go():
        async with websockets.connect(app.ws_url("/")) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            st, _, body = await asyncio.to_thread(app.get, "/info/stop")
            assert st == 200
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    asyncio.run(asyncio.wait_for(go(), 20))
    assert app.proc.wait(5) == 0
    assert recv_all(idle) == b""
    idle.close()
    log = app.log()
    assert log.index("context closed") < log.index("serve() returned") \
        < log.index("main done")


def test_cancelling_serve_closes_the_context(tmp_path):
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text("""
import asyncio, lws
from lws import log
ctx = lws.Context(port=%d)
async def main():
    t = asyncio.create_task(ctx.serve())
    await asyncio.sleep_ms(800)
    t.cancel()
    await asyncio.sleep_ms(100)
    log.notice("after cancel: %%d", len(ctx._listen))
asyncio.run(main())
""" % port)
    srv = start(tmp_path, script=script, port=port)
    assert srv.proc.wait(10) == 0
    assert "after cancel: 0" in srv.log() and "context closed" in srv.log()


def test_async_callback_under_the_blocking_loop_is_a_500(tmp_path):
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text("""
import lws
class A(lws.Protocol):
    async def on_http(self, conn, req):
        conn.respond(200, body="never")
ctx = lws.Context(port=%d, mounts=[lws.Mount("/", "callback://default")],
                  protocols=[A()])
ctx.run()
""" % port)
    srv = start(tmp_path, script=script, port=port)
    try:
        srv.has_t = False
        assert srv.get("/")[0] == 500
        assert "needs ctx.serve() under asyncio" in srv.log()
    finally:
        srv.stop()


# -- the test server under asyncio: SIGINT, and TLS ---------------------------


@pytest.fixture(scope="module")
def tls_app(tmp_path_factory):
    d = tmp_path_factory.mktemp("aiotls")
    cert, key, _ = make_cert(d / "pki")
    tls_port = free_port()
    srv = start(d, args=["--loop", "asyncio", "--timeout", "3",
                         "--tls-port", tls_port, "--cert", cert,
                         "--key", key])
    wait_port(tls_port, srv.proc)
    srv.tls_port = tls_port
    srv.cafile = cert
    yield srv
    srv.stop()


def trusting(cafile):
    return ssl.create_default_context(cafile=str(cafile))


def test_tls_requests_under_asyncio(tls_app):
    import subprocess
    # curl, a file bigger than a TLS record
    big = (REPO / "firmware" / "www" / "index.html").read_bytes()
    p = subprocess.run([peer("curl"), "-sS", "--max-time", "10", "--cacert",
                        tls_app.cafile, "--resolve",
                        "localhost:%d:127.0.0.1" % tls_app.tls_port,
                        "https://localhost:%d/" % tls_app.tls_port,
                        "https://localhost:%d/" % tls_app.tls_port],
                       capture_output=True, timeout=15)
    assert p.returncode == 0, p.stderr
    assert p.stdout == big + big
    # http.client keep-alive: several requests on one TLS connection
    c = http.client.HTTPSConnection("localhost", tls_app.tls_port,
                                    context=trusting(tls_app.cafile),
                                    timeout=5)
    c.sock = c._context.wrap_socket(
        socket.create_connection(("127.0.0.1", tls_app.tls_port), 5),
        server_hostname="localhost")
    try:
        for _ in range(5):
            c.request("GET", "/t/info")
            r = c.getresponse()
            assert r.status == 200
            r.read()
    finally:
        c.close()


def test_wss_echo_under_asyncio(tls_app):
    async def go():
        s = socket.create_connection(("127.0.0.1", tls_app.tls_port), 5)
        s.setblocking(False)
        ws = await websockets.connect(
            "wss://localhost:%d/echo" % tls_app.tls_port, sock=s,
            ssl=trusting(tls_app.cafile), server_hostname="localhost",
            subprotocols=["echo"], max_size=None, open_timeout=10)
        try:
            await ws.send("hello over wss")
            assert await ws.recv() == "hello over wss"
            # several TLS records per read: mbedTLS holds the rest
            # (ctx.rx_pending), which must not wait for the next event
            for n in (20000, 70000):
                big = os.urandom(n)
                await ws.send(big)
                assert await asyncio.wait_for(ws.recv(), 5) == big
            for i in range(30):
                await ws.send("m%d" % i)
            for i in range(30):
                assert await asyncio.wait_for(ws.recv(), 5) == "m%d" % i
        finally:
            await ws.close()
    asyncio.run(asyncio.wait_for(go(), 30))
    assert tls_app.proc.poll() is None


def test_sigint_under_asyncio_closes_cleanly(tmp_path):
    srv = start(tmp_path, args=["--loop", "asyncio"])
    s = socket.create_connection(("127.0.0.1", srv.port))
    assert srv.get("/t/info")[0] == 200
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(5) == 0
    assert recv_all(s) == b""
    assert "context closed" in srv.log()
