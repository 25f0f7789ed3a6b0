"""Holes an adversarial run found, each reproduced: malformed heads that
tracebacked or were served, and clients that could lock others out."""
import socket
import time

import pytest

from conftest import recv_all


def status_of(data):
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12])


@pytest.mark.parametrize("req", [
    b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",          # not UTF-8, not a token
    b"\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://host/ HTTP/1.1\r\n\r\n",             # RFC 7230 5.4
    b"GET http://host/t/info HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",           # bare CR first
    b"\r\n\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["non-utf8-method", "utf8-method", "absolute-no-host",
        "absolute-no-host-info", "bare-cr", "crlf-then-bare-cr"])
def test_malformed_head_is_400(server, req):
    data = server.raw(req)
    assert status_of(data) == 400
    assert b"Connection: close" in data.partition(b"\r\n\r\n")[0]
    assert "Traceback" not in server.log()
    assert server.alive()


def test_lf_only_empty_lines_still_ignored(server):
    data = server.raw(b"\n\r\nGET /t/info HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
    assert status_of(data) == 200


# -- a handful of clients must not lock everyone out --------------------------


def served_within(port, secs, path="/t/info"):
    """Seconds a new client waits for a complete answer (None: not served)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=secs) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n" % path.encode())
            data = recv_all(s)
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return time.monotonic() - t0


def eof_within(s, secs):
    """True if the peer closes s within secs (whatever it sent before)."""
    s.settimeout(secs)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        return False
    except OSError:
        pass  # reset
    return True


def test_silent_connection_flood(server_factory):
    """300 connections that send nothing (max_connections is 64): the
    longest waiter is cut for each new one, so a real client gets in."""
    srv = server_factory()
    idle = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            idle.append(s)
        time.sleep(0.5)
        for _ in range(3):
            took = served_within(srv.port, 10)
            assert took is not None and took < 2, took
    finally:
        for s in idle:
            s.close()
    assert srv.alive()


def test_silent_connection_has_a_short_timeout(server_factory):
    srv = server_factory(args=["-o", "head_timeout=1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        t0 = time.monotonic()
        assert recv_all(s) == b""
        assert 0.7 <= time.monotonic() - t0 <= 2.5
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")  # begun, never finished: a 408
        t0 = time.monotonic()
        assert recv_all(s).startswith(b"HTTP/1.1 408")
        assert 0.7 <= time.monotonic() - t0 <= 2.5


def test_default_head_timeout_is_short(server_factory):
    srv = server_factory()  # timeout_secs 20, head_timeout 5
    with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
        t0 = time.monotonic()
        assert recv_all(s) == b""
        assert 4 <= time.monotonic() - t0 <= 7


def test_silent_websockets_are_cut(server_factory):
    """max_connections silent WebSockets (they never answer a PING) are
    cut after ws_idle_timeout and the PING's wait; one that answers stays."""
    import asyncio
    import websockets
    from conftest import arun
    from wsraw import handshake
    srv = server_factory(args=["-d", "15", "-o", "max_connections=8",
                               "-o", "ws_idle_timeout=1",
                               "-o", "ws_close_timeout=1"])

    async def alive_client():
        async with websockets.connect(srv.ws_url("/echo"),
                                      ping_interval=None) as ws:
            socks = [handshake(srv.port, "/echo")[0] for _ in range(7)]
            try:
                # full: nobody else gets in (every place is an open socket)
                assert served_within(srv.port, 0.5) is None
                await asyncio.sleep(4)  # websockets answers the PINGs
                await ws.send("still here")
                assert await ws.recv() == "still here"
                for s in socks:  # the silent ones were hung up on
                    assert eof_within(s, 1)
            finally:
                for s in socks:
                    s.close()
    arun(alive_client(), 20)
    took = served_within(srv.port, 5)
    assert took is not None and took < 1
    assert "no pong" in srv.log()


def test_reader_that_stopped_is_dropped(server_factory):
    """A client that reads its response at 1 byte/s is cut off once a
    send has made no progress for send_timeout."""
    srv = server_factory(args=["-o", "send_timeout=2"])
    total = 20000 * 4096
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    s.settimeout(10)
    s.sendall(b"GET /t/stream?n=20000&size=4096 HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(5):
        s.recv(1)
        time.sleep(1)
    got = 0
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    assert got < total  # cut off: the rest never came
    assert srv.alive()


# -- TLS: half-sent hellos hold no handshake slot ------------------------------


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory):
    from lwstool.certs import make_cert
    from test_tls import start_tls_server
    d = tmp_path_factory.mktemp("tlsh")
    cert, key, _ = make_cert(d / "good")
    srv = start_tls_server(d, cert, key, timeout="20")
    srv.cert = cert
    yield srv
    srv.stop()


def test_half_sent_hellos_hold_no_handshake_slot(tls_srv):
    """max_tls_handshakes is 2: three clients that send half a
    ClientHello and stop must not stall anyone's handshake."""
    from test_tls import client_hello, https_get
    hello = client_hello()
    halves = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", tls_srv.tls_port))
        s.sendall(hello[:len(hello) // 2])
        halves.append(s)
    time.sleep(0.3)
    try:
        for _ in range(3):
            t0 = time.monotonic()
            st, _, _ = https_get(tls_srv.tls_port, "/t/info", tls_srv.cert,
                                 timeout=5)
            assert st == 200 and time.monotonic() - t0 < 1.5
    finally:
        for s in halves:
            s.close()


@pytest.mark.parametrize("first", [
    b"\x16" + bytes(range(200, 250)),         # 0x16, then no TLS version
    b"\x16\x03\x01\x00\x30\x02" + b"\x00" * 48,  # a handshake, no hello
    b"\x00\x01\x02\x03",                       # neither TLS nor HTTP
    b"\xff" * 64,
], ids=["bad-version", "not-client-hello", "binary", "ff"])
def test_what_cannot_be_a_hello_is_closed_at_once(tls_srv, first):
    from test_tls import closed_within
    with socket.create_connection(("127.0.0.1", tls_srv.tls_port)) as s:
        s.sendall(first)
        took = closed_within(s, 3)
        assert took is not None and took < 0.8, took
    assert tls_srv.alive()


def test_stalled_handshake_cut_before_timeout_secs(tls_srv):
    """A whole ClientHello, then silence: cut after tls_handshake_timeout
    (5 s), well before timeout_secs (20 s)."""
    from test_tls import client_hello, closed_within
    with socket.create_connection(("127.0.0.1", tls_srv.tls_port)) as s:
        s.sendall(client_hello())
        took = closed_within(s, 10)
        assert took is not None and 3.5 < took < 7, took


# -- a heap that runs low ------------------------------------------------------


HEAP = "160K"  # what the README states for make run (64-bit port, .mpy)


@pytest.fixture
def mpy_server(tmp_path):
    """The test server as make run starts it: compiled to .mpy, with its
    TLS port, under the README's heap figure."""
    from lwstool import mpy
    from lwstool.certs import ensure_cert
    from conftest import free_port, start, wait_port
    mpy.build()
    cert, key = ensure_cert(tmp_path / "tls")
    port, tls_port = free_port(), free_port()
    srv = start(tmp_path, script="-m test_server", heap=HEAP, path=mpy.BUILD,
                port=port, args=["-p", port, "--tls-port", tls_port,
                                 "--cert", cert, "--key", key,
                                 "-o", "max_connections=250"])
    wait_port(tls_port, srv.proc)
    srv.tls_port = tls_port
    yield srv
    srv.stop()


def test_low_heap_refuses_upgrades_serves_gets_recovers(mpy_server):
    import http.client
    from wsraw import handshake, read_frame
    srv = mpy_server
    keep = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    keep.request("GET", "/")
    assert keep.getresponse().read().startswith(b"<!doctype html>")
    opened, refused = [], 0
    while len(opened) < 240 and refused < 3:
        s, head = handshake(srv.port, "/", "dumb-increment-protocol")
        if head.startswith(b"HTTP/1.1 101"):
            opened.append(s)
            continue
        assert head.startswith(b"HTTP/1.1 503"), head
        refused += 1
        s.close()
    try:
        assert refused == 3, "the heap never ran low"
        # the README: some 10 at make run's 64 connections; a table
        # presized for 250 takes some of that heap here
        assert len(opened) >= 4, len(opened)
        # the WebSockets already open go on being served
        s = opened[0]
        assert read_frame(s)[1] == 1
        # plain GETs still get through, kept-alive and new
        keep.request("GET", "/")
        assert keep.getresponse().read().startswith(b"<!doctype html>")
        st, _, body = srv.get("/")
        assert st == 200 and body.startswith(b"<!doctype html>")
    finally:
        for s in opened:
            s.close()
        keep.close()
    time.sleep(1.5)
    # load gone: upgrades are accepted again
    s, head = handshake(srv.port, "/", "dumb-increment-protocol")
    assert head.startswith(b"HTTP/1.1 101")
    assert read_frame(s)[1] == 1
    s.close()
    assert srv.proc.poll() is None
    assert "Traceback" not in srv.log()


def test_answer_before_the_body_says_close(server):
    """A response sent while the request body has not all come: the
    connection will not be read further, and Connection: close says so,
    so a client does not send its next request into a closing socket."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /t/info HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" in head.partition(b"\r\n\r\n")[0]
    # the body in the same segment: read right after, keep-alive holds
    data = server.raw(b"POST /t/info HTTP/1.1\r\nHost: x\r\nContent-Length: 5"
                      b"\r\n\r\nhelloGET /t/info HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 200") == 2
    assert server.alive()


def test_idle_tls_connections_hold_no_handshake_slot(tls_srv):
    """Browsers open spare TLS connections ahead of need: handshake done,
    no request yet. As many as max_tls_handshakes of them must not keep
    the next one waiting, nor hold a header buffer."""
    import json
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    spare = []
    try:
        # (timeouts well below the server's timeout_secs of 20, which a
        # held slot would make them wait for, and far above a handshake
        # on a loaded machine)
        for _ in range(3):  # more than max_tls_handshakes (2)
            s = socket.create_connection(("127.0.0.1", tls_srv.tls_port),
                                         timeout=10)
            # a context each: full handshakes (resumed ones: the xfail
            # below)
            c = ssl.create_default_context()
            c.check_hostname = False
            c.verify_mode = ssl.CERT_NONE
            spare.append(c.wrap_socket(s, server_hostname="localhost"))
        time.sleep(0.2)
        s = socket.create_connection(("127.0.0.1", tls_srv.tls_port),
                                     timeout=10)
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"GET /t/pool HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"}" not in data:
                data += t.recv(4096)
        assert data.startswith(b"HTTP/1.1 200")
        pool = json.loads(data.partition(b"\r\n\r\n")[2])
        # the request reading it holds one; the spare ones none
        assert pool["free"] + pool["held"] == pool["buffers"], pool
        assert pool["waiting"] == 0, pool
    finally:
        for s in spare:
            s.close()


@pytest.mark.xfail(reason="a resumed handshake can end within the read of "
                   "the server's flight, unseen: its slot is then held "
                   "until tls_handshake_timeout (this port's tls does not "
                   "tell when a handshake is over)", strict=False)
def test_resumed_spare_connections_hold_no_handshake_slot(tls_srv):
    import ssl
    ctx = ssl.create_default_context()  # one context: sessions resumed
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(6):
        spare = []
        t0 = time.monotonic()
        try:
            for _ in range(3):
                s = socket.create_connection(
                    ("127.0.0.1", tls_srv.tls_port), timeout=10)
                spare.append(ctx.wrap_socket(s, server_hostname="localhost"))
            assert time.monotonic() - t0 < 2
        finally:
            for s in spare:
                s.close()
        time.sleep(0.3)
