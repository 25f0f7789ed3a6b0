"""The HTTP/1.1 server role (RFC 7230): request heads, bodies, responses."""
import time
from .. import log

_HEAD = const(0)     # waiting for a request head
_REQ = const(1)      # a request is being served (body in, response out)
_CLOSING = const(2)  # last bytes going out, then close
_LINGER = const(3)   # all sent: wait briefly for the peer to close

_LINGER_MS = const(1000)
_MAX_CHUNK_LINE = const(64)

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
    204: "No Content", 206: "Partial Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long",
    416: "Range Not Satisfiable", 426: "Upgrade Required",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

# RFC 7230 tchar
_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOK = bytearray(256)
for _c in _TCHARS:
    _TOK[_c] = 1


class HttpError(Exception):
    """A request that gets an error status and a closed connection."""


def _is_token(b):
    if not b:
        return False
    for c in b:
        if not _TOK[c]:
            return False
    return True


def _bad_value(v):
    """True if a header value holds a control byte other than HTAB."""
    if not v:
        return False
    if min(v) < 32:
        for c in v:
            if c < 32 and c != 9:
                return True
    return b"\x7f" in v


_date = None
_date_t = 0


def http_date(t=None):
    """RFC 7231 IMF-fixdate, or None when the clock was never set."""
    global _date, _date_t
    now = t is None
    if now:
        t = time.time()
        if t == _date_t:
            return _date
    g = time.gmtime(t)
    if g[0] < 2020:
        d = None
    else:
        d = "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
            ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[g[6]], g[2],
            ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
             "Oct", "Nov", "Dec")[g[1] - 1], g[0], g[3], g[4], g[5])
    if now:
        _date, _date_t = d, t
    return d


class Request:
    """A parsed request head. Header names are lower case."""

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        q = target.find("?")
        if q < 0:
            self.path, self.query = target, ""
        else:
            self.path, self.query = target[:q], target[q + 1:]
        #: the part of the path after the mountpoint (lws "in")
        self.subpath = self.path

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def args(self):
        """The query string as a dict (urldecoded)."""
        from ..util import parse_qs
        return parse_qs(self.query)

    def __repr__(self):
        return "<%s %s>" % (self.method, self.target)


