"""Client connections (Context.connect) against real peers: URL parsing,
the WebSocket client against CPython's websockets and raw-socket servers,
HTTP client mode against http.server, raw client connections, errors as
callback values, SOCKS5, Debian's libwebsockets test server, and our own
test server.

Each test writes a MicroPython script that drives a Context with no
listening vhost and prints one JSON line per callback; the peers run in
threads of the test process."""
import asyncio
import base64
import hashlib
import http.server
import json
import socket
import struct
import subprocess
import threading
import time

import pytest
import websockets
from websockets.asyncio.server import serve as ws_serve

from conftest import PeerHandler, free_port, peer, run_mpy, wait_port
from wsraw import read_exact
from lwstool import unixport

pytestmark = pytest.mark.timeout(20)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# -- the MicroPython side -----------------------------------------------------

PRELUDE = r'''
import lws, json, time, hashlib, binascii

T0 = time.ticks_ms()
EV = []
ctx = None


def ms():
    return time.ticks_diff(time.ticks_ms(), T0)


def out(*a):
    EV.append(a)
    print(json.dumps(list(a)))


def seen(kind, n=1, tag=None):
    k = 0
    for e in EV:
        if e[0] == kind and (tag is None or e[1] == tag):
            k += 1
    return k >= n


def sha(b):
    return binascii.hexlify(hashlib.sha256(bytes(b)).digest()).decode()


def text(b, limit=300):
    if len(b) > limit:
        return None
    try:
        return bytes(b).decode()
    except UnicodeError:
        return None


class Cli(lws.Protocol):
    name = "cli"

    def new_user(self, c):
        return {"tag": "?", "msg": [], "pieces": 0, "body": []}

    def on_client_connection_error(self, c, reason):
        out("error", c.user["tag"], reason, ms())

    def on_client_established(self, c):
        out("established", c.user["tag"], c.subprotocol)

    def on_client_receive(self, c, data):
        u = c.user
        u["msg"].append(bytes(data))
        u["pieces"] += 1
        if c.is_final_fragment():
            m = b"".join(u["msg"])
            kind = "binary" if c.frame_is_binary() else "text"
            out("rx", u["tag"], kind, len(m), sha(m),
                text(m) if kind == "text" else None, u["pieces"])
            u["msg"] = []
            u["pieces"] = 0
            self.on_message(c, kind, m)

    def on_message(self, c, kind, m):
        pass

    def on_peer_initiated_close(self, c, code, reason):
        out("peer_close", c.user["tag"], code, bytes(reason).decode())

    def on_closed(self, c):
        out("closed", c.user["tag"], c.ws.close_code,
            bytes(c.ws.close_reason).decode())

    def on_client_http_response(self, c, status, headers):
        out("response", c.user["tag"], status, headers)

    def on_client_http_body(self, c, data):
        c.user["body"].append(bytes(data))

    def on_client_http_completed(self, c):
        b = b"".join(c.user["body"])
        c.user["body"] = []
        out("completed", c.user["tag"], len(b), sha(b), text(b))

    def on_raw_adopt(self, c):
        out("raw_adopt", c.user["tag"])

    def on_raw_rx(self, c, data):
        out("raw_rx", c.user["tag"], bytes(data).decode())

    def on_raw_close(self, c):
        out("raw_close", c.user["tag"])


P = Cli()


def conn(tag, url, proto=None, **kw):
    c = ctx.connect(url, proto or P, **kw)
    c.user["tag"] = tag
    return c


def run(secs, until):
    end = time.ticks_add(time.ticks_ms(), int(secs * 1000))
    while not until() and time.ticks_diff(end, time.ticks_ms()) > 0:
        ctx.service(50)

'''


class Events(list):
    """The JSON lines a client script printed."""

    def of(self, kind, tag=None):
        return [e for e in self if e[0] == kind and
                (tag is None or e[1] == tag)]

    def one(self, kind, tag=None):
        got = self.of(kind, tag)
        assert len(got) == 1, "want one %s %s in %s" % (kind, tag, self)
        return got[0]

    def kinds(self, tag=None):
        return [e[0] for e in self
                if len(e) > 1 and (tag is None or e[1] == tag)]


def mpy(tmp_path, body, timeout=15, name="client.py"):
    """Run PRELUDE + body on the unix port; it must end normally."""
    script = tmp_path / name
    script.write_text(PRELUDE + body + '\nout("exit")\n')
    r = subprocess.run(unixport.command(script), env=unixport.environment(),
                       capture_output=True, text=True, timeout=timeout,
                       cwd=str(tmp_path))
    ev = Events(json.loads(line) for line in r.stdout.splitlines()
                if line.startswith("["))
    info = "\nstdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr)
    assert r.returncode == 0, info
    assert ev and ev[-1] == ["exit"], info
    assert "Traceback" not in r.stderr, info
    return ev


def sha(b):
    return hashlib.sha256(b).hexdigest()


# -- peers: asyncio in a thread, raw sockets, http.server ---------------------


