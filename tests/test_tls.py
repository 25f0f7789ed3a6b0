"""TLS against real peers: the test server on https/wss (curl, CPython's
http.client and websockets, openssl s_client), key formats, STS, redirects
of plain HTTP, handshakes inside the one loop and their limit, our client
against CPython TLS servers (verification, insecure mode), and TLS-PSK.

Every certificate is made here (lwstool.certs), none is committed; every
peer is on 127.0.0.1.
"""
import asyncio
import http.client
import json
import os
import random
import select
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import websockets
from websockets.asyncio.server import serve

from conftest import free_port, peer, recv_all, run_mpy, start, wait_port
from lwstool import unixport
from lwstool.certs import make_cert

pytestmark = pytest.mark.timeout(20)

# what `openssl ecparam -name prime256v1 -genkey` writes before the key
EC_PARAMS_P256 = (b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                  b"-----END EC PARAMETERS-----\n")


# -- helpers ------------------------------------------------------------------


def trusting(cafile):
    """A CPython client context that trusts cafile only."""
    return ssl.create_default_context(cafile=str(cafile))


class LocalHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1, the certificate checked against self.host
    (localhost) as a browser would."""

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(s, server_hostname=self.host)


def https_get(port, path, cafile, headers=None, timeout=10):
    c = LocalHTTPS("localhost", port, context=trusting(cafile),
                   timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def curl(*args, timeout=15):
    return subprocess.run([peer("curl"), "-sS", "--max-time", "10"] +
                          [str(a) for a in args], capture_output=True,
                          timeout=timeout)


def curl_https(port, path, cafile, *more):
    """curl with the certificate checked by name (localhost)."""
    return curl("--cacert", cafile, "--resolve", "localhost:%d:127.0.0.1"
                % port, *more, "https://localhost:%d%s" % (port, path))


def s_client(port, args, data, timeout=15):
    argv = [peer("openssl"), "s_client", "-connect", "127.0.0.1:%d" % port,
            "-ign_eof"] + list(args)
    return subprocess.run(argv, input=data, capture_output=True,
                          timeout=timeout)


def client_hello():
    """The bytes a real TLS client sends first (a ClientHello record)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100
    return hello


def garbage_record(seed):
    """0x16 (a handshake record's first byte), then noise that is no TLS."""
    rnd = random.Random(seed)
    data = b"\x16" + bytes(rnd.randrange(256) for _ in range(300))
    assert data[1] != 3  # not even a TLS version
    return data


def closed_within(s, secs):
    """Seconds until the peer closed s (EOF or reset), or None."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < secs:
        try:
            if not s.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:  # reset
            return time.monotonic() - t0
    return None


def no_crash(srv):
    log = srv.log()
    assert srv.proc.poll() is None, "server died:\n" + log
    assert "Traceback" not in log and "ERR:" not in log, log


def open_fds(proc):
    return len(os.listdir("/proc/%d/fd" % proc.pid))


def start_tls_server(tmp_path, cert, key, timeout="2"):
    """The test server with a TLS port; returns it with .tls_port set."""
    tls_port = free_port()
    srv = start(tmp_path, args=["--timeout", timeout, "--tls-port", tls_port,
                                "--cert", cert, "--key", key])
    try:
        wait_port(tls_port, srv.proc)
    except RuntimeError:
        srv.stop()
        raise
    srv.tls_port = tls_port
    return srv


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Certificates for every case, made for this run."""
    d = tmp_path_factory.mktemp("pki")
    c = {}
    c["good"] = make_cert(d / "good")                      # CN=localhost
    c["other"] = make_cert(d / "other", cn="other.example",
                           names=["other.example"])
    c["expired"] = make_cert(d / "expired", days=-2)
    ca = make_cert(d / "ca", cn="microlws test CA", names=["ca.invalid"])
    c["ca"] = ca
    c["leaf"] = make_cert(d / "leaf", ca=ca[2])           # signed by ca
    bundle = d / "bundle.pem"                              # other, then ca
    bundle.write_bytes(c["other"][0].read_bytes() + ca[0].read_bytes())
    c["bundle"] = (bundle, None, None)
    return c


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, pki):
    """The test server, https/wss on .tls_port, timeout_secs 2."""
    cp, kp, _ = pki["good"]
    srv = start_tls_server(tmp_path_factory.mktemp("tlssrv"), cp, kp)
    yield srv
    srv.stop()


