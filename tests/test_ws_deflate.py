"""permessage-deflate (RFC 7692): the firmware on MicroPython against
CPython's websockets (client and server), raw frames for the violations,
zlib for compressed payloads made by hand."""
import asyncio
import json
import os
import struct
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)

from conftest import arun as run
from conftest import start
from wsraw import expect_close, frame, handshake, read_frame

pytestmark = pytest.mark.timeout(120)

# an echo server: max_message_size and the vhost's ws_deflate from argv
SERVER = r'''
import sys, json
import lws
from lws.plugins.echo import Echo
port, mx, opts = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
class E(Echo):
    max_message_size = mx
vh = lws.Vhost("localhost", port, [lws.Mount("/echo", "callback://echo")],
               [E()], ws_deflate=opts)
lws.Context([vh], ws_idle_timeout=0).run()
'''


def exes():
    """The interpreters: the PyPI unix port (inflates only) and the
    board-faithful 32-bit esp32 build (also deflates)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
    from lwstool import unix32
    out = [pytest.param(None, id="pypi")]
    why = unix32.missing()
    out.append(pytest.param("esp32", id="esp32-32bit", marks=pytest.mark.skipif(
        bool(why), reason=str(why))))
    return out


def _exe(board):
    if board is None:
        return None
    from lwstool import unix32
    return unix32.build(board, quiet=True)


@pytest.fixture(params=exes())
def exe(request):
    return _exe(request.param)


def serve(tmp_path, exe=None, mx=0, opts=True, heap=None):
    script = tmp_path / "pmd_server.py"
    script.write_text(SERVER)
    return start(tmp_path, script=script, exe=exe, heap=heap,
                 args=["{port}", mx, json.dumps(opts)])


TEXT = ("permessage-deflate squeezes repeated text like this line. " * 40)


def deflate(data, bits=15):
    """A message compressed as RFC 7692 7.2.1 says (tail removed)."""
    c = zlib.compressobj(wbits=-bits)
    z = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(b"\x00\x00\xff\xff")
    return z[:-4]


def inflate(data, bits=15):
    return zlib.decompressobj(wbits=-bits).decompress(data + b"\x00\x00\xff\xff")


PMD = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


# -- negotiation ---------------------------------------------------------


def _answer(srv, offer):
    s, head = handshake(srv.port, extra=b"Sec-WebSocket-Extensions: " +
                        offer.encode() + b"\r\n")
    s.close()
    assert b" 101 " in head.split(b"\r\n")[0], head
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-extensions:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def test_negotiation_accepts_declines_and_takes_the_next_offer(tmp_path):
    srv = serve(tmp_path)
    try:
        a = _answer(srv, "permessage-deflate")
        assert a == ("permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover")
        a = _answer(srv, "permessage-deflate; client_max_window_bits; "
                    "server_max_window_bits=10")
        assert "server_max_window_bits=10" in a
        assert "client_max_window_bits=15" in a
        a = _answer(srv, 'permessage-deflate; client_max_window_bits="12"; '
                    "server_no_context_takeover; client_no_context_takeover")
        assert "client_max_window_bits=12" in a
        for bad in ["permessage-deflate; foo",
                    "permessage-deflate; server_no_context_takeover; "
                    "server_no_context_takeover",
                    "permessage-deflate; server_max_window_bits=7",
                    "permessage-deflate; server_max_window_bits=16",
                    "permessage-deflate; server_max_window_bits",
                    "permessage-deflate; client_max_window_bits=08",
                    "permessage-deflate; client_no_context_takeover=1",
                    "x-webkit-deflate-frame"]:
            assert _answer(srv, bad) is None, bad
            # declined, then the next offer is taken
            a = _answer(srv, bad + ", permessage-deflate; "
                        "client_max_window_bits=9")
            assert a is not None and "client_max_window_bits=9" in a, bad
    finally:
        srv.stop()


def test_vhost_option_turns_it_off_and_bounds_the_window(tmp_path):
    srv = serve(tmp_path, opts=False)
    try:
        assert _answer(srv, "permessage-deflate") is None
    finally:
        srv.stop()
    srv = serve(tmp_path, opts={"rx_window_bits": 10})
    try:
        a = _answer(srv, "permessage-deflate; client_max_window_bits")
        assert "client_max_window_bits=10" in a
        # no client_max_window_bits: it could send with a 32 KB window
        assert _answer(srv, "permessage-deflate") is None
    finally:
        srv.stop()


# -- CPython's websockets as the client ----------------------------------


@pytest.mark.parametrize("bits", range(9, 16))
@pytest.mark.parametrize("takeover", [True, False])
def test_websockets_client_echo(tmp_path, exe, bits, takeover):
    srv = serve(tmp_path, exe=exe)
    ext = ClientPerMessageDeflateFactory(
        server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover,
        server_max_window_bits=bits, client_max_window_bits=bits)
    msgs = ["", "x", TEXT, "κόσμε " * 3000, bytes(range(256)) * 100,
            os.urandom(5000), TEXT * 30, TEXT]

    async def go():
        async with websockets.connect(srv.ws_url("/echo"), compression=None,
                                      extensions=[ext], max_size=None) as ws:
            h = ws.response.headers["Sec-WebSocket-Extensions"]
            assert h.startswith("permessage-deflate")
            assert "client_no_context_takeover" in h
            assert "server_max_window_bits=%d" % bits in h
            for m in msgs:
                await ws.send(m)
                assert await ws.recv() == m
            await ws.send(["frag", "ment", "ed " * 100])
            assert await ws.recv() == "fragment" + "ed " * 100
    try:
        run(go())
    finally:
        srv.stop()


def _raw(srv, offer=PMD):
    s, head = handshake(srv.port, extra=offer)
    assert b"permessage-deflate" in head, head
    return s


def _message(s):
    """(rsv1, opcode, payload) of the next data message, gathered."""
    data = b""
    first = None
    while True:
        b0, b1 = _exact(s, 2)
        n = b1 & 127
        if n == 126:
            n = struct.unpack("!H", _exact(s, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", _exact(s, 8))[0]
        p = _exact(s, n)
        if b0 & 15 >= 8:
            continue
        if first is None:
            first = b0
        data += p
        if b0 & 0x80:
            return bool(first & 0x40), first & 15, data


def _exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        assert d, "closed"
        out += d
    return out


def test_compressed_fragments_with_control_frames_between(tmp_path, exe):
    srv = serve(tmp_path, exe=exe)
    try:
        s = _raw(srv)
        z = deflate(TEXT.encode())
        k = len(z) // 3
        s.sendall(frame(1, z[:k], fin=False, rsv=4))
        s.sendall(frame(9, b"ping!"))
        s.sendall(frame(0, z[k:2 * k], fin=False))
        s.sendall(frame(10, b"pong"))
        s.sendall(frame(0, z[2 * k:]))
        f = read_frame(s)
        assert f == (True, 10, b"ping!")
        rsv1, op, p = _message(s)
        assert op == 1
        assert (inflate(p) if rsv1 else p) == TEXT.encode()
        # a server that can compress does (the 32-bit build), one that
        # cannot sends it plain: both are RFC 7692
        assert rsv1 == (exe is not None)
        # a message in one-byte frames, and an empty compressed message
        z = deflate(b"tiny fragments")
        s.sendall(frame(2, z[:1], fin=False, rsv=4) + b"".join(
            frame(0, z[i:i + 1], fin=False) for i in range(1, len(z))) +
            frame(0, b""))
        rsv1, op, p = _message(s)
        assert op == 2 and p == b"tiny fragments"
        s.sendall(frame(1, b"\x00", rsv=4))
        assert _message(s) == (False, 1, b"")
        s.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("case,code", [
    ("rsv1_continuation", 1002), ("rsv1_control", 1002),
    ("rsv1_without_extension", 1002), ("rsv2", 1002),
    ("corrupt", 1007), ("truncated", 1007), ("bad_utf8", 1007),
    ("bomb", 1009)])
def test_violations_close_with_their_code(tmp_path, case, code):
    srv = serve(tmp_path, mx=65536)
    try:
        if case == "rsv1_without_extension":
            s = handshake(srv.port)[0]
        else:
            s = _raw(srv)
        z = deflate(TEXT.encode())
        if case == "rsv1_continuation":
            s.sendall(frame(1, z[:10], fin=False, rsv=4) + frame(0, z[10:], rsv=4))
        elif case == "rsv1_control":
            s.sendall(frame(9, b"x", rsv=4))
        elif case == "rsv1_without_extension":
            s.sendall(frame(1, z, rsv=4))
        elif case == "rsv2":
            s.sendall(frame(1, z, rsv=6))
        elif case == "corrupt":
            s.sendall(frame(1, b"\xff\xff\xff\xff" + z, rsv=4))
        elif case == "truncated":
            s.sendall(frame(1, z[:len(z) // 2], rsv=4))
        elif case == "bad_utf8":
            s.sendall(frame(1, deflate(b"ok \xc3\x28 not"), rsv=4))
        elif case == "bomb":
            # 64 MiB of zeros in a frame of some 64 KB: never held whole
            big = zlib.compressobj(wbits=-15)
            bomb = b"".join(big.compress(bytes(1 << 20)) for _ in range(64))
            bomb += big.flush(zlib.Z_SYNC_FLUSH)
            assert len(bomb) < 70000
            s.sendall(frame(2, bomb[:-4], rsv=4))
        expect_close(s, code)
        s.close()
        # the others go on being served
        async def other():
            async with websockets.connect(srv.ws_url("/echo")) as ws:
                await ws.send(TEXT)
                assert await ws.recv() == TEXT
        run(other())
    finally:
        srv.stop()


def test_small_heap_deflate_connection(tmp_path):
    """The esp8266 selection, frozen into the 32-bit build, at the
    esp8266 profile's heap budget: a deflate connection with a 512-byte
    window works (and the server still answers pages)."""
    from lwstool import unix32
    if unix32.missing():
        pytest.skip(unix32.missing())
    srv = serve(tmp_path, exe=_exe("esp8266"), heap="40000",
                opts={"rx_window_bits": 9})
    try:
        async def go():
            async with websockets.connect(srv.ws_url("/echo"), max_size=None) as ws:
                assert "client_max_window_bits=9" in \
                    ws.response.headers["Sec-WebSocket-Extensions"]
                for _ in range(20):
                    await ws.send(TEXT * 8)
                    assert await ws.recv() == TEXT * 8
        run(go())
    finally:
        srv.stop()


# -- our client against websockets as the server ---------------------------


CLIENT = r'''
import sys, json
import lws
url, opts = sys.argv[1], json.loads(sys.argv[2])
with open("msgs.json") as f:
    msgs = json.load(f)
got = []
class C(lws.Protocol):
    def on_client_established(self, c):
        print("ext", c.ws.pmd is not None)
        for m in msgs:
            c.send_text(m)
        self.buf = b""
    def on_client_receive(self, c, d):
        self.buf += bytes(d)
        if c.is_final_fragment():
            got.append(self.buf.decode())
            self.buf = b""
            if len(got) == len(msgs):
                print("ok", got == msgs)
                c.close(1000)
    def on_client_connection_error(self, c, why):
        print("error", why)
        ctx.stop()
    def on_closed(self, c):
        ctx.stop()
ctx = lws.Context(vhosts=[])
ctx.connect(url, C(), deflate=opts)
ctx.run()
'''


def _client(tmp_path, url, opts=True, msgs=(), exe=None):
    import subprocess
    from lwstool import unixport
    script = tmp_path / "pmd_client.py"
    script.write_text(CLIENT)
    # (long arguments crash the unix port: the messages go in a file)
    (tmp_path / "msgs.json").write_text(json.dumps(list(msgs)))
    r = subprocess.run(unixport.command(script, [url, json.dumps(opts)],
                                        exe=exe),
                       env=unixport.environment(), capture_output=True,
                       text=True, timeout=60, cwd=str(tmp_path))
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout


@pytest.mark.parametrize("bits", [9, 12, 15])
@pytest.mark.parametrize("takeover", [True, False])
def test_our_client_against_websockets_server(tmp_path, exe, bits, takeover):
    seen = []

    async def handler(ws):
        seen.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        async for m in ws:
            await ws.send(m)

    msgs = ["hi", TEXT, "κόσμε " * 2000, TEXT * 20]

    async def go():
        ext = ServerPerMessageDeflateFactory(
            server_no_context_takeover=not takeover,
            client_no_context_takeover=not takeover,
            server_max_window_bits=bits)
        async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                    extensions=[ext], max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            return await asyncio.to_thread(
                _client, tmp_path, "ws://127.0.0.1:%d/" % port,
                {"rx_window_bits": 15}, msgs, exe)
    out = run(go())
    assert "ext True" in out and "ok True" in out, out
    assert seen and "server_no_context_takeover" in seen[0]
    assert "server_max_window_bits=%d" % bits in seen[0]


def _fake_server(answer):
    """A server that answers the handshake with answer as its
    Sec-WebSocket-Extensions; returns its port."""
    import base64
    import hashlib
    import socket
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def run_():
        s, _ = ls.accept()
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key")][0]
        acc = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc +
                  b"\r\nSec-WebSocket-Extensions: " + answer.encode() +
                  b"\r\n\r\n")
        s.recv(100)
        s.close()
        ls.close()
    threading.Thread(target=run_, daemon=True).start()
    return ls.getsockname()[1]


@pytest.mark.parametrize("answer,why", [
    ("permessage-deflate; server_no_context_takeover; foo", "invalid"),
    ("permessage-deflate; server_no_context_takeover; "
     "client_max_window_bits", "invalid"),
    ("permessage-deflate; server_no_context_takeover; "
     "server_max_window_bits=16", "invalid"),
    ("permessage-deflate", "without server_no_context_takeover"),
    ("x-webkit-deflate-frame", "did not offer"),
    ("permessage-deflate; server_no_context_takeover, permessage-deflate",
     "did not offer")])
def test_our_client_fails_on_a_bad_answer(tmp_path, answer, why):
    port = _fake_server(answer)
    out = _client(tmp_path, "ws://127.0.0.1:%d/" % port)
    assert "error" in out and why in out, out


def test_our_client_without_deflate_refuses_it(tmp_path):
    port = _fake_server("permessage-deflate; server_no_context_takeover")
    out = _client(tmp_path, "ws://127.0.0.1:%d/" % port, opts=False)
    assert "error server chose an extension we did not offer" in out, out


def test_make_client_echo_deflate_offers_it(tmp_path):
    """`make client URL=... ECHO=1 DEFLATE=1`: the echo client offers
    permessage-deflate and echoes compressed messages back."""
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    seen = []

    async def handler(ws):
        seen.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        for m in ["hello", TEXT, TEXT * 10]:
            await ws.send(m)
            assert await ws.recv() == m
        await ws.close()

    async def go():
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            env = dict(os.environ, PYTHONPATH=str(repo / "host_tools"))
            env.pop("MAKEFLAGS", None)
            env.pop("MAKELEVEL", None)
            return await asyncio.to_thread(
                subprocess.run, ["make", "-s", "client", "URL=ws://127.0.0.1:%d/"
                                 % port, "ECHO=1", "DEFLATE=1"], cwd=str(repo),
                capture_output=True, text=True, timeout=60, env=env)
    r = run(go())
    assert r.returncode == 0, r.stdout + r.stderr
    assert seen and seen[0].startswith("permessage-deflate"), seen
