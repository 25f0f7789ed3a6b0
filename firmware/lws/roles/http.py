"""The HTTP/1.1 server role (RFC 7230): request heads, bodies, responses."""
import time
from .. import log
from ..httpmsg import (HttpError, bad_value, chunk, date_line, is_token,
                       parse_fields, reason)
from . import Role

_HEAD = const(0)     # waiting for a request head
_REQ = const(1)      # a request is being served (body in, response out)
_CLOSING = const(2)  # last bytes going out, then close
_LINGER = const(3)   # all sent, input still arriving: drain, then close

_LINGER_MS = const(1000)

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
_OK = "HTTP/1.1 200 OK\r\n"
_SERVER = "Server: microlws\r\n"


# the fields the server itself acts on, parsed with the head; the others
# are checked then, and parsed only when req.headers is asked for
_EAGER = (b"host", b"connection", b"content-length", b"transfer-encoding",
          b"upgrade", b"expect", b"if-none-match", b"if-modified-since",
          b"range", b"if-range", b"accept-encoding", b"origin",
          b"sec-websocket-key", b"sec-websocket-version",
          b"sec-websocket-protocol", b"sec-websocket-extensions",
          b"authorization", b"cookie", b"content-type")
# the request line's common words, as the parser compares them
_METHODS = {}
for _n in METHODS:
    _METHODS[_n.encode()] = _n


class Request:
    """A request and its transaction state. Header names are lower case:
    req.h holds the fields the server acts on (Host, Connection, framing,
    conditionals, ranges, WebSocket's, Origin, Authorization, Cookie,
    Content-Type...), req.headers every field (parsed on first use)."""

    #: the part of the path after the mountpoint (lws "in")
    subpath = "/"
    vhost = None
    mount = None
    handler = None
    keepalive = True
    remaining = 0
    chunked = None
    head_sent = False
    done = False
    body_done = False
    out_chunked = False
    out_left = -1
    f = None
    _all = None
    _cookies = None
    #: the user a mount's auth_file let in (lws.auth)
    auth_user = None
    #: Set-Cookie values for the response (conn.set_cookie)
    set_cookies = None
    #: the head as it came (bytes)
    raw = None

    def __init__(self, method, target, version, h, lines=None):
        self.method = method
        self.target = target
        self.version = version
        self.h = h
        self._lines = lines
        q = target.find("?")
        if q < 0:
            self.path, self.query = target, ""
        else:
            self.path, self.query = target[:q], target[q + 1:]

    @property
    def headers(self):
        """Every header field: {lower-case name: value}."""
        d = self._all
        if d is None:
            d = parse_fields(self._lines) if self._lines else {}
            d.update(self.h)  # Host from an absolute-form target
            self._all = d
            self._lines = None
        return d

    def args(self):
        """The query string as a dict (urldecoded)."""
        from ..util import parse_qs
        return parse_qs(self.query)

    @property
    def cookies(self):
        """The Cookie header as a dict {name: value} (parsed on first use)."""
        d = self._cookies
        if d is None:
            from ..cookie import parse
            d = self._cookies = parse(self.h.get("cookie", ""))
        return d