class AsyncThread:
    """An asyncio loop in a thread, for websockets servers and the proxy."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()
        self.servers = []

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(
            timeout)

    def stop(self):
        async def close():
            for s in self.servers:
                s.close()
            for s in self.servers:
                try:
                    await asyncio.wait_for(s.wait_closed(), 3)
                except Exception:
                    pass
        try:
            self.call(close(), 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture
def aio():
    a = AsyncThread()
    yield a
    a.stop()


class WsLog:
    def __init__(self):
        self.requests = []     # request headers
        self.subprotocols = []
        self.closes = []       # (code, reason) the server saw
        self.got = []


def ws_server(aio, **kw):
    """A websockets echo server; 'close:CODE:REASON' makes it close."""
    log = WsLog()

    async def handler(ws):
        log.requests.append({k.lower(): v for k, v in
                             ws.request.headers.raw_items()})
        log.subprotocols.append(ws.subprotocol)
        try:
            async for msg in ws:
                log.got.append(msg)
                if isinstance(msg, str) and msg.startswith("close:"):
                    _, code, reason = msg.split(":", 2)
                    await ws.close(int(code), reason)
                    break
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        log.closes.append((ws.close_code, ws.close_reason))

    async def go():
        return await ws_serve(handler, "127.0.0.1", 0, max_size=None,
                              ping_interval=None, **kw)
    srv = aio.call(go())
    aio.servers.append(srv)
    port = srv.sockets[0].getsockname()[1]
    return port, log


class RawServer:
    """A thread per connection running handler(sock, server)."""

    def __init__(self, handler, backlog=16, accept=True):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.log = []
        self.errors = []
        self.conns = []
        self.stopped = False
        if accept:
            self.sock.settimeout(0.2)
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(10)
            self.accepts += 1
            self.conns.append(s)
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        try:
            self.handler(s, self)
        except Exception as e:  # seen by tests through .errors
            self.errors.append(repr(e))

    def close(self):
        self.stopped = True
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def raw_server():
    made = []

    def make(handler, **kw):
        s = RawServer(handler, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def read_head(s):
    """The request (or response) head from a socket, and what follows."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed in the head: %r" % data)
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


def ws_accept_key(key):
    digest = hashlib.sha1(key.encode() + GUID).digest()
    return base64.b64encode(digest).decode()


def ws_handshake(s, accept=None, extra=""):
    """Answer a client's upgrade; returns its request headers."""
    line, h, rest = read_head(s)
    assert not rest
    acc = accept if accept is not None else \
        ws_accept_key(h["sec-websocket-key"])
    s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n"
               % (acc, extra)).encode())
    return h


def read_client_frame(s):
    """(fin, op, mask key or None, masked payload, payload) of a frame."""
    b0, b1 = read_exact(s, 2)
    n = b1 & 127
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    key = read_exact(s, 4) if b1 & 0x80 else None
    raw = read_exact(s, n)
    data = bytes(b ^ key[i & 3] for i, b in enumerate(raw)) if key else raw
    return bool(b0 & 0x80), b0 & 15, key, raw, data


class HttpHandler(PeerHandler):
    def setup(self):
        super().setup()
        self.server.accepts += 1

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            pieces = 0
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data, "chunked", pieces
                data += self.rfile.read(n)
                pieces += 1
                assert self.rfile.readline() == b"\r\n"
        n = int(self.headers.get("Content-Length", 0))
        return self.rfile.read(n), "length", 1

    def do_GET(self):
        p = self.path
        if p == "/hello":
            self._send(200, b"hello world\n", extra=[("X-Test", "yes")])
        elif p.startswith("/headers"):
            self._send(200, json.dumps({
                "path": p, "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()}
            }).encode(), "application/json")
        elif p.startswith("/redir/"):
            n = int(p[7:])
            if n == 0:
                self._send(200, b"landed")
                return
            # odd hops send an absolute URL, even ones a path
            loc = "/redir/%d" % (n - 1)
            if n % 2:
                loc = "http://127.0.0.1:%d%s" % (self.server.server_port, loc)
            self._send(302, b"", extra=[("Location", loc)])
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"hello ", b"chunked " * 1000, b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/big":
            self._send(200, bytes(range(256)) * 1024,
                       "application/octet-stream")
        else:
            self._send(404, b"no such page\n")

    do_HEAD = do_GET

    def do_POST(self):
        data, how, pieces = self._body()
        self._send(200, json.dumps({
            "method": self.command, "path": self.path, "len": len(data),
            "sha256": sha(data), "how": how, "pieces": pieces,
            "ctype": self.headers.get("Content-Type")}).encode(),
            "application/json")

    do_PUT = do_POST

    def do_DELETE(self):
        self._send(200, ("deleted " + self.path).encode())


@pytest.fixture
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HttpHandler)
    srv.daemon_threads = True
    srv.accepts = 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def hurl(srv, path):
    return "http://127.0.0.1:%d%s" % (srv.server_port, path)


# == 1. URL parsing ===========================================================

URI_CODE = r'''
import json
from lws.uri import parse_uri, userinfo
res = {}
for u in %r:
    try:
        res[u] = list(parse_uri(u))
    except ValueError as e:
        res[u] = "ValueError"
ui = {}
for u in %r:
    r = userinfo(u)
    ui[u] = list(r) if r else r
print(json.dumps([res, ui]))
'''


def test_parse_uri_and_userinfo():
    good = {
        "ws://example.com": ["ws", "example.com", 80, "/"],
        "wss://example.com/chat": ["wss", "example.com", 443, "/chat"],
        "http://h:8080/p/q?x=1&y=2": ["http", "h", 8080, "/p/q?x=1&y=2"],
        "HTTPS://Host.Example/": ["https", "Host.Example", 443, "/"],
        "https://h:8443": ["https", "h", 8443, "/"],
        "raw://127.0.0.1:9000": ["raw", "127.0.0.1", 9000, "/"],
        "socks5://proxy": ["socks5", "proxy", 1080, "/"],
        "ws://[::1]:8080/echo?x=1": ["ws", "::1", 8080, "/echo?x=1"],
        "ws://[::1]/": ["ws", "::1", 80, "/"],
        "http://[fe80::1:2]": ["http", "fe80::1:2", 80, "/"],
        "http://h?x=1": ["http", "h", 80, "/?x=1"],
        "http://h#frag": ["http", "h", 80, "/"],
        "http://h/p?q=1#frag": ["http", "h", 80, "/p?q=1"],
        "http://user:pw@h:81/x": ["http", "h", 81, "/x"],
        "http://u@[::1]:82/": ["http", "::1", 82, "/"],
        "http://h/a@b": ["http", "h", 80, "/a@b"],
        "http://h:65535/": ["http", "h", 65535, "/"],
    }
    bad = ["example.com", "://h", "http://", "http:///p", "http://:80/",
           "http://h:0/", "http://h:65536/", "http://h:abc/", "http://h:-1/",
           "http://[::1/", "http://[::1]x/", "http://u@/", "/just/a/path"]
    users = {
        "socks5://us%40er:p%3Ass@h:1080": ["us@er", "p:ss"],
        "socks5://alice:secret@127.0.0.1:1080": ["alice", "secret"],
        "http://u@h/": ["u", ""],
        "http://h/": None,
        "http://h/a@b": None,
        "http://h?next=a@b": None,
        "http://h#x@y": None,
    }
    r = run_mpy(URI_CODE % (list(good) + bad, list(users)), timeout=10)
    assert r.returncode == 0, r.stderr
    res, ui = json.loads(r.stdout.strip().splitlines()[-1])
    for u, want in good.items():
        assert res[u] == want, u
    for u in bad:
        assert res[u] == "ValueError", (u, res[u])
    assert ui == users


