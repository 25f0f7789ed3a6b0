"""Reverse-proxy mounts: the firmware (unix port, a small heap) in front of
a CPython http.server origin in a thread, with a dead origin (a port no
one listens on), a slow one, curl through the proxy, a client that goes
away mid-answer, and the '>' redirect spelling."""
import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import PeerHandler, free_port, peer, recv_all, run_mpy, start

pytestmark = pytest.mark.timeout(60)

APP = """
import sys
import lws

class Page(lws.Protocol):
    name = "page"

    def on_http(self, conn, req):
        conn.respond(200, body="local page\\n", content_type="text/plain")

port, origin, dead = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mounts = [
    lws.Mount("/o", "http://127.0.0.1:%d/base" % origin, proxy_timeout=1.5),
    lws.Mount("/dead", "http://127.0.0.1:%d/" % dead),
    lws.Mount("/r", ">https://example.com/"),
    lws.Mount("/", "callback://page"),
]
ctx = lws.Context([lws.Vhost("proxy", port, mounts, [Page()])])
ctx.run()
"""

BIG = os.urandom(1024 * 1024 + 7)
STREAM_BROKEN = threading.Event()
SEEN = {}  # what the origin saw last: method, path, headers


def read_chunked(rfile):
    out = bytearray()
    while True:
        n = int(rfile.readline().split(b";")[0], 16)
        if n == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(n)
        rfile.readline()


class Origin(PeerHandler):
    def _route(self):
        SEEN.update(method=self.command, path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()})
        p = self.path
        if not p.startswith("/base/"):
            return self._send(400, b"not under /base/: " + p.encode())
        p = p[5:]
        if p.startswith("/echo"):
            body = json.dumps({"method": self.command, "path": self.path,
                               "headers": SEEN["headers"]}).encode()
            return self._send(200, body, "application/json")
        if p == "/upload":
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = read_chunked(self.rfile)
                framing = "chunked"
            else:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                framing = "length"
            body = json.dumps({"sha": hashlib.sha256(data).hexdigest(),
                               "n": len(data), "framing": framing}).encode()
            return self._send(200, body, "application/json")
        if p == "/big":
            return self._send(200, BIG, "application/octet-stream")
        if p == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                piece = ("piece %d;" % i).encode() * (i * 300 + 1)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            return
        if p == "/hop":
            return self._send(200, b"hop", extra=[
                ("Connection", "X-Secret"), ("X-Secret", "1"),
                ("Keep-Alive", "timeout=9"), ("Proxy-Thing", "1"),
                ("Trailer", "X-T"), ("X-Kept", "yes"),
                ("Set-Cookie", "a=1; Expires=Wed, 09 Jun 2027 10:18:14 GMT"),
                ("Set-Cookie", "b=2; Path=/")])
        if p == "/slow":
            time.sleep(4)
            return self._send(200, b"too late")
        if p == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for i in range(200):  # 10 s unless the proxy goes away
                    piece = b"x" * 1000
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                STREAM_BROKEN.set()
            return
        return self._send(404, b"no such thing")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _route