@pytest.fixture
def fresh_tls_server(tmp_path, pki):
    """A test server of the test's own, for tests that tie up its
    handshake slots."""
    cp, kp, _ = pki["good"]
    srv = start_tls_server(tmp_path, cp, kp)
    yield srv
    srv.stop()


# == 1. serving ===============================================================


def test_curl_verified_by_name(tls_server, pki):
    cafile = pki["good"][0]
    p = curl_https(tls_server.tls_port, "/", cafile, "-w",
                   "\n%{http_code} %{ssl_verify_result}")
    assert p.returncode == 0, p.stderr
    assert b"<html" in p.stdout.lower()
    assert p.stdout.rsplit(b"\n", 1)[1] == b"200 0"
    p = curl_https(tls_server.tls_port, "/t/info?x=1", cafile)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["path"] == "/t/info" and info["query"] == "x=1"
    assert info["headers"]["host"] == "localhost:%d" % tls_server.tls_port


def test_curl_refuses_an_untrusted_certificate(tls_server, pki):
    # the check above means something: another CA, and no CA at all, fail
    p = curl_https(tls_server.tls_port, "/", pki["other"][0])
    assert p.returncode == 60, (p.returncode, p.stderr)
    p = curl("--resolve", "localhost:%d:127.0.0.1" % tls_server.tls_port,
             "https://localhost:%d/" % tls_server.tls_port)
    assert p.returncode == 60, (p.returncode, p.stderr)
    tls_server.alive()


def test_http_client_keepalive_over_tls(tls_server, pki):
    c = LocalHTTPS("localhost", tls_server.tls_port,
                   context=trusting(pki["good"][0]), timeout=10)
    try:
        for i in range(3):
            c.request("GET", "/t/info?n=%d" % i)
            r = c.getresponse()
            body = r.read()
            assert r.status == 200
            assert json.loads(body)["query"] == "n=%d" % i
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert c.sock.getpeercert()["subject"] == ((("commonName",
                                                     "localhost"),),)
    finally:
        c.close()


async def wss_connect(port, path, cafile, **kw):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return await websockets.connect(
        "wss://localhost:%d%s" % (port, path), sock=s, ssl=trusting(cafile),
        server_hostname="localhost", open_timeout=10, **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def test_wss_echo(tls_server, pki):
    async def go():
        ws = await wss_connect(tls_server.tls_port, "/echo", pki["good"][0])
        await ws.send("hello over wss")
        assert await ws.recv() == "hello over wss"
        big = os.urandom(20000)  # several TLS records and WebSocket reads
        await ws.send(big)
        assert await ws.recv() == big
        await ws.close()
        assert ws.close_code == 1000
    run(go())


def test_wss_dumb_increment(tls_server, pki):
    async def go():
        ws = await wss_connect(tls_server.tls_port, "/", pki["good"][0],
                               subprotocols=["dumb-increment-protocol"])
        assert ws.subprotocol == "dumb-increment-protocol"
        got = [int(await ws.recv()) for _ in range(4)]
        assert got == list(range(got[0], got[0] + 4))
        await ws.close()
    run(go())


def test_openssl_s_client_sees_the_certificate(tls_server, pki):
    req = (b"GET /t/info HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    p = s_client(tls_server.tls_port,
                 ["-servername", "localhost", "-CAfile", str(pki["good"][0]),
                  "-verify_return_error"], req)
    out = p.stdout.decode(errors="replace")
    assert "subject=CN = localhost" in out, out + p.stderr.decode()
    assert "Verify return code: 0 (ok)" in out
    assert "HTTP/1.1 200 OK" in out
    assert '"path": "/t/info"' in out


def _key_bytes(key, fmt):
    from cryptography.hazmat.primitives import serialization as ser
    none = ser.NoEncryption()
    if fmt == "pkcs8-der":
        return key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8,
                                 none)
    if fmt == "sec1-der":
        return key.private_bytes(ser.Encoding.DER,
                                 ser.PrivateFormat.TraditionalOpenSSL, none)
    sec1 = key.private_bytes(ser.Encoding.PEM,
                             ser.PrivateFormat.TraditionalOpenSSL, none)
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    if fmt == "sec1-pem":
        return sec1
    if fmt == "ecparam-pem":
        return EC_PARAMS_P256 + sec1
    raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["pkcs8-der", "sec1-der", "sec1-pem",
                                 "ecparam-pem", "one-file"])