def test_connect_refuses_bad_urls_at_once(tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
for u in ("ftp://127.0.0.1/", "no-scheme", "http://h:99999/", "http://[::1/"):
    try:
        conn("x", u)
        out("accepted", u)
    except ValueError as e:
        out("ValueError", u)
try:
    conn("x", "http://127.0.0.1/", proxy="http://127.0.0.1:3128")
    out("accepted", "http proxy")
except ValueError:
    out("ValueError", "http proxy")
run(0.3, lambda: False)
''')
    assert ev.kinds() == ["ValueError"] * 5


# == 2. WebSocket client against websockets and raw servers ==================


def test_ws_echo_text_binary_and_100k(aio, tmp_path):
    port, log = ws_server(aio)
    big = bytes(range(256)) * 400  # 100 KiB
    ev = mpy(tmp_path, r'''
BIG = bytes(range(256)) * 400
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("hello")
        c.send_text("κόσμε")
        c.send_binary(b"\x00\x01\xff")
        c.send_binary(BIG)
        c.send_text("t" * 102400)
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/echo?x=1", E(), origin="http://me.example",
     headers=[("X-Hello", "world")])
run(10, lambda: seen("rx", 5))
''' % port)
    assert ev.one("established", "a") == ["established", "a", None]
    rx = ev.of("rx", "a")
    assert [(r[2], r[3]) for r in rx] == [
        ("text", 5), ("text", len("κόσμε".encode())), ("binary", 3),
        ("binary", 102400), ("text", 102400)]
    assert rx[0][5] == "hello" and rx[1][5] == "κόσμε"
    assert rx[2][4] == sha(b"\x00\x01\xff")
    assert rx[3][4] == sha(big)
    assert rx[4][4] == sha(b"t" * 102400)
    assert rx[3][6] > 1  # a long message arrives in pieces
    assert log.got[:3] == ["hello", "κόσμε", b"\x00\x01\xff"]
    assert log.got[3] == big and log.got[4] == "t" * 102400
    h = log.requests[0]
    assert h["host"] == "127.0.0.1:%d" % port
    assert h["origin"] == "http://me.example"
    assert h["x-hello"] == "world"
    assert h["sec-websocket-version"] == "13"
    assert "sec-websocket-protocol" not in h


def test_ws_subprotocol_offered_is_chosen(aio, tmp_path):
    port, log = ws_server(aio, subprotocols=["superchat", "chat"])
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", subprotocols=["chat", "other"])
run(5, lambda: seen("established") or seen("error"))
''' % port)
    assert ev.one("established", "a") == ["established", "a", "chat"]
    assert log.requests[0]["sec-websocket-protocol"] == "chat, other"
    assert log.subprotocols == ["chat"]


def test_ws_subprotocol_not_offered_is_an_error(aio, tmp_path):
    port, log = ws_server(aio, select_subprotocol=lambda conn, sp: "evil")
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", subprotocols=["chat"])
run(5, lambda: seen("established") or seen("error"))
''' % port)
    assert not ev.of("established")
    err = ev.one("error", "a")
    assert "did not offer" in err[2] and "evil" in err[2]


def test_ws_masked_server_frame_closes_with_1002(raw_server, tmp_path):
    def handler(s, srv):
        ws_handshake(s)
        # a masked frame: only clients mask
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i & 3] for i, b in enumerate(b"hi"))
        s.sendall(b"\x81\x82" + key + payload)
        fin, op, k, _, data = read_client_frame(s)
        srv.log.append((op, k is not None, struct.unpack("!H", data[:2])[0]))
        s.close()
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/")
run(5, lambda: seen("closed"))
''' % srv.port)
    assert srv.log == [(8, True, 1002)], srv.errors
    assert not ev.of("rx")  # the masked message was not delivered
    assert ev.kinds("a") == ["established", "closed"]


def test_ws_client_frames_masked_with_fresh_keys(raw_server, tmp_path):
    def handler(s, srv):
        ws_handshake(s)
        for _ in range(2):
            srv.log.append(read_client_frame(s))
        s.sendall(b"\x81\x02ok")
        srv.log.append(read_client_frame(s))  # its close
        s.sendall(b"\x88\x02\x03\xe8")
        s.close()
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("same payload, twice")
        c.send_text("same payload, twice")
    def on_message(self, c, kind, m):
        c.close(1000, "done")
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", E())
run(5, lambda: seen("closed"))
''' % srv.port)
    assert not srv.errors
    (f1, o1, k1, raw1, d1), (f2, o2, k2, raw2, d2) = srv.log[:2]
    assert (f1, o1, d1) == (f2, o2, d2) == (True, 1, b"same payload, twice")
    assert k1 is not None and k2 is not None, "client frames must be masked"
    assert k1 != k2, "a fresh masking key per frame"
    assert raw1 != raw2
    fin, op, k3, _, d3 = srv.log[2]
    assert op == 8 and k3 is not None and d3 == b"\x03\xe8done"
    assert ev.of("rx", "a")[0][5] == "ok"
    assert ev.one("closed", "a")[2] == 1000


def test_ws_bad_accept_is_an_error(raw_server, tmp_path):
    def handler(s, srv):
        ws_handshake(s, accept=base64.b64encode(b"x" * 20).decode())
        s.recv(100)
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/")
run(5, lambda: seen("error") or seen("established"))
''' % srv.port)
    assert ev.kinds("a") == ["error"]
    assert "Sec-WebSocket-Accept" in ev.one("error", "a")[2]


