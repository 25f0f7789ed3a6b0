"""HTTP clients for the benchmark (CPython): one-shot GETs, the heap probes,
the concurrent-clients check, and a wrk-like load loop used when wrk is
not installed. Every socket has a timeout; every loop is bounded."""
import selectors
import socket
import threading
import time

HOST = "127.0.0.1"


def request(path, close=False):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        path, HOST, "Connection: close\r\n" if close else "")).encode()


def parse_response(buf, eof=False):
    """The first complete response in buf as (status, body, keepalive, end),
    or None while it is incomplete. A body without Content-Length ends at
    eof (close-delimited)."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
    version, status = (lines[0].split(" ") + ["", ""])[:2]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    conn = headers.get("connection", "").lower()
    keep = ("keep-alive" in conn if version == "HTTP/1.0"
            else "close" not in conn)
    n = headers.get("content-length")
    if n is None:
        if not eof:
            return None
        end, keep = len(buf), False
    else:
        end = i + 4 + int(n)
        if len(buf) < end:
            return None
    return int(status or 0), bytes(buf[i + 4:end]), keep, end


def connect(port, timeout=10):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(s, path, close=False):
    """Send one GET on s and read its response: (status, body, keepalive)."""
    s.sendall(request(path, close))
    buf = bytearray()
    for _ in range(10000):
        r = parse_response(buf)
        if r:
            return r[:3]
        d = s.recv(65536)
        if not d:
            r = parse_response(buf, eof=True)
            if r:
                return r[:3]
            raise ConnectionError("closed before a whole response")
        buf += d
    raise ConnectionError("response too long")


def get(port, path, timeout=10):
    """One GET on a new connection: (status, body)."""
    with connect(port, timeout) as s:
        return exchange(s, path, close=True)[:2]


def heap(port, path):
    """The server's heap in use (bytes), from its 'ALLOC FREE' route."""
    status, body = get(port, path)
    if status != 200:
        raise ConnectionError("heap route answered %d" % status)
    return int(body.split()[0])


