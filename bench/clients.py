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
        errors.append("%d clients not done in %.0f s" % (late, deadline))
    took = time.monotonic() - t0
    if errors:
        return False, "%s (%d errors)" % (errors[0], len(errors))
    return True, "%d clients ok in %.2f s" % (clients, took)


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
