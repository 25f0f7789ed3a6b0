"""Deterministic fuzzing of the server: a corpus of valid HTTP requests and
WebSocket frame sequences, mutators, a client that sends a case and
collects what comes back, and checks of the answer.

Every case is built from (seed, kind, index) alone, so a case can be
rebuilt by its number (FUZZ_SEED=s FUZZ_CASE=i) without running the ones
before it.
"""
import itertools
import random
import re
import socket
import struct
import time

# -- the HTTP corpus -------------------------------------------------------


def http_corpus(etag=b'"0-0"', lastmod=b"Thu, 01 Jan 2026 00:00:00 GMT"):
    """(name, request bytes, statuses of the answers) of valid requests."""
    h = b"Host: 127.0.0.1\r\n"
    ws = (b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n")
    return [
        ("get info", b"GET /t/info?a=1&b=%20x HTTP/1.1\r\n" + h +
         b"User-Agent: fuzz\r\nAccept: */*\r\n\r\n", [200]),
        ("head index", b"HEAD / HTTP/1.1\r\n" + h + b"\r\n", [200]),
        ("get 1.0", b"GET /index.html HTTP/1.0\r\n\r\n", [200]),
        ("get 1.0 keep-alive", b"GET /t/info HTTP/1.0\r\n"
         b"Connection: keep-alive\r\n\r\nGET /test.css HTTP/1.0\r\n\r\n",
         [200, 200]),
        ("post length", b"POST /t/body HTTP/1.1\r\n" + h +
         b"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
         b"hello world", [200]),
        ("post empty", b"POST /t/body HTTP/1.1\r\n" + h +
         b"Content-Length: 0\r\n\r\n", [200]),
        ("post chunked", b"POST /t/body HTTP/1.1\r\n" + h +
         b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
         b"6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", [200]),
        ("post continue", b"POST /t/body HTTP/1.1\r\n" + h +
         b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
         [100, 200]),
        ("pipeline", b"GET /t/info HTTP/1.1\r\n" + h + b"\r\n"
         b"HEAD /test.css HTTP/1.1\r\n" + h + b"\r\n"
         b"POST /t/body HTTP/1.1\r\n" + h + b"Content-Length: 3\r\n\r\nabc"
         b"POST /t/body HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked"
         b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
         b"GET /t/info HTTP/1.1\r\n" + h + b"Connection: close\r\n\r\n",
         [200, 200, 200, 200, 200]),
        ("absolute form", b"GET http://127.0.0.1:7681/t/info?q HTTP/1.1\r\n"
         + h + b"\r\n", [200]),
        ("range", b"GET /index.html HTTP/1.1\r\n" + h +
         b"Range: bytes=0-99\r\n\r\n", [206]),
        ("suffix range", b"GET /index.html HTTP/1.1\r\n" + h +
         b"Range: bytes=-100\r\nIf-Range: " + etag + b"\r\n\r\n", [206]),
        ("open range", b"GET /test.css HTTP/1.1\r\n" + h +
         b"Range: bytes=10-\r\n\r\n", [206]),
        ("if-none-match", b"GET /index.html HTTP/1.1\r\n" + h +
         b"If-None-Match: " + etag + b"\r\n\r\n", [304]),
        ("if-modified-since", b"GET /index.html HTTP/1.1\r\n" + h +
         b"If-Modified-Since: " + lastmod + b"\r\n\r\n", [304]),
        ("stream", b"GET /t/stream?n=3&size=10 HTTP/1.1\r\n" + h +
         b"\r\n", [200]),
        ("options star", b"OPTIONS * HTTP/1.1\r\n" + h + b"\r\n", [204]),
        ("status json", b"GET /status.json HTTP/1.1\r\n" + h +
         b"Accept-Encoding: gzip, deflate\r\n\r\n", [200]),
        ("escaped path", b"GET /./%69ndex.html HTTP/1.1\r\n" + h +
         b"\r\n", [200]),
        ("ws echo", b"GET /echo HTTP/1.1\r\n" + h + ws + b"\r\n"
         b"\x81\x85\x01\x02\x03\x04" + bytes(
             c ^ (1, 2, 3, 4)[i & 3] for i, c in enumerate(b"hello")),
         [101]),
        ("ws protocol", b"GET / HTTP/1.1\r\n" + h + ws +
         b"Sec-WebSocket-Protocol: nope, dumb-increment-protocol\r\n\r\n",
         [101]),
    ]


# -- mutating HTTP requests ------------------------------------------------

SPECIAL = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b":", b"\t", b"\x7f",
           b"\r\r", b"\n\n", b"\r\n\r\n", b"\n\r", b"\x80", b"\xff", b"\xc0",
           b"\xc3\xa9", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b'"', b"%",
           b"%00", b"%zz", b"/..", b";", b",", b"  ", b": ", b"\x1b"]

HUGE = [b"99999999999999999999", b"18446744073709551616",
        b"18446744073709551615", b"9223372036854775808", b"4294967296",
        b"4294967295", b"2147483648", b"999999999999999",
        b"1000000000000000", b"-1", b"+1", b"0x10", b"1e3", b" 5", b"5 ",
        b"00000000000000000005", b"", b"0", b"-0", b"1_0",
        b"\xd9\xa1", b"\xef\xbc\x95", b"ffffffffffffffff",
        b"fffffffffffffff", b"FFFFFFFF", b"7fffffffffffffff", b"1" * 100,
        b"5;x", b"5 ;", b"0" * 70 + b"5"]

