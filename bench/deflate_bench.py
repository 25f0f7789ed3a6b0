"""permessage-deflate in `make bench`: the heap each open WebSocket takes
with the extension negotiated and without, and how fast a 64 KiB
compressible text message is echoed (inflated by the server; sent back
compressed where the interpreter can compress), beside the same message
uncompressed. The bench app (peers/lws_app.py) on each interpreter.

    python bench/deflate_bench.py        # alone, or from bench.py
"""
import asyncio
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "host_tools"))

import websockets  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory)

from lwstool import unixport  # noqa: E402

MSG = ("The quick brown fox jumps over the lazy dog; permessage-deflate "
       "makes short work of text that says the same thing again. ") * 560
MSG = MSG[:65536]
CONNS = 10
ROUNDS = 20


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heap(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/heap" % port) as r:
        return int(r.read().split()[0])


async def _run(port, deflate):
    ext = [ClientPerMessageDeflateFactory(client_max_window_bits=True)] \
        if deflate else []
    url = "ws://127.0.0.1:%d/echo" % port
    kw = dict(compression=None, extensions=ext, max_size=None)
    warm = await websockets.connect(url, **kw)  # the modules it imports
    await warm.send(MSG)
    await warm.recv()
    await warm.close()
    base = _heap(port)
    conns = [await websockets.connect(url, **kw) for _ in range(CONNS)]
    for ws in conns:  # each has had a message: its state is made
        await ws.send("x" * 100)
        await ws.recv()
    per = (_heap(port) - base) / CONNS
    ws = conns[0]
    times = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        await ws.send(MSG)
        got = await ws.recv()
        times.append(time.perf_counter() - t)
        assert got == MSG
    for c in conns:
        await c.close()
    return per, len(MSG) / statistics.median(times) / (1 << 20)


def measure(exe=None, path=None):
    """{"deflate": (bytes per connection, MiB/s), "plain": (...)}"""
    port = _free_port()
    env = unixport.environment(path)
    p = subprocess.Popen(unixport.command(HERE / "peers" / "lws_app.py",
                                          [port, str(HERE / "peers")],
                                          exe=exe), env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                _heap(port)
                break
            except OSError:
                time.sleep(0.1)
        out = {}
        for name, d in (("plain", False), ("deflate", True)):
            out[name] = asyncio.run(_run(port, d))
        return out
    finally:
        p.send_signal(2)
        p.wait(10)


def table(res):
    lines = ["", "permessage-deflate (the bench app's echo, %d connections,"
             " a 64 KiB text message echoed):" % CONNS,
             "%-22s %18s %18s %12s %12s" % (
                 "interpreter", "heap/conn plain", "heap/conn deflate",
                 "plain MiB/s", "deflate MiB/s")]
    for k, r in res.items():
        if "error" in r:
            lines.append("%-22s failed: %s" % (k, r["error"]))
            continue
        lines.append("%-22s %16.0f B %16.0f B %12.1f %12.1f" % (
            k, r["plain"][0], r["deflate"][0], r["plain"][1],
            r["deflate"][1]))
    return "\n".join(lines)


def run_all():
    res = {}
    try:
        res["64-bit (PyPI)"] = measure()
    except Exception as e:  # a failed part must not hide the rest
        res["64-bit (PyPI)"] = {"error": repr(e)}
    from lwstool import unix32
    exe = unix32.find("esp32")
    if exe:
        try:
            res["32-bit esp32, frozen"] = measure(exe)
        except Exception as e:
            res["32-bit esp32, frozen"] = {"error": repr(e)}
    return res


if __name__ == "__main__":
    print(table(run_all()))