def test_key_formats_load(tmp_path, pki, fmt):
    cp, kp, (cert, key) = pki["good"]
    if fmt == "one-file":
        # certificate and key in one PEM file, given as both
        both = tmp_path / "both.pem"
        both.write_bytes(kp.read_bytes() + cp.read_bytes())
        cp = kp = both
    else:
        kp = tmp_path / ("key." + fmt)
        kp.write_bytes(_key_bytes(key, fmt))
    srv = start_tls_server(tmp_path, cp, kp)
    try:
        p = curl_https(srv.tls_port, "/t/info", pki["good"][0])
        assert p.returncode == 0, p.stderr + srv.log().encode()
        assert json.loads(p.stdout)["path"] == "/t/info"
    finally:
        srv.stop()


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_encrypted_key_refused_with_advice(tmp_path, pki, fmt):
    from cryptography.hazmat.primitives import serialization as ser
    cp, _, (_, key) = pki["good"]
    kp = tmp_path / "enc.pem"
    pf = (ser.PrivateFormat.PKCS8 if fmt == "pkcs8" else
          ser.PrivateFormat.TraditionalOpenSSL)
    kp.write_bytes(key.private_bytes(ser.Encoding.PEM, pf,
                                     ser.BestAvailableEncryption(b"secret")))
    assert b"ENCRYPTED" in kp.read_bytes()
    srv = start(tmp_path, wait=False,
                args=["--tls-port", free_port(), "--cert", cp, "--key", kp])
    try:
        rc = srv.proc.wait(10)
    finally:
        srv.stop()
    log = srv.log()
    assert rc != 0, log
    assert "encrypted key" in log and "openssl pkey" in log, log


# == 2. Strict-Transport-Security =============================================


def test_sts_over_tls_only(tls_server, pki):
    st, h, _ = https_get(tls_server.tls_port, "/", pki["good"][0])
    assert st == 200
    assert h.get("Strict-Transport-Security") == \
        "max-age=15768000 ; includeSubDomains"
    st, h, _ = tls_server.get("/")
    assert st == 200
    assert "Strict-Transport-Security" not in h
    # nor on the plain-text redirect (RFC 6797 7.2)
    c = http.client.HTTPConnection("127.0.0.1", tls_server.tls_port,
                                   timeout=5)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 301 and r.getheader("Strict-Transport-Security") is None
    c.close()


# == 3. redirect_http_to_https ================================================


