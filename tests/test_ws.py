"""WebSocket server (RFC 6455) against CPython's websockets and raw frames."""
import asyncio
import struct
import time

import pytest
import websockets

from conftest import arun as run
from wsraw import expect_close, frame, handshake, read_frame

pytestmark = pytest.mark.timeout(60)



# -- with a real client --------------------------------------------------


def test_echo_text_binary_and_sizes(server):
    async def go():
        async with websockets.connect(server.ws_url("/echo"), max_size=None) as ws:
            for msg in ["", "hello", "κόσμε", "x" * 125, "y" * 126,
                        "z" * 65535, "w" * 65536]:
                await ws.send(msg)
                assert await ws.recv() == msg
            for msg in [b"", b"\x00\xff" * 3, bytes(range(256)) * 40]:
                await ws.send(msg)
                assert await ws.recv() == msg
    run(go())


def test_echo_big_message_in_pieces(server):
    big = bytes(range(256)) * 1024  # 256 KiB, far beyond rx_buffer_size
    async def go():
        async with websockets.connect(server.ws_url("/echo"), max_size=None) as ws:
            await ws.send(big)
            parts = [p async for p in ws.recv_streaming()]
            assert b"".join(parts) == big
            assert len(parts) > 1
    run(go())


def test_fragmented_message_echoed(server):
    async def go():
        async with websockets.connect(server.ws_url("/echo")) as ws:
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"
            await ws.send([b"a", b"b"])
            assert await ws.recv() == b"ab"
    run(go())


def test_subprotocol_by_name_and_default(server):
    async def go():
        async with websockets.connect(
                server.ws_url("/"), subprotocols=["nope", "dumb-increment-protocol"]) as ws:
            assert ws.subprotocol == "dumb-increment-protocol"
            first = [int(await ws.recv()) for _ in range(3)]
            assert first == [first[0], first[0] + 1, first[0] + 2]
        # no Sec-WebSocket-Protocol: the vhost default (dumb-increment)
        async with websockets.connect(server.ws_url("/")) as ws:
            assert ws.subprotocol is None
            assert int(await ws.recv()) >= 0
        # /echo is bound to echo by its callback:// mount
        async with websockets.connect(server.ws_url("/echo")) as ws:
            await ws.send("e")
            assert await ws.recv() == "e"
    run(go())


def test_dumb_increment_timing_and_reset(server):
    async def go():
        async with websockets.connect(
                server.ws_url("/"), subprotocols=["dumb-increment-protocol"]) as ws:
            t0 = time.monotonic()
            vals = [int(await ws.recv()) for _ in range(10)]
            dt = time.monotonic() - t0
            assert vals == list(range(vals[0], vals[0] + 10))
            assert 0.3 < dt < 2.0  # every 50 ms
            await ws.send("reset\n")
            for _ in range(5):
                if int(await ws.recv()) < 3:
                    break
            else:
                raise AssertionError("counter not reset")
    run(go())


def test_close_with_code_and_reason(server):
    async def go():
        ws = await websockets.connect(server.ws_url("/echo"))
        await ws.close(4000, "done here")
        assert ws.close_code == 4000  # echoed
        assert ws.state.name == "CLOSED"
    run(go())


def test_ping_answered_with_pong(server):
    async def go():
        async with websockets.connect(server.ws_url("/echo")) as ws:
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 5)
    run(go())


# -- raw frames: each violation gets its close code, others go on ----------