def parse_head(head):
    """Parse request line and headers (bytes, no final blank line).

    Every header line is checked (RFC 7230: token names, no obsolete
    folding, no control bytes but HTAB, UTF-8); only the fields the
    server acts on are decoded here. Returns a Request or raises
    HttpError(status, message).
    """
    if head.count(b"\n") == head.count(b"\r\n"):
        lines = head.split(b"\r\n")
    else:  # some lines end in a bare LF
        lines = [x[:-1] if x[-1:] == b"\r" else x for x in head.split(b"\n")]
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    m, target, ver = parts
    method = _METHODS.get(m)
    if method is None:
        if not is_token(m):
            raise HttpError(400, "bad method")
    if ver == b"HTTP/1.1":
        version = "HTTP/1.1"
    elif ver == b"HTTP/1.0":
        version = "HTTP/1.0"
    elif (len(ver) == 8 and ver[:5] == b"HTTP/" and ver[6] == 46
            and 48 <= ver[5] <= 57 and 48 <= ver[7] <= 57) or (
            ver[:5] == b"HTTP/" and ver[5:6].isdigit()):
        raise HttpError(505, "HTTP version not supported")
    else:
        raise HttpError(400, "bad HTTP version")
    if method is None:
        raise HttpError(501, "method not implemented")
    if min(target) <= 32 or max(target) >= 127 or b"#" in target:
        raise HttpError(400, "bad request target")
    target = target.decode()
    host = None
    if target[0] != "/":
        if target == "*" and method == "OPTIONS":
            pass
        elif target.startswith("http://") or target.startswith("https://"):
            # absolute-form: its authority replaces Host (RFC 7230 5.4)
            rest = target[target.find("//") + 2:]
            i = rest.find("/")
            host = rest if i < 0 else rest[:i]
            target = "/" if i < 0 else rest[i:]
        else:
            raise HttpError(400, "bad request target")
    h = {}
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if line[0] in (32, 9):
            raise HttpError(400, "obsolete line folding")
        c = line.find(b":")
        if c <= 0:
            raise HttpError(400, "header without colon")
        if min(line) < 32 or b"\x7f" in line:
            if bad_value(line):
                raise HttpError(400, "bad bytes in header value")
        name = line[:c].lower()
        if name not in _EAGER:
            if not is_token(name):
                raise HttpError(400, "bad header name")
            if max(line) >= 128:
                try:
                    line.decode()
                except UnicodeError:
                    raise HttpError(400, "header value is not UTF-8")
            continue
        try:
            v = line[c + 1:].strip(b" \t").decode()
        except UnicodeError:
            raise HttpError(400, "header value is not UTF-8")
        k = name.decode()
        old = h.get(k)
        if old is not None:
            if k == "host":
                raise HttpError(400, "more than one Host")
            v = old + ", " + v
        h[k] = v
    if "host" not in h and version != "HTTP/1.0":
        # RFC 7230 5.4: even with an absolute-form target
        raise HttpError(400, "HTTP/1.1 request without Host")
    if host is not None:
        h["host"] = host
    host = h.get("host")
    if host is not None and (" " in host or "/" in host or "@" in host):
        raise HttpError(400, "bad Host")
    return Request(method, target, version, h, lines if len(lines) > 1
                   else None)


def _framing(req):
    """How the body is delimited: Content-Length or chunked, never both."""
    h = req.h
    te = h.get("transfer-encoding")
    cl = h.get("content-length")
    if te is not None:
        if cl is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if req.version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in HTTP/1.0")
        from .chunked import for_request
        req.chunked = for_request(te)
    elif cl is not None:
        vals = cl.split(",")
        v0 = vals[0].strip()
        for v in vals:
            v = v.strip()
            if not v.isdigit() or v != v0 or len(v) > 15:
                raise HttpError(400, "bad Content-Length")
        req.remaining = int(v0)


def h_lower(req, name):
    return req.h.get(name, "").lower()


def _ws():
    """The WebSocket role, imported at the first upgrade: after a
    collection (the import needs blocks that garbage may hold), and a
    heap that cannot take it answers 503, as a full one does."""
    import sys
    m = sys.modules.get("lws.roles.ws")
    if m is None:
        import gc
        gc.collect()
        try:
            from . import ws as m
        except MemoryError:
            gc.collect()
            raise HttpError(503, "low on memory: try again later")
    return m


def _pick_vhost(vhosts, req):
    if len(vhosts) > 1:
        host = req.h.get("host", "")
        i = host.rfind(":")
        if i > 0 and host[i + 1:].isdigit():
            host = host[:i]
        for vh in vhosts:
            if vh.name == host:
                return vh
    return vhosts[0]