@pytest.fixture(scope="module")
def origin():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def proxy(origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("proxy")
    script = d / "app.py"
    script.write_text(APP)
    # a 256K heap: a 1 MB body in either direction can only be streamed
    s = start(d, script=script, heap="256K",
              args=["{port}", origin, free_port()])
    yield s
    s.stop()


def echo(proxy, path="/o/echo", headers=None, method="GET"):
    st, h, body = proxy.get(path, headers=headers, method=method)
    assert st == 200, (st, body, proxy.log())
    return json.loads(body)


def test_get_through_the_proxy_keeps_the_connection(proxy, origin):
    c = proxy.conn()
    try:
        for q in ("a=1", "b=2"):  # twice on one kept-alive connection
            c.request("GET", "/o/echo/x?" + q)
            r = c.getresponse()
            body = json.loads(r.read())
            assert r.status == 200
            assert body["method"] == "GET"
            assert body["path"] == "/base/echo/x?" + q
            assert body["headers"]["host"] == "127.0.0.1:%d" % origin
            assert r.getheader("Content-Type") == "application/json"
    finally:
        c.close()
    assert proxy.get("/")[2] == b"local page\n"


def test_head(proxy):
    st, h, body = proxy.get("/o/echo", method="HEAD")
    assert st == 200 and body == b""
    assert SEEN["method"] == "HEAD"
    st2, h2, body2 = proxy.get("/o/echo")
    # the origin's length for HEAD ('"method": "HEAD"': one more byte)
    assert int(h["Content-Length"]) == len(body2) + 1


def test_request_headers_forwarded_without_hop_by_hop(proxy):
    e = echo(proxy, headers={
        "X-Custom": "kept", "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1", "Keep-Alive": "300", "TE": "trailers",
        "Proxy-Authorization": "Basic eDp5", "Upgrade": "h2c",
        "X-Forwarded-For": "10.9.8.7"})
    h = e["headers"]
    assert h["x-custom"] == "kept"
    for k in ("x-drop-me", "keep-alive", "te", "proxy-authorization",
              "upgrade"):
        assert k not in h, k
    assert h["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert h["x-forwarded-host"] == "127.0.0.1:%d" % proxy.port
    assert h["x-forwarded-proto"] == "http"
    e = echo(proxy)
    assert e["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_response_headers_without_hop_by_hop(proxy):
    st, h, body = proxy.get("/o/hop")
    assert st == 200 and body == b"hop"
    h = {k.lower(): v for k, v in h.items()}
    assert h["x-kept"] == "yes"
    for k in ("x-secret", "keep-alive", "proxy-thing", "trailer"):
        assert k not in h, k
    assert h["server"] == "microlws"
    # repeated Set-Cookie fields stay apart (their dates hold commas)
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    c.request("GET", "/o/hop")
    r = c.getresponse()
    r.read()
    c.close()
    assert r.msg.get_all("Set-Cookie") == [
        "a=1; Expires=Wed, 09 Jun 2027 10:18:14 GMT", "b=2; Path=/"]


def test_post_1mb_streamed(proxy):
    st, h, body = proxy.get("/o/upload", method="POST", body=BIG,
                            headers={"Content-Type": "application/x-bin"})
    assert st == 200, proxy.log()
    r = json.loads(body)
    assert r == {"sha": hashlib.sha256(BIG).hexdigest(), "n": len(BIG),
                 "framing": "length"}
    assert SEEN["headers"]["content-type"] == "application/x-bin"


def test_chunked_post_with_curl(proxy, tmp_path):
    f = tmp_path / "up.bin"
    f.write_bytes(BIG)
    r = subprocess.run(
        [peer("curl"), "-s", "--max-time", "20", "-H",
         "Transfer-Encoding: chunked", "--data-binary", "@" + str(f),
         proxy.url + "/o/upload"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "sha": hashlib.sha256(BIG).hexdigest(), "n": len(BIG),
        "framing": "chunked"}


def test_1mb_download_with_curl(proxy, tmp_path):
    out = tmp_path / "big.bin"
    r = subprocess.run(
        [peer("curl"), "-s", "--max-time", "20", "-o", str(out), "-w",
         "%{http_code} %{size_download}", proxy.url + "/o/big"],
        capture_output=True, timeout=30)
    assert r.stdout.decode() == "200 %d" % len(BIG), proxy.log()
    assert hashlib.sha256(out.read_bytes()).digest() == \
        hashlib.sha256(BIG).digest()


def test_chunked_origin_response(proxy):
    c = proxy.conn()
    try:
        c.request("GET", "/o/chunked")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200
        assert r.getheader("Transfer-Encoding") == "chunked"
    finally:
        c.close()
    want = b"".join(("piece %d;" % i).encode() * (i * 300 + 1)
                    for i in range(5))
    assert body == want


def test_origin_404_passed_through(proxy):
    st, h, body = proxy.get("/o/missing")
    assert st == 404 and body == b"no such thing"
    assert h["Content-Type"] == "text/plain"


def test_dead_origin_is_502_quickly(proxy):
    t = time.monotonic()
    st, _, body = proxy.get("/dead/x")
    assert st == 502, body
    assert time.monotonic() - t < 2
    proxy.alive()


def test_slow_origin_is_504_in_time(proxy):
    t = time.monotonic()
    st, _, body = proxy.get("/o/slow")
    dt = time.monotonic() - t
    assert st == 504, body
    assert 1.2 < dt < 3.5, dt  # proxy_timeout=1.5, the origin takes 4
    proxy.alive()


def test_client_gone_closes_the_origin_connection(proxy):
    STREAM_BROKEN.clear()
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    s.sendall(b"GET /o/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while len(got) < 3000:
        got += s.recv(4096)
    assert got.startswith(b"HTTP/1.1 200")
    s.close()
    # the origin would write for 10 s more: it must see the proxy go
    assert STREAM_BROKEN.wait(5), proxy.log()
    proxy.alive()


def test_redirect_spelling(proxy):
    st, h, _ = proxy.get("/r/some/page")
    assert st == 301 and h["Location"] == "https://example.com/some/page"


def test_origin_spellings():
    r = run_mpy(
        "import lws\n"
        "for o in ('https://example.com/', '>ftp://x/', 'http://:80/'):\n"
        "    try:\n"
        "        lws.Mount('/x', o)\n"
        "        print('accepted', o)\n"
        "    except ValueError as e:\n"
        "        print('refused', o)\n"
        "m = lws.Mount('/x', '>http://example.com/')\n"
        "print(m.kind, m.target)\n")
    assert r.stdout.split("\n")[:4] == [
        "refused https://example.com/", "refused >ftp://x/",
        "refused http://:80/", "redirect http://example.com/"], r.stderr
