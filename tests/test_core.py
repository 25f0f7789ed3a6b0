"""The core's seams: vhost options checked, rx flow control that holds
what was already read, upgrades refused with a status instead of a silent
101, and client connections that end as every connection does."""
import json
import socket
import time

import pytest

from conftest import free_port, recv_all, run_mpy, start
from wsraw import frame, handshake, read_frame


def test_misspelt_vhost_option_is_an_error():
    r = run_mpy("import lws\ntry:\n    lws.Vhost('x', 1, ws_defualt='echo')\n"
                "except ValueError as e:\n    print('refused', e)\n")
    assert "refused unknown vhost option ws_defualt" in r.stdout, r
    r = run_mpy("import lws\nv = lws.Vhost('x', 1, ws_default='echo', "
                "sts=True)\nprint(v.ws_default, v.sts)\n")
    assert r.stdout.split() == ["echo", "True"], r


PAUSE_APP = """
import lws

class Pausing(lws.Protocol):
    name = "pausing"
    def new_user(self, conn):
        return []
    def on_receive(self, conn, data):
        m = bytes(data)
        conn.user.append(m)
        conn.send_text(b"got " + m)
        if m == b"pause":
            conn.rx_flow_control(False)
            conn.ctx.every(500, lambda: conn.rx_flow_control(True))

class NoProto(lws.Protocol):
    name = "plain"
    def on_http(self, conn, req):
        conn.respond(200, body="plain", content_type="text/plain")

vhosts = [lws.Vhost("localhost", {port}, [], [Pausing()]),
          lws.Vhost("bare", {bare}, [lws.Mount("/", "callback://plain")],
                    [NoProto()])]
lws.Context(vhosts).run()
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    d = tmp_path_factory.mktemp("core")
    port, bare = free_port(), free_port()
    (d / "app.py").write_text(PAUSE_APP.format(port=port, bare=bare))
    srv = start(d, script=d / "app.py", port=port)
    srv.bare = bare
    yield srv
    srv.stop()


def test_rx_flow_control_holds_frames_already_read(app):
    """Three frames in one segment; the first pauses reading: the other
    two, already read, wait for the resume half a second later."""
    s, head = handshake(app.port, "/", "pausing")
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(frame(1, b"pause") + frame(1, b"two") + frame(1, b"three"))
    t0 = time.monotonic()
    assert read_frame(s)[2] == b"got pause"
    assert read_frame(s)[2] == b"got two"
    assert time.monotonic() - t0 > 0.35, "delivered while paused"
    assert read_frame(s)[2] == b"got three"
    s.close()


def test_upgrade_to_an_unknown_subprotocol_is_refused(app):
    s, head = handshake(app.port, "/", "chat")
    s.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    # one of them known: that one is picked
    s, head = handshake(app.port, "/", "chat, pausing")
    s.close()
    assert head.startswith(b"HTTP/1.1 101")
    assert b"Sec-WebSocket-Protocol: pausing" in head
    # the error page quotes what was asked, escaped
    s, head = handshake(app.port, "/", "<img src=x onerror=alert(1)>")
    s.settimeout(5)
    page = recv_all(s)
    s.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"&lt;img src=x" in page and b"<img" not in page, page


def test_upgrade_on_a_vhost_without_ws_protocols_is_refused(app):
    """The vhost's one protocol serves HTTP only: an upgrade to it would be
    a 101 and then silence, so it is a 404; its pages are served."""
    s, head = handshake(app.bare, "/")
    s.close()
    assert head.startswith(b"HTTP/1.1 404"), head
    with socket.create_connection(("127.0.0.1", app.bare)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert recv_all(s).endswith(b"plain")


CLIENT_APP = """
import lws, json

class Parent(lws.Protocol):
    name = "parent"
    def on_client_established(self, conn):
        kid = conn.ctx.connect("http://127.0.0.1:{port}/x", KID, parent=conn)
        self.kid = kid
    def on_client_receive(self, conn, data):
        pass

class Kid(lws.Protocol):
    name = "kid"
    def on_client_http_completed(self, conn):
        print(json.dumps({{"done": True}}))

KID = Kid()
P = Parent()
ctx = lws.Context(vhosts=[])
par = ctx.connect("ws://127.0.0.1:{wsport}/", P)
end = __import__("time").ticks_add(__import__("time").ticks_ms(), 5000)
while __import__("time").ticks_diff(end, __import__("time").ticks_ms()) > 0:
    ctx.service(20)
    if getattr(P, "kid", None) is not None and P.kid.closed:
        break
print(json.dumps({{"kid_closed": P.kid.closed,
                  "children": len(par.children or []),
                  "pooled": len(ctx.pool.idle) if ctx.pool else 0}}))
"""


def test_pooled_client_leaves_its_parent(tmp_path):
    """A finished keep-alive HTTP client goes to the pool as a socket; the
    connection itself ends as every connection does, so its parent's list
    of children is never stale."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import websockets
    from websockets.asyncio.server import serve

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    wsport = free_port()
    stop = threading.Event()

    async def ws_main():
        async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", wsport):
            while not stop.is_set():
                await asyncio.sleep(0.05)
    t = threading.Thread(target=lambda: asyncio.run(ws_main()), daemon=True)
    t.start()
    time.sleep(0.3)
    try:
        r = run_mpy(CLIENT_APP.format(port=httpd.server_address[1],
                                      wsport=wsport), timeout=20)
    finally:
        stop.set()
        httpd.shutdown()
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert {"done": True} in lines, r
    assert lines[-1] == {"kid_closed": True, "children": 0, "pooled": 1}, r


FILTER_APP = """
import lws

class Page(lws.Protocol):
    name = "page"
    def on_http(self, conn, req):
        conn.respond(200, body="page " + req.path, content_type="text/plain")

def gate(conn, req):
    if req.path.startswith("/closed"):
        conn.respond(403, body="filtered", content_type="text/plain")
        return True
    return False

vh = lws.Vhost("localhost", {port}, [lws.Mount("/", "callback://page")],
               [Page()])
vh.add_filter(gate)
lws.Context([vh]).run()
"""


def test_vhost_filter_answers_before_routing(tmp_path):
    port = free_port()
    (tmp_path / "app.py").write_text(FILTER_APP.format(port=port))
    srv = start(tmp_path, script=tmp_path / "app.py", port=port)
    try:
        assert srv.get("/closed/x")[0::2] == (403, b"filtered")
        assert srv.get("/open")[0::2] == (200, b"page /open")
    finally:
        srv.stop()


def test_unmask_viper_and_fallback_agree():
    """Both unmaskers (viper where the port has it, the pure-Python
    fallback elsewhere) against a plain XOR: every start, length, key
    offset and phase around the 4-byte steps."""
    r = run_mpy("""
from lws import mask, _xor
import os
def plain(buf, start, n, key, koff, phase):
    for i in range(n):
        buf[start + i] ^= key[koff + ((phase + i) & 3)]
bad = 0
keybuf = bytes(range(200, 230))
for f in (mask._unmask_py, _xor.unmask):
    for start in range(0, 9):
        for n in (0, 1, 3, 4, 5, 7, 8, 13, 64, 100):
            for koff in (0, 3, 10):
                for phase in range(4):
                    b = bytearray(os.urandom(120))
                    want = bytearray(b)
                    plain(want, start, n, keybuf, koff, phase)
                    f(b, start, n, keybuf, koff, phase)
                    bad += b != want
print("bad", bad, mask.unmask is _xor.unmask)
""")
    assert r.stdout.split() == ["bad", "0", "True"], r