def test_ws_non_101_reports_the_status(aio, tmp_path):
    def refuse(conn, request):
        return conn.respond(403, "go away\n")
    port, log = ws_server(aio, process_request=refuse)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/")
run(5, lambda: seen("error") or seen("established"))
''' % port)
    assert ev.kinds("a") == ["error"]
    assert "403" in ev.one("error", "a")[2]


def test_ws_close_from_the_server(aio, tmp_path):
    port, log = ws_server(aio)
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("close:4001:server says bye")
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", E())
run(5, lambda: seen("closed"))
''' % port)
    assert ev.kinds("a") == ["established", "peer_close", "closed"]
    assert ev.one("peer_close", "a")[2:] == [4001, "server says bye"]
    assert ev.one("closed", "a")[2:] == [4001, "server says bye"]
    for _ in range(20):
        if log.closes:
            break
        time.sleep(0.05)
    assert log.closes == [(4001, "")]  # our answer echoes the code only


def test_ws_close_from_the_client(aio, tmp_path):
    port, log = ws_server(aio)
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("one")
    def on_message(self, c, kind, m):
        c.close(4002, "client says bye")
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", E())
run(5, lambda: seen("closed"))
''' % port)
    assert ev.kinds("a") == ["established", "rx", "closed"]
    assert ev.one("closed", "a")[2] == 4002  # the server echoed our code
    for _ in range(20):
        if log.closes:
            break
        time.sleep(0.05)
    assert log.closes == [(4002, "client says bye")]


# == 3. HTTP client mode ======================================================


def test_http_get_status_headers_and_body(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "%s")
conn("h", "%s", headers={"X-Hello": "world", "Accept": "text/x-test"})
conn("n", "%s")
run(5, lambda: seen("completed", 3))
''' % (hurl(http_server, "/hello"), hurl(http_server, "/headers?q=1"),
       hurl(http_server, "/missing")))
    st, hd = ev.one("response", "a")[2:]
    assert st == 200 and hd["x-test"] == "yes"
    assert hd["content-length"] == "12" and hd["content-type"] == "text/plain"
    assert ev.one("completed", "a")[2:] == [12, sha(b"hello world\n"),
                                            "hello world\n"]
    info = json.loads(ev.one("completed", "h")[4])
    assert info["method"] == "GET" and info["path"] == "/headers?q=1"
    h = info["headers"]
    assert h["host"] == "127.0.0.1:%d" % http_server.server_port
    assert h["x-hello"] == "world" and h["accept"] == "text/x-test"
    assert ev.one("response", "n")[2] == 404
    assert ev.one("completed", "n")[4] == "no such page\n"
    assert not ev.of("error")


def test_http_post_put_delete_head(http_server, tmp_path):
    body = bytes(range(256)) * 200  # 51200 bytes
    ev = mpy(tmp_path, r'''
BODY = bytes(range(256)) * 200
ctx = lws.Context(vhosts=[])
conn("post", "%s", method="POST", body=BODY,
     headers=[("Content-Type", "application/octet-stream")])
conn("put", "%s", method="put", body="a string body")
conn("del", "%s", method="DELETE")
conn("head", "%s", method="HEAD")
run(5, lambda: seen("completed", 4))
''' % (hurl(http_server, "/sha"), hurl(http_server, "/file"),
       hurl(http_server, "/file"), hurl(http_server, "/hello")))
    post = json.loads(ev.one("completed", "post")[4])
    assert post == {"method": "POST", "path": "/sha", "len": len(body),
                    "sha256": sha(body), "how": "length", "pieces": 1,
                    "ctype": "application/octet-stream"}
    put = json.loads(ev.one("completed", "put")[4])
    assert (put["method"], put["len"], put["sha256"]) == (
        "PUT", 13, sha(b"a string body"))
    assert ev.one("completed", "del")[4] == "deleted /file"
    # HEAD: the Content-Length of the GET, and no body read
    st, hd = ev.one("response", "head")[2:]
    assert st == 200 and hd["content-length"] == "12"
    assert ev.one("completed", "head")[2] == 0
    assert not ev.of("error")


def test_http_chunked_and_big_bodies(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("c", "%s")
conn("b", "%s")
run(5, lambda: seen("completed", 2))
''' % (hurl(http_server, "/chunked"), hurl(http_server, "/big")))
    want = b"hello " + b"chunked " * 1000 + b"world"
    assert ev.one("response", "c")[3]["transfer-encoding"] == "chunked"
    assert ev.one("completed", "c")[2:4] == [len(want), sha(want)]
    big = bytes(range(256)) * 1024
    assert ev.one("completed", "b")[2:4] == [len(big), sha(big)]
    assert not ev.of("error")


def test_http_chunk_lines_split_across_reads(raw_server, tmp_path):
    def handler(s, srv):
        read_head(s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                      b"5", b"\r\nhel", b"lo\r\n0", b"A\r\n", b"0123456789",
                      b"\r\n0\r", b"\n\r\n"):
            s.sendall(piece)
            time.sleep(0.1)
        srv.log.append(s.recv(100))
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "http://127.0.0.1:%d/")
run(5, lambda: seen("completed") or seen("error"))
''' % srv.port)
    assert not ev.of("error")
    assert ev.one("completed", "a")[4] == "hello0123456789"


