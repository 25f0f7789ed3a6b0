"""Context: vhosts, listen sockets, the socket table, the header pool,
TLS handshake slots, timers and the service loop.

The data path: a listen socket's event -> Context._accept -> a Conn in the
socket table, with a role (Conn.transition) -> each poll event goes to
Conn.event -> the role's rx/writable -> the protocol's callback."""
import gc
import select
import socket
import time
from . import log
from .conn import Conn, peer_ip
from .stats import Stats
from .roles import http

_POLLIN = const(1)
_POLLOUT = const(4)
_POLLERR = const(8)
_POLLHUP = const(16)
_EAGAIN = const(11)
_TIMER_MS = const(250)
_ACCEPT_BURST = const(8)
_EVICT_MS = const(50)  # a new connection gets this long to start its head
_FULL = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: 0\r\n\r\n")


class Vhost:
    """A named server on a port, with its mounts and protocols.

    Options are keyword arguments, or class attributes to override; a
    name that is none of them is an error, as for the Context."""

    #: the protocol of WebSockets that name none (else the first one)
    ws_default = None
    #: lws redirect_http_to_https: plain HTTP gets a 301 to https (True,
    #: or the TLS port to send it to)
    redirect_http_to_https = False
    #: TLS: certificate and key (files or bytes, PEM or DER), and/or
    #: TLS-PSK keys {identity: key}
    tls_cert = None
    tls_key = None
    tls_psk = None
    #: TLS client certificates: a CA (file or bytes, PEM or DER); clients
    #: must present a certificate it signed, or the handshake fails (lws
    #: LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT); the request's
    #: lws.tls.peer_cert(conn) is it
    tls_client_ca = None
    #: Strict-Transport-Security on TLS responses: True, or max-age secs
    sts = False
    #: permessage-deflate (RFC 7692): True, False, or a dict of its
    #: options (lws.roles.ws_deflate.Options); None: on, except on esp8266
    ws_deflate = None
    #: a protocol's name: a connection whose first bytes are not HTTP
    #: (nor, on a TLS port, a TLS hello) is handed to it as a raw one
    #: (lws LWS_SERVER_OPTION_FALLBACK_TO_RAW); HTTP is served as before
    raw_fallback = None
    #: callables f(conn, req) a request meets before it is routed to a
    #: mount, in order (lws FILTER_HTTP_CONNECTION): one that answers it
    #: returns True (see add_filter)
    filters = ()

    def __init__(self, name="default", port=7681, mounts=(), protocols=(),
                 iface=None, **options):
        for k in options:
            if k[0] == "_" or not hasattr(Vhost, k) or \
                    callable(getattr(Vhost, k)):
                raise ValueError("unknown vhost option " + k)
            setattr(self, k, options[k])
        self.name = name
        self.port = port
        self.iface = iface
        self.protocols = list(protocols)
        self.mounts = []
        self.tls_ctx = None
        if self.tls_cert or self.tls_psk:
            from .tls import server_context
            self.tls_ctx = server_context(self.tls_cert, self.tls_key,
                                          self.tls_psk, self.tls_client_ca)
        for m in mounts:
            self.mount(m)
        if self.raw_fallback and self.protocol(self.raw_fallback) is None:
            raise ValueError("raw_fallback: no protocol " + self.raw_fallback)

    def add_filter(self, f):
        self.filters = list(self.filters) + [f]

    def remove_filter(self, f):
        self.filters = [x for x in self.filters if x is not f]

    def mount(self, m):
        """Add a mount; longer mountpoints are matched first."""
        self.mounts.append(m)
        self.mounts.sort(key=lambda x: -len(x.mountpoint))

    def ws_default_protocol(self):
        """For WebSockets that name no protocol: ws_default, else the
        first protocol that speaks WebSocket (as lws's protocols[0])."""
        if self.ws_default:
            return self.protocol(self.ws_default)
        for p in self.protocols:
            if p.speaks_ws():
                return p
        return None

    def protocol(self, name):
        for p in self.protocols:
            if p.name == name:
                return p
        return None

    def find_mount(self, path):
        for m in self.mounts:
            if m.matches(path):
                return m
        return None


