"""The WebSocket protocol API from user code: close(code, reason), the
peer-close callback, close timeout, rx flow control, per-connection data."""
import asyncio
import struct
import time

import pytest
import websockets

from conftest import free_port, start
from wsraw import frame, handshake, read_frame

pytestmark = pytest.mark.timeout(60)

APP = """
import lws

class Ctl(lws.Protocol):
    name = "ctl"
    rx_buffer_size = 1000

    def new_user(self, conn):
        return {"n": 0}

    def on_receive(self, conn, data):
        msg = bytes(data).decode()
        conn.user["n"] += 1
        if conn.user.get("big"):
            msg = "big"
        if msg.startswith("close:"):
            _, code, reason = msg.split(":", 2)
            conn.close(int(code), reason)
        elif msg.startswith("pause:"):
            conn.rx_flow_control(False)
            t = []
            def resume():
                conn.rx_flow_control(True)
                conn.ctx.cancel(t[0])
            t.append(conn.ctx.every(int(msg[6:]), resume))
        elif msg == "count":
            conn.send_text(str(conn.user["n"]))
        elif msg == "ping-me":
            conn.send_frame(9, b"from the server")
        elif msg.startswith("big"):
            conn.user["big"] = not conn.is_final_fragment()
            # a long message arrives in pieces of rx_buffer_size
            conn.send_text("%d %d %d %d" % (len(data), conn.is_first_fragment(),
                           conn.is_final_fragment(), conn.remaining_packet_payload()))
        else:
            conn.send_text(msg)

    def on_filter_protocol_connection(self, conn, req):
        if req.headers.get("origin") == "http://evil.example":
            return False

    def on_established(self, conn):
        conn.user["ua"] = conn.req.headers.get("user-agent")

    def on_peer_initiated_close(self, conn, code, reason):
        print("peer close", code, bytes(reason).decode())
        if reason == b"no-echo":
            return False

class Slices(lws.Protocol):
    # answers each piece with itself, a slice of it and itself again:
    # only the piece itself may be framed where it lies in the read buffer
    name = "slices"
    rx_buffer_size = 2000

    def on_receive(self, conn, data):
        conn.send_binary(data)
        conn.send_binary(data[1:])
        conn.send_binary(data)

ctx = lws.Context(port={port}, protocols=[Ctl(), Slices()],
                  ws_close_timeout=1)
ctx.run()
"""


@pytest.fixture
def app(tmp_path):
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text(APP.replace("{port}", str(port)))
    s = start(tmp_path, script=script, port=port)
    yield s
    s.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_server_close_with_code_and_reason(app):
    async def go():
        ws = await websockets.connect("ws://127.0.0.1:%d/" % app.port)
        await ws.send("close:4001:seeya")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4001 and ws.close_reason == "seeya"
    run(go())


def test_close_reason_is_cut_to_123_bytes(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(1, ("close:1000:" + "r" * 200).encode()))
    fin, op, data = read_frame(s)
    assert op == 8 and struct.unpack("!H", data[:2])[0] == 1000
    assert data[2:] == b"r" * 123


def test_close_timeout_when_peer_never_answers(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(1, b"close:1001:going"))
    t0 = time.monotonic()
    assert read_frame(s)[1] == 8
    assert read_frame(s) is None  # we never answered: dropped after ~1 s
    assert 0.7 < time.monotonic() - t0 < 3


def test_peer_close_echoed_or_not(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(8, struct.pack("!H", 4444) + b"bye"))
    fin, op, data = read_frame(s)
    assert op == 8 and data == struct.pack("!H", 4444)  # code echoed
    assert read_frame(s) is None
    s, _ = handshake(app.port, "/")
    s.sendall(frame(8, struct.pack("!H", 1000) + b"no-echo"))
    fin, op, data = read_frame(s)
    assert op == 8 and data == b""  # the protocol chose not to echo
    assert "peer close 4444 bye" in app.log()


def test_rx_flow_control(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(1, b"pause:600"))
    time.sleep(0.1)
    t0 = time.monotonic()
    s.sendall(frame(1, b"after"))
    assert read_frame(s) == (True, 1, b"after")
    assert time.monotonic() - t0 > 0.4  # held back while paused


def test_per_connection_user_data(app):
    async def go():
        a = await websockets.connect("ws://127.0.0.1:%d/" % app.port)
        b = await websockets.connect("ws://127.0.0.1:%d/" % app.port)
        for _ in range(3):
            await a.send("x")
            await a.recv()
        await a.send("count")
        await b.send("count")
        assert (await a.recv(), await b.recv()) == ("4", "1")
        await a.close()
        await b.close()
    run(go())


def test_origin_filter_refuses_with_403(app):
    async def go():
        with pytest.raises(websockets.InvalidStatus) as e:
            await websockets.connect("ws://127.0.0.1:%d/" % app.port,
                                     origin="http://evil.example")
        assert e.value.response.status_code == 403
        ok = await websockets.connect("ws://127.0.0.1:%d/" % app.port,
                                      origin="http://good.example")
        await ok.close()
    run(go())


def test_ping_from_user_code(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(1, b"ping-me"))
    assert read_frame(s) == (True, 9, b"from the server")


def test_long_message_in_pieces_with_fragment_flags(app):
    s, _ = handshake(app.port, "/")
    s.sendall(frame(1, b"big" + b"x" * 2497))  # 2500 bytes, pieces of 1000
    got = [read_frame(s)[2].decode() for _ in range(3)]
    sizes = [tuple(int(x) for x in g.split()) for g in got]
    assert [z[0] for z in sizes] == [1000, 1000, 500]
    assert [z[1] for z in sizes] == [1, 0, 0]      # first fragment
    assert [z[2] for z in sizes] == [0, 0, 1]      # final fragment
    assert [z[3] for z in sizes] == [1500, 500, 0]  # payload still to come


def test_replies_made_of_a_piece_and_slices_of_it(app):
    data = bytes(range(256)) * 24  # 6144 B: pieces of at most 2000
    s, head = handshake(app.port, "/", "slices")
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(frame(2, data))
    pieces = []
    while sum(map(len, pieces)) < len(data):
        p, cut, again = (read_frame(s)[2] for _ in range(3))
        assert 0 < len(p) <= 2000
        assert (cut, again) == (p[1:], p)
        pieces.append(p)
    assert b"".join(pieces) == data
    assert max(map(len, pieces)) > 1460  # framed where it lay, too
