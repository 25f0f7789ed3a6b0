"""Reverse-proxy mounts (lws v2.3 LWSMPRO_HTTP): a mount whose origin is
'http://host[:port]/path' forwards each request to that origin through a
client connection and streams the answer back.

The client connection is a child of the server one (lws parent_wsi), so
each closes with the other. Bodies go through piece by piece in both
directions, never gathered: a side whose peer has bytes queued is not
read (rx_flow_control) until they are out. A refused or broken origin
is a 502, one that has not answered within the timeout a 504.
"""
from .httpmsg import date_line
from .protocol import Protocol

# hop-by-hop fields (RFC 7230 6.1), never forwarded either way; Host is
# the origin's, Expect was answered here, framing is made again
_HOP = ("connection", "keep-alive", "te", "trailer", "transfer-encoding",
        "upgrade", "host", "expect", "proxy-connection",
        "proxy-authorization", "proxy-authenticate")
_XF = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto")
# made by the server role itself for the answer
_OURS = ("content-length", "content-type", "server")


def end_to_end(headers, drop=()):
    """A header dict -> [(name, value)] without the hop-by-hop fields,
    those Connection lists, Proxy-* and the names in drop."""
    listed = [t.strip().lower() for t in
              headers.get("connection", "").split(",")]
    out = []
    for k, v in headers.items():
        if k in _HOP or k in listed or k in drop or k[:6] == "proxy-":
            continue
        if k == "set-cookie":  # one field each (httpmsg.parse_fields)
            for c in v.split("\n"):
                out.append((k, c))
            continue
        out.append((k, v))
    return out


def peer_text(c):
    """The client address of connection c as text."""
    a = c.addr
    if isinstance(a, tuple):
        return str(a[0])
    try:
        import socket
        a = socket.sockaddr(a)
        return socket.inet_ntop(a[0], a[1])
    except Exception:
        return "unknown"


class _Link:
    """One proxied transaction: the server connection and its client."""

    cc = None        # the client connection to the origin, while it lasts
    timer = None     # the answer's deadline (ctx.every)
    head = False     # the origin's response head has come
    ready = False    # the origin connection takes request body pieces
    body_done = False
    pend = None      # request body pieces read before it could take them

    def __init__(self, s):
        self.s = s


