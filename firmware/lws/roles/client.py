"""Client connections (lws_client_connect_via_info): connect, an optional
SOCKS5 proxy, then an HTTP request (HTTP client mode, lws 2.0), a
WebSocket handshake (then the ws role), or a raw stream (then the raw role).

Every failure reaches the protocol's on_client_connection_error(conn,
reason) as a value; nothing is raised into the loop.
"""
import socket
import time
from .. import log
from . import Role
from ..httpmsg import HttpError, chunk, parse_fields, reason

_CONNECTING = const(0)
_SOCKS = const(1)
_HEAD = const(2)     # request sent (or being sent); reading the response head
_BODY = const(3)
_SENDING = const(4)  # streaming a request body from on_client_writeable
_DONE = const(5)     # the response is complete
_SHAKING = const(6)  # TLS: the request head waits for the handshake
_RESOLVING = const(7)  # the host name's address is being looked up

_POLLOUT = const(4)
_POLLERR = const(8)
_POLLHUP = const(16)
_EINPROGRESS = const(115)
_EAGAIN = const(11)


class ClientState:
    """What a client connection asked for and how far it got."""

    kind = "http"          # http, ws or raw
    state = _CONNECTING
    established = False
    failed = False
    body = None            # bytes to send, or True to stream it
    status = 0
    resp = None            # response headers
    left = -1              # response body bytes to come; -1: until close
    chunked = None
    keepalive = False
    socks = None           # (user, password) or () for no auth
    socks_step = 0
    socks_buf = b""
    key = None
    carry = b""
    reused = False
    hs_head = None         # TLS: the request head, until the handshake is over
    out_chunked = False
    proxy_addr = None
    deflate = None         # permessage-deflate options, when offered


def parse_response_head(head):
    """'HTTP/1.1 200 OK' and headers -> (status, headers dict, version)."""
    lines = head.split(b"\n")
    first = lines[0].rstrip(b"\r").split(b" ", 2)
    if len(first) < 2 or not first[0].startswith(b"HTTP/1.") or \
            len(first[1]) != 3 or not first[1].isdigit():
        raise HttpError(0, "bad response status line")
    try:
        headers = parse_fields(lines)
    except HttpError as e:
        raise HttpError(0, "bad response header: " + e.args[1])
    return int(first[1]), headers, first[0].decode()


class _BodySink:
    """Dechunk hands pieces to on_http_body: route them to the client's."""

    def __init__(self, proto):
        self.proto = proto

    def on_http_body(self, c, data):
        self.proto.on_client_http_body(c, data)


