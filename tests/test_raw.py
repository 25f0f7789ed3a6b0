"""Raw connections: fallback to raw on a port that also serves HTTP (and
on a TLS port), adopting an accepted socket with bytes already read, and
the serial bridge on an adopted pty with WebSocket clients."""
import asyncio
import os
import socket
import ssl
import time
import urllib.request

import pytest
import websockets

from conftest import free_port, start

pytestmark = pytest.mark.timeout(60)

APP = """
import sys
import lws

class RawEcho(lws.Protocol):
    name = "raw-echo"

    def on_raw_adopt(self, conn):
        conn.send(b"hello raw\\n")

    def on_raw_rx(self, conn, data):
        conn.send(b"echo:" + bytes(data))

class Page(lws.Protocol):
    name = "page"

    def on_http(self, conn, req):
        conn.respond(200, body="http page\\n", content_type="text/plain")

port, mode = int(sys.argv[1]), sys.argv[2]
protos = [RawEcho(), Page()]
mounts = [lws.Mount("/", "callback://page")]
if mode == "tls":
    vh = lws.Vhost("tls", port, mounts, protos, raw_fallback="raw-echo",
                   tls_cert=sys.argv[3], tls_key=sys.argv[4])
else:
    vh = lws.Vhost("plain", port, mounts, protos, raw_fallback="raw-echo")
ctx = lws.Context([vh])
if mode == "adopt":
    # a socket of the application's own, accepted and read from before
    # the context takes it over
    ls = socket = __import__("socket")
    s = ls.socket()
    s.setsockopt(ls.SOL_SOCKET, ls.SO_REUSEADDR, 1)
    s.bind(ls.getaddrinfo("127.0.0.1", int(sys.argv[3]))[0][-1])
    s.listen(1)
    c, _ = s.accept()
    first = c.recv(5)
    ctx.adopt(c, "raw-echo", readbuf=first)
ctx.run()
"""


@pytest.fixture
def app_script(tmp_path):
    p = tmp_path / "rawapp.py"
    p.write_text(APP)
    return p


def read_until(s, want, limit=4096):
    data = b""
    while want not in data and len(data) < limit:
        d = s.recv(4096)
        if not d:
            break
        data += d
    return data


def test_raw_fallback_beside_http(tmp_path, app_script):
    port = free_port()
    srv = start(tmp_path, script=app_script, args=["{port}", "plain"],
                port=port)
    try:
        for first in (b"\x00\x01binary", b"lower case is no method"):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(first)
            got = read_until(s, b"echo:" + first)
            assert got == b"hello raw\necho:" + first, got
            s.sendall(b"more")
            assert read_until(s, b"echo:more").endswith(b"echo:more")
            s.close()
        body = urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                      timeout=5).read()
        assert body == b"http page\n"  # HTTP on the same port as before
    finally:
        srv.stop()


def test_raw_fallback_on_a_tls_port(tmp_path, app_script):
    from lwstool.certs import ensure_cert
    cert, key = ensure_cert(tmp_path / "tls")
    port = free_port()
    srv = start(tmp_path, script=app_script,
                args=["{port}", "tls", cert, key], port=port)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x00raw on tls")
        assert read_until(s, b"echo:") .startswith(b"hello raw\n")
        s.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=5) as t:
            with ctx.wrap_socket(t, server_hostname="localhost") as w:
                w.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                assert b"http page" in read_until(w, b"http page")
    finally:
        srv.stop()


def test_adopt_a_socket_with_bytes_read_before(tmp_path, app_script):
    port, own = free_port(), free_port()
    srv = start(tmp_path, script=app_script,
                args=["{port}", "adopt", own], port=port, wait=False)
    try:
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", own), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        s.sendall(b"early")  # read by the application, before adopt()
        got = read_until(s, b"echo:early")
        assert got == b"hello raw\necho:early", got
        s.sendall(b"later")
        assert read_until(s, b"echo:later").endswith(b"echo:later")
    finally:
        srv.stop()


BRIDGE = """
import sys
import lws
from lws.plugins.serial_bridge import SerialBridge, open_tty
port, path = int(sys.argv[1]), sys.argv[2]
bridge = SerialBridge()
ctx = lws.Context(port=port, protocols=[bridge], mounts=[
    lws.Mount("/serial", "callback://lws-serial-bridge")])
ctx.adopt(open_tty(path), bridge)
ctx.run()
"""


def test_serial_bridge_on_a_pty(tmp_path):
    master, slave = os.openpty()
    script = tmp_path / "bridge.py"
    script.write_text(BRIDGE)
    port = free_port()
    srv = start(tmp_path, script=script, args=["{port}", os.ttyname(slave)],
                port=port)
    os.set_blocking(master, False)

    def from_serial(want, timeout=10):
        got, t0 = b"", time.monotonic()
        while len(got) < want and time.monotonic() - t0 < timeout:
            try:
                got += os.read(master, 65536)
            except BlockingIOError:
                time.sleep(0.01)
        return got

    async def go():
        url = "ws://127.0.0.1:%d/serial" % port
        async with websockets.connect(url) as a, \
                websockets.connect(url) as b:
            await asyncio.sleep(0.2)
            os.write(master, b"from the uart")
            for ws in (a, b):  # every client gets what the stream sent
                got = b""
                while got != b"from the uart":
                    got += await asyncio.wait_for(ws.recv(), 5)
            await a.send(b"to the uart")
            assert await asyncio.to_thread(from_serial, 11) == b"to the uart"
            # a long message: the stream takes it at its pace, nothing lost
            big = bytes(range(256)) * 256
            await b.send(big)
            assert await asyncio.to_thread(from_serial, len(big)) == big
            # and more stream data, longer than one ring element
            os.write(master, b"x" * 1000)
            got = b""
            while len(got) < 1000:
                got += await asyncio.wait_for(a.recv(), 5)
            assert got == b"x" * 1000
    try:
        asyncio.run(asyncio.wait_for(go(), 40))
        assert srv.proc.poll() is None
    finally:
        srv.stop()
        os.close(master)
        os.close(slave)
