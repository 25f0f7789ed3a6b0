"""One connection: socket, role, tx queue, poll events and deadline."""
import time
from . import log
from .roles import NONE

_POLLIN = const(1)
_POLLOUT = const(4)
_POLLERR = const(8)
_POLLHUP = const(16)
_EAGAIN = const(11)


def peer_ip(addr):
    """The client address of an accepted socket's addr, without its port:
    (ip, port) on the boards, a struct sockaddr (bytes) on the unix port
    (family, port, then the address)."""
    if isinstance(addr, tuple):
        return addr[0]
    return bytes(addr[:2]) + bytes(addr[4:])


class Conn:
    """A connection (lws "wsi"); its role does the protocol work.

    Attributes that are usually at their default live on the class, so an
    idle connection costs only the few it has set itself.
    """

    #: per-connection data of the protocol (lws per_session_data)
    user = None
    #: the protocol (or mount handler) serving the connection
    proto = None
    #: the request being served (HTTP role)
    req = None
    #: the input buffer while an HTTP head (and body) is read: a buffer of
    #: the context's header pool (lws "ah"), or a client's own; and how
    #: many bytes it holds
    inbuf = None
    inlen = 0
    #: what the socket did not take yet: a list of bytes, or None
    tx = None
    #: the poll events asked for (POLLIN, POLLOUT)
    events = 0
    #: the WebSocket framing state (WebSocket role)
    ws = None
    #: what a client connection asked for and how far it got (ClientState)
    client = None
    #: the subprotocol the server picked (WebSocket clients)
    subprotocol = None
    #: lws parent_wsi: children close just before their parent
    parent = None
    children = None
    #: TLS: the connection is encrypted / still in its handshake
    tls = False
    handshaking = False
    #: TLS: the client's flights read while handshaking, and request
    #: bytes read with the end of a handshake (HTTP role)
    flights = 0
    held = None
    #: the last socket error, for the reason a client reports
    err = None
    #: the TCP socket under a TLS one (what poll watches)
    tcp = None
    #: since when a send has waited for the socket (send_timeout); None
    #: while nothing waits
    tx_t = None
    plain_on_tls = False
    want_write = False
    rx_paused = False
    #: an async callback of it runs (lws.aio): its input waits
    awaiting = False
    closed = False
    #: its client address, while the context counts them (ip_limit_*)
    ip = None

    def __init__(self, ctx, sock, addr, vhosts):
        self.ctx = ctx
        self.sock = sock
        self.addr = addr
        self.vhosts = vhosts
        self.role = NONE  # transition() gives it one
        self.state = 0
        self.deadline = 0
        #: when it began waiting for a request head (Role.waiting_since)
        self.since = time.ticks_ms()
        # set here, not left to the class: drop() and
        # callback_on_writable() must not grow the instance (an
        # allocation) when the heap is full; it costs no more heap
        self.closed = False
        self.want_write = False
        self.tx_t = None

    def __repr__(self):
        """'<conn 127.0.0.1:40000>', the peer's address."""
        try:
            import socket
            a = socket.sockaddr(self.addr)
            return "<conn %s:%d>" % (socket.inet_ntop(a[0], a[1]), a[2])
        except Exception:
            return "<conn>"

    @property
    def vhost(self):
        r = self.req
        return r.vhost if r is not None else self.vhosts[0]

    def transition(self, role):
        """Take on another role (lws_role_transition): the one place a
        connection's role changes. The new role's start() arms its state
        and deadline; bytes read ahead for it go through the loop
        (ctx.rx_pending), never by a nested rx."""
        self.role = role
        self.state = 0
        role.start(self)

    # -- timeouts ---------------------------------------------------------

    def set_timeout(self, secs):
        self.deadline = time.ticks_add(time.ticks_ms(), int(secs * 1000))

    def timed_out(self):
        log.info("%r: timed out", self)
        self.role.timeout(self)

    # -- poll mask --------------------------------------------------------

    def update(self):
        m = 0
        if not self.rx_paused and self.role.wants_rx(self):
            m = _POLLIN
        if self.tx or self.want_write:
            m |= _POLLOUT
        if m != self.events and not self.closed and self.sock is not None:
            # (a client looking up its host has no socket to poll yet)
            self.ctx.watch(self, m)

    def rx_flow_control(self, enable):
        """Stop (False) or resume (True) reading from this connection.
        Stopped, nothing more is delivered, not even what was already
        read (a WebSocket keeps the frames after the current one); resumed,
        that goes first."""
        self.rx_paused = not enable
        self.update()
        if enable and not self.closed:
            self.ctx.rx_pending(self)  # what was kept, or mbedTLS holds

    def callback_on_writable(self):
        """Ask for the writeable callback when the socket can take data."""
        if not self.closed:
            if not self.want_write and not self.tx:
                self.tx_t = time.ticks_ms()
            self.want_write = True
            self.update()

    def later(self, coro):
        """A callback returned coro (it is `async def`): run it up to its
        first await now, then as an asyncio task under ctx.serve(); the
        input waits until it returns (lws.aio.task)."""
        from .aio import task
        task(self, coro)

    # -- events -----------------------------------------------------------

    def event(self, ev):
        try:
            role = self.role
            if ev == _POLLIN:  # the common case, in short
                role.rx(self)
                if not self.closed:
                    role.after_event(self)
                    self.update()
                return
            if ev & (_POLLERR | _POLLHUP) and self.role.poll_error(self):
                return
            if ev & _POLLOUT:
                now = time.ticks_ms()
                if self.want_write and not self.tx:
                    # asked for the writeable callback at tx_t: how long
                    # it waited (lws stats' writeable latency)
                    self.ctx.stats.writeable(time.ticks_diff(now, self.tx_t))
                self.tx_t = now  # the socket takes data
                if self.tx:
                    self._flush()
                if not self.tx and self.want_write and not self.closed:
                    self.want_write = False
                    self.role.writable(self)
            if ev & (_POLLIN | _POLLHUP) and not self.closed:
                if ev & _POLLHUP and (self.rx_paused or
                                      not self.role.wants_rx(self)):
                    self.drop()  # hung up while we were not reading
                    return
                self.role.rx(self)
            elif ev & _POLLERR:
                self.drop()
                return
            if not self.closed:
                self.role.after_event(self)
                self.update()
        except Exception as e:
            try:
                if isinstance(e, MemoryError):
                    import gc
                    gc.collect()
                    log.warn("%r: heap full: closing", self)
                else:
                    log.exc(e, "%r: closing after error", self)
                self.role.callback_failed(self)
                if not self.closed:
                    self.role.after_event(self)  # e.g. close once the 500 is out
                    self.update()
            except Exception:
                self.drop()

    # -- tx ---------------------------------------------------------------

    def send(self, data):
        """Send bytes now; what the socket does not take is queued (copied)."""
        if self.closed or not len(data):
            return
        if self.tx:
            self.tx.append(bytes(data))
            return
        try:
            # write, not send: a socket, a TLS socket or an adopted stream
            # (a UART, a pty) alike; None when it takes nothing now
            n = self.sock.write(data)
        except (OSError, ValueError) as e:  # tls: ValueError for bad certs
            if not isinstance(e, OSError) or e.args[0] != _EAGAIN:
                log.info("%r: send: %s", self, e)
                self.err = e
                self.drop()
                return
            n = 0
        if n is None:
            n = 0
        self.ctx.stats.bytes_out += n
        if n < len(data):
            self.tx = [bytes(memoryview(data)[n:])]
            if not self.want_write:
                self.tx_t = time.ticks_ms()
            self.update()

    def _flush(self):
        tx = self.tx
        while tx:
            d = tx[0]
            try:
                n = self.sock.write(d)
            except (OSError, ValueError) as e:
                if isinstance(e, OSError) and e.args[0] == _EAGAIN:
                    return
                log.info("%r: send: %s", self, e)
                self.err = e
                self.drop()
                return
            self.ctx.stats.bytes_out += n or 0
            if n is None or n < len(d):
                tx[0] = memoryview(d)[n or 0:]
                return
            tx.pop(0)
        self.tx = None

    # -- rx ---------------------------------------------------------------

    def recv_into(self, mv):
        """Read into mv; None if nothing is there, 0 at end of stream."""
        try:
            n = self.sock.readinto(mv)
            if n:
                self.ctx.stats.bytes_in += n
            if self.tcp is not None and n and n == len(mv):
                # mbedTLS may hold more of the record than fitted: poll on
                # the TCP socket cannot tell, so read again after this event
                self.ctx.rx_pending(self)
            return n
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and e.args[0] == _EAGAIN:
                return None
            log.info("%r: recv: %s", self, e)
            self.err = e
            return 0

    def inbuf_ready(self, buf):
        """The header pool has a buffer for us at last."""
        self.inbuf = buf
        self.inlen = 0
        self.update()
        if self.held is not None:
            self.ctx.rx_pending(self)  # no poll event will say it is here

    def release_inbuf(self):
        """Give the header pool's buffer back (a client's own is dropped)."""
        buf = self.inbuf
        if buf is not None:
            self.inbuf = None
            self.inlen = 0
            if self.client is None:
                self.ctx.ah_put(buf, self)

    # -- close ------------------------------------------------------------

    def close(self, code=1000, reason=b""):
        """Close politely: a WebSocket sends a close frame with code and
        reason (lws_close_reason) and waits for the peer's; HTTP hangs up."""
        if not self.closed:
            self.role.close(self, code, reason)

    def drop(self):
        """Hang up now: no goodbye on the wire. It never raises: what
        must happen (out of the socket table, the header buffer back, the
        socket closed) happens even when a callback fails or the heap is
        full, and it allocates nothing for itself."""
        if self.closed:
            return
        self.closed = True
        try:
            ch = self.children
            while ch:
                ch.pop(0).drop()
            p = self.parent
            if p is not None and p.children and self in p.children:
                p.children.remove(self)
            if self.handshaking:
                from .tls_slots import handshake_done
                handshake_done(self)
            self.role.dropped(self)
        except Exception as e:
            try:
                log.exc(e, "%r: close callback", self)
            except Exception:
                pass
        finally:
            self.ctx.forget(self)
            try:
                self.release_inbuf()
            finally:
                if self.sock is not None:
                    try:
                        self.sock.close()
                    except (OSError, ValueError, AttributeError):
                        pass  # (a stream without close: a UART)
                if self.tcp is not None:
                    try:
                        self.tcp.close()
                    except OSError:
                        pass
                if self.tx is not None:
                    self.tx = None

    # -- the HTTP response API (lws_add_http_header_* and friends) ---------

    def respond(self, status=200, headers=None, body=None,
                content_type="text/html", length=None):
        """Send the response head; with body, the whole response.

        Without body or length the body goes out chunked (HTTP/1.1) or
        close-delimited (HTTP/1.0), piece by piece through write().
        """
        self.role.respond(self, status, headers, body, content_type, length)

    def write(self, data):
        """Send a piece of the response body."""
        self.role.write(self, data)

    def complete(self):
        """The transaction is completed (lws_http_transaction_completed)."""
        self.role.complete(self)

    def send_error(self, status, msg=None, close=False):
        """A short error page (lws_return_http_status)."""
        self.role.send_error(self, status, msg, close)

    def set_cookie(self, name, value, **attrs):
        """Send a cookie with the response about to start: Path, Domain,
        Max-Age, Expires, HttpOnly, Secure, SameSite as keyword arguments
        (path=, domain=, max_age=, expires=, http_only=, secure=,
        same_site=); ValueError for what a browser would refuse."""
        from .cookie import add
        add(self.req, name, value, attrs)

    # -- the WebSocket API (lws_write and friends) -------------------------

    def send_text(self, data, fin=True):
        """A text frame (str or UTF-8 bytes); fin=False starts a fragmented
        message, continued with send_frame(OP_CONT, ...)."""
        if isinstance(data, str):
            data = data.encode()
        self.role.send(self, 1, data, fin)

    def send_binary(self, data, fin=True):
        self.role.send(self, 2, data, fin)

    def send_frame(self, op, data=b"", fin=True):
        """Any frame: lws.ws OP_CONT, OP_TEXT, OP_BINARY, OP_PING, OP_PONG."""
        self.role.send(self, op, data, fin)

    def is_first_fragment(self):
        return self.ws.first

    def is_final_fragment(self):
        return self.ws.final

    def frame_is_binary(self):
        return self.ws.msg_op == 2

    def remaining_packet_payload(self):
        """Payload bytes of the current frame not delivered yet."""
        return self.ws.left + self.ws.after