def raw_response(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = recv_all(s)
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


def test_plain_http_on_the_tls_port_redirects(tls_server, pki):
    t = tls_server.tls_port
    first, h, _ = raw_response(t, b"GET /t/info?a=1&b=%%20 HTTP/1.1\r\n"
                               b"Host: localhost:%d\r\n\r\n" % t)
    assert first.startswith("HTTP/1.1 301 ")
    assert h["location"] == "https://localhost:%d/t/info?a=1&b=%%20" % t
    assert h["connection"] == "close"
    # the Host's own port is replaced by the TLS port
    first, h, _ = raw_response(t, b"GET /x HTTP/1.1\r\nHost: example.test:80"
                               b"\r\n\r\n")
    assert h["location"] == "https://example.test:%d/x" % t
    # a client that follows it lands on the same page over TLS
    p = curl("-L", "--cacert", pki["good"][0],
             "--resolve", "localhost:%d:127.0.0.1" % t,
             "http://localhost:%d/t/info?z=9" % t)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["query"] == "z=9"
    tls_server.alive()


REDIRECT_APP = """
import lws

class Page(lws.Protocol):
    name = "page"

    def on_http(self, conn, req):
        conn.respond(200, None, "tls=%s %s" % (conn.tls, req.target),
                     "text/plain")

p = Page()
m = [lws.Mount("/", "callback://page")]
ctx = lws.Context([
    lws.Vhost("plain", {plain}, m, [p], redirect_http_to_https={tls}),
    lws.Vhost("plain443", {plain443}, m, [p], redirect_http_to_https=True),
    lws.Vhost("secure", {tls}, m, [p], tls_cert={cert!r}, tls_key={key!r}),
], timeout_secs=2)
ctx.run()
"""


@pytest.fixture(scope="module")
def redirect_app(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("redirect")
    plain, plain443, tls = free_port(), free_port(), free_port()
    cp, kp, _ = pki["good"]
    script = d / "app.py"
    script.write_text(REDIRECT_APP.format(plain=plain, plain443=plain443,
                                          tls=tls, cert=str(cp), key=str(kp)))
    srv = start(d, script=script, port=plain)
    try:
        wait_port(tls, srv.proc)
        wait_port(plain443, srv.proc)
    except RuntimeError:
        srv.stop()
        raise
    srv.tls_port, srv.plain443 = tls, plain443
    yield srv
    srv.stop()


def test_plain_vhost_redirects_to_its_tls_port(redirect_app, pki):
    a = redirect_app
    first, h, _ = raw_response(a.port, b"GET /some/page?q=1 HTTP/1.1\r\n"
                               b"Host: localhost:%d\r\n\r\n" % a.port)
    assert first.startswith("HTTP/1.1 301 ")
    assert h["location"] == "https://localhost:%d/some/page?q=1" % a.tls_port
    first, h, _ = raw_response(a.plain443, b"GET /p?q=2 HTTP/1.1\r\n"
                               b"Host: localhost:%d\r\n\r\n" % a.plain443)
    assert h["location"] == "https://localhost/p?q=2"  # 443: no port
    p = curl("-L", "--cacert", pki["good"][0],
             "--resolve", "localhost:%d:127.0.0.1" % a.port,
             "--resolve", "localhost:%d:127.0.0.1" % a.tls_port,
             "http://localhost:%d/some/page?q=1" % a.port)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"tls=True /some/page?q=1"


def test_plain_http_on_a_tls_port_without_redirect_is_400(redirect_app, pki):
    a = redirect_app
    first, h, body = raw_response(a.tls_port, b"GET / HTTP/1.1\r\n"
                                  b"Host: localhost\r\n\r\n")
    assert first.startswith("HTTP/1.1 400 "), first
    assert b"TLS" in body
    st, _, body = https_get(a.tls_port, "/ok", pki["good"][0])
    assert st == 200 and body == b"tls=True /ok"
    no_crash(a)


# == 4. handshakes inside the one loop ========================================


def test_stalled_handshakes_do_not_block_others(fresh_tls_server, pki):
    srv = fresh_tls_server
    t = srv.tls_port
    hello = client_hello()
    t0 = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", t))
    half = socket.create_connection(("127.0.0.1", t))
    half.sendall(hello[:len(hello) // 2])
    noise = socket.create_connection(("127.0.0.1", t))
    noise.sendall(garbage_record(1))
    time.sleep(0.3)
    # while they hang, others are served at once, in plain text and TLS
    for _ in range(3):
        t1 = time.monotonic()
        st, _, _ = srv.get("/t/info")
        assert st == 200 and time.monotonic() - t1 < 0.5
        t1 = time.monotonic()
        st, _, body = https_get(t, "/t/info", pki["good"][0])
        assert st == 200 and json.loads(body)["path"] == "/t/info"
        assert time.monotonic() - t1 < 1.5
    assert time.monotonic() - t0 < 1.8  # all that before any timeout
    # the stalled ones are cut off after timeout_secs (2 s)
    for s in (silent, half):
        took = closed_within(s, 5 - (time.monotonic() - t0))
        assert took is not None, "a stalled handshake was never cut off"
        assert 1.5 < time.monotonic() - t0 < 4.5
        s.close()
    noise.close()
    srv.alive()
    no_crash(srv)


def test_tls_sockets_in_a_growing_poll_set(fresh_tls_server, pki):
    # TLS sockets have no file descriptor of their own for poll; the unix
    # port's poll crashed (SIGSEGV) when its descriptor array grew by
    # moving while one was registered
    srv = fresh_tls_server
    hello = client_hello()
    tls_socks = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", srv.tls_port))
        s.sendall(hello)
        tls_socks.append(s)
    assert len(_answered(tls_socks, 1)) == 2  # both in their handshake
    plain = []
    for i in range(48):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /t/info HTTP/1.1\r\n")  # a head still to come
        plain.append(s)
        if i % 8 == 7:
            time.sleep(0.05)  # the server registers them as they come
    time.sleep(0.2)
    assert srv.proc.poll() is None, "server died: %s\n%s" % (
        srv.proc.returncode, srv.log())
    for s in plain + tls_socks:
        s.close()
    st, _, body = https_get(srv.tls_port, "/t/info", pki["good"][0])
    assert st == 200
    srv.alive()
    no_crash(srv)


@pytest.mark.parametrize("data", [garbage_record(2),
                                  b"\x16\x03\x01\xff\xff" + b"x" * 200],
                         ids=["noise", "oversized-record"])
def test_garbage_handshake_leaves_the_server_serving(tls_server, pki, data):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", tls_server.tls_port),
                                      timeout=5) as s:
            s.sendall(data)
            time.sleep(0.1)
    tls_server.alive()
    st, _, _ = https_get(tls_server.tls_port, "/", pki["good"][0])
    assert st == 200
    no_crash(tls_server)


def test_garbage_handshake_is_closed_and_freed(fresh_tls_server):
    srv = fresh_tls_server
    time.sleep(0.3)
    before = open_fds(srv.proc)
    socks = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=5)
        s.sendall(garbage_record(10 + i))
        socks.append(s)
    # the server gives up at once (the log says so): the peer must see it
    took = closed_within(socks[0], 1.5)
    for s in socks:
        s.close()
    time.sleep(0.5)
    leaked = open_fds(srv.proc) - before
    assert took is not None and leaked <= 0, (took, leaked)


def test_trickled_handshake_is_cut_off(fresh_tls_server):
    srv = fresh_tls_server
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", srv.tls_port))
    t0 = time.monotonic()
    cut = None
    for i in range(12):  # a byte every 0.6 s, timeout_secs is 2
        try:
            s.sendall(hello[i:i + 1])
        except OSError:
            cut = time.monotonic() - t0
            break
        if closed_within(s, 0.6) is not None:
            cut = time.monotonic() - t0
            break
    s.close()
    assert cut is not None and cut < 4.5, cut


# == 5. the handshake limit (max_tls_handshakes=2) ============================


def _silent_hellos(port, n):
    """n connections that send a whole ClientHello, then nothing."""
    hello = client_hello()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    time.sleep(0.2)  # all accepted before any has spoken
    for s in socks:
        s.sendall(hello)
    return socks


def _answered(socks, secs):
    """Which of socks got bytes (the server's handshake flight) in secs."""
    got = set()
    end = time.monotonic() + secs
    while time.monotonic() < end and len(got) < len(socks):
        r, _, _ = select.select([s for s in socks if s not in got], [], [],
                                max(0, end - time.monotonic()))
        got.update(r)
    return got


class Background(threading.Thread):
    """A TLS request from another client, in a thread."""

    def __init__(self, port, cafile):
        super().__init__(daemon=True)
        self.port, self.cafile = port, cafile
        self.result = self.error = None
        self.took = None

    def run(self):
        t0 = time.monotonic()
        try:
            self.result = https_get(self.port, "/t/info", self.cafile)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.took = time.monotonic() - t0


def test_handshake_limit_new_ones_wait_for_timeouts(fresh_tls_server, pki):
    srv = fresh_tls_server
    t0 = time.monotonic()
    socks = _silent_hellos(srv.tls_port, 5)
    # only max_tls_handshakes (2) of them are being answered
    assert len(_answered(socks, 0.6)) == 2
    time.sleep(max(0, 1.0 - (time.monotonic() - t0)))
    bg = Background(srv.tls_port, pki["good"][0])
    bg.start()
    time.sleep(0.3)
    assert bg.took is None  # waiting for a slot, not refused
    t1 = time.monotonic()
    st, _, _ = srv.get("/t/info")  # plain HTTP meanwhile: at once
    assert st == 200 and time.monotonic() - t1 < 0.5
    bg.join(10)
    assert bg.error is None, bg.error
    assert bg.result[0] == 200
    assert json.loads(bg.result[2])["path"] == "/t/info"
    # it got its turn once the silent ones timed out (2 s after t0)
    assert bg.took > 0.6 and time.monotonic() - t0 < 5
    for s in socks:
        assert closed_within(s, 1) is not None
        s.close()
    no_crash(srv)


def test_handshake_limit_new_ones_go_when_slots_free(fresh_tls_server, pki):
    srv = fresh_tls_server
    socks = _silent_hellos(srv.tls_port, 2)
    assert len(_answered(socks, 0.6)) == 2  # both slots taken
    bg = Background(srv.tls_port, pki["good"][0])
    bg.start()
    time.sleep(0.6)
    assert bg.took is None
    t1 = time.monotonic()
    for s in socks:
        s.close()  # the handshakes end: slots free
    bg.join(5)
    assert bg.error is None, bg.error
    assert bg.result[0] == 200
    assert time.monotonic() - t1 < 1.0  # long before the 2 s timeout
    no_crash(srv)


# == 6. our client against CPython TLS servers ================================


CLIENT = """
import time
import lws

URL = {url!r}
KW = {kw!r}
done = []


class P(lws.Protocol):
    name = "p"

    def on_client_connection_error(self, c, why):
        print("ERROR", why)
        done.append(1)

    def on_client_http_response(self, c, status, headers):
        print("STATUS", status)

    def on_client_http_body(self, c, data):
        print("BODY", bytes(data).decode())

    def on_client_http_completed(self, c):
        print("COMPLETED")
        done.append(1)

    def on_client_established(self, c):
        print("ESTABLISHED")
        c.send_text("hello over wss")

    def on_client_receive(self, c, data):
        print("RECEIVE", bytes(data).decode())
        c.close(1000, b"bye")
        done.append(1)


ctx = lws.Context(vhosts=[], timeout_secs=4)
ctx.connect(URL, P(), **KW)
t0 = time.ticks_ms()
while not done and time.ticks_diff(time.ticks_ms(), t0) < 8000:
    ctx.service(50)
for _ in range(5):
    ctx.service(20)
print("END", "done" if done else "stuck")
ctx.close()
"""


def run_client(tmp_path, url, **kw):
    """Our client in MicroPython: its callbacks as (name, text) lines."""
    kw = {k: str(v) if isinstance(v, os.PathLike) else v
          for k, v in kw.items()}
    script = tmp_path / ("client-%d.py" % free_port())
    script.write_text(CLIENT.format(url=url, kw=kw))
    p = subprocess.run(unixport.command(script), env=unixport.environment(),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=15)
    lines = [tuple(x.split(" ", 1)) + ("",) for x in p.stdout.splitlines()]
    events = [(x[0], x[1]) for x in lines]
    assert ("END", "done") in events, p.stdout + p.stderr
    return events, p.stderr


class HTTPSServer:
    """CPython's http.server behind ssl, in a thread; counts requests."""

    def __init__(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        owner = self
        self.requests = 0

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                owner.requests += 1
                body = b"hello from CPython over TLS " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class S(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                # the handshake runs in the handler's thread, not here
                s, a = self.socket.accept()
                return ctx.wrap_socket(s, server_side=True,
                                       do_handshake_on_connect=False), a

            def handle_error(self, request, client_address):
                pass  # refused handshakes are the point of some tests

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def https_server(pki):
    made = []

    def make(kind):
        cp, kp, _ = pki[kind]
        s = HTTPSServer(cp, kp)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


class WSSServer:
    """A websockets echo server on wss, in a thread."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _echo(self, ws):
        async for m in ws:
            await ws.send(m)

    async def _main(self):
        async with serve(self._echo, "127.0.0.1", 0, ssl=self.ctx) as srv:
            self.port = srv.sockets[0].getsockname()[1]
            self.ready.set()
            await asyncio.Future()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self._main())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass

    def close(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


def test_client_https_verified(tmp_path, https_server, pki):
    s = https_server("good")
    ev, err = run_client(tmp_path, "https://localhost:%d/a?b=1" % s.port,
                         ca=pki["good"][0])
    assert ("STATUS", "200") in ev, ev
    assert ("BODY", "hello from CPython over TLS /a?b=1") in ev
    assert ("COMPLETED", "") in ev
    assert not [e for e in ev if e[0] == "ERROR"]


@pytest.mark.parametrize("ca", ["ca", "bundle"])
def test_client_https_verified_through_a_ca(tmp_path, https_server, pki, ca):
    # the server's certificate is signed by a CA: ca= names the CA alone,
    # or a bundle holding another certificate first
    s = https_server("leaf")
    ev, err = run_client(tmp_path, "https://localhost:%d/" % s.port,
                         ca=pki[ca][0])
    assert ("STATUS", "200") in ev, (ev, err)


def test_client_wss_verified(tmp_path, pki):
    w = WSSServer(*pki["good"][:2])
    try:
        ev, err = run_client(tmp_path, "wss://localhost:%d/chat" % w.port,
                             ca=pki["good"][0])
    finally:
        w.close()
    assert ("ESTABLISHED", "") in ev, (ev, err)
    assert ("RECEIVE", "hello over wss") in ev


def test_client_insecure_skips_the_checks(tmp_path, https_server, pki):
    for kind in ("good", "other", "expired"):
        s = https_server(kind)
        ev, err = run_client(tmp_path, "https://localhost:%d/" % s.port,
                             insecure=True)
        assert ("STATUS", "200") in ev, (kind, ev, err)


REFUSALS = [
    ("other", "other"),      # valid, but for other.example, not localhost
    ("good", None),          # self-signed, no ca given
    ("expired", "expired"),  # trusted, but expired two days ago
    ("good", "other"),       # signed by another key than ca's
]
REFUSAL_IDS = ["name-mismatch", "no-ca", "expired", "wrong-ca"]


@pytest.mark.parametrize("server,ca", REFUSALS, ids=REFUSAL_IDS)
def test_client_refuses(tmp_path, https_server, pki, server, ca):
    s = https_server(server)
    kw = {"ca": pki[ca][0]} if ca else {}
    ev, err = run_client(tmp_path, "https://localhost:%d/" % s.port, **kw)
    assert [e[0] for e in ev if e[0] != "END"] == ["ERROR"], ev
    assert s.requests == 0  # not a byte of the request was sent


@pytest.mark.parametrize("server,ca", [
    REFUSALS[0], REFUSALS[1], REFUSALS[2], REFUSALS[3],
], ids=REFUSAL_IDS)
def test_client_refusal_reason_names_tls(tmp_path, https_server, pki,
                                         server, ca):
    s = https_server(server)
    kw = {"ca": pki[ca][0]} if ca else {}
    ev, err = run_client(tmp_path, "https://localhost:%d/" % s.port, **kw)
    why = [e[1] for e in ev if e[0] == "ERROR"]
    assert why and "TLS" in why[0], (why, err)
    assert "Traceback" not in err, err


def test_client_wss_refuses_a_mismatched_name(tmp_path, pki):
    w = WSSServer(*pki["other"][:2])
    try:
        ev, err = run_client(tmp_path, "wss://localhost:%d/" % w.port,
                             ca=pki["other"][0])
    finally:
        w.close()
    assert [e[0] for e in ev if e[0] != "END"] == ["ERROR"], ev


# == 7. TLS-PSK ===============================================================


PSK_APP = """
import lws

class Page(lws.Protocol):
    name = "page"

    def on_http(self, conn, req):
        conn.respond(200, None, "psk ok " + req.target, "text/plain")

vh = lws.Vhost("psk", {port}, [lws.Mount("/", "callback://page")], [Page()],
               tls_psk={{b"client1": b"\\x1a\\x2b\\x3c\\x4d"}})
ctx = lws.Context([vh], timeout_secs=10)
ctx.run()
"""
PSK_KEY = b"\x1a\x2b\x3c\x4d"


def _psk_available():
    p = run_mpy("import lws.tls; print(lws.tls.psk_available())")
    return p.stdout.strip() == "True"


@pytest.fixture(scope="module")
def psk_app(tmp_path_factory):
    if not _psk_available():
        pytest.skip("this MicroPython's tls has no TLS-PSK")
    d = tmp_path_factory.mktemp("psk")
    port = free_port()
    script = d / "app.py"
    script.write_text(PSK_APP.format(port=port))
    srv = start(d, script=script, port=port)
    yield srv
    srv.stop()


PSK_REQ = b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_psk_openssl(psk_app):
    p = s_client(psk_app.port, ["-psk", "1a2b3c4d", "-psk_identity",
                                "client1", "-tls1_2", "-cipher",
                                "PSK-AES128-CBC-SHA256"], PSK_REQ)
    out = p.stdout.decode(errors="replace")
    assert "Cipher is PSK-AES128-CBC-SHA256" in out, out + p.stderr.decode()
    assert "HTTP/1.1 200 OK" in out and "psk ok /x" in out


class Relay:
    """A TCP relay from a client to the server that passes bytes both
    ways but never the client's hang-up: it tells whether the server
    closes its side by itself."""

    def __init__(self, port):
        self.target = port
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        self.server_closed = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.ls.settimeout(15)
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        finally:
            self.ls.close()
        up = socket.create_connection(("127.0.0.1", self.target))
        ins = [c, up]
        end = time.monotonic() + 20
        try:
            while time.monotonic() < end and not self.server_closed.is_set():
                for s in select.select(ins, [], [], 0.1)[0]:
                    try:
                        d = s.recv(65536)
                    except OSError:  # reset
                        d = b""
                    if s is up and not d:
                        self.server_closed.set()
                    elif s is up:
                        try:
                            c.sendall(d)
                        except OSError:
                            pass  # the client has gone; the server not yet
                    elif not d:
                        ins.remove(c)  # the client hung up: not passed on
                    else:
                        up.sendall(d)
        finally:
            c.close()
            up.close()


@pytest.mark.parametrize("key,ident,alert", [
    ("1a2b3c4e", "client1", None),
    ("1a2b3c4d", "client2", "unknown psk identity"),
], ids=["wrong-key", "unknown-identity"])
def test_psk_openssl_wrong_key(psk_app, key, ident, alert):
    """A failed PSK handshake: no page, and the server closes the TCP
    connection itself within a few seconds (the relay keeps openssl's
    side open; the app's timeout_secs, 10, is not what closes it)."""
    relay = Relay(psk_app.port)
    try:
        p = s_client(relay.port, ["-psk", key, "-psk_identity", ident,
                                  "-tls1_2", "-cipher",
                                  "PSK-AES128-CBC-SHA256"], PSK_REQ,
                     timeout=6)
    except subprocess.TimeoutExpired:
        # with a wrong key no alert comes: openssl learns of the failure
        # only when the server hangs up
        pytest.fail("openssl still waits after 6 s: the server left the "
                    "TCP connection open after a failed handshake")
    out = p.stdout.decode(errors="replace")
    assert "psk ok" not in out and "HTTP/1.1 200" not in out
    if alert:
        assert alert in p.stderr.decode(errors="replace")
    assert relay.server_closed.wait(3), \
        "the server left the TCP connection open after a failed handshake"
    # and the server goes on serving the right key
    test_psk_openssl(psk_app)


def test_psk_our_client(tmp_path, psk_app):
    ev, err = run_client(tmp_path, "https://127.0.0.1:%d/y" % psk_app.port,
                         psk=(b"client1", PSK_KEY))
    assert ("STATUS", "200") in ev, (ev, err)
    assert ("BODY", "psk ok /y") in ev


def test_psk_our_client_wrong_key(tmp_path, psk_app):
    ev, err = run_client(tmp_path, "https://127.0.0.1:%d/y" % psk_app.port,
                         psk=(b"client1", b"\x1a\x2b\x3c\x4e"))
    assert [e[0] for e in ev if e[0] != "END"] == ["ERROR"], (ev, err)
    ev, err = run_client(tmp_path, "https://127.0.0.1:%d/z" % psk_app.port,
                         psk=(b"client1", PSK_KEY))
    assert ("BODY", "psk ok /z") in ev, (ev, err)


@pytest.mark.parametrize("scheme", ["https", "wss"])
def test_client_waiting_for_a_silent_tls_server_uses_no_cpu(tmp_path, scheme):
    """The handshake waits for the server's flight on POLLIN: a server
    that accepts and says nothing costs the loop nothing until the
    timeout (4 s here) reports it."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    script = tmp_path / "client.py"
    url = "%s://localhost:%d/" % (scheme, ls.getsockname()[1])
    script.write_text(CLIENT.format(url=url, kw={"insecure": True}))
    p = subprocess.Popen(unixport.command(script, []),
                         env=unixport.environment(None),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        a, _ = ls.accept()
        time.sleep(0.3)
        from conftest import cpu_seconds
        c0 = cpu_seconds(p)
        time.sleep(2.0)
        used = cpu_seconds(p) - c0
        out, err = p.communicate(timeout=20)
        a.close()
    finally:
        ls.close()
        if p.poll() is None:
            p.kill()
    assert used < 0.3, used
    assert b"ERROR" in out and b"END done" in out, (out, err)