class Client(Role):
    name = "client"

    def start(self, c):
        """Connecting (or, on a kept-alive socket, the request goes at
        once): the connect must be over within connect_timeout."""
        c.tx_t = None  # connect_timeout bounds the connect, not send_timeout
        c.set_timeout(c.ctx.connect_timeout)
        if c.client.state == _RESOLVING:
            return  # no socket yet: lws.resolve minds the deadline
        if c.client.reused:
            self._request(c)
        else:
            c.want_write = True  # writable: the connect has finished
        c.update()

    def wants_rx(self, c):
        st = c.client.state
        return st == _SOCKS or st == _HEAD or st == _BODY or st == _SHAKING

    # -- events ---------------------------------------------------------

    def writable(self, c):
        cl = c.client
        if cl.state == _CONNECTING:
            self._connected(c)
        elif cl.state == _SENDING:
            c.set_timeout(c.ctx.timeout_secs)
            c.proto.on_client_writeable(c)

    def poll_error(self, c):
        """POLLERR/POLLHUP: while connecting it means refused."""
        if c.client.state == _CONNECTING:
            self.client_error(c, "connection refused")
            return True
        return False

    def _connected(self, c):
        cl = c.client
        try:
            c.sock.setsockopt(6, 1, 1)  # TCP_NODELAY
        except OSError:
            pass
        log.debug("%r: connected", c)
        c.set_timeout(c.ctx.timeout_secs)  # now the handshake's time
        if cl.socks is not None:
            cl.state = _SOCKS
            from .socks5 import greeting
            c.send(greeting(cl.socks))
            return
        self._request(c)

    def _tls(self, c, cl):
        """Wrap the connected socket; the handshake runs as it is used.
        Returns an error text, or None."""
        from ..tls import client_context, wrap
        try:
            wrap(c, client_context(cl.ca, cl.insecure, cl.psk), cl.host)
        except (OSError, ValueError, MemoryError) as e:
            return "TLS: %s" % (e,)
        return None

    def _request(self, c):
        cl = c.client
        if cl.tls and not c.tls:
            err = self._tls(c, cl)
            if err:
                self.client_error(c, err)
                return
        if cl.kind == "raw":
            from . import raw
            raw.adopt(c, c.proto)
            return
        h = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (cl.method, cl.path,
                                               cl.host_header)
        if cl.kind == "ws":
            import binascii
            import os
            cl.key = binascii.b2a_base64(os.urandom(16))[:-1]
            h += ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                  % cl.key.decode())
            if cl.subprotocols:
                h += "Sec-WebSocket-Protocol: %s\r\n" % ", ".join(
                    cl.subprotocols)
            if cl.origin:
                h += "Origin: %s\r\n" % cl.origin
            if cl.deflate is not None:
                from .ws_deflate import offer
                h += "Sec-WebSocket-Extensions: %s\r\n" % offer(cl.deflate)
        for k, v in cl.headers:
            h += "%s: %s\r\n" % (k, v)
        body = cl.body
        if isinstance(body, str):
            body = body.encode()
        if body is not None and body is not True:
            h += "Content-Length: %d\r\n" % len(body)
        elif body is True and not cl.has_length:
            h += "Transfer-Encoding: chunked\r\n"
            cl.out_chunked = True
        if cl.kind == "http" and not cl.keepalive_wanted:
            h += "Connection: close\r\n"
        head = (h + "\r\n").encode()
        if body is not None and body is not True:
            head += body
        c.set_timeout(c.ctx.timeout_secs)
        if c.tls and cl.state != _SHAKING and not cl.reused:
            # mbedTLS shakes hands inside the first write, and a write it
            # cannot finish yet waits for the server's flight: on POLLIN,
            # not POLLOUT (always true then: the loop would spin)
            cl.state = _SHAKING
            cl.hs_head = head
            self._shake(c)
            return
        c.send(head)
        self._sent(c)

    def _shake(self, c):
        cl = c.client
        try:
            n = c.sock.write(cl.hs_head)
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and e.args[0] == _EAGAIN:
                return
            # mbedTLS's reasons come on several lines
            self.client_error(c, "TLS: " + " ".join(str(e).split()))
            return
        if n is None:
            return  # the handshake goes on
        head = cl.hs_head
        cl.hs_head = None
        c.ctx.stats.bytes_out += n
        c.send(memoryview(head)[n:])
        self._sent(c)

    def _sent(self, c):
        """The request head is out (or queued): its body, or the answer."""
        cl = c.client
        if cl.body is True:
            cl.state = _SENDING
            c.callback_on_writable()
        else:
            cl.state = _HEAD

    # the request body API while _SENDING

    def write(self, c, data):
        c.send(chunk(data) if c.client.out_chunked else data)

    def complete(self, c):
        cl = c.client
        if cl.state == _SENDING:
            if cl.out_chunked:
                c.send(b"0\r\n\r\n")
            cl.state = _HEAD
            c.want_write = False

    # -- reading ----------------------------------------------------------

    def rx(self, c):
        cl = c.client
        if cl.state == _SHAKING:
            self._shake(c)
        elif cl.state == _SOCKS:
            self._socks(c)
        elif cl.state == _HEAD:
            self._head(c)
        elif cl.state == _BODY:
            self._body(c)

    def _socks(self, c):
        from .socks5 import SOCKS_OPEN, step
        cl = c.client
        buf = c.ctx.rx_buf()
        n = c.recv_into(buf)
        if n is None:
            return
        if n == 0:
            self.client_error(c, "SOCKS5 proxy hung up")
            return
        err = step(c, cl, bytes(buf[:n]))
        if err:
            self.client_error(c, err)
        elif cl.socks_step == SOCKS_OPEN:
            log.debug("%r: SOCKS5 tunnel open", c)
            extra = cl.socks_buf
            cl.socks_buf = b""
            if extra and cl.kind != "raw":
                self.client_error(c, "SOCKS5 proxy sent data before the request")
                return
            self._request(c)
            if extra and not c.closed:
                # a raw stream's first bytes, read along with the reply
                r = c.proto.on_raw_rx(c, memoryview(extra))
                if r is not None:
                    c.later(r)

    def _head(self, c):
        cl = c.client
        if c.inbuf is None:
            c.inbuf = bytearray(c.ctx.max_http_header_data)
            c.inlen = 0
        n = c.recv_into(memoryview(c.inbuf)[c.inlen:])
        if n is None:
            return
        if n == 0:
            if cl.reused and not c.inlen:
                # the server had closed the kept-alive connection
                cl.reused = False
                reconnect(c.ctx, c, cl.url, fresh=True)
                return
            self.client_error(c, "server hung up before answering")
            return
        c.inlen += n
        buf = c.inbuf
        while True:
            e = buf.find(b"\r\n\r\n", 0, c.inlen)
            if e < 0:
                if c.inlen >= len(buf):
                    self.client_error(c, "response head too large")
                return
            try:
                status, headers, ver = parse_response_head(bytes(buf[:e]))
            except HttpError as err:
                self.client_error(c, err.args[1])
                return
            if status < 100 or status >= 200 or status == 101:
                break
            # an interim response (100 Continue, 103 Early Hints): the
            # final one follows
            k = c.inlen - e - 4
            buf[:k] = buf[e + 4:c.inlen]
            c.inlen = k
        left = bytes(buf[e + 4:c.inlen])
        c.inbuf = None
        c.inlen = 0
        cl.status = status
        cl.resp = headers
        if cl.kind == "ws":
            self._ws_upgrade(c, cl, status, headers, left)
            return
        if status in (301, 302, 303, 307, 308) and cl.redirects > 0 and \
                "location" in headers:
            self._redirect(c, cl, status, headers["location"])
            return
        conn_tok = headers.get("connection", "").lower()
        cl.keepalive = (cl.keepalive_wanted and ver == "HTTP/1.1"
                        and "close" not in conn_tok)
        te = headers.get("transfer-encoding", "").lower()
        cl.left = -1
        if cl.method == "HEAD" or status in (204, 304) or status < 200:
            cl.left = 0
        elif te:
            if te != "chunked":
                self.client_error(c, "unsupported transfer coding " + te)
                return
            from .chunked import Dechunk
            cl.chunked = Dechunk()
            cl.sink = _BodySink(c.proto)
        elif "content-length" in headers:
            v = headers["content-length"].split(",")[0].strip()
            if not v.isdigit():
                self.client_error(c, "bad Content-Length in response")
                return
            cl.left = int(v)
        if cl.left < 0 and cl.chunked is None:
            cl.keepalive = False  # the body ends when the server closes
        cl.state = _BODY
        cl.established = True
        c.proto.on_client_http_response(c, status, headers)
        if c.closed:
            return
        self._feed(c, left)
        self._maybe_done(c)

    def _body(self, c):
        buf = c.ctx.rx_buf()
        cl = c.client
        if cl.chunked is not None and cl.carry:
            k = len(cl.carry)
            buf[:k] = cl.carry
            cl.carry = b""
        else:
            k = 0
        n = c.recv_into(memoryview(buf)[k:])
        if n is None:
            return
        if n == 0:
            if cl.left < 0 and cl.chunked is None:
                self._done(c)  # close-delimited body ends here
            else:
                self.client_error(c, "server hung up in the middle of the body")
            return
        c.set_timeout(c.ctx.timeout_secs)
        self._feed(c, memoryview(buf)[:k + n])
        self._maybe_done(c)

    def _feed(self, c, data):
        cl = c.client
        if not len(data):
            return
        if cl.chunked is not None:
            buf = bytearray(data)
            n = len(buf)
            if n < c.ctx.rx_buffer_size:
                buf.append(0)  # not a full buffer: a line may end later
            try:
                used = cl.chunked.feed(c, cl.sink, buf, n)
            except HttpError as e:
                self.client_error(c, "bad chunked body: " + e.args[1])
                return
            if cl.chunked.done():
                cl.chunked = None
                cl.left = 0
            else:
                cl.carry = bytes(buf[used:n])
            return
        if cl.left >= 0:
            data = data[:cl.left]
            cl.left -= len(data)
        if len(data):
            c.proto.on_client_http_body(c, data)

    def _maybe_done(self, c):
        cl = c.client
        if not c.closed and cl.state == _BODY and cl.left == 0 and \
                cl.chunked is None:
            self._done(c)

    def _done(self, c):
        cl = c.client
        cl.state = _DONE
        c.proto.on_client_http_completed(c)
        if cl.keepalive and not c.closed and not c.tls:
            pool(c.ctx).put(c)
        else:
            c.drop()

    def _redirect(self, c, cl, status, location):
        from ..uri import parse_uri
        if location.startswith("//"):
            location = cl.scheme + ":" + location
        elif "://" not in location:
            # a path: absolute, or relative to the request's folder
            if not location.startswith("/"):
                base = cl.path.split("?")[0]
                location = base[:base.rfind("/") + 1] + location
            location = "%s://%s%s" % (cl.scheme, cl.host_header, location)
        log.info("%r: %d redirect to %s", c, status, location)
        cl.redirects -= 1
        if status == 303:
            cl.method = "GET"
            cl.body = None
        try:
            reconnect(c.ctx, c, location)
        except ValueError as e:
            self.client_error(c, "bad redirect: %s" % e)

    def _ws_upgrade(self, c, cl, status, headers, left):
        from . import ws
        if status != 101:
            self.client_error(c, "WebSocket handshake refused: HTTP %d %s" % (
                status, reason(status)))
            return
        if "websocket" not in headers.get("upgrade", "").lower() or \
                "upgrade" not in headers.get("connection", "").lower():
            self.client_error(c, "101 without Upgrade: websocket")
            return
        if headers.get("sec-websocket-accept") != \
                ws.accept_key(cl.key).decode():
            self.client_error(c, "bad Sec-WebSocket-Accept")
            return
        pmd = None
        ext = headers.get("sec-websocket-extensions")
        if ext:
            if cl.deflate is None:
                self.client_error(c, "server chose an extension we did not "
                                  "offer: " + ext)
                return
            from .ws_deflate import agree
            pmd, why = agree(ext, cl.deflate)
            if pmd is None:
                self.client_error(c, why)
                return
        p = headers.get("sec-websocket-protocol")
        if p is not None and p not in cl.subprotocols:
            self.client_error(c, "server chose a protocol we did not offer: " + p)
            return
        cl.established = True
        c.subprotocol = p
        ws.start_client(c, c.proto, left, pmd)

    # -- ends ------------------------------------------------------------

    def client_error(self, c, why):
        cl = c.client
        if not cl.failed and not c.closed:
            cl.failed = True
            log.info("%r: client connection failed: %s", c, why)
            try:
                c.proto.on_client_connection_error(c, why)
            except Exception as e:
                log.exc(e, "connection error callback")
        c.drop()

    def timeout(self, c):
        st = c.client.state
        self.client_error(c, "connect timed out" if st == _CONNECTING else
                  "timed out waiting for the server")

    def callback_failed(self, c):
        self.client_error(c, "callback failed")

    def dropped(self, c):
        cl = c.client
        if not cl.failed and cl.state != _DONE:
            cl.failed = True
            why = "closed"
            if c.err is not None:
                e = " ".join(str(c.err).split())  # mbedTLS texts span lines
                why = ("TLS failure: %s" if c.tls else "connection error: %s"
                       ) % e
            try:
                c.proto.on_client_connection_error(c, why)
            except Exception as e:
                log.exc(e, "connection error callback")