def test_http_close_delimited_body(raw_server, tmp_path):
    def handler(s, srv):
        line, h, _ = read_head(s)
        srv.log.append(line)
        s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for i in range(5):
            s.sendall(b"piece %d\n" % i)
            time.sleep(0.05)
        s.close()
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "http://127.0.0.1:%d/old")
run(5, lambda: seen("completed") or seen("error"))
''' % srv.port)
    assert srv.log == ["GET /old HTTP/1.1"]
    assert ev.one("response", "a")[2] == 200
    assert ev.one("completed", "a")[4] == "".join(
        "piece %d\n" % i for i in range(5))
    assert not ev.of("error")


def test_http_body_cut_short_is_an_error(raw_server, tmp_path):
    def handler(s, srv):
        read_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        time.sleep(0.2)
        s.close()
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "http://127.0.0.1:%d/")
run(5, lambda: seen("error") or seen("completed"))
''' % srv.port)
    assert ev.kinds("a") == ["response", "error"]
    assert "hung up" in ev.one("error", "a")[2]


def test_http_redirects_up_to_the_limit(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("two", "%s", redirects=2)
run(5, lambda: seen("completed", 1))
conn("three", "%s", redirects=2)
conn("none", "%s")
run(5, lambda: seen("completed", 3))
''' % (hurl(http_server, "/redir/2"), hurl(http_server, "/redir/3"),
       hurl(http_server, "/redir/2")))
    assert ev.one("response", "two")[2] == 200
    assert ev.one("completed", "two")[4] == "landed"
    # three hops with a limit of two: the third 302 is the response
    st, hd = ev.one("response", "three")[2:]
    assert st == 302 and hd["location"] == hurl(http_server, "/redir/0")
    assert ev.one("completed", "three")[2] == 0
    st, hd = ev.one("response", "none")[2:]
    assert st == 302 and hd["location"] == "/redir/1"
    assert not ev.of("error")


def test_http_keepalive_reuses_one_connection(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "%s")
run(5, lambda: seen("completed", 1))
conn("head", "%s", method="HEAD")
run(5, lambda: seen("completed", 2))
conn("b", "%s")
run(5, lambda: seen("completed", 3))
''' % (hurl(http_server, "/chunked"), hurl(http_server, "/hello"),
       hurl(http_server, "/headers")))
    assert ev.one("completed", "a")[2] == 8011
    assert ev.one("completed", "head")[2] == 0
    h = json.loads(ev.one("completed", "b")[4])
    assert h["path"] == "/headers" and "connection" not in h["headers"]
    assert not ev.of("error")
    assert http_server.accepts == 1  # chunked, HEAD and GET on one socket


def test_http_keepalive_off_uses_new_connections(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "%s", keepalive=False)
run(5, lambda: seen("completed", 1))
conn("b", "%s", keepalive=False)
run(5, lambda: seen("completed", 2))
''' % (hurl(http_server, "/headers"), hurl(http_server, "/headers")))
    h = json.loads(ev.one("completed", "a")[4])["headers"]
    assert h["connection"] == "close"
    assert http_server.accepts == 2


def test_http_stale_pooled_connection_is_retried(raw_server, tmp_path):
    def handler(s, srv):
        line, h, _ = read_head(s)
        srv.log.append(line)
        body = line.encode()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        time.sleep(0.1)
        s.close()  # without saying so: the pooled socket goes stale
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "http://127.0.0.1:%d/one")
run(5, lambda: seen("completed", 1))
run(0.5, lambda: False)
conn("b", "http://127.0.0.1:%d/two")
run(5, lambda: seen("completed", 2) or seen("error"))
''' % (srv.port, srv.port))
    assert not ev.of("error")
    assert ev.one("completed", "b")[4] == "GET /two HTTP/1.1"
    assert srv.log == ["GET /one HTTP/1.1", "GET /two HTTP/1.1"]
    assert srv.accepts == 2


def test_http_streamed_request_body(http_server, tmp_path):
    pieces = [(b"%05d," % i) * 2000 for i in range(10)]
    ev = mpy(tmp_path, r'''
class S(Cli):
    def new_user(self, c):
        u = Cli.new_user(self, c)
        u["i"] = 0
        return u
    def on_client_writeable(self, c):
        i = c.user["i"]
        if i < 10:
            c.write((b"%%05d," %% i) * 2000)
            c.user["i"] = i + 1
            c.callback_on_writable()
        else:
            c.complete()
ctx = lws.Context(vhosts=[])
conn("chunked", "%s", S(), method="POST", body=True)
run(5, lambda: seen("completed", 1) or seen("error"))
conn("length", "%s", S(), method="PUT", body=True,
     headers=[("Content-Length", "120000")])
run(5, lambda: seen("completed", 2) or seen("error"))
''' % (hurl(http_server, "/up"), hurl(http_server, "/up")))
    data = b"".join(pieces)
    assert len(data) == 120000
    got = json.loads(ev.one("completed", "chunked")[4])
    assert (got["how"], got["len"], got["sha256"], got["pieces"]) == (
        "chunked", len(data), sha(data), 10)
    got = json.loads(ev.one("completed", "length")[4])
    assert (got["method"], got["how"], got["len"], got["sha256"]) == (
        "PUT", "length", len(data), sha(data))
    assert not ev.of("error")


# == 4. Parent and child ======================================================