HEADERS = [
    b"Host: a", b"Host:", b"Host: a b", b"Host: [::1]:80", b"Host: a@b",
    b"Host: \xc3\xa9", b"Content-Length: 0", b"Content-Length: 5",
    b"Content-Length: 99999999999999999999", b"Content-Length: 5, 5",
    b"Content-Length: -1", b"Content-Length:", b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, chunked",
    b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked ",
    b"Transfer-Encoding:chunked", b"Connection: close",
    b"Connection: keep-alive", b"Connection: Upgrade",
    b"Connection: upgrade, close", b"Upgrade: websocket",
    b"Upgrade: WebSocket, h2c", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Key: short", b"Sec-WebSocket-Key: \xff\xfe",
    b"Sec-WebSocket-Key: =====", b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Version: 8", b"Sec-WebSocket-Version: 13, 8",
    b"Sec-WebSocket-Protocol: echo", b"Sec-WebSocket-Protocol: lws-status",
    b"Sec-WebSocket-Protocol: lws-mirror-protocol",
    b"Sec-WebSocket-Protocol: ,,,", b"Sec-WebSocket-Protocol: \xc3\xa9",
    b"Sec-WebSocket-Extensions: permessage-deflate",
    b"Expect: 100-continue", b"Expect: 100-continue, 100-continue",
    b"Range: bytes=0-0", b"Range: bytes=-0", b"Range: bytes=5-1",
    b"Range: bytes=0-1,2-3", b"Range: bytes=99999999999999999999-",
    b"Range: bytes=--1", b"Range: bytes=-99999999999999999999",
    b"Range: bytes=", b"Range: lines=1-2", b"Range: bytes=\xd9\xa1-",
    b"If-None-Match: *", b"If-None-Match: \"x\", W/\"y\"",
    b"If-Range: \"x\"", b"If-Range: Thu, 01 Jan 1970 00:00:00 GMT",
    b"If-Modified-Since: garbage", b"Accept-Encoding: gzip",
    b"X-Long: " + b"a" * 3000, b"X-Empty:", b": novalue", b"X:y",
    b"X-Tab:\tv\t", b"X-Utf8: \xc3\xa9", b"X-Bad: \xff", b"Cookie: a=b; c",
    b"Authorization: Basic Zm9vOmJhcg==", b"Origin: http://evil",
]

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS",
           b"PATCH", b"TRACE", b"CONNECT", b"BREW", b"get", b"G\xffT",
           b"GET\x00", b"", b"GE T", b"P\xc3\xa9ST", b"X" * 300]

TARGETS = [b"/", b"*", b"http://127.0.0.1", b"http://127.0.0.1/t/info",
           b"https://x:99999/", b"http://", b"http:///t/info",
           b"http://a@b/", b"//", b"/%", b"/%zz", b"/%2e%2e/", b"/%2f",
           b"/%00", b"/%c3%a9", b"/%ff", b"/%-1", b"/%+f", b"/t/../..",
           b"/t/%2e%2e/%2e%2e/", b"/?", b"/t/stream?n=5&size=99999",
           b"/t/stream?n=-1&size=-1", b"/t/stream?n=x", b"/t/info#frag",
           b"/t/info?%zz=%ff", b"/echo", b"/status.json/x", b"/t",
           b"/t/", b"/t/heap", b"/.hidden", b"/test.css/", b"/index.html/.",
           b"/" + b"a" * 5000, b"/\xc3\xa9", b"/\x7f", b"/a\tb"]

VERSIONS = [b"HTTP/1.0", b"HTTP/1.1", b"HTTP/1.2", b"HTTP/0.9",
            b"HTTP/2", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/01.1", b"",
            b"http/1.1", b"HTTP/1.", b"HTTP/\xff.1", b"HTTP/1.1 "]

_NUM = re.compile(rb"[0-9A-Fa-f]+")


def _lines(b):
    """Offsets (start, end incl. the line break) of b's lines."""
    out = []
    i = 0
    while i < len(b):
        e = b.find(b"\n", i)
        e = len(b) if e < 0 else e + 1
        out.append((i, e))
        i = e
    return out