VIOLATIONS = [
    ("unmasked frame", frame(1, b"hi", mask=False), 1002),
    ("reserved bits", frame(1, b"hi", rsv=4), 1002),
    ("reserved opcode 3", frame(3, b"hi"), 1002),
    ("reserved opcode 11", frame(11, b"hi"), 1002),
    ("fragmented ping", frame(9, b"hi", fin=False), 1002),
    ("control frame too long", frame(9, b"p" * 126), 1002),
    ("continuation first", frame(0, b"hi"), 1002),
    ("text inside fragmented text", frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    ("bad utf-8", frame(1, b"\xce\xba\xff"), 1007),
    ("surrogate utf-8", frame(1, b"\xed\xa0\x80"), 1007),
    ("bad utf-8 across fragments", frame(1, b"\xce", fin=False) + frame(0, b"\xff"), 1007),
    ("unfinished utf-8", frame(1, b"ab\xce"), 1007),
    ("close code 1005", frame(8, struct.pack("!H", 1005)), 1002),
    ("close code 999", frame(8, struct.pack("!H", 999)), 1002),
    ("close code 2000", frame(8, struct.pack("!H", 2000)), 1002),
    ("close payload 1 byte", frame(8, b"\x03"), 1002),
    ("close reason bad utf-8", frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
]


@pytest.mark.parametrize("name,data,code", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_violation_closes_with_code(server, name, data, code):
    s, head = handshake(server.port)
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(data)
    expect_close(s, code)
    s.close()
    assert server.alive()
    async def still_echoing():
        async with websockets.connect(server.ws_url("/echo")) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
    run(still_echoing())


def test_bad_utf8_fails_fast(server):
    """The bad byte in the first fragment closes at once, before the end."""
    s, _ = handshake(server.port)
    s.sendall(frame(1, b"hello\xff", fin=False))
    expect_close(s, 1007)


def test_control_frames_between_fragments(server):
    s, _ = handshake(server.port)
    s.sendall(frame(1, b"Hel", fin=False) + frame(9, b"ping!") +
              frame(0, b"lo", fin=False) + frame(10, b"unsolicited") + frame(0, b"!"))
    got = []
    while True:
        fin, op, data = read_frame(s)
        got.append((op, data))
        if fin and op in (0, 1):
            break
    assert (10, b"ping!") in got
    assert b"".join(d for op, d in got if op in (0, 1)) == b"Hello!"
    s.sendall(frame(8, struct.pack("!H", 1000)))
    assert read_frame(s)[1] == 8


def test_zero_length_frames(server):
    s, _ = handshake(server.port)
    s.sendall(frame(1, b"", fin=False) + frame(0, b"") + frame(2, b"") + frame(9, b""))
    seen = [read_frame(s) for _ in range(3)]
    assert sorted(f[1] for f in seen) == [1, 2, 10]  # text, binary, pong
    assert all(f[2] == b"" and f[0] for f in seen)


def test_byte_at_a_time(server):
    s, _ = handshake(server.port)
    for b in frame(1, "κόσμε".encode() * 20):
        s.send(bytes([b]))
    got = b""
    while True:
        fin, op, data = read_frame(s)
        got += data
        if fin:
            break
    assert got == "κόσμε".encode() * 20


def test_payload_read_after_its_header(server):
    # the masking key ends one read, the payload fills the next: the key
    # must survive the read buffer being overwritten
    s, _ = handshake(server.port)
    data = bytes(range(256)) * 8
    for n in (100, 2048):
        f = frame(2, data[:n])
        head = 8 if n >= 126 else 6
        s.sendall(f[:head])
        time.sleep(0.2)
        s.sendall(f[head:])
        got = b""
        while True:
            fin, op, part = read_frame(s)
            got += part
            if fin:
                break
        assert got == data[:n]


def test_frames_right_behind_the_handshake(server):
    import base64
    import os
    import socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame(1, b"early"))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1)
    assert buf.startswith(b"HTTP/1.1 101")
    assert read_frame(s) == (True, 1, b"early")


def test_handshake_errors(server):
    raw = server.raw
    r = raw(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n"
            b"Connection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in r
    r = raw(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 400")
    r = raw(b"GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 400")
    assert server.alive()


def test_accept_header_rfc_example():
    from conftest import run_mpy
    r = run_mpy("from lws.roles.ws import accept_key\n"
                "print(accept_key(b'dGhlIHNhbXBsZSBub25jZQ==').decode())")
    assert r.stdout.strip() == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
