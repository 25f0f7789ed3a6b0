"""Bad input gets a clear status and the server keeps serving others."""
import socket
import time

import pytest

from conftest import cpu_seconds, pool_whole, recv_all

BAD = [
    # (name, request bytes, expected status)
    ("garbage line", b"HELLO\r\n\r\n", 400),
    ("two spaces", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no version", b"GET /\r\nHost: x\r\n\r\n", 400),
    ("bad version text", b"GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400),
    ("lower-case version", b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/3.0", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ("unknown method", b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("lower-case method", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("method not a token", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("relative target", b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("control byte in target", b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no Host in 1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("header without colon",
     b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400),
    ("space before colon",
     b"GET / HTTP/1.1\r\nHost: x\r\nFoo : bar\r\n\r\n", 400),
    ("tab before colon",
     b"GET / HTTP/1.1\r\nHost: x\r\nFoo\t: bar\r\n\r\n", 400),
    ("empty header name", b"GET / HTTP/1.1\r\nHost: x\r\n: bar\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\r\n  b\r\n\r\n", 400),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\x00b\r\n\r\n", 400),
    ("control in value", b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\x07b\r\n\r\n",
     400),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\x7fb\r\n\r\n", 400),
    ("bare CR in value", b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\rb\r\n\r\n",
     400),
    ("CL and TE", b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two different CLs", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("CL list differs", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("negative CL", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: -1\r\n\r\n", 400),
    ("CL with plus", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: +5\r\n\r\nhello", 400),
    ("unknown TE", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("chunked not last", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("bad chunk size", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk longer than size", b"POST /t/body HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", 400),
    ("TE in HTTP/1.0", b"POST /t/body HTTP/1.0\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
]


def status_of(data):
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12])


@pytest.mark.parametrize("name,req,status", BAD, ids=[b[0] for b in BAD])
def test_bad_request(server, name, req, status):
    data = server.raw(req)
    assert status_of(data) == status
    head = data.partition(b"\r\n\r\n")[0]
    assert b"Connection: close" in head
    assert server.alive()


# The test server's / is firmware/www; its parent holds test_server.py
# and lws/. (path, status, reason on the error page): files.safe_relpath.
OUT_OF_WWW = [
    ("/../test_server.py", 403, b"path outside the mount"),
    ("/%2e%2e/test_server.py", 403, b"path outside the mount"),
    ("/%2E%2e/lws/files.py", 403, b"path outside the mount"),
    ("/..%2ftest_server.py", 400, b"encoded slash"),
    ("/..%5ctest_server.py", 400, b"encoded slash"),
    ("/..\\test_server.py", 400, b"encoded slash"),
    ("/%00/../test_server.py", 400, b"NUL in path"),
    ("/%g0/test_server.py", 400, b"bad escape"),
]


@pytest.mark.parametrize("path,status,reason", OUT_OF_WWW,
                         ids=[o[0] for o in OUT_OF_WWW])
def test_path_out_of_the_docroot(server, path, status, reason):
    data = server.raw(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert status_of(data) == status, data[:300]
    body = data.partition(b"\r\n\r\n")[2]
    assert body.startswith(b"<html><body><h1>%d " % status), body
    assert reason in body, body
    assert b"def main(" not in data and b"safe_relpath" not in data
    assert server.alive()


def test_header_too_large_431(server):
    req = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n"
    assert status_of(server.raw(req)) == 431
    assert server.alive()


def test_many_headers_too_large_431(server):
    req = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(100)) + b"\r\n"
    assert status_of(server.raw(req)) == 431
    assert server.alive()


def test_request_line_too_long_414(server):
    req = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(server.raw(req)) == 414
    assert server.alive()


def test_just_under_the_limit_is_served(server):
    pad = 4096 - len(b"GET /t/info HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n")
    req = b"GET /t/info HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * pad + b"\r\n\r\n"
    assert len(req) == 4096
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(req)
        assert s.recv(12) == b"HTTP/1.1 200"


def test_random_bytes(server):
    import os
    for i in range(5):
        data = server.raw(os.urandom(3000) + b"\r\n\r\n")
        assert data == b"" or status_of(data) in (400, 414, 431, 501, 505)
    assert server.alive()


def test_client_closes_mid_head(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHo")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    assert server.alive()


def test_slowloris_cut_off_others_served(server):
    """server fixture: --timeout 3. A client trickling its head is cut off
    within about that time, while others are served meanwhile."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    t0 = time.monotonic()
    closed_at = None
    try:
        for ch in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100:
            try:
                s.send(bytes([ch]))
            except OSError:
                closed_at = time.monotonic()
                break
            s.settimeout(0.25)
            try:
                d = s.recv(100)
                if d is not None:
                    closed_at = time.monotonic()
                    assert d == b"" or d.startswith(b"HTTP/1.1 408")
                    break
            except socket.timeout:
                pass
            assert server.alive()
            if time.monotonic() - t0 > 8:
                break
    finally:
        s.close()
    assert closed_at is not None, "slow client never cut off"
    assert 2.5 <= closed_at - t0 <= 5


def test_idle_connection_times_out(server_factory):
    srv = server_factory(args=["--timeout", "1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        t0 = time.monotonic()
        assert recv_all(s) == b""
        assert 0.8 <= time.monotonic() - t0 <= 3
    assert srv.alive()


def test_body_never_arrives_times_out(server_factory):
    srv = server_factory(args=["--timeout", "1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        t0 = time.monotonic()
        recv_all(s)
        assert time.monotonic() - t0 <= 3
    assert srv.alive()


def test_header_pool_full_new_connections_wait(server_factory):
    """max_http_header_pool=1: a client holding the only header buffer with
    a half-sent head makes others wait, not fail; they are served after."""
    srv = server_factory(args=["--pool", "1", "--timeout", "5"])
    hog = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    hog.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    waiter = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    waiter.sendall(b"GET /t/info?w=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    waiter.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiter.recv(100)  # still waiting for the buffer
    hog.sendall(b"Connection: close\r\n\r\n")
    assert recv_all(hog).startswith(b"HTTP/1.1 200")
    waiter.settimeout(5)
    data = recv_all(waiter)
    assert data.startswith(b"HTTP/1.1 200") and b"w=1" in data
    hog.close()
    waiter.close()
    # both gave the one buffer back: the request asking holds it now
    assert pool_whole(srv) == {"buffers": 1, "free": 0, "held": 1,
                               "waiting": 0}


def test_header_pool_whole_after_load(server_factory):
    """max_http_header_pool=3 under every way a head can end: answered
    (and kept alive), refused (400), cut off (408), abandoned half way
    (FIN and RST), waiting in the queue and abandoned there, a body, a
    WebSocket upgrade. Afterwards every buffer is back and nobody waits."""
    import struct
    from wsraw import frame, handshake, read_frame
    srv = server_factory(args=["--pool", "3", "--timeout", "2"])
    port = srv.port

    def conn():
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    # three hold every buffer with half a head: the others queue
    hogs = [conn() for _ in range(3)]
    for h in hogs:
        h.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    quitter = conn()  # queued, then gone
    quitter.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n")
    rst = conn()      # queued, then reset
    rst.sendall(b"GET /t/info HTTP/1.1\r\n")
    kept = [conn() for _ in range(4)]  # queued, answered, kept alive
    for k in kept:
        k.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n")
    bad = conn()
    bad.sendall(b"GET / HTTP/1.1\r\nFoo : bar\r\n\r\n")
    time.sleep(0.2)
    quitter.close()
    rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   struct.pack("ii", 1, 0))
    rst.close()
    hogs[0].close()                  # one hog hangs up half way
    hogs[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack("ii", 1, 0))
    hogs[1].close()                  # one resets
    assert recv_all(hogs[2]).startswith(b"HTTP/1.1 408")  # one is cut off
    hogs[2].close()
    assert status_of(recv_all(bad)) == 400
    bad.close()
    for k in kept:
        assert k.recv(12) == b"HTTP/1.1 200"
    # a body in two pieces, and a WebSocket upgrade, on kept connections
    body = kept[0]
    body.sendall(b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
                 b"\r\n\r\nhello")
    time.sleep(0.1)
    body.sendall(b"world")
    ws, _ = handshake(port, "/echo")
    ws.sendall(frame(1, b"still here"))
    assert read_frame(ws)[2] == b"still here"
    ws.sendall(frame(8, struct.pack("!H", 1000)))
    assert read_frame(ws)[1] == 8
    ws.close()
    p = pool_whole(srv)
    assert p["buffers"] <= 3, p
    assert p["free"] + p["held"] == p["buffers"] and p["waiting"] == 0, p
    for k in kept:
        k.close()
    p = pool_whole(srv)
    assert p["free"] + p["held"] == p["buffers"] and p["waiting"] == 0, p
    assert srv.alive()


def test_reset_while_waiting_for_a_header_buffer(server_factory):
    """A connection queued for a header buffer whose peer resets it is
    dropped: the loop does not spin on its POLLHUP meanwhile (the server
    stays idle), and the buffer goes to the next one."""
    import struct
    srv = server_factory(args=["--pool", "1", "--timeout", "10"])
    hog = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    hog.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    w = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    w.sendall(b"GET /t/info HTTP/1.1\r\n")  # queued: the hog has the buffer
    time.sleep(0.3)
    w.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.close()
    time.sleep(0.2)
    t0 = cpu_seconds(srv.proc)
    time.sleep(2)
    used = cpu_seconds(srv.proc) - t0
    hog.sendall(b"Connection: close\r\n\r\n")
    assert recv_all(hog).startswith(b"HTTP/1.1 200")
    hog.close()
    assert used < 0.5, "the server used %.2f s of CPU in 2 s, idle" % used
    assert pool_whole(srv) == {"buffers": 1, "free": 0, "held": 1,
                               "waiting": 0}


def read_response(s):
    """(status, head, body) of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        assert d, "closed before a response: %r" % data
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < n:
        d = s.recv(65536)
        assert d, "closed in the body"
        body += d
    assert len(body) == n, "more than the response came"
    return int(head[9:12]), head, body


def test_post_to_other_paths_keeps_the_connection(server):
    """A POST with a body to the test plugin other than /t/body: /t/info
    answers the request, any other path 404 once the body is read (even
    one that comes after the head); the same connection serves the next
    request."""
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=5) as s:
        for path, status, later in (("/t/info", 200, False),
                                    ("/t/nothing", 404, False),
                                    ("/t/nothing", 404, True),
                                    ("/t/nothing/deeper", 404, True)):
            head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3000"
                    b"\r\n\r\n" % path.encode())
            if later:  # the body comes after the server has the head
                s.sendall(head)
                time.sleep(0.2)
                s.sendall(b"x" * 3000)
            else:
                s.sendall(head + b"x" * 3000)
            st, h, body = read_response(s)
            assert st == status, (path, h, body)
            assert b"connection: close" not in h.lower()
            if status == 200:
                assert b'"method": "POST"' in body
            s.sendall(b"GET /t/info?after=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                      % path.encode())
            st, _, body = read_response(s)
            assert st == 200 and b"after=" in body
        # chunked too, and no body at all
        s.sendall(b"POST /t/nothing HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        time.sleep(0.2)
        s.sendall(b"3\r\ndef\r\n0\r\n\r\n")
        assert read_response(s)[0] == 404
        s.sendall(b"POST /t/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 404
        s.sendall(b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
    c = server.conn()  # and a real client, reusing its connection
    try:
        c.request("POST", "/t/nothing", body=b"y" * 5000)
        r = c.getresponse()
        r.read()
        assert r.status == 404
        sock = c.sock
        c.request("GET", "/t/info")
        r = c.getresponse()
        r.read()
        assert r.status == 200 and c.sock is sock
    finally:
        c.close()
    assert "Traceback" not in server.log(), server.log()