class Proxy(Protocol):
    """The protocol of a proxy mount (Mount.handler returns it)."""

    name = "lws-proxy"

    def __init__(self, origin, timeout=None):
        self.base = origin.rstrip("/")
        #: seconds the origin has to answer (None: the context's
        #: timeout_secs)
        self.timeout = timeout

    # -- the server side ------------------------------------------------

    def on_http(self, s, req):
        ctx = s.ctx
        secs = self.timeout or ctx.timeout_secs
        h = req.headers
        hs = end_to_end(h, _XF)
        xff = h.get("x-forwarded-for")
        ip = peer_text(s)
        hs.append(("X-Forwarded-For", xff + ", " + ip if xff else ip))
        if "host" in h:
            hs.append(("X-Forwarded-Host", h["host"]))
        hs.append(("X-Forwarded-Proto", "https" if s.tls else "http"))
        url = self.base + req.subpath
        if req.query:
            url += "?" + req.query
        body = req.remaining > 0 or req.chunked is not None
        L = _Link(s)
        s.user = L
        try:
            cc = ctx.connect(url, self, method=req.method, headers=hs,
                             body=True if body else None, parent=s,
                             keepalive=False)
        except (ValueError, OSError) as e:
            s.send_error(502, "origin: %s" % e)
            return
        cc.user = L
        L.cc = cc
        L.secs = secs
        if body:
            # held until the origin's connection can take it
            L.pend = []
            s.rx_flow_control(False)
        else:
            self._answer_by(L)

    def _sent(self, L, cc):
        cc.complete()
        cc.update()  # from another connection's event: now read the answer
        self._answer_by(L)

    def _answer_by(self, L):
        """The request is out: the origin has secs to answer."""
        s = L.s
        if L.timer is not None or L.head:
            return
        L.timer = s.ctx.every(int(L.secs * 1000), lambda: self._late(L))
        s.set_timeout(max(L.secs, s.ctx.timeout_secs) + 1)

    def on_http_body(self, s, data):
        L = s.user
        cc = L.cc
        if cc is None:
            return  # the transaction failed or ended: dropped
        if L.ready and not L.pend and not cc.tx:
            if cc.client.out_chunked:
                data = bytes(data)  # chunk() takes bytes
            cc.write(data)
            if cc.tx:
                s.rx_flow_control(False)
                cc.callback_on_writable()
        else:
            L.pend.append(bytes(data))
            s.rx_flow_control(False)
            if L.ready:
                cc.callback_on_writable()

    def on_http_body_completion(self, s):
        L = s.user
        L.body_done = True
        cc = L.cc
        if cc is not None and L.ready and not L.pend and not cc.tx:
            self._sent(L, cc)

    def on_http_writeable(self, s):
        """The answer queued so far is out: read the origin again."""
        L = s.user
        cc = L.cc if L is not None else None
        if cc is not None and cc.rx_paused:
            cc.set_timeout(s.ctx.timeout_secs)
            cc.rx_flow_control(True)

    def on_closed_http(self, s):
        L = s.user
        if L is not None:
            self._end(L)

    # -- the client side --------------------------------------------------

    def on_client_writeable(self, cc):
        L = cc.user
        if L is None or L.cc is not cc:
            return
        L.ready = True
        p = L.pend
        while p and not cc.tx:
            cc.write(p.pop(0))
        if p or cc.tx:
            cc.callback_on_writable()
            return
        if L.body_done:
            self._sent(L, cc)
        s = L.s
        if s.rx_paused and not s.closed:
            s.rx_flow_control(True)

    def on_client_http_response(self, cc, status, headers):
        L = cc.user
        if L is None or L.cc is not cc:
            return
        L.head = True
        self._untime(L)
        s = L.s
        if s.closed or s.req is None or s.req.head_sent:
            cc.drop()
            return
        drop = _OURS + ("date",) if date_line() else _OURS
        length = None
        v = headers.get("content-length")
        if v is not None and "transfer-encoding" not in headers:
            v = v.split(",")[0].strip()
            if v.isdigit():
                length = int(v)
        s.respond(status, end_to_end(headers, drop), None,
                  headers.get("content-type", "application/octet-stream"),
                  length)
        s.set_timeout(s.ctx.timeout_secs)

    def on_client_http_body(self, cc, data):
        L = cc.user
        if L is None or L.cc is not cc:
            return
        s = L.s
        s.write(bytes(data) if s.req.out_chunked else data)
        s.set_timeout(s.ctx.timeout_secs)
        if s.tx:
            cc.rx_flow_control(False)
            s.callback_on_writable()

    def on_client_http_completed(self, cc):
        L = cc.user
        if L is None or L.cc is not cc:
            return
        self._end(L)
        s = L.s
        if not s.closed:
            s.complete()
            if s.rx_paused:
                s.rx_flow_control(True)
            # the server role finishes the transaction (keep-alive, the
            # next request) after an event of its own
            s.callback_on_writable()

    def on_client_connection_error(self, cc, why):
        L = cc.user
        if L is None or L.cc is not cc:
            return
        self._fail(L, 504 if "timed out" in why else 502, why)

    # -- ends ------------------------------------------------------------

    def _untime(self, L):
        if L.timer is not None:
            L.s.ctx.cancel(L.timer)
            L.timer = None

    def _end(self, L):
        """The transaction is over on the origin's side."""
        self._untime(L)
        cc = L.cc
        L.cc = None
        L.pend = None
        return cc

    def _late(self, L):
        self._untime(L)
        if L.cc is not None and not L.head:
            self._fail(L, 504, "the origin did not answer in time")

    def _fail(self, L, status, why):
        cc = self._end(L)
        if cc is not None:
            cc.drop()
        s = L.s
        if s.closed:
            return
        r = s.req
        if r is None or r.head_sent:
            s.drop()  # an answer cut short is cut short for the client too
            return
        if s.rx_paused:
            s.rx_flow_control(True)
        s.send_error(status, "origin: " + why)
        s.callback_on_writable()