def _mutate_once(rng, b, corpus):
    n = len(b)
    k = rng.randrange(18)
    p = rng.randrange(n + 1) if n else 0
    if k == 0 and n:  # flip one bit
        q = rng.randrange(n)
        b[q] ^= 1 << rng.randrange(8)
    elif k == 1 and n:  # any byte
        b[rng.randrange(n)] = rng.randrange(256)
    elif k in (2, 3):  # a special byte sequence
        b[p:p] = rng.choice(SPECIAL)
    elif k == 4:  # a few random bytes, high ones often
        b[p:p] = bytes(rng.choice((rng.randrange(256), rng.randrange(128, 256),
                                   13, 10, 0, 32, 58))
                       for _ in range(rng.randrange(1, 9)))
    elif k == 5 and n:  # delete a span
        del b[p:p + rng.randrange(1, 17)]
    elif k == 6 and n:  # truncate
        del b[rng.randrange(n):]
    elif k in (7, 8):  # duplicate or drop a header line
        ls = _lines(bytes(b))[1:]
        if ls:
            s, e = rng.choice(ls)
            if k == 7:
                b[e:e] = b[s:e] * rng.choice((1, 1, 2, 50))
            else:
                del b[s:e]
    elif k in (9, 10):  # insert a header line after the request line
        ls = _lines(bytes(b))
        if ls:
            _, e = rng.choice(ls[:-1] or ls)
            b[e:e] = rng.choice(HEADERS) + rng.choice(
                (b"\r\n", b"\r\n", b"\n", b"\r"))
    elif k in (11, 12):  # a number (length, chunk size, range...) -> huge
        ms = list(_NUM.finditer(bytes(b)))
        if ms:
            m = rng.choice(ms)
            b[m.start():m.end()] = rng.choice(HUGE)
    elif k == 13:  # line ends
        new = rng.choice((b"\n", b"\r", b"\n\r", b"\r\r\n", b"\r\n "))
        s = bytes(b)
        if rng.random() < 0.5:
            b[:] = s.replace(b"\r\n", new)
        else:
            i = s.find(b"\r\n", p)
            if i >= 0:
                b[i:i + 2] = new
    elif k == 14:  # request line parts
        s = bytes(b)
        e = s.find(b"\r\n")
        if e < 0:
            e = len(s)
        parts = s[:e].split(b" ")
        if len(parts) == 3:
            j = rng.randrange(3)
            parts[j] = rng.choice((METHODS, TARGETS, VERSIONS)[j])
            b[:e] = b" ".join(parts)
    elif k == 15:  # case or repeat a span
        q = p + rng.randrange(1, 40)
        if rng.random() < 0.5:
            b[p:q] = bytes(b[p:q]).swapcase()
        else:
            b[p:q] = bytes(b[p:q]) * rng.randrange(2, 300)
    elif k == 16:  # splice another request in front or behind
        other = rng.choice(corpus)[1]
        if rng.random() < 0.5:
            b[len(b):] = other
        else:
            b[:0] = rng.choice((other, b"\r\n", b"\n", b"\r\n\r\n",
                                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1"))
    else:  # an empty body chunk line or garbage at the end
        b.extend(rng.choice((b"0\r\n\r\n", b"\r\n", b"zz\r\n",
                             b"ffffffffffffffff\r\n", b"\x00" * 10)))


class HttpCase:
    """One connection: the request in chunks sent delay apart, then our
    FIN (or, open_, the connection left open); rcvbuf: a small receive
    window, read slowly, so that the server's sends block."""

    def __init__(self, data, rng):
        self.chunks, self.delay = _split(rng, data)
        self.open_ = rng.random() < 0.03
        self.rcvbuf = rng.choice((2048, 4096)) if rng.random() < 0.04 \
            else None

    @property
    def data(self):
        return b"".join(self.chunks)

    def describe(self):
        return "request %s\n    sent as %d piece(s) %r, %.3fs apart%s%s" % (
            _short(self.data), len(self.chunks),
            [len(c) for c in self.chunks], self.delay,
            ", read slowly through a %d-byte window" % self.rcvbuf
            if self.rcvbuf else "", ", the connection left open"
            if self.open_ else ", then our FIN")


def case(data):
    """An HttpCase of data as it is: one send, then our FIN."""
    c = HttpCase(data, random.Random(0))
    c.chunks, c.delay, c.open_, c.rcvbuf = [data], 0.0, False, None
    return c


class MultiCase:
    """Several connections at once, their pieces interleaved in order (a
    list of connection numbers): more than the header pool holds."""

    def __init__(self, parts, order):
        self.parts, self.order = parts, order

    @property
    def data(self):
        return b"".join(p.data for p in self.parts)

    def describe(self):
        return "%d connections at once, pieces sent in the order %r:\n  " % (
            len(self.parts), self.order) + "\n  ".join(
                "%d: %s" % (j, p.describe()) for j, p in enumerate(self.parts))


def _http_request(rng, corpus):
    b = bytearray(rng.choice(corpus)[1])
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        _mutate_once(rng, b, corpus)
    return bytes(b[:20000])


def http_case(seed, i, corpus):
    """Case i: an HttpCase, or now and then a MultiCase."""
    rng = random.Random("%s:http:%d" % (seed, i))
    if rng.random() >= 0.06:
        return HttpCase(_http_request(rng, corpus), rng)
    parts = []
    for _ in range(rng.randrange(2, 7)):
        p = HttpCase(_http_request(rng, corpus), rng)
        p.open_ = False
        p.rcvbuf = None
        parts.append(p)
    order = [j for j, p in enumerate(parts) for _ in p.chunks]
    rng.shuffle(order)
    return MultiCase(parts, order)


def _split(rng, data):
    if len(data) < 2 or rng.random() >= 0.2:
        return [data], 0.0
    cuts = sorted(rng.sample(range(1, len(data)),
                             min(len(data) - 1, rng.randrange(1, 6))))
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    return chunks, rng.choice((0.0, 0.001, 0.003, 0.01))


# -- the client side -------------------------------------------------------


class Result:
    """What a case got back: data, and how the connection ended
    ('eof', 'reset', 'idle' when it stayed open, 'hang', 'busy')."""

    def __init__(self):
        self.data = b""
        self.end = None
        self.secs = 0.0
        self.closing = False

    def __repr__(self):
        return "<%s after %.2fs, %d bytes: %s>" % (
            self.end, self.secs, len(self.data), _short(self.data, 800))


def _send(s, chunks, delay):
    for j, c in enumerate(chunks):
        if j and delay:
            time.sleep(delay)
        try:
            s.sendall(c)
        except OSError:
            return False  # the server hung up already
    return True


def collect(s, res, open_=False, hang=3.5, idle=0.15, cap=1 << 20,
            slow=False):
    """Read until EOF. open_: the connection was not half-closed, so the
    server may keep it: stop after idle seconds of silence. Otherwise
    silence longer than hang seconds is a hang (the server should see our
    FIN and hang up); a server that keeps sending (a stream) is 'busy'.
    slow: read in small pieces, a little at a time."""
    t0 = time.monotonic()
    last = t0
    s.settimeout(idle if open_ else 0.5)
    while True:
        try:
            if slow:
                time.sleep(0.001)
            d = s.recv(512 if slow else 65536)
        except socket.timeout:
            now = time.monotonic()
            if open_:
                res.end = "idle"
                break
            if now - last > hang:
                res.end = "hang"
                break
            continue
        except OSError:
            res.end = "reset"
            break
        if not d:
            res.end = "eof"
            break
        res.data += d
        last = time.monotonic()
        if len(res.data) > cap or last - t0 > 2 * hang:
            res.end = "busy"
            break
    res.secs = time.monotonic() - t0
    return res


def _connect(port, rcvbuf=None):
    s = socket.socket()
    s.settimeout(2)
    if rcvbuf:  # before connecting, so the window stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def _fin(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def run_http(port, case):
    """Send an HttpCase; its Result. A MultiCase: the list of Results."""
    if isinstance(case, MultiCase):
        return _run_multi(port, case)
    res = Result()
    with _connect(port, case.rcvbuf) as s:
        if _send(s, case.chunks, case.delay) and not case.open_:
            _fin(s)
        collect(s, res, case.open_, slow=bool(case.rcvbuf))
    return res


def _run_multi(port, case):
    socks = [_connect(port) for _ in case.parts]
    try:
        sent = [0] * len(socks)
        for j in case.order:
            p = case.parts[j]
            if sent[j] >= 0:
                try:
                    socks[j].sendall(p.chunks[sent[j]])
                    sent[j] += 1
                except OSError:
                    sent[j] = -1  # the server hung up on this one
            if sent[j] == len(p.chunks) or sent[j] < 0:
                _fin(socks[j])
            if p.delay:
                time.sleep(p.delay)
        return [collect(s, Result()) for s in socks]
    finally:
        for s in socks:
            s.close()


class attach:
    """Give an AssertionError raised inside the result it was about (and
    a note), for the report."""

    def __init__(self, res, note=None):
        self.res, self.note = res, note

    def __enter__(self):
        return self

    def __exit__(self, t, e, tb):
        if isinstance(e, AssertionError):
            e.res = self.res
            if self.note:
                e.args = ("%s; %s" % (e, self.note),)
        return False


# -- checking HTTP answers -------------------------------------------------

_STATUS = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [A-Za-z][A-Za-z '-]*\Z")
_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\x20-\x7e\t]*\Z")


def _fields(head):
    d = {}
    for line in head.split(b"\r\n")[1:]:
        if not _FIELD.match(line):
            raise AssertionError("malformed header line %r" % line)
        k, _, v = line.partition(b":")
        d[k.lower()] = v.strip()
    return d


def check_http(req, res):
    """Every answer is a well-formed HTTP/1.1 response; after a 101, the
    WebSocket frames are well formed. Returns the statuses."""
    data = res.data
    pos = 0
    statuses = []
    cut = res.end in ("busy", "reset")  # we stopped reading, or lost data
    # a request that announces a body may end before it (then our FIN):
    # the server hangs up, and a response it was streaming stops there
    short = cut or res.end == "eof" and (b"content-length" in req.lower() or
                                         b"transfer-encoding" in req.lower())
    head_req = b"HEAD" in req
    while pos < len(data):
        e = data.find(b"\r\n\r\n", pos)
        if not data.startswith(b"HTTP/1.1 ", pos) and not (
                cut and b"HTTP/1.1 ".startswith(data[pos:pos + 9])):
            raise AssertionError("not a status line at %d: %r"
                                 % (pos, data[pos:pos + 80]))
        if e < 0:
            if cut:
                break
            raise AssertionError("incomplete response head: %r" % data[pos:])
        head = data[pos:e]
        line = head.split(b"\r\n")[0]
        m = _STATUS.match(line)
        if not m:
            raise AssertionError("malformed status line %r" % line)
        st = int(m.group(1))
        statuses.append(st)
        f = _fields(head)
        pos = e + 4
        if st == 101:
            check_frames(data[pos:], cut=True)
            break
        if st < 200:
            continue
        rest = len(data) - pos
        nxt = (lambda q: q == len(data) or data.startswith(b"HTTP/1.1 ", q)
               or (cut and b"HTTP/1.1 ".startswith(data[q:q + 9])))
        if st in (204, 304):
            n = 0
        elif head_req and nxt(pos) and (b"content-length" in f or
                                        b"transfer-encoding" in f):
            n = 0  # the answer to a HEAD
        elif f.get(b"transfer-encoding") == b"chunked":
            n = _chunked_len(data, pos)
            if n is None:
                if short:
                    break  # we stopped reading, or the request did
                raise AssertionError("chunked body cut short: %r"
                                     % data[pos:pos + 200])
        elif b"content-length" in f:
            n = int(f[b"content-length"])
            if rest < n:
                if short:
                    break  # we stopped reading, or the request did
                raise AssertionError("body shorter than Content-Length "
                                     "(%d of %d)" % (rest, n))
        else:
            break  # close-delimited
        pos += n
        if f.get(b"connection") == b"close":
            if pos < len(data):
                raise AssertionError("data after a Connection: close answer:"
                                     " %r" % data[pos:pos + 80])
            res.closing = True  # a whole answer that announced the close
        if not nxt(pos):
            raise AssertionError("junk after a body: %r" % data[pos:pos + 80])
    return statuses


def expects_answer(req):
    """True if req holds a whole request head that announces no body: the
    server must answer it (a status), not just hang up."""
    rest = req.lstrip(b"\r\n")
    ends = [i for i in (rest.find(b"\n\r\n"), rest.find(b"\n\n")) if i >= 0]
    if not ends:
        return False
    head = rest[:min(ends)].lower()
    return b"content-length" not in head and b"transfer-encoding" not in head


def _chunked_len(data, pos):
    """The length of the chunked body at pos; None if it is not all there."""
    q = pos
    while True:
        e = data.find(b"\r\n", q)
        if e < 0:
            return None
        if not re.match(rb"[0-9a-f]+\Z", data[q:e]):
            raise AssertionError("bad chunk size line %r" % data[q:e])
        sz = int(data[q:e], 16)
        q = e + 2 + sz
        if len(data) < q + 2:
            return None
        if data[q:q + 2] != b"\r\n":
            raise AssertionError("bad chunk framing at %d" % q)
        q += 2
        if sz == 0:
            return q - pos


# -- WebSocket frames --------------------------------------------------------


def valid_code(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or \
        3000 <= code <= 4999


def server_frames(data):
    """[(fin, op, payload)] of what the server sent; the rest that is not
    a whole frame."""
    out = []
    pos = 0
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        n = b1 & 127
        h = 2
        if b1 & 0x80:
            raise AssertionError("masked server frame %r" % data[pos:pos + 16])
        if b0 & 0x70:
            raise AssertionError("RSV bits in a server frame")
        if n == 126:
            if len(data) - pos < 4:
                break
            n = struct.unpack_from("!H", data, pos + 2)[0]
            h = 4
        elif n == 127:
            if len(data) - pos < 10:
                break
            n = struct.unpack_from("!Q", data, pos + 2)[0]
            h = 10
        if len(data) - pos < h + n:
            break
        op = b0 & 15
        out.append((bool(b0 & 0x80), op, data[pos + h:pos + h + n]))
        pos += h + n
    return out, data[pos:]


def check_frames(data, cut=False):
    """Server frames are well formed: known opcodes, whole control frames,
    a close frame last with a valid code. Returns the frames."""
    frames, rest = server_frames(data)
    for j, (fin, op, p) in enumerate(frames):
        if op not in (0, 1, 2, 8, 9, 10):
            raise AssertionError("server sent opcode %d" % op)
        if op >= 8 and (not fin or len(p) > 125):
            raise AssertionError("bad server control frame %r" % (frames[j],))
        if op == 8:
            if len(p) == 1 or (len(p) >= 2 and not valid_code(
                    struct.unpack("!H", p[:2])[0])):
                raise AssertionError("close frame with a bad code: %r" % p)
            if j != len(frames) - 1 or rest:
                raise AssertionError("frames after the server's close")
    if rest and not cut:
        raise AssertionError("a partial frame at the end: %r" % rest[:40])
    return frames


class F:
    """A client frame: fin, rsv, opcode, masked, payload; length says
    another length than the payload's (a lie), cut sends only that many
    bytes of the whole frame."""

    def __init__(self, op, payload=b"", fin=True, rsv=0, mask=True,
                 length=None):
        self.op, self.payload, self.fin = op, payload, fin
        self.rsv, self.mask, self.length = rsv, mask, length
        self.cut = None

    def header(self):
        n = len(self.payload) if self.length is None else self.length
        b0 = (0x80 if self.fin else 0) | (self.rsv << 4) | self.op
        mb = 0x80 if self.mask else 0
        if n < 126:
            return struct.pack("!BB", b0, mb | n)
        if n < 65536:
            return struct.pack("!BBH", b0, mb | 126, n)
        return struct.pack("!BBQ", b0, mb | 127, n)

    def encode(self, rng):
        h = self.header()
        if self.mask:
            key = bytes(rng.randrange(256) for _ in range(4))
            p = bytes(c ^ key[j & 3] for j, c in enumerate(self.payload))
            out = h + key + p
        else:
            out = h + self.payload
        return out if self.cut is None else out[:self.cut]

    def __repr__(self):
        s = "F(%d, %r" % (self.op, self.payload[:40] + (
            b"..." if len(self.payload) > 40 else b""))
        for k, d in (("fin", True), ("rsv", 0), ("mask", True),
                     ("length", None), ("cut", None)):
            if getattr(self, k) != d:
                s += ", %s=%r" % (k, getattr(self, k))
        return s + ")"


TEXTS = ["", "hello", "κόσμε", "€uro", "\U0001f600 smile", "a" * 125,
         "ü" * 70, "x" * 126, "日本語テキスト"]
BAD_UTF8 = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80",
            b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"a\xc3(b"]
GOOD_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
              3000, 3999, 4000, 4999]
BAD_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
             5000, 65535]