ROLE = Client()


# -- making client connections (Context.connect and friends) ----------------

_POOL_MAX = const(4)


def _setup(cl, url):
    from ..uri import parse_uri
    scheme, host, port, path = parse_uri(url)
    cl.url = url
    cl.scheme = scheme
    cl.host = host
    cl.port = port
    cl.path = path
    dflt = port == (443 if scheme in ("https", "wss") else 80)
    h = "[%s]" % host if ":" in host else host
    cl.host_header = h if dflt else "%s:%d" % (h, port)
    m = cl.method
    if scheme == "raw" or m == "RAW":
        cl.kind = "raw"
    elif scheme in ("ws", "wss") and m is None:
        cl.kind = "ws"
        cl.method = "GET"
    elif scheme in ("http", "https", "ws", "wss"):
        cl.kind = "http"
        cl.method = (m or "GET").upper()
    else:
        raise ValueError("cannot connect to " + scheme)
    cl.tls = scheme in ("https", "wss")


def new_client(ctx, url, proto, method, headers, body, subprotocols, origin,
               parent, proxy, redirects, keepalive, ca=None, insecure=False,
               psk=None, deflate=False):
    from ..conn import Conn
    if isinstance(proto, str):
        p = ctx.vhosts[0].protocol(proto) if ctx.vhosts else None
        if p is None:
            raise ValueError("no protocol " + proto)
        proto = p
    cl = ClientState()
    cl.method = method.upper() if method else None
    if isinstance(headers, dict):
        headers = list(headers.items())
    cl.headers = list(headers)
    cl.has_length = any(k.lower() == "content-length" for k, _ in cl.headers)
    cl.body = body
    cl.subprotocols = list(subprotocols)
    cl.origin = origin
    cl.redirects = redirects
    cl.keepalive_wanted = keepalive
    cl.ca = ca
    cl.insecure = insecure
    cl.psk = psk
    if deflate:
        from .ws_deflate import Options
        cl.deflate = Options(deflate)
    _setup(cl, url)
    if proxy:
        from ..uri import parse_uri, userinfo
        ps, phost, pport, _ = parse_uri(proxy)
        if ps not in ("socks5", "socks5h"):
            raise ValueError("only socks5:// proxies")
        cl.proxy_addr = (phost, pport)
        cl.socks = userinfo(proxy) or ()
    c = Conn(ctx, None, None, ctx.vhosts)
    c.client = cl
    c.proto = proto
    c.user = proto.new_user(c)
    if parent is not None:
        c.parent = parent
        if parent.children is None:
            parent.children = []
        parent.children.append(c)
    _go(ctx, c, cl)
    return c