def test_children_close_just_before_their_parent(aio, raw_server, tmp_path):
    port, log = ws_server(aio)

    def silent(s, srv):
        read_head(s)
        time.sleep(5)
    srv = raw_server(silent)
    ev = mpy(tmp_path, r'''
class Parent(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.user["kids"] = [
            conn("ws-child", "ws://127.0.0.1:%d/", parent=c),
            conn("http-child", "http://127.0.0.1:%d/", parent=c)]
        c.send_text("wait")
ctx = lws.Context(vhosts=[])
par = conn("parent", "ws://127.0.0.1:%d/", Parent())
run(5, lambda: seen("established", 2) and seen("rx", 1, "parent"))
out("closing")
par.close(1000, "bye")
run(5, lambda: seen("closed", 1, "parent"))
run(0.3, lambda: False)
''' % (port, srv.port, port))
    names = [(e[0], e[1]) for e in ev if e[0] in ("closed", "error")]
    assert names == [("closed", "ws-child"), ("error", "http-child"),
                     ("closed", "parent")]
    assert ev.one("error", "http-child")[2] == "closed"
    i = ev.index(["closing"])
    assert all(e[0] not in ("closed", "error") for e in ev[:i])


# == 5. Raw client ============================================================


def test_raw_client_echo(raw_server, tmp_path):
    def echo(s, srv):
        while True:
            d = s.recv(100)
            if not d:
                return
            srv.log.append(d)
            s.sendall(d.upper())
            if b"bye" in d:
                time.sleep(0.1)
                s.close()
                return
    srv = raw_server(echo)
    ev = mpy(tmp_path, r'''
class R(Cli):
    def on_raw_adopt(self, c):
        Cli.on_raw_adopt(self, c)
        c.send(b"hello")
    def on_raw_rx(self, c, data):
        Cli.on_raw_rx(self, c, data)
        if bytes(data) == b"HELLO":
            c.send(b"bye")
ctx = lws.Context(vhosts=[])
conn("r", "raw://127.0.0.1:%d", R())
run(5, lambda: seen("raw_close"))
conn("m", "http://127.0.0.1:%d/", R(), method="RAW")
run(5, lambda: seen("raw_close", 2))
''' % (srv.port, srv.port))
    for tag in ("r", "m"):
        assert ev.kinds(tag) == ["raw_adopt", "raw_rx", "raw_rx", "raw_close"]
        assert [e[2] for e in ev.of("raw_rx", tag)] == ["HELLO", "BYE"]
    assert srv.log == [b"hello", b"bye"] * 2
    assert not ev.of("error")


# == 6. Errors are values =====================================================


def test_refused_and_dns_failure(tmp_path):
    closed = free_port()
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("refused", "http://127.0.0.1:%d/")
conn("ws-refused", "ws://127.0.0.1:%d/")
conn("raw-refused", "raw://127.0.0.1:%d")
conn("dns", "http://no-such-host.invalid/")
run(8, lambda: seen("error", 4))
''' % (closed, closed, closed))
    for tag in ("refused", "ws-refused", "raw-refused"):
        assert ev.kinds(tag) == ["error"]
        assert "refused" in ev.one("error", tag)[2]
    err = ev.one("error", "dns")[2]
    assert "DNS" in err and "no-such-host.invalid" in err


def test_connect_timeout(raw_server, tmp_path):
    srv = raw_server(None, backlog=0, accept=False)
    fillers = []
    for _ in range(4):  # fill the accept queue: further SYNs are dropped
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", srv.port))
        fillers.append(f)
    time.sleep(0.2)
    try:
        ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], connect_timeout=1)
conn("a", "http://127.0.0.1:%d/")
conn("w", "ws://127.0.0.1:%d/")
run(6, lambda: seen("error", 2))
''' % (srv.port, srv.port))
    finally:
        for f in fillers:
            f.close()
    for tag in ("a", "w"):
        _, _, reason, t = ev.one("error", tag)
        assert reason == "connect timed out"
        assert 900 <= t < 3000


def test_handshake_timeout(raw_server, tmp_path):
    def silent(s, srv):
        srv.log.append(read_head(s)[0])
        time.sleep(4)
    srv = raw_server(silent)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], timeout_secs=1)
conn("h", "http://127.0.0.1:%d/")
conn("w", "ws://127.0.0.1:%d/")
run(6, lambda: seen("error", 2))
''' % (srv.port, srv.port))
    assert sorted(srv.log) == ["GET / HTTP/1.1"] * 2
    for tag in ("h", "w"):
        _, _, reason, t = ev.one("error", tag)
        assert reason == "timed out waiting for the server"
        assert 900 <= t < 3000


def test_server_hangs_up_or_talks_nonsense(raw_server, tmp_path):
    def hangup(s, srv):
        read_head(s)
        s.close()

    def nonsense(s, srv):
        read_head(s)
        s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        time.sleep(1)
    a = raw_server(hangup)
    b = raw_server(nonsense)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("hangup", "http://127.0.0.1:%d/")
conn("nonsense", "ws://127.0.0.1:%d/")
run(5, lambda: seen("error", 2))
''' % (a.port, b.port))
    assert "hung up" in ev.one("error", "hangup")[2]
    assert "status line" in ev.one("error", "nonsense")[2]


# == 7. SOCKS5 ================================================================