def _payload(rng):
    r = rng.random()
    if r < 0.7:
        n = rng.randrange(0, 130)
    elif r < 0.95:
        n = rng.randrange(126, 5000)
    else:
        n = rng.randrange(65530, 70000)
    return bytes(rng.randrange(256) for _ in range(min(n, 300))) * (
        n // 300 + 1) if n > 300 else bytes(rng.randrange(256)
                                            for _ in range(n))


def _text(rng):
    t = rng.choice(TEXTS)
    if rng.random() < 0.1:
        t = t * rng.randrange(2, 400)
    return t.encode()


def _fragments(rng, data, text):
    """data in 2..5 pieces (a text message possibly split inside a
    character), maybe with pings between them."""
    k = rng.randrange(2, 6)
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(k - 1))
    parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    out = []
    for j, p in enumerate(parts):
        op = (1 if text else 2) if j == 0 else 0
        out.append(F(op, p, fin=j == len(parts) - 1))
        if j < len(parts) - 1 and rng.random() < 0.3:
            out.append(F(rng.choice((9, 9, 10)), _small(rng)))
    return out


def _small(rng):
    return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 4, 125))))


def _segment(rng):
    """A few frames: something valid or one of the ways to be wrong."""
    k = rng.randrange(24)
    if k < 4:
        return [F(1, _text(rng))]
    if k < 6:
        return [F(2, _payload(rng))]
    if k < 9:
        text = rng.random() < 0.5
        return _fragments(rng, _text(rng) if text else _payload(rng), text)
    if k == 9:
        return [F(rng.choice((9, 10)), _small(rng))]
    if k == 10:  # reserved bits, on data or control
        return [F(rng.choice((1, 2, 9, 8)), b"\x03\xe8" if rng.random() < .5
                  else b"x", rsv=rng.randrange(1, 8))]
    if k == 11:
        return [F(rng.choice((3, 4, 5, 6, 7, 11, 12, 13, 14, 15)),
                  _small(rng), fin=rng.random() < 0.8)]
    if k == 12:  # unmasked
        return [F(rng.choice((1, 2, 9)), b"abc", mask=False)]
    if k == 13:  # fragmented control
        return [F(rng.choice((8, 9, 10)), b"\x03\xe8", fin=False)]
    if k == 14:  # control frame too long
        return [F(rng.choice((8, 9, 10)), b"\x03\xe8" + b"r" * rng.randrange(
            124, 300))]
    if k == 15:  # continuation without a message; or a new one inside one
        if rng.random() < 0.5:
            return [F(0, b"cont", fin=rng.random() < 0.5)]
        return [F(1, b"start", fin=False), F(rng.choice((1, 2)), b"again")]
    if k == 16:  # invalid UTF-8, whole or across fragments
        bad = rng.choice(BAD_UTF8)
        data = rng.choice((b"", b"ok ", "κό".encode())) + bad + \
            rng.choice((b"", b" tail"))
        if rng.random() < 0.5:
            return [F(1, data)]
        return _fragments(rng, data, True)
    if k == 17:  # close frames, good and bad
        r = rng.random()
        if r < 0.2:
            return [F(8, b"")]
        if r < 0.35:
            return [F(8, bytes((rng.randrange(256),)))]
        if r < 0.6:
            return [F(8, struct.pack("!H", rng.choice(BAD_CODES)))]
        if r < 0.75:
            return [F(8, struct.pack("!H", rng.choice(GOOD_CODES)) +
                      rng.choice(BAD_UTF8))]
        return [F(8, struct.pack("!H", rng.choice(GOOD_CODES)) +
                  rng.choice((b"", b"bye", "κόσμε".encode(), b"r" * 123)))]
    if k == 18:  # a 64-bit length with the top bit set, or just huge
        big = rng.choice((1 << 63, (1 << 64) - 1, 1 << 62, 1 << 40, 70000))
        return [F(rng.choice((1, 2)), b"abcdef", length=big)]
    if k == 19:  # a length lie: the payload is shorter than said
        p = _payload(rng)
        return [F(rng.choice((1, 2)), p[:len(p) // 2], length=len(p) + 1)]
    if k == 20:  # a frame that is cut off (header or payload)
        f = F(rng.choice((1, 2, 8, 9)), _payload(rng)[:200])
        f.cut = rng.randrange(1, len(f.header()) + 4 + len(f.payload))
        return [f]
    if k == 21:  # pings and pongs in between
        return [F(9, _small(rng)), F(10, b"unsolicited"), F(9, b"p")]
    if k == 22:  # a fragmented message interleaved with a ping, then data
        return [F(2, b"a", fin=False), F(9, b"mid"), F(0, b"b", fin=False),
                F(10, b""), F(0, b"c")]
    return [F(1, b"", fin=False), F(0, b""), F(2, b"")]  # empty fragments


# the test server's other protocols: their largest message (0: any)
PROTOCOLS = {"lws-mirror-protocol": 256, "dumb-increment-protocol": 0,
             "lws-status": 0}


class WsCase:
    """Frames after a real handshake (to /echo, or proto by name; glued:
    in the same send as the handshake), as a stream in chunks sent delay
    apart, then our FIN; mutated: the stream's bytes were mutated after it
    was built (no model of the answer then)."""

    def __init__(self, frames, stream, mutated, chunks, delay, glued,
                 proto=None):
        self.frames, self.stream, self.mutated = frames, stream, mutated
        self.chunks, self.delay, self.glued = chunks, delay, glued
        self.proto = proto

    @property
    def data(self):
        return self.stream

    def describe(self):
        return ("%s: frames %r%s\n    stream %s\n    sent as %d piece(s), "
                "%.3fs apart%s, then our FIN" % (
                    self.proto or "echo", self.frames,
                    " (then bytes mutated)" if self.mutated else "",
                    _short(self.stream), len(self.chunks), self.delay,
                    ", glued to the handshake" if self.glued else ""))


def ws_case(seed, i):
    """Case i, a WsCase."""
    rng = random.Random("%s:ws:%d" % (seed, i))
    frames = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6))):
        frames += _segment(rng)
    # a cut-off frame ends the stream
    for j, f in enumerate(frames):
        if f.cut is not None or f.length is not None:
            del frames[j + 1:]
            break
    stream = b"".join(f.encode(rng) for f in frames)
    mutated = rng.random() < 0.25
    if mutated:
        b = bytearray(stream)
        for _ in range(rng.randrange(1, 4)):
            n = len(b)
            k = rng.randrange(5)
            p = rng.randrange(n + 1)
            if k == 0 and n:
                b[rng.randrange(n)] ^= 1 << rng.randrange(8)
            elif k == 1 and n:
                b[rng.randrange(n)] = rng.randrange(256)
            elif k == 2:
                b[p:p] = bytes(rng.randrange(256)
                               for _ in range(rng.randrange(1, 10)))
            elif k == 3 and n:
                del b[p:p + rng.randrange(1, 10)]
            else:
                del b[p:]
        stream = bytes(b)
    chunks, delay = _split(rng, stream)
    if rng.random() < 0.15 and len(stream) > 1:  # the head byte by byte
        k = rng.randrange(1, min(len(stream), 10) + 1)
        chunks = [stream[j:j + 1] for j in range(k)] + [stream[k:]]
        delay = 0.001
    proto = rng.choice(sorted(PROTOCOLS)) if rng.random() < 0.2 else None
    return WsCase(frames, stream, mutated, chunks, delay, rng.random() < 0.1,
                  proto)