class Http(Role):
    """The HTTP role's operations; one instance serves every connection."""

    name = "http"

    def start(self, c):
        c.state = _HEAD
        c.set_timeout(c.ctx.head_timeout)
        c.update()

    def waiting_since(self, c):
        return c.since if c.state == _HEAD else None

    def wants_rx(self, c):
        st = c.state
        if st == _HEAD:
            return c.inbuf is not None or c not in c.ctx._ah_wait
        if st == _REQ:
            r = c.req
            return r.remaining > 0 or r.chunked is not None
        return True  # closing: drain what the peer still sends

    # -- reading --------------------------------------------------------

    def rx(self, c):
        st = c.state
        if st >= _CLOSING:
            if self._drain(c) and st == _LINGER:
                c.deadline = time.ticks_add(time.ticks_ms(), _LINGER_MS)
            return
        if c.handshaking:
            from ..tls_slots import shake
            if not shake(c):
                return
        if c.inbuf is None:
            buf = c.ctx.ah_get(c)
            if buf is None:
                log.debug("%r: waiting for a header buffer", c)
                return
            c.inbuf = buf
            c.inlen = 0
        held = c.held
        if held is not None:  # read along with the end of a handshake
            c.held = None
            n = len(held)
            c.inbuf[c.inlen:c.inlen + n] = held
        else:
            n = c.recv_into(memoryview(c.inbuf)[c.inlen:] if c.inlen
                            else c.inbuf)
            if n is None:
                return
            if n == 0:
                c.drop()
                return
        if st == _HEAD and c.inlen == 0:
            # from its first byte the whole head must come within
            # head_timeout (slowloris)
            c.deadline = time.ticks_add(time.ticks_ms(), c.ctx._head_ms)
        c.inlen += n
        try:
            if st == _HEAD:
                self._head(c, max(0, c.inlen - n - 3))
            else:
                c.set_timeout(c.ctx.timeout_secs)
                self._body(c)
        except HttpError as e:
            self.send_error(c, e.args[0], e.args[1], True)
        if c.role is not self:
            return  # upgraded: the head was the last of HTTP
        r = c.req
        if (c.state == _REQ and not c.inlen and not r.remaining
                and r.chunked is None):
            c.release_inbuf()  # the pool's buffer is not needed to answer

    def _drain(self, c):
        """Read and drop what a closing peer still sends; True if it sent."""
        buf = c.ctx.file_buf()
        got = False
        for _ in range(16):
            n = c.recv_into(buf)
            if n is None:
                break
            if n == 0:
                c.drop()
                break
            got = True
        return got

    def _consume(self, c, k):
        buf = c.inbuf
        left = c.inlen - k
        if left > 0:
            buf[0:left] = buf[k:c.inlen]
        c.inlen = left

    def _head(self, c, start):
        buf = c.inbuf
        n = c.inlen
        if buf[0] in (13, 10):
            # RFC 7230 3.5: ignore empty lines (CRLF or LF) before the
            # request line; a CR without its LF is no empty line
            i = 0
            while i < n:
                if buf[i] == 10:
                    i += 1
                elif buf[i] == 13 and i + 1 < n and buf[i + 1] == 10:
                    i += 2
                elif buf[i] == 13 and i + 1 == n:
                    break  # its LF may still come
                else:
                    break
            if i < n and buf[i] == 13 and i + 1 < n:
                raise HttpError(400, "bare CR before the request line")
            self._consume(c, i)
            n = c.inlen
            start = 0
        e = buf.find(b"\n\r\n", start, n)
        e2 = buf.find(b"\n\n", start, n)
        if e < 0 or 0 <= e2 < e:
            e, end = e2, e2 + 2
        else:
            end = e + 3
        if e < 0:
            if n >= len(buf):
                if buf.find(b"\n", 0, n) < 0:
                    raise HttpError(414, "request line too long")
                raise HttpError(431, "request head too large")
            return
        if e and buf[e - 1] == 13:
            e -= 1  # the last line's CR
        ctx = c.ctx
        a = ctx._last
        if a is not None and len(a.head) == e and buf.find(a.head, 0, e) == 0:
            head = a.head  # the last head answered again: not even copied
        else:
            head = bytes(memoryview(buf)[:e])
            a = ctx._answers.get(head) if ctx._answers else None
        if a is not None:
            if a.vhosts is c.vhosts and not c.tls and not log.level & 8 \
                    and a.answer(c):
                ctx._last = a
                ctx.stats.http[2] += 1
                # the same head as before: answered as before (Answer)
                self._consume(c, end)
                if a.close:
                    c.state = _CLOSING
                    c.release_inbuf()
                    c.set_timeout(ctx.timeout_secs)
                    return
                c.since = now = time.ticks_ms()
                if c.inlen:
                    self._head(c, 0)  # pipelined behind it
                else:
                    c.release_inbuf()
                    c.deadline = time.ticks_add(now, ctx._ka_ms)
                return
        if b"\x00" in head:
            raise HttpError(400, "NUL in request head")
        try:
            req = parse_head(head)
        except HttpError:
            raise
        except MemoryError:
            raise HttpError(503, "out of memory")
        except Exception as e:
            # whatever a malformed head makes the parser trip over is
            # the client's fault: a 400, never a traceback
            raise HttpError(400, "malformed request head (%s)" % e)
        req.raw = head
        self._consume(c, end)
        self._request(c, req)

    def _request(self, c, req):
        c.req = req
        c.state = _REQ
        c.set_timeout(c.ctx.timeout_secs)
        conn_tok = req.h.get("connection")
        if conn_tok is not None:
            conn_tok = conn_tok.lower()
            if req.version == "HTTP/1.0":
                req.keepalive = "keep-alive" in conn_tok
            else:
                req.keepalive = "close" not in conn_tok
        elif req.version == "HTTP/1.0":
            req.keepalive = False
        _framing(req)
        if log.level & 8:
            log.info("%r: %s %s", c, req.method, req.target)
        vh = req.vhost = _pick_vhost(c.vhosts, req)
        to = vh.redirect_http_to_https
        if c.plain_on_tls or (to and not c.tls):
            from ..mounts import to_https
            to_https(c, req, vh, to)
            return
        if req.target == "*":  # OPTIONS *: the server's own options
            c.respond(204, {"Allow": "GET, HEAD, POST, PUT, DELETE, "
                            "OPTIONS, PATCH"})
            return
        p = req.path
        if "%" in p or "/." in p or "//" in p:
            # mounts (and their auth) are matched on what the path means,
            # not on how it is spelled
            from ..util import canonical_path
            try:
                p = canonical_path(p)
            except ValueError as e:
                raise HttpError(400, e.args[0])
            if p is None:
                raise HttpError(403, "path outside the mount")
            req.path = p
        for f in vh.filters:
            if f(c, req):
                return  # answered by the filter
        m = vh.find_mount(req.path)
        if m is not None and m.auth_file is not None:
            from ..auth import allowed
            if not allowed(c, req, m):
                return  # asked for credentials (401), or to wait (429)
        if "websocket" in h_lower(req, "upgrade") and \
                "upgrade" in h_lower(req, "connection"):
            _ws().upgrade_request(c, req, vh, m)
            return
        if m is None:
            raise HttpError(404, "no mount")
        req.mount = m
        req.subpath = m.subpath(req.path)
        h = req.handler = m.handler(vh)
        c.proto = h
        c.user = h.new_user(c)
        if req.remaining or req.chunked is not None:
            if "100-continue" in req.h.get("expect", "").lower():
                c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        r = h.on_http(c, req)
        if r is not None:
            c.later(r)  # async: the body waits for it (resume)
        elif not c.closed and c.req is req:
            self._body(c)

    def _body(self, c):
        req = c.req
        if req.chunked is not None:
            k = req.chunked.feed(c, req.handler, c.inbuf, c.inlen)
            if c.closed:
                return
            self._consume(c, k)
            if not req.chunked.done() or c.awaiting:
                return
            req.chunked = None
        else:
            k = min(req.remaining, c.inlen)
            if k:
                req.remaining -= k
                r = req.handler.on_http_body(c, memoryview(c.inbuf)[:k])
                if c.closed:
                    return
                self._consume(c, k)
                if r is not None:
                    c.later(r)  # the rest waits for it (resume)
                    return
            if req.remaining:
                return
        if not req.body_done:
            req.body_done = True
            r = req.handler.on_http_body_completion(c)
            if r is not None:
                c.later(r)

    # -- writing ----------------------------------------------------------

    def writable(self, c):
        r = c.req
        if c.state == _REQ and not r.done and r.handler is not None:
            c.set_timeout(c.ctx.timeout_secs)
            r = r.handler.on_http_writeable(c)
            if r is not None:
                c.later(r)

    def respond(self, c, status, headers, body, ctype, length):
        req = c.req
        if req.head_sent:
            raise ValueError("response already started")
        nobody = status < 200 or status == 204 or status == 304
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            length = len(body)
        head = self.head(c, status, headers, ctype, length, nobody)
        req.head_sent = True  # only now: a MemoryError above still gets a 500
        if body is not None:
            if body and req.method != "HEAD" and not nobody:
                head += body
            req.done = True
        elif nobody:
            req.done = True
        c.send(head)

    def head(self, c, status, headers, ctype, length, nobody=False):
        """The response head, as bytes (the transaction's framing set)."""
        req = c.req
        if req.remaining > c.inlen or req.chunked is not None:
            # answered before its body came: the connection closes after
            # (the rest of the body is not read), and the client is told
            req.keepalive = False
        c.ctx.stats.http[status // 100] += 1
        p = [_OK if status == 200 else "HTTP/1.1 %d %s\r\n" % (
            status, reason(status)), _SERVER]
        d = date_line()
        if d:
            p.append(d)
        if nobody:
            pass
        elif length is not None:
            p.append("Content-Type: %s\r\nContent-Length: %d\r\n"
                     % (ctype, length))
            req.out_left = length
        else:
            p.append("Content-Type: %s\r\n" % ctype)
            if req.version == "HTTP/1.0":
                req.keepalive = False  # close-delimited
            else:
                req.out_chunked = True
                p.append("Transfer-Encoding: chunked\r\n")
        if headers:
            if isinstance(headers, str):
                p.append(headers)  # ready-made header lines
            else:
                if isinstance(headers, dict):
                    headers = headers.items()
                for k, v in headers:
                    p.append("%s: %s\r\n" % (k, v))
        if req.set_cookies:
            for v in req.set_cookies:
                p.append("Set-Cookie: %s\r\n" % v)
        if c.tls:
            sts = req.vhost.sts if req.vhost else None
            if sts:
                p.append("Strict-Transport-Security: max-age=%d ; "
                         "includeSubDomains\r\n" % (15768000 if sts is True
                                                     else sts))
        if not req.keepalive:
            p.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            p.append("Connection: keep-alive\r\n")
        p.append("\r\n")
        return "".join(p).encode()

    def send_whole(self, c, data):
        """A whole response made before (FileServe's kept small files)."""
        req = c.req
        req.head_sent = req.done = True
        c.ctx.stats.http[2] += 1
        c.send(data)

    def write(self, c, data):
        req = c.req
        if not req.head_sent:
            raise ValueError("write before respond")
        if req.method == "HEAD" or not len(data):
            return
        c.send(chunk(data) if req.out_chunked else data)

    def complete(self, c):
        req = c.req
        if c.state != _REQ or req.done:
            return
        if not req.head_sent:
            raise ValueError("complete before respond")
        if req.out_chunked and req.method != "HEAD":
            c.send(b"0\r\n\r\n")
        req.done = True
        c.want_write = False

    def send_error(self, c, status, msg=None, close=False):
        log.info("%r: %d %s", c, status, msg or "")
        if c.state == _HEAD or c.req is None:
            c.req = Request("GET", "/", "HTTP/1.1", {})
            c.state = _REQ
        req = c.req
        if req.head_sent:
            c.drop()
            return
        if close:
            req.keepalive = False
        if msg and ("<" in msg or "&" in msg):  # it may quote the client
            msg = msg.replace("&", "&amp;").replace("<", "&lt;")
        body = "<html><body><h1>%d %s</h1>%s</body></html>\n" % (
            status, reason(status), msg or "")
        self.respond(c, status, None, body, "text/html", None)

    # -- transitions -------------------------------------------------------

    def after_event(self, c):
        """After every event: finish a completed transaction, go on with
        the next pipelined request or wait for one."""
        if c.state == _HEAD:
            return  # waiting for a head: nothing to finish
        while not c.closed and c.role is self:  # an upgrade: ws settles
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
                        c.drop()
                return
            req = c.req
            if st != _REQ or not req.done or c.tx:
                return
            if req.remaining or req.chunked is not None:
                req.keepalive = False  # answered before the body was read
            c.req = None
            c.proto = None
            if not req.keepalive:
                c.state = _CLOSING
                c.release_inbuf()
                c.set_timeout(c.ctx.timeout_secs)
                continue
            c.state = _HEAD
            c.since = time.ticks_ms()
            c.set_timeout(c.ctx.head_timeout)
            if c.inlen:
                try:
                    self._head(c, 0)
                except HttpError as e:
                    self.send_error(c, e.args[0], e.args[1], True)
                continue
            c.release_inbuf()
            c.set_timeout(c.ctx.keepalive_timeout)
            return

    def close(self, c, code, reason):
        c.drop()

    def timeout(self, c):
        if c.state == _HEAD and c.inlen:
            c.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                   b"Content-Length: 0\r\n\r\n")
        c.drop()

    def callback_failed(self, c):
        """A callback raised: 500 if nothing was sent yet, then close."""
        r = c.req
        if c.state == _REQ and r is not None and not r.head_sent \
                and not c.closed:
            try:
                self.send_error(c, 500, "callback failed", True)
                return
            except Exception:
                pass
        c.drop()

    def resume(self, c):
        """An async callback returned: the body that waited for it."""
        r = c.req
        if c.state == _REQ and r is not None and not r.body_done:
            try:
                self._body(c)
            except HttpError as e:
                self.send_error(c, e.args[0], e.args[1], True)

    def dropped(self, c):
        r = c.req
        if r is not None and r.handler is not None and c.state == _REQ:
            r = r.handler.on_closed_http(c)
            if r is not None:
                c.later(r)


ROLE = Http()