def _is_name(h):
    """A host name to look up: not an IP literal, nor localhost."""
    if ":" in h or h.lower() == "localhost":
        return False
    p = h.split(".")
    return len(p) != 4 or not all(x.isdigit() for x in p)


def _connect(c, host, port):
    """A socket connecting to host (an address, or localhost) without
    blocking the loop; returns an error text, or None."""
    try:
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        if not ai:
            raise OSError("no address")
    except OSError as e:
        return "DNS lookup of %s failed: %s" % (host, e)
    s = socket.socket(ai[0][0], socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(ai[0][-1])
    except OSError as e:
        if e.args[0] not in (_EINPROGRESS, _EAGAIN):
            s.close()
            return "connect to %s:%d failed: %s" % (host, port, e)
    c.sock = s
    c.addr = ai[0][-1]
    return None


def _go(ctx, c, cl, pooled=True):
    """Open the socket (or take a kept-alive one), then the client role."""
    s = None
    if pooled and cl.kind == "http" and cl.proxy_addr is None and \
            ctx.pool is not None:
        s = ctx.pool.get(cl.host, cl.port)
    cl.reused = s is not None
    cl.state = _CONNECTING
    if s is not None:
        c.sock = s
    else:
        host, port = cl.proxy_addr or (cl.host, cl.port)
        if _is_name(host):
            from ..resolve import resolve
            try:
                a = resolve(ctx, host, c, lambda a, why: _resolved(
                    c, host, port, a, why))
            except (OSError, ValueError) as e:
                _later(ctx, c, "DNS: %s (%s)" % (e, host))
                return
            if a is None:  # the answer comes through the loop
                cl.state = _RESOLVING
                c.transition(ROLE)
                return
            host = a
        err = _connect(c, host, port)
        if err:
            _later(ctx, c, err)
            return
    ctx.add(c, c.sock, _POLLOUT)
    c.transition(ROLE)


def _later(ctx, c, err):
    """Fail c from the loop, after connect() has returned."""
    t = []
    t.append(ctx.every(0, lambda: (ctx.cancel(t[0]),
                                   ROLE.client_error(c, err))))


def _resolved(c, host, port, addr, why):
    """The lookup is over: connect, within what is left of
    connect_timeout."""
    if c.closed:
        return
    if addr is None:
        ROLE.client_error(c, "DNS: %s (%s)" % (why, host))
        return
    err = _connect(c, addr, port)
    if err:
        ROLE.client_error(c, err)
        return
    c.client.state = _CONNECTING
    c.want_write = True  # writable: the connect has finished
    c.ctx.add(c, c.sock, _POLLOUT)


def reconnect(ctx, c, url, fresh=False):
    """Point c at url (a redirect, or a retry) on a new socket."""
    cl = c.client
    if c.sock is not None:
        ctx.forget(c)
        c.sock.close()
        if c.tcp is not None:
            c.tcp.close()
        c.sock = c.tcp = None
        c.tls = False
    c.inbuf = None
    c.inlen = 0
    c.tx = None
    cl.chunked = None
    cl.carry = b""
    _setup(cl, url)
    _go(ctx, c, cl, pooled=not fresh)


class Pool:
    """Kept-alive client sockets (keep-alive), a few, each for
    keepalive_timeout: the next request to the same server takes one."""

    def __init__(self, secs):
        self.secs = secs
        self.idle = []  # [_Idle]

    def put(self, c):
        """Keep c's socket; c itself ends as every connection does."""
        cl = c.client
        c.ctx.forget(c)
        s = c.sock
        c.sock = None  # drop() closes no socket now: the pool has it
        if len(self.idle) >= _POOL_MAX:
            self.idle.pop(0).sock.close()
        self.idle.append(_Idle(cl.host, cl.port, s, time.ticks_add(
            time.ticks_ms(), int(self.secs * 1000))))
        c.drop()

    def get(self, host, port):
        now = time.ticks_ms()
        for e in list(self.idle):
            if time.ticks_diff(now, e.until) >= 0:
                self.idle.remove(e)
                e.sock.close()
            elif e.host == host and e.port == port:
                self.idle.remove(e)
                return e.sock
        return None

    def close(self):
        for e in self.idle:
            e.sock.close()
        self.idle = []


class _Idle:
    def __init__(self, host, port, sock, until):
        self.host = host
        self.port = port
        self.sock = sock
        self.until = until


def pool(ctx):
    """The context's client keep-alive pool, made at first use."""
    if ctx.pool is None:
        ctx.pool = Pool(ctx.keepalive_timeout)
    return ctx.pool