# -- the model: what the echo server must answer -----------------------------


class Expect:
    """What the server answers to a frame sequence: the messages it echoes,
    the pongs, its close (None: none; b'' an empty one, else the code),
    the message in progress when it stopped (a prefix of it may come back),
    and for a cut-off end, what else it may answer (None: no close)."""

    def __init__(self):
        self.msgs = []
        self.pongs = []
        self.close = None
        self.partial = None
        self.maybe = set()

    def __repr__(self):
        return "<expect msgs=%r pongs=%r close=%r or %r>" % (
            [(o, m[:20]) for o, m in self.msgs], self.pongs, self.close,
            sorted(self.maybe, key=repr))


def _utf8_ok(data, final):
    """data is valid UTF-8 (final), or can still become valid: an
    incomplete last character must be the start of a valid one (RFC 6455
    8.1: fail as soon as the text cannot be valid any more)."""
    i = len(data) - 1
    while i >= 0 and len(data) - i <= 3 and 0x80 <= data[i] < 0xc0:
        i -= 1
    tail = data[i:] if i >= 0 and data[i] >= 0xc0 else b""
    need = 2 if tail[:1] and tail[0] < 0xe0 else 3 if tail[:1] and \
        tail[0] < 0xf0 else 4
    if final or not tail or len(tail) >= need:
        try:
            data.decode("utf-8")
            return True
        except UnicodeError:
            return False
    try:
        data[:i].decode("utf-8")
    except UnicodeError:
        return False
    conts = (0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf)
    for rest in itertools.product(conts, repeat=need - len(tail)):
        try:
            (tail + bytes(rest)).decode("utf-8")
            return True
        except UnicodeError:
            pass
    return False


