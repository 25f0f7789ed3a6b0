"""Raw connections: plain TCP with rx, writeable and close callbacks
(lws RAW: LWS_CALLBACK_RAW_ADOPT, RAW_RX, RAW_WRITEABLE, RAW_CLOSE)."""
from . import Role


def adopt(c, proto):
    """The connection is raw from now on, served by proto (bytes already
    read for it in c.held reach on_raw_rx first)."""
    c.proto = proto
    if c.client is not None:
        c.client.established = True
    c.transition(ROLE)


def adopt_stream(ctx, stream, protocol, readbuf, vhost):
    """Context.adopt: loaded with the raw role, not with the server."""
    from ..conn import Conn
    vh = vhost or ctx.vhosts[0]
    p = vh.protocol(protocol) if isinstance(protocol, str) else protocol
    if p is None:
        raise ValueError("no protocol %s" % protocol)
    if hasattr(stream, "setblocking"):
        stream.setblocking(False)
    c = Conn(ctx, stream, None, [vh])
    ctx.add(c, stream)
    if readbuf:
        c.held = bytes(readbuf)
    adopt(c, p)
    return c


class Raw(Role):
    name = "raw"

    def start(self, c):
        c.deadline = None  # raw streams may idle
        c.update()
        r = c.proto.on_raw_adopt(c)
        if r is not None:
            c.later(r)
        if c.held is not None:
            c.ctx.rx_pending(c)  # read before: no poll event will say so

    def rx(self, c):
        held = c.held
        if held is not None:
            c.held = None
            r = c.proto.on_raw_rx(c, memoryview(held))
            if r is not None:
                c.later(r)
            return
        buf = c.ctx.rx_buf()
        n = c.recv_into(buf)
        if n is None:
            return
        if n == 0:
            c.drop()
            return
        r = c.proto.on_raw_rx(c, memoryview(buf)[:n])
        if r is not None:
            c.later(r)

    def writable(self, c):
        r = c.proto.on_raw_writeable(c)
        if r is not None:
            c.later(r)

    def dropped(self, c):
        r = c.proto.on_raw_close(c)
        if r is not None:
            c.later(r)


ROLE = Raw()


def fallback(c):
    """c's first bytes are not HTTP: raw, for its vhost's raw_fallback
    protocol; the bytes are still unread, on_raw_rx gets them."""
    vh = c.vhosts[0]
    adopt(c, vh.protocol(vh.raw_fallback))


class Sniff(Role):
    """A new connection on a port whose vhost has raw_fallback, until its
    first byte says HTTP (an upper-case letter: a method; or an empty
    line) or not (raw). It is only peeked at."""

    name = "sniff"

    def start(self, c):
        c.set_timeout(c.ctx.head_timeout)
        c.update()

    def waiting_since(self, c):
        return c.since

    def rx(self, c):
        try:
            b = c.sock.recv(1, 2)  # MSG_PEEK
        except OSError:
            b = None
        if not b:
            c.drop()
        elif 65 <= b[0] <= 90 or b[0] in (10, 13):
            from . import http
            c.transition(http.ROLE)
        else:
            fallback(c)


SNIFF = Sniff()