def is_open(s):
    """False once the peer has closed s (a pending EOF)."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def heap_with_conns(port, static, heap_path, n=50):
    """Open n connections, one GET of static on each, keep them open, then
    read the heap through another one. Returns (heap, still_open)."""
    socks = []
    try:
        for _ in range(n):
            s = connect(port)
            socks.append(s)
            status = exchange(s, static)[0]
            if status != 200:
                raise ConnectionError("static file answered %d" % status)
        used = heap(port, heap_path)
        return used, sum(is_open(s) for s in socks)
    finally:
        for s in socks:
            s.close()


def _client(port, path, expected, gets, fresh, errors, timeout):
    """gets keep-alive GETs (reconnecting when the server closes), then
    fresh GETs each on a new connection."""
    try:
        s = None
        for _ in range(gets):
            if s is None:
                s = connect(port, timeout)
            status, body, keep = exchange(s, path)
            if status != 200 or body != expected:
                errors.append("status %d, %d bytes" % (status, len(body)))
                return
            if not keep:
                s.close()
                s = None
        if s is not None:
            s.close()
        for _ in range(fresh):
            status, body = get(port, path, timeout)
            if status != 200 or body != expected:
                errors.append("status %d, %d bytes" % (status, len(body)))
                return
    except OSError as e:
        errors.append(repr(e))


def serve_clients(port, path, expected, clients=10, gets=20, fresh=2,
                  deadline=10.0, alive=lambda: True):
    """clients threads at once, each doing its GETs; all must get 200 and
    the expected body within deadline seconds (given up early when alive()
    turns False). Returns (ok, detail)."""
    errors = []
    threads = [threading.Thread(target=_client, daemon=True,
                                args=(port, path, expected, gets, fresh,
                                      errors, deadline))
               for _ in range(clients)]
    took = _run_threads(threads, deadline, alive, errors)
    if errors:
        return False, "%s (%d errors)" % (errors[0], len(errors))
    return True, "%d clients ok in %.2f s" % (clients, took)


def _run_threads(threads, deadline, alive, errors, on_late=None):
    """Start the client threads and wait for them, up to deadline seconds
    (given up early when alive() turns False); late ones are an error.
    Returns the seconds taken."""
    t0 = time.monotonic()
    for t in threads:
        t.start()
    t_end = t0 + deadline
    while any(t.is_alive() for t in threads) and time.monotonic() < t_end:
        if not alive():
            break
        time.sleep(0.02)
    late = sum(t.is_alive() for t in threads)
    if late:
        if on_late is not None:
            on_late()
        errors.append("%d clients not done in %.0f s" % (late, deadline))
    return time.monotonic() - t0


# -- a wrk-like closed-loop load generator (the fallback for wrk) -----------

class _Conn:
    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.sock.connect_ex((HOST, port))
        self.buf = bytearray()
        self.t0 = 0.0
        self.sent = False


def load(port, path, seconds, conns=10, close=False):
    """conns connections, each sending its next GET as soon as the previous
    answer is complete, for seconds; like `wrk -c conns --latency`."""
    req = request(path, close)
    sel = selectors.DefaultSelector()
    lat, stats = [], {"errors": 0, "non2xx": 0}

    def open_conn():
        c = _Conn(port)
        sel.register(c.sock, selectors.EVENT_WRITE, c)

    def reopen(c):
        sel.unregister(c.sock)
        c.sock.close()
        open_conn()

    for _ in range(conns):
        open_conn()
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for key, ev in sel.select(0.5):
            c = key.data
            try:
                if not c.sent:
                    c.sock.send(req)  # small: the socket takes it whole
                    c.t0, c.sent = time.monotonic(), True
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                d = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                stats["errors"] += 1
                reopen(c)
                continue
            c.buf += d
            r = parse_response(c.buf, eof=not d)
            if r is None:
                if not d:
                    stats["errors"] += 1
                    reopen(c)
                continue
            lat.append(time.monotonic() - c.t0)
            if not 200 <= r[0] < 400:
                stats["non2xx"] += 1
            del c.buf[:r[3]]
            c.sent = False
            if r[2]:
                sel.modify(c.sock, selectors.EVENT_WRITE, c)
            else:
                reopen(c)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    return {"requests": len(lat), "rps": len(lat) / seconds,
            "p99_ms": p99 * 1000 if p99 is not None else None,
            "errors": stats["errors"], "non2xx": stats["non2xx"]}


# -- WebSocket: handshake, prebuilt masked frames, echo loads --------------

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="        # RFC 6455's sample key
WS_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # ... and its answer
OP_TEXT, OP_BINARY, OP_CLOSE = 1, 2, 8


def ws_connect(port, path="/echo", timeout=10):
    """A handshaken WebSocket (blocking, with timeout); raises
    ConnectionError unless the server answers 101 with the right accept."""
    s = connect(port, timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n" % (
                      path.encode(), HOST.encode(), WS_KEY))
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(4096)
            if not d or len(buf) > 8192:
                raise ConnectionError("no whole upgrade answer")
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101") or \
                b"\r\nsec-websocket-accept: " + WS_ACCEPT.lower() \
                not in head.lower():
            raise ConnectionError("upgrade answered " + repr(head[:40]))
        if rest:
            raise ConnectionError("data before any frame was sent")
        return s
    except BaseException:
        s.close()
        raise


def ws_frame(op, payload, mask, fin=True):
    """A client frame: masked with the 4 bytes of mask."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        h = bytes((b0, 0x80 | n))
    elif n < 65536:
        h = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        h = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    k = int.from_bytes(mask, "little")
    m = (k.to_bytes(4, "little") * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little")
            ^ int.from_bytes(m, "little")).to_bytes(n, "little") if n else b""
    return h + mask + body


# a few fixed masks: a new one per frame is not needed to load a server
MASKS = [b"\x37\xfa\x21\x3d", b"\x9c\x05\xe1\x7b", b"\x00\xff\x5a\xa5",
         b"\xd4\x6e\x11\x82"]
CLOSE = ws_frame(OP_CLOSE, (1000).to_bytes(2, "big"), MASKS[0])