def parse_head(head):
    """Parse request line and headers (bytes, no final blank line).

    Returns a Request or raises HttpError(status, message).
    """
    lines = head.split(b"\n")
    line = lines[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    m, target, ver = parts
    if (len(ver) == 8 and ver.startswith(b"HTTP/") and ver[6] == 46
            and 48 <= ver[5] <= 57 and 48 <= ver[7] <= 57):
        if ver[5] != 49:
            raise HttpError(505, "HTTP version not supported")
    elif ver.startswith(b"HTTP/") and ver[5:6].isdigit():
        raise HttpError(505, "HTTP version not supported")
    else:
        raise HttpError(400, "bad HTTP version")
    if not _is_token(m):
        raise HttpError(400, "bad method")
    method = m.decode()
    if method not in METHODS:
        raise HttpError(501, "method not implemented")
    if min(target) <= 32 or max(target) >= 127 or b"#" in target:
        raise HttpError(400, "bad request target")
    target = target.decode()
    host_from_target = None
    if target[0] != "/":
        if target == "*" and method == "OPTIONS":
            pass
        elif target.startswith("http://") or target.startswith("https://"):
            rest = target[target.find("//") + 2:]
            i = rest.find("/")
            host_from_target = rest if i < 0 else rest[:i]
            target = "/" if i < 0 else rest[i:]
        else:
            raise HttpError(400, "bad request target")
    headers = {}
    for line in lines[1:]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in (32, 9):
            raise HttpError(400, "obsolete line folding")
        c = line.find(b":")
        if c <= 0:
            raise HttpError(400, "header without colon")
        name = line[:c]
        if not _is_token(name):
            raise HttpError(400, "bad header name")
        v = line[c + 1:].strip(b" \t")
        if _bad_value(v):
            raise HttpError(400, "bad bytes in header value")
        try:
            name = name.decode().lower()
            v = v.decode()
        except UnicodeError:
            raise HttpError(400, "header value is not UTF-8")
        old = headers.get(name)
        if old is not None:
            if name == "host":
                raise HttpError(400, "more than one Host")
            v = old + ", " + v
        headers[name] = v
    version = ver.decode()
    if host_from_target is not None:
        headers["host"] = host_from_target
    host = headers.get("host")
    if host is None:
        if version != "HTTP/1.0":
            raise HttpError(400, "HTTP/1.1 request without Host")
    elif " " in host or "/" in host or "@" in host:
        raise HttpError(400, "bad Host")
    return Request(method, target, version, headers)


def _body_framing(c, req):
    """Set up reading the body: Content-Length or chunked, never both."""
    h = req.headers
    te = h.get("transfer-encoding")
    cl = h.get("content-length")
    c.remaining = 0
    c.chunked = None
    if te is not None:
        if cl is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if req.version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in HTTP/1.0")
        codings = [x.strip().lower() for x in te.split(",")]
        if codings[-1] != "chunked":
            if "chunked" in codings:
                raise HttpError(400, "chunked is not the last coding")
            raise HttpError(501, "transfer coding not implemented")
        if len(codings) > 1:
            raise HttpError(501, "transfer coding not implemented")
        c.chunked = [0, 0]
    elif cl is not None:
        vals = [x.strip() for x in cl.split(",")]
        for v in vals:
            if not v.isdigit() or v != vals[0] or len(v) > 15:
                raise HttpError(400, "bad Content-Length")
        c.remaining = int(vals[0])


def _host_vhost(c, req):
    vhs = c.vhosts
    if len(vhs) > 1:
        host = req.headers.get("host", "")
        i = host.rfind(":")
        if i > 0 and host[i + 1:].isdigit():
            host = host[:i]
        for vh in vhs:
            if vh.name == host:
                return vh
    return vhs[0]


class Http:
    """The HTTP role's operations; one instance serves every connection."""

    name = "http"

    def start(self, c):
        c.state = _HEAD
        c.set_timeout(c.ctx.timeout_secs)
        c.update()

    def wants_rx(self, c):
        st = c.state
        if st == _HEAD:
            return c.ah is not None or c not in c.ctx._ah_wait
        if st == _REQ:
            return c.remaining > 0 or c.chunked is not None
        return True  # closing: drain what the peer still sends

    # -- reading --------------------------------------------------------

    def rx(self, c):
        st = c.state
        if st >= _CLOSING:
            if self._drain(c) and st == _LINGER:
                c.deadline = time.ticks_add(time.ticks_ms(), _LINGER_MS)
            return
        if c.ah is None:
            ah = c.ctx.ah_get(c)
            if ah is None:
                log.debug("%r: waiting for a header buffer", c)
                c.update()
                return
            c.ah = ah
            c.n = 0
        if st == _HEAD and c.n == 0:
            # the whole head must arrive within timeout_secs (slowloris)
            c.set_timeout(c.ctx.timeout_secs)
        n = c.recv_into(memoryview(c.ah)[c.n:])
        if n is None:
            return
        if n == 0:
            c.close()
            return
        c.n += n
        try:
            if st == _HEAD:
                self._head(c, max(0, c.n - n - 3))
            else:
                c.set_timeout(c.ctx.timeout_secs)
                self._body(c)
        except HttpError as e:
            self.send_error(c, e.args[0], e.args[1], True)

    def _drain(self, c):
        """Read and drop what a closing peer still sends; True if it sent."""
        buf = c.ctx.file_buf()
        got = False
        for _ in range(16):
            n = c.recv_into(buf)
            if n is None:
                return got
            if n == 0:
                c.close()
                return got
            got = True
        return got

    def _consume(self, c, k):
        ah = c.ah
        left = c.n - k
        if left > 0:
            ah[0:left] = ah[k:c.n]
        c.n = left

    def _head(self, c, start):
        ah = c.ah
        n = c.n
        # RFC 7230 3.5: ignore empty lines before the request line
        i = 0
        while i < n and ah[i] in (13, 10):
            i += 1
        if i:
            self._consume(c, i)
            n = c.n
            start = 0
        e = ah.find(b"\n\r\n", start, n)
        e2 = ah.find(b"\n\n", start, n)
        if e < 0 or (0 <= e2 < e):
            e, end = e2, e2 + 2
        else:
            end = e + 3
        if e < 0:
            if n >= len(ah):
                if ah.find(b"\n", 0, n) < 0:
                    raise HttpError(414, "request line too long")
                raise HttpError(431, "request head too large")
            return
        if b"\x00" in memoryview(ah)[:e]:
            raise HttpError(400, "NUL in request head")
        req = parse_head(bytes(memoryview(ah)[:e]))
        self._consume(c, end)
        self._request(c, req)

    def _request(self, c, req):
        c.req = req
        c.state = _REQ
        c.done = False
        c.head_sent = False
        c.body_done = False
        c.out_chunked = False
        c.set_timeout(c.ctx.timeout_secs)
        conn_tok = req.headers.get("connection", "").lower()
        if req.version == "HTTP/1.0":
            c.keepalive = "keep-alive" in conn_tok
        else:
            c.keepalive = "close" not in conn_tok
        _body_framing(c, req)
        log.info("%r: %s %s", c, req.method, req.target)
        vh = c.vhost = _host_vhost(c, req)
        m = vh.find_mount(req.path)
        if m is None:
            c.handler = None
            raise HttpError(404, "no mount")
        c.mount = m
        req.subpath = m.subpath(req.path)
        h = c.handler = m.handler(c)
        c.proto = h
        if c.remaining or c.chunked is not None:
            if "100-continue" in req.headers.get("expect", "").lower():
                c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        h.on_http(c, req)
        if not c.closed:
            self._body(c)

    def _body(self, c):
        if c.chunked is not None:
            self._chunked(c)
            return
        k = min(c.remaining, c.n)
        if k:
            c.remaining -= k
            c.handler.on_http_body(c, memoryview(c.ah)[:k])
            if c.closed:
                return
            self._consume(c, k)
        if c.remaining == 0 and not c.body_done:
            c.body_done = True
            c.handler.on_http_body_completion(c)

    def _chunked(self, c):
        st = c.chunked
        ah = c.ah
        mv = memoryview(ah)
        pos = 0
        n = c.n
        while pos < n and c.chunked is not None and not c.closed:
            if st[0] == 1:
                k = min(st[1], n - pos)
                c.handler.on_http_body(c, mv[pos:pos + k])
                pos += k
                st[1] -= k
                if st[1] == 0:
                    st[0] = 2
                continue
            e = ah.find(b"\n", pos, n)
            if e < 0:
                if n - pos > _MAX_CHUNK_LINE and st[0] != 3:
                    raise HttpError(400, "chunk size line too long")
                if pos == 0 and n >= len(ah):
                    raise HttpError(431, "chunk trailers too large")
                break
            line = bytes(mv[pos:e])
            pos = e + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if st[0] == 0:
                sz = line.split(b";")[0].strip(b" \t")
                if not sz or len(sz) > 15:
                    raise HttpError(400, "bad chunk size")
                for ch in sz:
                    if not (48 <= ch <= 57 or 97 <= ch | 32 <= 102):
                        raise HttpError(400, "bad chunk size")
                k = int(sz, 16)
                if k:
                    st[0], st[1] = 1, k
                else:
                    st[0] = 3
            elif st[0] == 2:
                if line:
                    raise HttpError(400, "chunk data longer than its size")
                st[0] = 0
            elif not line:  # end of trailers
                c.chunked = None
        self._consume(c, pos)
        if c.chunked is None and not c.body_done and not c.closed:
            c.body_done = True
            c.handler.on_http_body_completion(c)

    # -- writing ----------------------------------------------------------

    def writable(self, c):
        if c.state == _REQ and not c.done and c.handler is not None:
            c.set_timeout(c.ctx.timeout_secs)
            c.handler.on_http_writeable(c)

    def respond(self, c, status, headers, body, ctype, length):
        if c.head_sent:
            raise ValueError("response already started")
        c.head_sent = True
        req = c.req
        nobody = status < 200 or status in (204, 304)
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            length = len(body)
        h = ["HTTP/1.1 %d %s\r\nServer: microlws\r\n" %
             (status, REASONS.get(status, "Unknown"))]
        d = http_date()
        if d:
            h.append("Date: %s\r\n" % d)
        if ctype and not nobody:
            h.append("Content-Type: %s\r\n" % ctype)
        if nobody:
            pass
        elif length is not None:
            h.append("Content-Length: %d\r\n" % length)
            c.out_left = length
        elif req.version == "HTTP/1.0":
            c.keepalive = False  # close-delimited
        else:
            c.out_chunked = True
            h.append("Transfer-Encoding: chunked\r\n")
        if headers:
            for k in headers:
                if isinstance(headers, dict):
                    h.append("%s: %s\r\n" % (k, headers[k]))
                else:
                    h.append("%s: %s\r\n" % k)
        if not c.keepalive:
            h.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            h.append("Connection: keep-alive\r\n")
        h.append("\r\n")
        head = "".join(h).encode()
        if body is not None:
            if body and req.method != "HEAD" and not nobody:
                head += body
            c.send(head)
            c.done = True
        else:
            c.send(head)
            if nobody:
                c.done = True

    def write(self, c, data):
        if not c.head_sent:
            raise ValueError("write before respond")
        if c.req.method == "HEAD" or not len(data):
            return
        if c.out_chunked:
            c.send(b"".join((b"%x\r\n" % len(data), data, b"\r\n")))
        else:
            c.send(data)

    def complete(self, c):
        if c.state != _REQ or c.done:
            return
        if not c.head_sent:
            raise ValueError("complete before respond")
        if c.out_chunked and c.req.method != "HEAD":
            c.send(b"0\r\n\r\n")
        c.done = True
        c.want_write = False

    def send_error(self, c, status, msg=None, close=False):
        log.info("%r: %d %s", c, status, msg or "")
        if c.state == _HEAD or c.req is None:
            c.req = Request("GET", "/", "HTTP/1.1", {})
            c.state = _REQ
            c.head_sent = False
            c.done = False
        if c.head_sent:
            c.close()
            return
        if close:
            c.keepalive = False
        body = "<html><body><h1>%d %s</h1>%s</body></html>\n" % (
            status, REASONS.get(status, ""), msg or "")
        self.respond(c, status, None, body, "text/html", None)

    # -- transitions -------------------------------------------------------

    def settle(self, c):
        """After every event: finish a completed transaction."""
        while not c.closed:
            st = c.state
            if st == _CLOSING:
                if not c.tx:
                    # unread input would turn our close into a reset that
                    # can destroy the response in flight: linger only then
                    if self._drain(c):
                        c.state = _LINGER
                        c.deadline = time.ticks_add(time.ticks_ms(),
                                                    _LINGER_MS)
                    else:
                        c.close()
                return
            if st == _LINGER:
                return
            if st != _REQ or not c.done or c.tx:
                return
            if c.remaining or c.chunked is not None:
                c.keepalive = False  # answered before the body was read
            c.req = None
            if not c.keepalive:
                self._closing(c)
                return
            c.state = _HEAD
            c.handler = None
            if c.n:
                try:
                    self._head(c, 0)
                except HttpError as e:
                    self.send_error(c, e.args[0], e.args[1], True)
                continue
            c.release_ah()
            c.set_timeout(c.ctx.keepalive_timeout)
            return

    def _closing(self, c):
        """Lingering close: the peer reads our last bytes before the close.

        Closing with unread input makes the kernel send a reset, which can
        destroy an error response still in flight; so drain for a moment.
        """
        c.state = _CLOSING
        c.release_ah()
        c.set_timeout(c.ctx.timeout_secs)
        self.settle(c)

    def timeout(self, c):
        if c.state == _HEAD and c.n:
            c.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                   b"Content-Length: 0\r\n\r\n")
        c.close()

    def failed(self, c):
        """A callback raised: 500 if nothing was sent, then close."""
        if c.state == _REQ and not c.head_sent and not c.closed:
            try:
                self.send_error(c, 500, "callback failed", True)
                c.update()
                return
            except Exception:
                pass
        c.close()

    def closed(self, c):
        h = getattr(c, "handler", None)
        if h is not None and c.state == _REQ:
            h.on_closed_http(c)


ROLE = Http()