def socks5_proxy(aio, auth=None):
    """An RFC 1928 proxy (CONNECT; IPv4, IPv6 and domain names) with
    RFC 1929 username/password when auth=(user, password)."""
    log = []

    async def pipe(r, w):
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                w.close()
            except Exception:
                pass

    async def handle(r, w):
        try:
            ver, n = await r.readexactly(2)
            methods = await r.readexactly(n)
            user = None
            if auth:
                if ver != 5 or 2 not in methods:
                    w.write(b"\x05\xff")
                    log.append(("no acceptable method", list(methods)))
                    return
                w.write(b"\x05\x02")
                v, ulen = await r.readexactly(2)
                user = (await r.readexactly(ulen)).decode()
                plen = (await r.readexactly(1))[0]
                pw = (await r.readexactly(plen)).decode()
                ok = v == 1 and (user, pw) == auth
                w.write(b"\x01" + (b"\x00" if ok else b"\x01"))
                if not ok:
                    log.append(("refused", user, pw))
                    return
            else:
                if 0 not in methods:
                    w.write(b"\x05\xff")
                    return
                w.write(b"\x05\x00")
            ver, cmd, _, atyp = await r.readexactly(4)
            if atyp == 1:
                host = socket.inet_ntoa(await r.readexactly(4))
            elif atyp == 4:
                host = socket.inet_ntop(socket.AF_INET6,
                                        await r.readexactly(16))
            else:
                host = (await r.readexactly(
                    (await r.readexactly(1))[0])).decode()
            port = struct.unpack("!H", await r.readexactly(2))[0]
            log.append(("connect", atyp, host, port, user))
            if cmd != 1:
                w.write(b"\x05\x07\x00\x01\0\0\0\0\0\0")
                return
            try:
                r2, w2 = await asyncio.wait_for(
                    asyncio.open_connection(host, port), 5)
            except socket.gaierror:
                w.write(b"\x05\x04\x00\x01\0\0\0\0\0\0")
                return
            except OSError:
                w.write(b"\x05\x05\x00\x01\0\0\0\0\0\0")
                return
            a, p = w2.get_extra_info("sockname")[:2]
            w.write(b"\x05\x00\x00\x01" + socket.inet_aton(a) +
                    struct.pack("!H", p))
            await asyncio.gather(pipe(r, w2), pipe(r2, w))
        except asyncio.IncompleteReadError:
            pass
        finally:
            try:
                await w.drain()
            except Exception:
                pass
            w.close()

    async def go():
        return await asyncio.start_server(handle, "127.0.0.1", 0)
    srv = aio.call(go())
    aio.servers.append(srv)
    return srv.sockets[0].getsockname()[1], log


SOCKS_SCRIPT = r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("through the tunnel")
ctx = lws.Context(vhosts=[])
conn("ws", "ws://%s:%d/", E(), proxy="%s")
conn("http", "http://127.0.0.1:%d/hello", proxy="%s")
run(8, lambda: (seen("rx") and seen("completed")) or seen("error"))
'''


@pytest.mark.parametrize("auth", [None, ("alice", "s3cr:t@")])
def test_socks5_to_websockets_and_http(aio, http_server, tmp_path, auth):
    wsport, wslog = ws_server(aio)
    pport, plog = socks5_proxy(aio, auth)
    if auth:
        proxy = "socks5://alice:s3cr%%3At%%40@127.0.0.1:%d" % pport
    else:
        proxy = "socks5://127.0.0.1:%d" % pport
    ev = mpy(tmp_path, SOCKS_SCRIPT % ("localhost", wsport, proxy,
                                       http_server.server_port, proxy))
    assert not ev.of("error"), ev
    assert ev.of("rx", "ws")[0][5] == "through the tunnel"
    assert ev.one("completed", "http")[4] == "hello world\n"
    user = auth[0] if auth else None
    assert sorted(plog) == sorted([
        ("connect", 3, "localhost", wsport, user),  # a name: the proxy
        ("connect", 1, "127.0.0.1", http_server.server_port, user)])
    assert wslog.got == ["through the tunnel"]
    # the Host header names the target, not the proxy
    assert wslog.requests[0]["host"] == "localhost:%d" % wsport


def test_socks5_refusals(aio, tmp_path):
    pport, plog = socks5_proxy(aio, ("alice", "right"))
    open_port, _ = socks5_proxy(aio)
    closed = free_port()
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("badpw", "ws://127.0.0.1:1/", proxy="socks5://alice:wrong@127.0.0.1:%d")
conn("noauth", "http://127.0.0.1:1/", proxy="socks5://127.0.0.1:%d")
conn("target-refused", "http://127.0.0.1:%d/", proxy="socks5://127.0.0.1:%d")
conn("no-host", "ws://no-such-host.invalid/", proxy="socks5://127.0.0.1:%d")
conn("no-proxy", "http://127.0.0.1:1/", proxy="socks5://127.0.0.1:%d")
run(8, lambda: seen("error", 5))
''' % (pport, pport, closed, open_port, open_port, closed))
    assert "refused the username/password" in ev.one("error", "badpw")[2]
    assert "none of our methods" in ev.one("error", "noauth")[2]
    assert "connection refused" in ev.one("error", "target-refused")[2]
    # the name is resolved by the proxy, not by us
    assert "host unreachable" in ev.one("error", "no-host")[2]
    assert "refused" in ev.one("error", "no-proxy")[2]
    assert ("refused", "alice", "wrong") in plog


# == 8. Debian's libwebsockets test server ====================================