def payload(n, binary=False):
    """n bytes of deterministic payload (ASCII when not binary)."""
    if binary:
        return bytes((i * 7 + (i >> 8)) & 255 for i in range(n))
    return (b"0123456789abcdefghijklmnopqrstuvwxyz" * (n // 36 + 1))[:n]


def frames(op, data):
    return [ws_frame(op, data, m) for m in MASKS]


def server_frame(op, data):
    """What an echo of one unfragmented message looks like on the wire."""
    n = len(data)
    if n < 126:
        return bytes((0x80 | op, n)) + data
    if n < 65536:
        return bytes((0x80 | op, 126)) + n.to_bytes(2, "big") + data
    return bytes((0x80 | op, 127)) + n.to_bytes(8, "big") + data


class WsRx:
    """Server frames in, whole messages out: a message may come in
    fragments (opcodes 1 or 2, then 0) until a FIN frame."""

    def __init__(self):
        self.buf = bytearray()
        self.msg = bytearray()
        self.op = None

    def feed(self, d):
        """Returns (op, payload) of the message d completes, or None."""
        buf = self.buf
        buf += d
        while True:
            if len(buf) < 2:
                return None
            b0, b1 = buf[0], buf[1]
            if b1 & 0x80:
                raise ConnectionError("masked server frame")
            n, hl = b1 & 127, 2
            if n == 126:
                if len(buf) < 4:
                    return None
                n, hl = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return None
                n, hl = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < hl + n:
                return None
            op = b0 & 15
            if op >= 8:
                del buf[:hl + n]
                if op == OP_CLOSE:
                    raise ConnectionError("server closed the WebSocket")
                continue  # ping, pong
            if op > 2 or (op == 0) != (self.op is not None):
                raise ConnectionError("bad opcode sequence (%d)" % op)
            if self.op is None:
                self.op = op
            self.msg += memoryview(buf)[hl:hl + n]
            del buf[:hl + n]
            if b0 & 0x80:
                r = (self.op, bytes(self.msg))
                self.msg = bytearray()
                self.op = None
                return r


def ws_exchange(s, frame, op, data):
    """Send one prebuilt frame on a blocking WebSocket and check its echo."""
    s.sendall(frame)
    rx = WsRx()
    for _ in range(100000):
        d = s.recv(262144)
        if not d:
            raise ConnectionError("closed during an echo")
        r = rx.feed(d)
        if r is not None:
            if r != (op, data):
                raise ConnectionError("echo differs (op %d, %d bytes)" % (
                    r[0], len(r[1])))
            return
    raise ConnectionError("echo too long")


def _rate(count, t0, t1, c0, c1):
    wall = max(t1 - t0, 1e-9)
    return {"count": count, "seconds": round(wall, 3),
            "rate": count / wall, "client_cpu": round((c1 - c0) / wall, 2)}


def ws_echo_load(port, seconds, conns=1, size=32):
    """Round trips per second of a size-byte text echo on conns WebSockets
    at once, each sending its next frame once the last echo is back.

    Lean on purpose (the client must not be what limits): prebuilt masked
    frames, and an answer equal to the expected echo bytes counts at once;
    anything else is parsed as frames. One connection: blocking send and
    recv; more: one epoll loop."""
    data = payload(size)
    fs = frames(OP_TEXT, data)
    expect = server_frame(OP_TEXT, data)
    socks = []
    try:
        for _ in range(conns):
            socks.append(ws_connect(port))
        ws_exchange(socks[0], fs[0], OP_TEXT, data)  # a first, slow echo
        if conns == 1:
            return _echo_one(socks[0], seconds, fs, expect, data)
        return _echo_many(socks, seconds, fs, expect, data)
    finally:
        for s in socks:
            s.close()


def _check(r, data):
    if r[0] != OP_TEXT or r[1] != data:
        raise ConnectionError("echo differs (op %d, %d bytes)" % (
            r[0], len(r[1])))


def _echo_one(s, seconds, fs, expect, data):
    send, recv = s.send, s.recv
    n = 0
    c0, t0 = time.process_time(), time.monotonic()
    t_end = t0 + seconds
    t = t0
    while t < t_end:
        for i in range(64):
            send(fs[i & 3])
            d = recv(65536)
            if d != expect:
                rx = WsRx()
                for _ in range(1000):
                    if not d:
                        raise ConnectionError("closed during an echo")
                    r = rx.feed(d)
                    if r is not None:
                        _check(r, data)
                        break
                    d = recv(65536)
                else:
                    raise ConnectionError("echo too long")
        n += 64
        t = time.monotonic()
    return _rate(n, t0, t, c0, time.process_time())


def _echo_many(socks, seconds, fs, expect, data):
    import select
    ep = select.epoll()
    by_fd = {}
    rxs = {}
    try:
        for s in socks:
            s.setblocking(False)
            by_fd[s.fileno()] = s
            ep.register(s.fileno(), select.EPOLLIN)
        n = 0
        c0, t0 = time.process_time(), time.monotonic()
        t_end = t0 + seconds
        for i, s in enumerate(socks):
            s.send(fs[i & 3])
        t = t0
        while t < t_end:
            ready = ep.poll(1.0)
            if not ready:
                raise ConnectionError("no echo for 1 s")
            for fd, _ in ready:
                s = by_fd[fd]
                d = s.recv(65536)
                if d != expect:
                    if not d:
                        raise ConnectionError("closed during an echo")
                    rx = rxs.get(fd)
                    if rx is None:
                        rx = rxs[fd] = WsRx()
                    r = rx.feed(d)
                    if r is None:
                        continue
                    _check(r, data)
                n += 1
                s.send(fs[n & 3])
            t = time.monotonic()
        return _rate(n, t0, t, c0, time.process_time())
    finally:
        ep.close()


def ws_bulk(port, seconds, size=65536):
    """MiB/s of a size-byte binary echo on one WebSocket: send the message
    (reading while sending), read until all of it came back (in fragments
    or not), repeat for about seconds."""
    import select
    data = payload(size, binary=True)
    fs = frames(OP_BINARY, data)
    s = ws_connect(port)
    try:
        ws_exchange(s, fs[0], OP_BINARY, data)
        s.setblocking(False)
        p = select.poll()
        p.register(s, select.POLLIN)
        n = 0
        c0, t0 = time.process_time(), time.monotonic()
        t = t0
        while t - t0 < seconds:
            out = memoryview(fs[n & 3])
            rx = WsRx()
            r = None
            while r is None:
                if out:
                    p.modify(s, select.POLLIN | select.POLLOUT)
                if not p.poll(10000):
                    raise ConnectionError("no echo for 10 s")
                if out:
                    try:
                        out = out[s.send(out):]
                    except BlockingIOError:
                        pass
                    if not out:
                        p.modify(s, select.POLLIN)
                try:
                    d = s.recv(262144)
                except BlockingIOError:
                    continue
                if not d:
                    raise ConnectionError("closed during an echo")
                r = rx.feed(d)
            if r != (OP_BINARY, data):
                raise ConnectionError("echo differs (op %d, %d bytes)" % (
                    r[0], len(r[1])))
            n += 1
            t = time.monotonic()
        r = _rate(n, t0, t, c0, time.process_time())
        r["mib_s"] = r["rate"] * size / 2 ** 20
        return r
    finally:
        s.close()


def ws_heap_with_conns(port, heap_path, n=50):
    """The heap with no WebSocket open (after one has come and gone, so
    what the first one loads is not counted), then with n open, idle and
    handshaken. Returns (heap0, heapn, still_open)."""
    s = ws_connect(port)
    try:
        ws_exchange(s, frames(OP_TEXT, b"hi")[0], OP_TEXT, b"hi")
        s.sendall(CLOSE)
    finally:
        s.close()
    time.sleep(0.2)
    used0 = heap(port, heap_path)
    socks = []
    try:
        for _ in range(n):
            socks.append(ws_connect(port))
        time.sleep(0.2)
        used = heap(port, heap_path)
        return used0, used, sum(is_open(s) for s in socks)
    finally:
        for s in socks:
            s.close()


def _ws_client(port, echoes, big, barrier, errors, timeout):
    """One WebSocket: waits until all are open, then echoes echoes 32-byte
    texts and one big-byte binary; closes with a close frame."""
    try:
        s = ws_connect(port, timeout=timeout)
    except (OSError, ValueError) as e:
        errors.append("ws: %r" % e)
        barrier.abort()
        return
    try:
        barrier.wait()
        text = payload(32)
        fs = frames(OP_TEXT, text)
        for i in range(echoes):
            ws_exchange(s, fs[i & 3], OP_TEXT, text)
        if big:
            b = payload(big, binary=True)
            ws_exchange(s, ws_frame(OP_BINARY, b, MASKS[1]), OP_BINARY, b)
        s.sendall(CLOSE)
    except threading.BrokenBarrierError:
        errors.append("ws: another WebSocket failed to open")
    except (OSError, ValueError) as e:
        errors.append("ws: %r" % e)
    finally:
        s.close()


def serve_ws_clients(port, path, expected, ws_clients=10, echoes=20,
                     big=1024, http_clients=2, gets=20, fresh=2,
                     deadline=10.0, alive=lambda: True):
    """ws_clients WebSockets open at once, each echoing (see _ws_client),
    while http_clients HTTP clients do their GETs (see _client); all must
    succeed within deadline seconds. Returns (ok, detail)."""
    errors = []
    barrier = threading.Barrier(ws_clients, timeout=deadline)
    threads = [threading.Thread(target=_ws_client, daemon=True,
                                args=(port, echoes, big, barrier, errors,
                                      deadline))
               for _ in range(ws_clients)]
    threads += [threading.Thread(target=_client, daemon=True,
                                 args=(port, path, expected, gets, fresh,
                                       errors, deadline))
                for _ in range(http_clients)]
    took = _run_threads(threads, deadline, alive, errors, barrier.abort)
    if errors:
        return False, "%s (%d errors)" % (errors[0], len(errors))
    return True, "%d ws + %d http clients ok in %.2f s" % (
        ws_clients, http_clients, took)