def _violation(f, msg_op, msg_len=0, mx=0):
    """The close code a whole frame's header earns, or None."""
    if f.rsv or not f.mask:
        return 1002
    n = len(f.payload) if f.length is None else f.length
    if n >> 63:
        return 1002
    if f.op >= 8:
        if f.op > 10 or not f.fin or n > 125:
            return 1002
    elif f.op > 2:
        return 1002
    elif f.op == 0 and msg_op is None:
        return 1002
    elif f.op != 0 and msg_op is not None:
        return 1002
    elif mx and (msg_len if f.op == 0 else 0) + n > mx:
        return 1009
    return None


def model(frames, mx=0):
    """What the server answers to frames (mx: the protocol's
    max_message_size)."""
    ex = Expect()
    msg_op = None
    msg = b""
    for f in frames:
        whole = len(f.header()) + (4 if f.mask else 0) + len(f.payload)
        short = (f.cut is not None and f.cut < whole) or f.length is not None
        code = _violation(f, msg_op, len(msg), mx)
        if short:
            # only part of the frame is sent, then our FIN: the server
            # must see a fault in a whole header; it may see one in a part
            # of a header, or bad UTF-8 in a part of the payload
            hlen = len(f.header()) + (4 if f.mask else 0)
            sent = f.cut if f.cut is not None else hlen + len(f.payload)
            if code is not None:
                if sent >= hlen:
                    ex.close = code
                elif sent >= 2:
                    ex.maybe.add(code)
                ex.partial = msg if msg_op is not None else None
                return ex
            if f.op < 8:
                part = f.payload[:max(0, sent - hlen)]
                ex.partial = (msg if f.op == 0 else b"") + part
                if (f.op == 1 or f.op == 0 and msg_op == 1) and \
                        not _utf8_ok(ex.partial, False):
                    ex.maybe.add(1007)
            else:
                ex.partial = msg if msg_op is not None else None
            return ex
        if code is not None:
            ex.close = code
            ex.partial = msg if msg_op is not None else None
            return ex
        if f.op == 9:
            ex.pongs.append(f.payload)
        elif f.op == 8:
            p = f.payload
            if len(p) == 1:
                ex.close = 1002
            elif len(p) >= 2:
                c = struct.unpack("!H", p[:2])[0]
                if not valid_code(c):
                    ex.close = 1002
                elif not _utf8_ok(p[2:], True):
                    ex.close = 1007
                else:
                    ex.close = c
            else:
                ex.close = b""
            ex.partial = msg if msg_op is not None else None
            return ex
        elif f.op < 8:
            if f.op:
                msg_op = f.op
                msg = b""
            msg += f.payload
            if msg_op == 1 and not _utf8_ok(msg, f.fin):
                ex.close = 1007
                ex.partial = msg
                return ex
            if f.fin:
                ex.msgs.append((msg_op, msg))
                msg_op = None
                msg = b""
    ex.partial = msg if msg_op is not None else None
    return ex