class Context:
    """The lws context: owns every connection and runs the loop.

    Limits are keyword arguments with lws's names and defaults.
    """

    #: network inactivity timeout (bodies, responses, client connections)
    timeout_secs = 20
    #: seconds a new connection may stay silent, and then take to send its
    #: whole request head (at most timeout_secs); slow ones get a 408
    head_timeout = 5
    #: idle time allowed between keep-alive requests
    keepalive_timeout = 5
    #: seconds a send may make no progress (a peer that stopped reading)
    #: before the connection is dropped
    send_timeout = 10
    #: the largest request head (request line + headers) accepted
    max_http_header_data = 4096
    #: header buffers in use at once (lws default 16; 4 fits a board heap)
    max_http_header_pool = 4
    #: open connections; when full, a new one takes the place of the one
    #: that has waited longest for its request head, else gets a 503
    max_connections = 64
    #: connections one client address may hold at once, across vhosts
    #: (lws ip_limit_wsi; 0: no limit): more are refused at once
    ip_limit_wsi = 0
    #: header buffers one client address may hold at once (lws
    #: ip_limit_ah; 0: no limit): a connection over it gets a 503
    ip_limit_ah = 0
    #: {client address: [connections, header buffers]} with a limit set
    _ips = None
    #: bytes read from a file per write when serving mounts
    file_chunk = 1460
    #: bytes of small files kept with their response heads, so repeated
    #: GETs are answered without opening them (0: 1/32 of the heap; -1:
    #: none)
    file_cache = 0
    #: listen(2) backlog
    backlog = 16
    #: seconds of WebSocket silence before a PING; no PONG by the next
    #: interval closes the connection (0: off, as lws)
    ws_ping_pong_interval = 0
    #: seconds to wait for the peer's answer to our close frame
    ws_close_timeout = 5
    #: with no ping interval: seconds a WebSocket may stay silent, then a
    #: PING, and no answer within ws_close_timeout hangs up (0: forever)
    ws_idle_timeout = 30
    #: close text messages that are not UTF-8 with 1007 (lws VALIDATE_UTF8)
    ws_validate_utf8 = True
    #: TLS handshakes in progress at once; more connections wait (each
    #: handshake takes several KB of heap)
    max_tls_handshakes = 2
    tls_handshakes = 0
    #: the client keep-alive pool (roles/client.py), made at first use
    pool = None
    #: seconds a TLS handshake may take (at most timeout_secs)
    tls_handshake_timeout = 5
    #: seconds a client connection may take to connect (its host name's
    #: lookup included)
    connect_timeout = 20
    #: the DNS servers client connections ask (lws.resolve): "ip", or
    #: (ip, port), or several of them; None: the unix port's
    #: /etc/resolv.conf, a board's station DNS (DHCP's)
    dns_servers = None
    #: seconds a DNS server has to answer one try (each is tried twice)
    dns_timeout = 2
    _dns = None  # the resolver (lws.resolve), made at the first name
    #: bytes read at once by WebSocket, raw and client connections
    rx_buffer_size = 4096
    #: free heap (bytes) a new connection needs; short of it the
    #: connection gets a 503 and the others go on (0: 1/32 of the heap)
    heap_reserve = 0
    #: free heap a WebSocket upgrade needs (it stays, and every open one
    #: needs room for its events: a message gathered, a reply queued):
    #: short of it a 503, while plain requests are still served (0: 1/16
    #: of the heap, at least twice rx_buffer_size)
    heap_reserve_ws = 0
    _poll_room = False
    #: where in the read buffer the piece being delivered starts (0: not
    #: there); Ws.send writes a reply's header in front of it
    _rx_at = 0

    def __init__(self, vhosts=None, port=None, mounts=(), protocols=(),
                 log_level=None, **options):
        for k in options:
            if not hasattr(self, k):
                raise ValueError("unknown option " + k)
            setattr(self, k, options[k])
        self._opts = options
        self._derive()
        if log_level is not None:
            log.set_level(log_level)
        if vhosts is None:
            vhosts = [Vhost(port=7681 if port is None else port,
                            mounts=mounts, protocols=protocols)]
        self.vhosts = list(vhosts)
        self.poll = select.poll()
        self.conns = {}
        self._listen = {}
        self._ah_free = []
        self._ah_count = 0
        self._ah_wait = []
        self._buf = None
        self._stop = False
        self._timer = time.ticks_ms()
        self._timers = []
        self._free = gc.mem_free()
        self._pending = []  # see rx_pending()
        #: counters (lws.stats): in status.json
        self.stats = Stats()
        #: request heads answered before, and how (files.Answer): the
        #: same head is answered again without being parsed
        self._answers = {}
        self._last = None  # the last of them answered
        self._tls_wait = []  # connections waiting for a handshake slot
        # the buffers taken while the heap is whole: made later, under
        # load, they may find no block that large
        self._buf = bytearray(self.file_chunk)
        self._bufmv = memoryview(self._buf)
        self._rx = bytearray(self.rx_buffer_size)
        self._rxmv = memoryview(self._rx)

        if self.ip_limit_wsi or self.ip_limit_ah:
            self._ips = {}
        self._ah_free.append(bytearray(self.max_http_header_data))
        self._ah_count = 1
        self._listen = self._bind_all(self.vhosts, {})
        self._presize()

    def _derive(self):
        """The limits that follow from others, and from the heap."""
        heap = gc.mem_free() + gc.mem_alloc()
        self.heap_reserve = self.heap_reserve or heap >> 5
        self.heap_reserve_ws = self.heap_reserve_ws or max(
            heap >> 4, 2 * self.rx_buffer_size)
        if not self.file_cache:
            self.file_cache = heap >> 5
        self.file_cache = max(self.file_cache, 0)
        self.head_timeout = min(self.head_timeout, self.timeout_secs)
        self.tls_handshake_timeout = min(self.tls_handshake_timeout,
                                         self.timeout_secs)
        # the two the request path sets most, in ms
        self._head_ms = int(self.head_timeout * 1000)
        self._ka_ms = int(self.keepalive_timeout * 1000)

    def _presize(self):
        """Grow the socket table to its full size now, while the heap is
        whole: growing it under load takes a block that a fragmented heap
        may no longer have. (It does not shrink again.)"""
        n = self.max_connections + len(self._listen) + 8
        keys = range(1 << 20, (1 << 20) + n)  # plain numbers, never polled
        for k in keys:
            self.conns[k] = None
        for k in keys:
            del self.conns[k]

    # -- listen sockets ------------------------------------------------

    def _bind_all(self, vhosts, keep):
        """{listen socket: [vhost, ...]} for vhosts, one socket per port
        and iface: kept from keep ({(port, iface): socket}) or bound now.
        When one cannot be bound, the ones bound here are closed again."""
        socks = {}
        got = {}
        try:
            for vh in vhosts:
                k = (vh.port, vh.iface)
                s = got.get(k)
                if s is not None:
                    socks[s].append(vh)
                    log.notice("vhost '%s' shares port %d", vh.name, vh.port)
                    continue
                s = keep.get(k)
                if s is None:
                    s = self._open(vh)
                    log.notice("vhost '%s' listening on port %d", vh.name,
                               vh.port)
                got[k] = s
                socks[s] = [vh]
        except Exception:
            for s in socks:
                if s not in keep.values():
                    self._close_listen(s)
            raise
        return socks

    def _open(self, vh):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ai = socket.getaddrinfo(vh.iface or "0.0.0.0", vh.port, 0,
                                    socket.SOCK_STREAM)[0][-1]
            s.bind(ai)
            s.listen(self.backlog)
            s.setblocking(False)
            self.poll.register(s, _POLLIN)
        except Exception:
            s.close()
            raise
        return s

    def _close_listen(self, s):
        try:
            self.poll.unregister(s)
        except (OSError, KeyError):
            pass
        s.close()

    def reload(self, conf):
        """Serve a new configuration without dropping anyone (lws v2.2's
        graceful reload). conf: a configuration (lws.config: a dict, or
        its file's path), or (options, [Vhost]) as lws.config.build
        gives. It is checked and built first, and new ports bound: a
        wrong one raises (ConfigError, OSError) and changes nothing.
        Then ports it no longer names are closed (their open connections
        go on), same-port sockets are kept, new connections get the new
        vhosts, and open ones finish on the vhosts they started on.
        Options it leaves out that an earlier one set go back to their
        defaults; the buffer sizes take a restart."""
        from .config import reload
        reload(self, conf)

    def _accept(self, ls):
        vhosts = self._listen[ls]
        for _ in range(_ACCEPT_BURST):
            try:
                s, addr = ls.accept()
            except OSError as e:
                if e.args[0] != _EAGAIN:
                    log.warn("accept: %s", e)
                return
            if len(self.conns) >= self.max_connections and \
                    not self._evict() or not self.heap_ok(self.heap_reserve):
                self._refuse(s, vhosts[0].tls_ctx is None)
                continue
            ip = None
            if self._ips is not None:
                ip = peer_ip(addr)
                n = self._ips.get(ip)
                if n is not None and self.ip_limit_wsi and \
                        n[0] >= self.ip_limit_wsi:
                    log.info("ip_limit_wsi: connection refused")
                    self._refuse(s, vhosts[0].tls_ctx is None)
                    continue
            s.setblocking(False)
            try:
                s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
            except OSError:
                pass
            try:
                c = Conn(self, s, addr, vhosts)
                if ip is not None:
                    self._ips.setdefault(ip, [0, 0])[0] += 1
                    c.ip = ip
                self.add(c, s)
                self.stats.accepted += 1
                if vhosts[0].tls_ctx is not None:
                    from .tls import SNIFF
                    c.transition(SNIFF)
                elif vhosts[0].raw_fallback:
                    from .roles.raw import SNIFF
                    c.transition(SNIFF)
                else:
                    c.transition(http.ROLE)
            except MemoryError:
                # a full heap refuses this one connection, nothing else
                self.conns.pop(s, None)
                gc.collect()
                log.warn("heap full: connection refused")
                self._refuse(s, vhosts[0].tls_ctx is None)
                return

    def heap_ok(self, n):
        """True if n bytes of heap are free: the count the loop takes at
        every tick, less what was handed out since; when that looks
        short, counted again after a collection (garbage counts as used
        until then)."""
        if self._free < n:
            gc.collect()
            self._free = gc.mem_free()
            if self._free < n:
                return False
        self._free -= n  # a burst of arrivals within one tick adds up
        return True

    def _refuse(self, s, plain):
        """No room: a 503 (plain HTTP ports) and close, at once."""
        log.info("full: connection refused")
        self.stats.refused += 1
        try:
            if plain:
                s.send(_FULL)
        except OSError:
            pass
        s.close()

    def _evict(self):
        """Full: cut the connection that has waited longest (_EVICT_MS at
        least) without sending a complete request head, so that a new one
        gets its place: idle or silent clients cannot lock others out.
        False if none waits."""
        old = None
        now = time.ticks_ms()
        t0 = time.ticks_add(now, -_EVICT_MS)
        for c in self.conns.values():
            t = c.role.waiting_since(c)
            if t is not None and time.ticks_diff(t, t0) <= 0:
                old, t0 = c, t
        if old is None:
            return False
        log.info("%r: full, cutting the longest waiting connection", old)
        old.role.timeout(old)
        if not old.closed:
            old.drop()
        return True

    # -- the socket table: every connection the loop polls ---------------

    def add(self, c, s, events=0):
        """Poll socket s for connection c."""
        self.conns[s] = c
        self.poll.register(s, events)
        c.events = events

    def watch(self, c, events):
        """Poll c for these events from now on."""
        c.events = events
        self.poll.modify(c.tcp or c.sock, events)

    def forget(self, c):
        """Poll c no more (it closes, or its socket is going to the
        client keep-alive pool); what it waited for is handed on."""
        s = c.tcp or c.sock
        if s in self.conns:
            del self.conns[s]
            try:
                self.poll.unregister(s)
            except (OSError, KeyError):
                pass
        if c in self._ah_wait:
            self._ah_wait.remove(c)
        if c in self._tls_wait:
            self._tls_wait.remove(c)
        c.events = 0
        ip = c.ip
        if ip is not None:
            c.ip = None
            n = self._ips[ip]
            n[0] -= 1
            if c.inbuf is not None:
                n[1] -= 1  # given back after this, uncounted
            if not n[0]:
                del self._ips[ip]

    def rx_pending(self, c):
        """c has input that poll cannot see (what mbedTLS holds, bytes read
        ahead of an upgrade): its role gets it after this round of events,
        as if just read."""
        if c not in self._pending:
            self._pending.append(c)

    # -- the header pool (lws "ah") --------------------------------------

    def ah_get(self, c):
        """Give c a header buffer, or queue it and return None (over
        ip_limit_ah: a 503, and c is dropped)."""
        if c.ip is not None and self.ip_limit_ah:
            n = self._ips[c.ip]
            if n[1] >= self.ip_limit_ah:
                log.info("%r: ip_limit_ah: 503", c)
                self.stats.refused += 1
                try:
                    c.sock.send(_FULL)
                except OSError:
                    pass
                c.drop()
                return None
        if self._ah_free:
            self._ah_taken(c)
            return self._ah_free.pop()
        if self._ah_count < self.max_http_header_pool:
            try:
                ah = bytearray(self.max_http_header_data)
                self._ah_count += 1
                self._ah_taken(c)
                return ah
            except MemoryError:
                # the heap allows no more: wait like a full pool
                gc.collect()
                log.info("heap full: waiting for a header buffer")
        if c not in self._ah_wait:
            self._ah_wait.append(c)
            self.stats.ah_waits += 1
        return None

    def ah_put(self, ah, c=None):
        """c gives its header buffer back: the next waiter gets it."""
        if c is not None and c.ip is not None:
            self._ips[c.ip][1] -= 1
        if self._ah_wait:
            w = self._ah_wait.pop(0)
            self._ah_taken(w)
            w.inbuf_ready(ah)
        else:
            self._ah_free.append(ah)

    def _ah_taken(self, c):
        if c.ip is not None:
            self._ips[c.ip][1] += 1

    def rx_buf(self):
        """The read buffer WebSocket, raw and client connections share (a
        read is handled whole before the next); self._rxmv is a
        memoryview of it."""
        return self._rx

    def adopt(self, stream, protocol, readbuf=None, vhost=None):
        """Serve an open stream as a raw connection of protocol (its name,
        or the Protocol): an accepted socket, a machine.UART, a pty or a
        pipe on the unix port, whatever poll can watch (lws_adopt_socket,
        _readbuf, adopting a descriptor). readbuf: bytes already read from
        it, which on_raw_rx gets first. Returns the connection."""
        from .roles.raw import adopt_stream
        return adopt_stream(self, stream, protocol, readbuf, vhost)

    # -- client connections (lws_client_connect_via_info) -----------------

    def connect(self, url, protocol, method=None, headers=(), body=None,
                subprotocols=(), origin=None, parent=None, proxy=None,
                redirects=0, keepalive=True, ca=None, insecure=False,
                psk=None, deflate=False):
        """Connect out; returns the connection at once. Its outcome reaches
        the protocol: on_client_established (WebSocket),
        on_client_http_response (HTTP, or a ws:// URL with a method),
        on_raw_adopt (raw://, or method "RAW"), or
        on_client_connection_error(conn, reason).

        body: bytes, or True to stream it from on_client_writeable with
        conn.write() and conn.complete(). proxy: 'socks5://[user:pw@]h:p'.
        https/wss: the server's certificate is checked against ca (a PEM or
        DER file or bytes) and its name against the host; insecure=True
        skips both (self-signed test servers only); psk=(identity, key)
        uses TLS-PSK instead of certificates. deflate: offer
        permessage-deflate (True, or a dict of its options).
        """
        from .roles.client import new_client
        return new_client(self, url, protocol, method, headers, body,
                          subprotocols, origin, parent, proxy, redirects,
                          keepalive, ca, insecure, psk, deflate)

    def file_buf(self):
        """The one buffer every connection reads files through."""
        return self._buf

    # -- the loop ---------------------------------------------------------

    def service(self, timeout_ms=1000):
        """Wait up to timeout_ms for events and handle them (lws_service).

        Returns the number of events handled.
        """
        try:
            return self._service(timeout_ms)
        except MemoryError:
            # outside any one connection (accept, the timers): the loop
            # goes on; a connection's own fails that connection alone
            gc.collect()
            log.warn("heap full in the loop")
            return 0

    def _service(self, timeout_ms):
        n = 0
        conns = self.conns
        if self._timers:
            now = time.ticks_ms()
            if timeout_ms < 0:
                timeout_ms = 1 << 29
            for t in self._timers:
                timeout_ms = max(0, min(timeout_ms,
                                        time.ticks_diff(t[0], now)))
        for e in self.poll.ipoll(timeout_ms):
            s = e[0]
            ev = e[1]
            n += 1
            c = conns.get(s)
            if c is None:
                if s in self._listen:
                    self._accept(s)
                continue
            c.event(ev)
        self._after()
        return n

    def _after(self):
        """What follows a round of poll events (the blocking loop's and
        asyncio's, lws.aio): input poll cannot see, timers, and the
        timeout tick."""
        conns = self.conns
        more = self._pending
        while more:
            c = more.pop(0)
            if not c.closed and not c.rx_paused:
                c.event(_POLLIN)
        now = time.ticks_ms()
        for t in self._timers[:] if self._timers else ():
            if time.ticks_diff(now, t[0]) >= 0:
                t[0] = time.ticks_add(now, t[1])
                try:
                    t[2]()
                except MemoryError:
                    gc.collect()
                    log.warn("heap full: a timer callback gave up")
                except Exception as e:
                    log.exc(e, "timer callback")
        if time.ticks_diff(now, self._timer) >= _TIMER_MS:
            self._timer = now
            self._free = gc.mem_free()
            stuck = self.send_timeout * 1000
            due = None  # no list made for a tick where nothing is due
            for c in conns.values():
                d = c.deadline
                t = c.tx_t
                if (d is not None and time.ticks_diff(now, d) >= 0) or (
                        t is not None and (c.tx or c.want_write) and
                        time.ticks_diff(now, t) >= stuck):
                    if due is None:
                        due = []
                    due.append(c)
            for c in due or ():
                if c.closed:
                    continue
                t = c.tx_t
                if t is not None and (c.tx or c.want_write) and \
                        time.ticks_diff(now, t) >= stuck:
                    log.info("%r: send made no progress: dropped", c)
                    c.drop()
                else:
                    c.timed_out()

    def run(self):
        """Serve until stop() or SIGINT (KeyboardInterrupt), then close all."""
        log.notice("service loop running")
        try:
            while not self._stop:
                self.service(_TIMER_MS)
        except KeyboardInterrupt:
            log.notice("interrupted")
        finally:
            self.close()

    def serve(self, idle_ms=None):
        """Serve under asyncio until stop(), then close all: a coroutine,
        asyncio.run(ctx.serve()) or a task beside the application's own.
        asyncio's poll waits for the context's sockets too (lws.aio).
        (idle_ms: no longer used.)"""
        from .aio import serve
        return serve(self)

    def every(self, ms, fn):
        """Call fn() every ms milliseconds from the loop; returns a handle
        for cancel()."""
        t = [time.ticks_add(time.ticks_ms(), ms), ms, fn]
        self._timers.append(t)
        return t

    def cancel(self, t):
        if t in self._timers:
            self._timers.remove(t)

    def stop(self):
        """Ask run() or serve() to return after the current step (any
        task or callback may: serve() wakes up for it)."""
        self._stop = True

    def close(self):
        """Close every connection and listen socket."""
        while self.conns:  # no list: the heap may be full
            c = self.conns.popitem()[1]
            try:
                c.drop()
            except Exception:
                pass
        for s in self._listen:
            try:
                self.poll.unregister(s)
            except (OSError, KeyError):
                pass
            s.close()
        self._listen = {}
        if self.pool is not None:
            self.pool.close()
        log.notice("context closed")

    def callback_on_writable_all_protocol(self, proto):
        for c in self.conns.values():
            if c.proto is proto:
                c.callback_on_writable()
