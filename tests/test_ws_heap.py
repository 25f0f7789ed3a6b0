"""Large WebSocket messages at the smallest heaps the README states: the
bench app from .mpy on the 64-bit port at SERVER_HEAP, the echo client
with lws frozen on the 32-bit build at CLIENT_HEAP. Messages far larger
than the heap stream through buffers made once, whole or in fragments of
any size, and the bench app serves HTTP beside 10 WebSockets there."""
import asyncio
import http.client
import os
import subprocess

import pytest
import websockets
from websockets.asyncio.server import serve

from conftest import REPO, arun, free_port, start

pytestmark = pytest.mark.timeout(240)

# the README's figures (Board fit): the bench app from .mpy on the 64-bit
# port from PyPI, and with lws frozen on the 32-bit build (make unix32)
HEAPS = {"mpy64": {"big": "144K", "ten": "144K"},
         "frozen32": {"big": "48K", "ten": "48K"}}
CLIENT_HEAP = "48K"  # the echo client, 32-bit, lws frozen
SIZES = (65536, 262144, 1 << 20)
FRAGS = (None, 64, 256, 1024, 4096, 65536)
CASES = [(n, b, f) for n in SIZES for b in (False, True) for f in FRAGS]


def message(size, binary):
    return os.urandom(size) if binary else "κx" * (size // 3) + "y" * (
        size % 3)


def pieces(data, frag):
    return data if frag is None else [data[i:i + frag]
                                      for i in range(0, len(data), frag)]


async def received(ws):
    # recv_streaming: an echo keeps the fragments, and websockets' recv()
    # gives up on a message of more than 4096 of them
    parts = [p async for p in ws.recv_streaming()]
    return parts[0][:0].join(parts)


@pytest.fixture(params=sorted(HEAPS))
def build(request):
    """(interpreter, module path) of one build: None for the PyPI port."""
    if request.param == "frozen32":
        from test_board_budget import interpreter
        return request.param, interpreter("esp32"), None
    from lwstool import mpy
    mpy.build()
    return request.param, None, mpy.BUILD


def bench_app(tmp_path, build, what):
    name, exe, path = build
    page = tmp_path / "www" / "f.txt"
    page.parent.mkdir(exist_ok=True)
    page.write_bytes(b"x" * 512)
    return start(tmp_path, script=REPO / "bench" / "peers" / "lws_app.py",
                 args=["{port}", page], heap=HEAPS[name][what], path=path,
                 exe=exe)


def test_server_echoes_big_messages_at_the_stated_heap(tmp_path, build):
    app = bench_app(tmp_path, build, "big")
    # the page first, as a browser asks for it (the file server's import
    # finds the heap whole; after megabytes of messages it may not)
    assert app.get("/f.txt")[2] == b"x" * 512

    async def go():
        bad = []
        for size, binary, frag in CASES:
            data = message(size, binary)
            async with websockets.connect(app.ws_url("/echo"),
                                          max_size=None, compression=None,
                                          max_queue=None) as ws:
                await ws.send(pieces(data, frag))
                back = await asyncio.wait_for(received(ws), 60)
                await ws.close()
                if back != data or ws.close_code != 1000:
                    bad.append((size, binary, frag, ws.close_code))
        return bad
    try:
        assert arun(go(), 200) == []
        assert app.get("/f.txt")[2] == b"x" * 512  # HTTP still served
        assert "heap full" not in app.log()
    finally:
        app.stop()


def test_http_and_ten_websockets_at_the_stated_heap(tmp_path, build):
    # make bench's trial for "HTTP + 10 WebSocket clients"
    import sys
    sys.path.insert(0, str(REPO / "bench"))
    import clients
    app = bench_app(tmp_path, build, "ten")
    try:
        ok, detail = clients.serve_ws_clients(
            app.port, "/f.txt", b"x" * 512,
            alive=lambda: app.proc.poll() is None)
        assert ok, detail
        assert "heap full" not in app.log()
    finally:
        app.stop()


def test_echo_client_streams_big_messages_at_the_stated_heap(tmp_path):
    from test_board_budget import interpreter
    exe = interpreter("esp32")
    # the script beside nothing: lws comes from the frozen modules
    (tmp_path / "test_client.py").write_bytes(
        (REPO / "firmware" / "test_client.py").read_bytes())
    results = []

    async def handler(ws):
        for size, binary, frag in CASES:
            data = message(size, binary)
            await ws.send(pieces(data, frag))
            results.append(((size, binary, frag),
                            await asyncio.wait_for(received(ws), 60) == data))
        await ws.close()

    async def go():
        port = free_port()
        async with serve(handler, "127.0.0.1", port, max_size=None,
                         max_queue=None, compression=None):
            p = await asyncio.create_subprocess_exec(
                str(exe), "-X", "heapsize=" + CLIENT_HEAP,
                str(tmp_path / "test_client.py"), "--echo",
                "ws://127.0.0.1:%d/" % port, cwd=str(tmp_path),
                stderr=subprocess.PIPE)
            _, err = await asyncio.wait_for(p.communicate(), 200)
            return p.returncode, err.decode()
    rc, err = arun(go(), 220)
    assert rc == 0, err
    assert [c for c, ok in results if not ok] == []
    assert len(results) == len(CASES)