def check_ws(ex, frames, end, echo=True):
    """The server's frames against the model. end: how the connection
    ended; after a reset, frames may be missing at the end. echo: the
    messages come back as they were sent (else they are not checked)."""
    got, pongs = [], []
    close = None
    cur = None
    for fin, op, p in frames:
        if op == 9:
            raise AssertionError("the server pinged")
        if op == 10:
            pongs.append(p)
        elif op == 8:
            close = p if len(p) < 2 else struct.unpack("!H", p[:2])[0]
        else:
            if op == 0 and cur is None or op != 0 and cur is not None:
                raise AssertionError("server fragments out of order")
            if op:
                cur = [op, b""]
            cur[1] += p
            if fin:
                got.append(tuple(cur))
                cur = None
    lossy = end != "eof"
    want = ex.msgs
    if not echo:
        got, want, cur = [], [], None
    if got != want and not (lossy and want[:len(got)] == got):
        raise AssertionError("echoed %r, wanted %r" % (
            [(o, m[:40]) for o, m in got], [(o, m[:40]) for o, m in want]))
    if cur is not None:
        of = want[len(got)][1] if len(got) < len(want) else ex.partial
        if of is None or not of.startswith(cur[1]):
            raise AssertionError("echoed a piece %r of no message (%r)"
                                 % (cur[1][:40], (of or b"")[:40]))
    if pongs != ex.pongs and not (lossy and ex.pongs[:len(pongs)] == pongs):
        raise AssertionError("pongs %r, wanted %r" % (pongs, ex.pongs))
    ok = {ex.close} | ex.maybe
    if close not in ok and not (lossy and close is None):
        raise AssertionError("server close %r, wanted %r" % (
            close, sorted(ok, key=repr)))


def ws_request(path=b"/echo", proto=None):
    return (b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n" +
            (b"Sec-WebSocket-Protocol: %s\r\n" % proto.encode()
             if proto else b"") + b"\r\n")


def run_ws(port, case):
    """Handshake to /echo, send the case's chunks, half-close, read to EOF.
    Returns (101 head, Result with what came after it)."""
    res = Result()
    chunks = case.chunks
    with _connect(port) as s:
        hs = ws_request(b"/", case.proto) if case.proto else ws_request()
        if case.glued:
            chunks = [hs + chunks[0]] + chunks[1:]
        else:
            s.sendall(hs)
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(4096)
                if not d:
                    raise AssertionError("closed during handshake: %r" % head)
                head += d
            res.data = head
        if _send(s, chunks, case.delay):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        collect(s, res)
    head, sep, rest = res.data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101 "):
        raise AssertionError("no 101 to the handshake: %r" % res.data[:200])
    res.data = rest
    return head, res


def _short(b, n=1500):
    r = repr(b)
    return r if len(r) <= n else r[:n] + "... (%d bytes)" % len(b)


def describe(case):
    """A case as text to replay it by hand: the bytes as sent."""
    return case.describe()
