"""TLS footprint for make bench: ours (from .mpy) with a TLS vhost.

Measures the heap a TLS server needs (the smallest -X heapsize at which
a TLS handshake and request succeed), heap per established TLS
connection, handshake time, WSS against WS echo round trips, and that a
burst of handshakes beyond what the heap allows waits instead of failing.
"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host_tools"))
from lwstool import certs, unixport  # noqa: E402

APP = HERE / "peers" / "lws_app.py"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, mpy_path, static, cert, key, heap=None, log=None):
        self.port, self.tls_port = _free_port(), _free_port()
        argv = unixport.command(APP, [self.port, static, self.tls_port,
                                      cert, key], heap)
        env = unixport.environment(mpy_path)
        self.out = open(log, "wb") if log else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, env=env, stdout=self.out,
                                  stderr=subprocess.STDOUT)
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end:
            if self.p.poll() is not None:
                raise RuntimeError("server exited")
            try:
                socket.create_connection(("127.0.0.1", self.tls_port),
                                         0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(2)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def heap(self):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"GET /heap HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n")
            data = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        return int(data.split(b"\r\n\r\n")[1].split()[0])


def _ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def tls_get(port, path="/heap", keep=False):
    """One TLS request; returns (handshake seconds, socket or None)."""
    raw = socket.create_connection(("127.0.0.1", port), 20)
    t0 = time.monotonic()
    s = _ctx().wrap_socket(raw, server_hostname="localhost")
    hs = time.monotonic() - t0
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
        path.encode(), b"" if keep else b"Connection: close\r\n"))
    data = s.recv(4096)
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("bad TLS response %r" % data[:40])
    if keep:
        return hs, s
    s.close()
    return hs, None


def _ws_echo_rate(sock_factory, seconds):
    import base64
    s = sock_factory()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    mask = b"\x01\x02\x03\x04"
    payload = b"x" * 32
    frame = b"\x81\xa0" + mask + bytes(b ^ mask[i & 3]
                                        for i, b in enumerate(payload))
    want = b"\x81\x20" + payload
    n = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        s.sendall(frame)
        got = b""
        while len(got) < len(want):
            got += s.recv(len(want) - len(got))
        if got != want:
            raise RuntimeError("bad echo")
        n += 1
    s.close()
    return n / seconds


def measure(mpy_path, static, logs, seconds=3.0, quick=False):
    folder = Path(logs) / "tls"
    cert, key = certs.ensure_cert(folder)
    res = {}
    srv = Server(mpy_path, static, cert, key, log=folder / "ours-mpy.log")
    try:
        idle = srv.heap()
        hs = [tls_get(srv.tls_port)[0] for _ in range(5 if quick else 20)]
        res["handshake_ms"] = statistics.median(hs) * 1000
        base = srv.heap()
        open_ = [tls_get(srv.tls_port, keep=True)[1] for _ in range(10)]
        res["per_tls_conn_kb"] = (srv.heap() - base) / 10 / 1024
        for s in open_:
            s.close()
        res["heap_idle_kb"] = idle / 1024
        res["ws_echo"] = _ws_echo_rate(
            lambda: socket.create_connection(("127.0.0.1", srv.port), 10),
            seconds)
        res["wss_echo"] = _ws_echo_rate(
            lambda: _ctx().wrap_socket(socket.create_connection(
                ("127.0.0.1", srv.tls_port), 10), server_hostname="x"),
            seconds)
    finally:
        srv.stop()
    res["min_heap_k"] = _min_heap(mpy_path, static, cert, key, folder,
                                  quick)
    res["burst"] = _burst(mpy_path, static, cert, key, folder,
                          res["min_heap_k"])
    return res


def _works(mpy_path, static, cert, key, folder, k):
    try:
        srv = Server(mpy_path, static, cert, key, heap="%dK" % k,
                     log=folder / ("heap-%dK.log" % k))
    except RuntimeError:
        return False
    try:
        for _ in range(3):
            tls_get(srv.tls_port)
        return True
    except (OSError, RuntimeError, ssl.SSLError):
        return False
    finally:
        srv.stop()


def _min_heap(mpy_path, static, cert, key, folder, quick):
    """Smallest heapsize (K, step 8) serving TLS requests, or None."""
    lo, hi = 32, 256
    if not _works(mpy_path, static, cert, key, folder, hi):
        return None
    while hi - lo > 8:
        mid = (lo + hi) // 2 // 8 * 8
        if _works(mpy_path, static, cert, key, folder, mid):
            hi = mid
        else:
            lo = mid
    return hi


def _burst(mpy_path, static, cert, key, folder, min_k):
    """8 handshakes at once on a heap with room for few: all complete
    (the rest wait), none refused. Returns 'n/8 ok'."""
    if min_k is None:
        return "-"
    srv = Server(mpy_path, static, cert, key, heap="%dK" % (min_k + 16),
                 log=folder / "burst.log")
    ok = []
    try:
        def one():
            try:
                tls_get(srv.tls_port)
                ok.append(1)
            except (OSError, RuntimeError, ssl.SSLError):
                pass
        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    finally:
        srv.stop()
    return "%d/8 ok" % len(ok)


def table(res):
    lines = ["", "TLS (ours-mpy, ECDSA P-256, https/wss on the same app)",
             "  handshake, median            %8.1f ms" % res["handshake_ms"],
             "  heap idle, TLS vhost         %8.1f KB" % res["heap_idle_kb"],
             "  heap per TLS connection      %8.1f KB" % res["per_tls_conn_kb"],
             "  smallest heapsize for TLS    %8s K" % res["min_heap_k"],
             "  8 handshakes at once there   %8s (+16K)" % res["burst"],
             "  32 B echo WS / WSS           %8.0f / %.0f per s (WSS %.0f%%)"
             % (res["ws_echo"], res["wss_echo"],
                100 * res["wss_echo"] / max(res["ws_echo"], 1))]
    return "\n".join(lines)