@pytest.fixture
def lws_test_server(tmp_path):
    exe = peer("libwebsockets-test-server")
    port = free_port()
    log = open(tmp_path / "lws-test-server.log", "wb")
    p = subprocess.Popen([exe, "--port=%d" % port, "-d", "3"], stdout=log,
                         stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        wait_port(port, p)
        yield port
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def test_libwebsockets_test_server(lws_test_server, tmp_path):
    ev = mpy(tmp_path, r'''
class M(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("c #123456 1 2 3 4;")
ctx = lws.Context(vhosts=[])
conn("dumb", "ws://127.0.0.1:%d/", subprotocols=["dumb-increment-protocol"])
conn("mirror", "ws://127.0.0.1:%d/", M(), subprotocols=["lws-mirror-protocol"])
run(8, lambda: seen("rx", 5, "dumb") and seen("rx", 1, "mirror"))
''' % (lws_test_server, lws_test_server))
    assert ev.one("established", "dumb")[2] == "dumb-increment-protocol"
    assert ev.one("established", "mirror")[2] == "lws-mirror-protocol"
    nums = [int(e[5]) for e in ev.of("rx", "dumb")]
    assert len(nums) >= 5
    assert all(b == a + 1 for a, b in zip(nums, nums[1:])), nums
    assert ev.of("rx", "mirror")[0][5] == "c #123456 1 2 3 4;"
    assert not ev.of("error")


# == 9. Our client against our own server =====================================


def test_against_our_own_server(server, tmp_path):
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("echo me")
        c.send_binary(bytes(range(256)) * 64)
ctx = lws.Context(vhosts=[])
conn("ws", "ws://127.0.0.1:%d/echo", E())
conn("dumb", "ws://127.0.0.1:%d/", subprotocols=["dumb-increment-protocol"])
conn("info", "http://127.0.0.1:%d/t/info?x=1", headers={"X-Hello": "world"})
conn("body", "http://127.0.0.1:%d/t/body", method="POST", body=b"abc" * 5000)
run(8, lambda: seen("rx", 2, "ws") and seen("rx", 3, "dumb")
    and seen("completed", 2))
''' % ((server.port,) * 4))
    rx = ev.of("rx", "ws")
    assert rx[0][5] == "echo me"
    assert rx[1][2:5] == ["binary", 16384, sha(bytes(range(256)) * 64)]
    assert ev.one("established", "dumb")[2] == "dumb-increment-protocol"
    nums = [int(e[5]) for e in ev.of("rx", "dumb")]
    assert all(b == a + 1 for a, b in zip(nums, nums[1:])), nums
    info = json.loads(ev.one("completed", "info")[4])
    assert info["method"] == "GET" and info["path"] == "/t/info"
    assert info["query"] == "x=1"
    assert info["headers"]["x-hello"] == "world"
    assert info["headers"]["host"] == "127.0.0.1:%d" % server.port
    body = json.loads(ev.one("completed", "body")[4])
    assert body == {"length": 15000, "sha256": sha(b"abc" * 5000)}
    assert not ev.of("error")


# == more edges ===============================================================


def test_http_interim_100_continue_is_skipped(http_server, tmp_path):
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
conn("a", "%s", method="POST", body=b"x" * 1000,
     headers=[("Expect", "100-continue")])
run(5, lambda: seen("completed") or seen("error"))
run(0.2, lambda: False)
conn("b", "%s")
run(5, lambda: seen("completed", 2) or seen("error"))
''' % (hurl(http_server, "/sha"), hurl(http_server, "/hello")))
    assert [e[2] for e in ev.of("response")] == [200, 200]
    got = json.loads(ev.one("completed", "a")[4])
    assert got["len"] == 1000 and got["sha256"] == sha(b"x" * 1000)
    assert ev.one("completed", "b")[4] == "hello world\n"
    assert not ev.of("error")


def test_failed_heads_do_not_grow_the_header_pool(raw_server, tmp_path):
    def partial(s, srv):
        read_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nX-Half: a hea")
        time.sleep(0.1)
        s.close()
    srv = raw_server(partial)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[])
for i in range(6):
    conn(i, "http://127.0.0.1:%d/")
run(5, lambda: seen("error", 6))
out("pool", len(ctx._ah_free), ctx._ah_count, ctx.max_http_header_pool)
''' % srv.port)
    assert len(ev.of("error")) == 6
    assert all("hung up" in e[2] for e in ev.of("error"))
    _, free, count, mx = ev.of("pool")[0]
    assert free <= count <= mx


def test_ws_frame_right_behind_the_101(raw_server, tmp_path):
    def handler(s, srv):
        line, h, _ = read_head(s)
        s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                   % ws_accept_key(h["sec-websocket-key"])).encode()
                  + b"\x81\x05first" + b"\x82\x03\x01\x02\x03")
        srv.log.append(read_client_frame(s)[1])
        s.sendall(b"\x88\x02\x03\xe8")
    srv = raw_server(handler)
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_message(self, c, kind, m):
        if kind == "binary":
            c.close(1000)
ctx = lws.Context(vhosts=[])
conn("a", "ws://127.0.0.1:%d/", E())
run(5, lambda: seen("closed"))
''' % srv.port)
    assert ev.kinds("a") == ["established", "rx", "rx", "closed"]
    rx = ev.of("rx", "a")
    assert rx[0][5] == "first" and rx[1][2:4] == ["binary", 3]
    assert srv.log == [8]


def test_socks5_raw_banner_with_the_reply(raw_server, tmp_path):
    """A server that speaks first (a banner): the proxy may pass it on in
    the same read as its CONNECT reply; it belongs to the raw stream."""
    def banner(s, srv):
        s.sendall(b"220 hello from the server\r\n")
        srv.log.append(s.recv(100))

    def proxy(s, srv):
        s.recv(3)
        s.sendall(b"\x05\x00")
        req = s.recv(100)
        port = struct.unpack("!H", req[-2:])[0]
        up = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.2)  # the banner is there: one write with the reply
        s.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00" + up.recv(100))
        up.sendall(s.recv(100))
        time.sleep(0.3)
        up.close()
    b = raw_server(banner)
    p = raw_server(proxy)
    ev = mpy(tmp_path, r'''
class R(Cli):
    def on_raw_rx(self, c, data):
        Cli.on_raw_rx(self, c, data)
        c.send(b"QUIT")
ctx = lws.Context(vhosts=[])
conn("r", "raw://127.0.0.1:%d", R(), proxy="socks5://127.0.0.1:%d")
run(5, lambda: seen("raw_rx") or seen("error"))
run(0.5, lambda: False)
''' % (b.port, p.port))
    assert not ev.of("error")
    assert ev.of("raw_rx", "r")[0][2] == "220 hello from the server\r\n"
    assert b.log == [b"QUIT"]
