"""The WebSocket role (RFC 6455): upgrade, framing, UTF-8, close, ping.

Loaded at the first upgrade. Frames are read into one buffer shared by
every connection and unmasked in place; a message is gathered in a buffer
of its own (made for it, dropped after it) only when it arrives in several
reads and may yet be delivered whole. A reply to a piece is put together
in front of it, where its frame header was: no copy.
"""
import binascii
from .. import log
from ..httpmsg import HttpError
from ..mask import unmask
from . import Role

try:
    from uctypes import addressof
except ImportError:  # a port without uctypes: replies are sent in two
    def addressof(b):
        return -1

OP_CONT = const(0)
OP_TEXT = const(1)
OP_BINARY = const(2)
OP_CLOSE = const(8)
OP_PING = const(9)
OP_PONG = const(10)

_OPEN = const(0)
_CLOSE_SENT = const(1)   # our close is out: waiting for the peer's
_DONE = const(2)         # close handshake over: flush, then hang up
_FAILED = const(3)       # failed: our close is out, input is dropped

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_RSV1 = const(0x40)  # the frame's message is compressed (RFC 7692)


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    from ..genhash import digest
    return binascii.b2a_base64(digest("sha1", key + _GUID))[:-1]


def frame_head(op, n, fin=True, mask=None):
    """A frame header for a payload of n bytes (mask: 4 bytes, clients)."""
    b0 = (0x80 if fin else 0) | op
    mb = 0x80 if mask else 0
    if n < 126:
        h = bytes((b0, mb | n))
    elif n < 65536:
        h = bytes((b0, mb | 126, n >> 8, n & 255))
    else:
        h = bytes((b0, mb | 127)) + n.to_bytes(8, "big")
    return h + mask if mask else h


def valid_close_code(code):
    return (1000 <= code <= 1003 or 1007 <= code <= 1014
            or 3000 <= code <= 4999)


class WsError(Exception):
    """Fail the connection with a close code (args: code, reason)."""


class State:
    """A WebSocket connection's framing state."""

    # frame being read
    op = 0
    fin = True
    left = 0          # payload bytes of the frame still to come
    key = None        # where the masking key is: the read buffer or a copy
    koff = 0          # and at which offset
    phase = 0         # mask phase of the next payload byte
    ctl = None        # a control frame's payload being gathered
    # message being read
    msg_op = 0        # opcode of the message in progress, 0 = none
    msg_len = 0
    first = True      # the next delivered piece is the first of a message
    final = True
    text = False      # a text message, checked as UTF-8
    buf = None        # gathering a message that came in several reads
    fill = 0
    after = 0         # bytes of this read after the piece delivered
    utf8 = None
    carry = b""       # header bytes that arrived without the rest
    z = False         # the message is compressed (RSV1 on its first frame)
    pmd = None        # permessage-deflate, when negotiated (ws_deflate)
    # connection
    status = _OPEN
    peer_closed = False
    ping_sent = False
    heard = False     # something arrived since the last silence check
    close_code = 1005
    close_reason = b""


def upgrade(c, req, proto):
    """Answer an upgrade request: 101 and the switch to this role, or an
    error status. Returns True when the connection is now a WebSocket."""
    h = req.h
    if req.method != "GET" or req.version != "HTTP/1.1":
        raise HttpError(400, "WebSocket upgrade needs GET and HTTP/1.1")
    if h.get("sec-websocket-version") != "13":
        c.respond(426, {"Sec-WebSocket-Version": "13"},
                  "WebSocket version 13 only\n", "text/plain")
        return False
    key = h.get("sec-websocket-key", "").strip()
    try:
        import binascii
        if len(binascii.a2b_base64(key)) != 16:
            raise ValueError
    except ValueError:
        raise HttpError(400, "bad Sec-WebSocket-Key")
    if proto is None:
        raise HttpError(404, "no WebSocket protocol here")
    if proto.on_filter_protocol_connection(c, req) is False:
        raise HttpError(403, "refused by the protocol")
    if not c.ctx.heap_ok(c.ctx.heap_reserve_ws):
        raise HttpError(503, "low on memory: try again later")
    hdrs = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(key.encode()).decode())]
    if req.ws_protocol:
        hdrs.append(("Sec-WebSocket-Protocol", proto.name))
    pmd = None
    exts = h.get("sec-websocket-extensions")
    opts = getattr(req, "ext_opts", None) or c.vhost.ws_deflate
    if opts is None:
        import sys
        opts = sys.platform != "esp8266"  # its heap: off unless asked
    if exts and opts and proto.ws_deflate is not False and \
            "permessage-deflate" in exts:
        from . import ws_deflate as wd
        r = wd.accept(exts, opts if isinstance(opts, wd.Options)
                      else wd.Options(opts))
        if r is not None:
            hdrs.append(("Sec-WebSocket-Extensions", r[0]))
            pmd = r[1]
    c.send(b"HTTP/1.1 101 Switching Protocols\r\n" + "".join(
        "%s: %s\r\n" % kv for kv in hdrs).encode() + b"\r\n")
    log.info("%r: WebSocket '%s'", c, proto.name)
    c.ws = State()
    if pmd is not None:  # else State's None: no instance attribute
        c.ws.pmd = pmd
    c.proto = proto
    c.user = proto.new_user(c)
    c.transition(ROLE if pmd is None or not pmd.compress_min else ROLE_Z)
    r = proto.on_established(c)
    if r is not None:
        c.later(r)
    return True


def upgrade_request(c, req, vh, m):
    """Pick the protocol: by Sec-WebSocket-Protocol, else the one a
    callback:// mount is bound to, else the vhost's default."""
    proto = None
    req.ws_protocol = False
    asked = req.h.get("sec-websocket-protocol")
    if asked:
        for name in asked.split(","):
            proto = vh.protocol(name.strip())
            if proto is not None:
                req.ws_protocol = True
                break
        else:
            # a 101 that names none of them fails in the browser: say why
            raise HttpError(400, "no WebSocket subprotocol " + asked)
    if proto is None and m is not None and m.kind == "callback":
        proto = vh.protocol(m.target)
        if proto is not None and not proto.speaks_ws():
            proto = None
    if proto is None:
        proto = vh.ws_default_protocol()
    if req.remaining or req.chunked is not None:
        raise HttpError(400, "upgrade request with a body")
    if upgrade(c, req, proto):
        c.req = None
        leftover = bytes(memoryview(c.inbuf)[:c.inlen]) if c.inlen else b""
        c.release_inbuf()
        if leftover:
            # frames sent right behind the request head: the loop hands
            # them to this role, as if just read
            c.ws.carry = leftover
            c.ctx.rx_pending(c)


def start_client(c, proto, left, pmd=None):
    """The client's handshake succeeded: frames from now on (pmd: the
    permessage-deflate agreement)."""
    c.ws = State()
    if pmd is not None:  # else State's None: no instance attribute
        c.ws.pmd = pmd
    c.transition(CLIENT if pmd is None or not pmd.compress_min
                 else CLIENT_Z)
    r = proto.on_client_established(c)
    if r is not None:
        c.later(r)
    if left and not c.closed:
        c.ws.carry = left
        c.ctx.rx_pending(c)


class Ws(Role):
    """The WebSocket role of a server connection; WsClient below is its
    client twin (masked frames out, on_client_* callbacks)."""

    name = "ws"
    #: the mask bit the peer's frames must carry (RFC 6455 5.1)
    peer_mask = 0x80
    error = WsError

    def start(self, c):
        self.idle(c)
        c.update()

    def wants_rx(self, c):
        # not while a reply waits for the socket: a peer that sends and
        # does not read is not let to fill the heap with replies
        return c.ws.status != _DONE and not c.tx

    def idle(self, c):
        """Arm the silence check: every ws_ping_pong_interval, else every
        ws_idle_timeout; no deadline when both are 0."""
        ctx = c.ctx
        iv = ctx.ws_ping_pong_interval or ctx.ws_idle_timeout
        if iv:
            c.set_timeout(iv)
        else:
            c.deadline = None

    def timeout(self, c):
        """The silence check (reads only mark the connection as heard, so
        the hot path sets no timer): silent for a whole interval, a PING;
        still silent after it, hang up."""
        ws = c.ws
        if ws.status == _OPEN and (ws.heard or c.rx_paused or c.tx):
            ws.heard = False  # alive (or not being read): check again
            ws.ping_sent = False
            self.idle(c)
            return
        if ws.status != _OPEN or ws.ping_sent:
            log.info("%r: %s", c, "no close from the peer"
                     if ws.status != _OPEN else "no pong: hanging up")
            c.drop()
            return
        ws.ping_sent = True
        self.send(c, OP_PING, b"")
        ctx = c.ctx
        c.set_timeout(ctx.ws_ping_pong_interval or ctx.ws_close_timeout)

    def writable(self, c):
        if c.ws.status == _OPEN:
            r = c.proto.on_server_writeable(c)
            if r is not None:
                c.later(r)

    def after_event(self, c):
        if c.ws.status == _DONE and not c.tx:
            c.drop()

    def callback_failed(self, c):
        if c.ws.status == _OPEN:
            self.close(c, 1011, b"callback failed")
        else:
            c.drop()

    def dropped(self, c):
        c.ws.buf = None
        if c.ws.pmd is not None:
            c.ws.pmd.reset()
        r = c.proto.on_closed(c)
        if r is not None:
            c.later(r)

    # -- sending ----------------------------------------------------------

    def send(self, c, op, data, fin=True):
        """A frame. A small one is put together in the file buffer; a piece
        just delivered (or its start) gets its header written in front of
        it, over the bytes its own frame came with; anything else goes
        out as header and payload."""
        if c.ws.status != _OPEN and op != OP_CLOSE:
            return
        if fin and op & 15 < 8:
            c.ctx.stats.ws_tx += 1
        n = len(data)
        b0 = (0x80 if fin else 0) | op
        ctx = c.ctx
        tb = ctx._buf
        if n < 126:
            if n <= len(tb) - 2:
                tb[0] = b0
                tb[1] = n
                tb[2:2 + n] = data
                c.send(ctx._bufmv[:2 + n])
                return
        elif n < 65536:
            if n <= len(tb) - 4:
                tb[0] = b0
                tb[1] = 126
                tb[2] = n >> 8
                tb[3] = n & 255
                tb[4:4 + n] = data
                c.send(ctx._bufmv[:4 + n])
                return
            at = ctx._rx_at
            if at >= 4 and addressof(data) == addressof(ctx._rx) + at:
                rx = ctx._rx
                rx[at - 4] = b0
                rx[at - 3] = 126
                rx[at - 2] = n >> 8
                rx[at - 1] = n & 255
                c.send(ctx._rxmv[at - 4:at + n])
                return
        c.send(frame_head(op, n, fin))
        c.send(data)

    def close(self, c, code=1000, reason=b""):
        """Start the close handshake (lws_close_reason + return -1)."""
        ws = c.ws
        if ws.status != _OPEN:
            return
        if isinstance(reason, str):
            reason = reason.encode()
        reason = reason[:123]
        payload = b"" if code is None else code.to_bytes(2, "big") + reason
        self.send(c, OP_CLOSE, payload)
        ws.status = _CLOSE_SENT
        ws.buf = None
        c.set_timeout(c.ctx.ws_close_timeout)

    # -- reading ----------------------------------------------------------

    def rx(self, c):
        ws = c.ws
        ctx = c.ctx
        buf = ctx.rx_buf()
        mv = ctx._rxmv
        k = len(ws.carry)
        if k:
            buf[:k] = ws.carry
            ws.carry = b""
            n = c.recv_into(mv[k:])
        else:
            n = c.recv_into(mv)
        eof = n == 0
        if n is None or eof:
            if not k:
                if eof:
                    log.info("%r: peer hung up", c)
                    c.drop()
                return
            n = 0  # what was kept is parsed first
        if ws.status == _FAILED:
            return  # draining until the peer goes
        ws.heard = True
        try:
            self.parse(c, buf, k + n)
            if eof and ws.status != _DONE:
                # the peer hung up behind its last frames: what they made
                # us send goes out, then we hang up too
                ws.status = _DONE
        except WsError as e:
            log.info("%r: failing with %d: %s", c, e.args[0], e.args[1])
            code = e.args[0]
            if ws.status == _OPEN:
                self.close(c, code, e.args[1].encode())
            if ws.peer_closed:
                ws.status = _DONE
            elif code != 1007 and code != 1009:
                # framing is out of step: parse nothing more, but drain
                # until the peer goes, so our close is not lost to a reset
                ws.status = _FAILED
                c.set_timeout(1)
            # else the stream is in step: wait for the peer's close

    def parse(self, c, buf, n):
        ws = c.ws
        pos = 0
        while pos < n and ws.status != _DONE and not c.closed:
            if c.rx_paused:
                # rx_flow_control(False): the rest waits for the resume
                ws.carry = bytes(buf[pos:n])
                break
            if ws.left == 0 and ws.ctl is None:
                if self.peer_mask and not ws.msg_op and n - pos >= 6:
                    # the common case in short: a whole small message in
                    # one masked frame (the checks of header(), in brief)
                    b0 = buf[pos]
                    ln = buf[pos + 1] - 0x80
                    if (b0 == 0x81 or b0 == 0x82) and 0 <= ln < 126 \
                            and pos + 6 + ln <= n and ws.status == _OPEN:
                        mx = c.proto.max_message_size
                        if mx and ln > mx:
                            raise WsError(1009, "message too big")
                        if ln <= c.proto.rx_buffer_size:
                            self.small(c, ws, buf, pos, ln, b0 & 15)
                            pos += 6 + ln
                            continue
                used = self.header(c, ws, buf, pos, n)
                if used == 0:
                    ws.carry = bytes(buf[pos:n])
                    return
                pos += used
                if ws.left == 0:
                    self.payload(c, ws, buf, pos, 0)
                continue
            k = min(ws.left, n - pos)
            ws.left -= k
            self.payload(c, ws, buf, pos, k)
            pos += k

    def small(self, c, ws, buf, pos, ln, op):
        """Deliver a whole message of one small frame at buf[pos:]."""
        p = pos + 6
        ctx = c.ctx
        mv = ctx._rxmv[p:p + ln]
        if ln:
            unmask(buf, p, ln, buf, pos + 2, 0)
            if op == OP_TEXT and ctx.ws_validate_utf8 and max(mv) >= 0x80:
                from ..utf8 import valid
                if not valid(mv):
                    raise WsError(1007, "invalid UTF-8 in text message")
        # (set only where they differ from State's defaults: a connection
        # of small messages keeps a small instance)
        ws.msg_op = op
        if not ws.final:
            ws.final = True
        if not ws.first:
            ws.first = True
        if ws.after:
            ws.after = 0
        ctx._rx_at = p
        self.receive(c, mv)
        ctx._rx_at = 0
        ctx.stats.ws_rx += 1
        ws.msg_op = 0

    def header(self, c, ws, buf, pos, n):
        """Parse a frame header at buf[pos:n]; 0 if it is not all there."""
        if n - pos < 2:
            return 0
        b0 = buf[pos]
        b1 = buf[pos + 1]
        op = b0 & 15
        fin = b0 & 0x80
        ln = b1 & 127
        need = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + 4
        if b0 & 0x70:
            self.rsv(ws, b0, op)
        masked = b1 & 0x80
        if masked != self.peer_mask:
            raise WsError(1002, "masked server frame" if masked
                          else "unmasked client frame")
        if not masked:
            need -= 4
        if n - pos < need:
            return 0
        if ln == 126:
            ln = buf[pos + 2] << 8 | buf[pos + 3]
        elif ln == 127:
            ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
            if ln >> 63:
                raise WsError(1002, "bad frame length")
        if op >= 8:
            if op > 10:
                raise WsError(1002, "reserved opcode")
            if not fin:
                raise WsError(1002, "fragmented control frame")
            if ln > 125:
                raise WsError(1002, "control frame too long")
            ws.ctl = bytearray()
        else:
            if op > 2:
                raise WsError(1002, "reserved opcode")
            if op == OP_CONT:
                if not ws.msg_op:
                    raise WsError(1002, "continuation without a message")
            elif ws.msg_op:
                raise WsError(1002, "new message inside a fragmented one")
            else:
                ws.msg_op = op
                ws.msg_len = 0
                ws.first = True
                ws.text = op == OP_TEXT and c.ctx.ws_validate_utf8
                if b0 & _RSV1:
                    ws.z = True
            mx = c.proto.max_message_size
            ws.msg_len += ln
            if mx and ws.msg_len > mx and not ws.z:
                raise WsError(1009, "message too big")
        ws.op = op
        ws.fin = fin
        ws.left = ln
        # the key is read where it is, just before the payload; kept
        # apart if the payload starts in the next read, which overwrites it
        ws.key = buf if masked else None
        ws.koff = pos + need - 4
        ws.phase = 0
        if masked and ln and pos + need == n:
            ws.key = bytes(buf[ws.koff:ws.koff + 4])
            ws.koff = 0
        return need

    def rsv(self, ws, b0, op):
        """RSV bits are set: only RSV1, on the first frame of a data
        message, with permessage-deflate (RFC 7692 6)."""
        if b0 & 0x30 or ws.pmd is None:
            raise WsError(1002, "reserved bits set")
        if op >= 8:
            raise WsError(1002, "RSV1 on a control frame")
        if op == OP_CONT:
            raise WsError(1002, "RSV1 on a continuation frame")

    def payload(self, c, ws, buf, pos, k):
        """k payload bytes at buf[pos:]: unmask, then deliver or gather."""
        if k and ws.key is not None:
            unmask(buf, pos, k, ws.key, ws.koff, ws.phase)
            ws.phase = (ws.phase + k) & 3
        if ws.left and ws.key is buf:
            # the frame goes on in the next read: its key is kept apart
            # (before a reply may be written over it)
            ws.key = bytes(buf[ws.koff:ws.koff + 4])
            ws.koff = 0
        mv = c.ctx._rxmv[pos:pos + k]
        if ws.ctl is not None:
            ws.ctl.extend(mv)
            if ws.left == 0:
                ctl = ws.ctl
                ws.ctl = None
                self.control(c, ws, ws.op, ctl)
            return
        if ws.status != _OPEN:
            return  # data after our close: dropped
        last = ws.left == 0 and ws.fin
        if ws.z:
            ws.pmd.rx(self, c, ws, mv, last)
            return
        if ws.text:
            self.text(ws, mv, last)
        rxmax = c.proto.rx_buffer_size
        if ws.buf is None:
            # straight from the read buffer, in pieces of rx_buffer_size
            while len(mv) > rxmax or (len(mv) == rxmax and not last):
                ws.after = len(mv) - rxmax
                self.deliver(c, ws, mv[:rxmax], False, pos)
                if ws.status != _OPEN or c.closed:
                    return
                mv = mv[rxmax:]
                pos += rxmax
            if last:
                ws.after = 0
                self.deliver(c, ws, mv, True, pos)
                return
            if not mv:
                return
            # the message goes on in the next read (or frame)
            size = rxmax
            if ws.fin and ws.op:
                # one frame: gathered only if it may yet arrive whole
                size = ws.msg_len
                if size > rxmax or not ws.first:
                    ws.after = 0
                    self.deliver(c, ws, mv, False, pos)
                    return
            try:
                ws.buf = bytearray(size)  # for this message only
            except MemoryError:
                # no room to gather in: this piece goes as it is
                ws.after = 0
                self.deliver(c, ws, mv, False, pos)
                return
            ws.fill = 0
        g = ws.buf
        cap = len(g)
        while True:
            take = min(cap - ws.fill, len(mv))
            g[ws.fill:ws.fill + take] = mv[:take]
            ws.fill += take
            mv = mv[take:]
            if ws.fill < cap or (last and not mv):
                break
            # a full piece and more to come
            ws.fill = 0
            ws.after = len(mv)
            self.deliver(c, ws, g, False)
            if ws.status != _OPEN or c.closed:
                return
        if last:
            piece = memoryview(g)[:ws.fill]
            ws.buf = None
            ws.after = 0
            self.deliver(c, ws, piece, True)

    def text(self, ws, data, final):
        """Check the next piece of a text message as UTF-8 (1007 when it
        is not); the validator is made only for text that is not ASCII."""
        u = ws.utf8
        if u is None and len(data) and max(data) >= 0x80:
            from ..utf8 import Utf8
            u = ws.utf8 = Utf8()
        if u is not None and not u.feed(data, final):
            raise WsError(1007, "invalid UTF-8 in text message")

    def deliver(self, c, ws, data, final, at=0):
        """A piece to the protocol; at: where it starts in the read buffer
        (0: elsewhere), so a reply to it can be put together in front."""
        ws.final = final
        ctx = c.ctx
        ctx._rx_at = at
        self.receive(c, data)
        ctx._rx_at = 0
        ws.first = False
        if final:
            ctx.stats.ws_rx += 1
            ws.msg_op = 0
            ws.utf8 = None
            ws.text = False
            ws.first = True

    def receive(self, c, data):
        r = c.proto.on_receive(c, data)
        if r is not None:
            c.later(r)

    def control(self, c, ws, op, data):
        if op == OP_PING:
            if ws.status == _OPEN:
                self.send(c, OP_PONG, data)
        elif op == OP_PONG:
            r = c.proto.on_receive_pong(c, data)
            if r is not None:
                c.later(r)
        else:
            self.peer_close(c, ws, data)

    def peer_close(self, c, ws, data):
        ws.peer_closed = True
        code = 1005
        reason = b""
        if len(data) == 1:
            raise WsError(1002, "close payload of one byte")
        if len(data) >= 2:
            code = data[0] << 8 | data[1]
            reason = bytes(data[2:])
            if not valid_close_code(code):
                raise WsError(1002, "invalid close code %d" % code)
            if reason and max(reason) >= 0x80:  # (ASCII needs no check)
                from ..utf8 import valid
                if not valid(reason):
                    raise WsError(1007, "close reason is not UTF-8")
        ws.close_code = code
        ws.close_reason = reason
        if ws.status == _OPEN:
            echo = c.proto.on_peer_initiated_close(c, code, reason)
            if ws.status == _OPEN:
                if echo is False:
                    self.send(c, OP_CLOSE, b"")
                else:
                    self.send(c, OP_CLOSE, data[:2])
        ws.status = _DONE
        c.set_timeout(c.ctx.ws_close_timeout)


class WsClient(Ws):
    """The WebSocket role of our client connections."""

    peer_mask = 0

    def writable(self, c):
        if c.ws.status == _OPEN:
            r = c.proto.on_client_writeable(c)
            if r is not None:
                c.later(r)

    def send(self, c, op, data, fin=True):
        """A frame, masked with a fresh key (RFC 6455 5.3), through the
        buffer made once, a piece at a time for a big payload."""
        if c.ws.status != _OPEN and op != OP_CLOSE:
            return
        if fin and op & 15 < 8:
            c.ctx.stats.ws_tx += 1
        import os
        n = len(data)
        key = os.urandom(4)
        c.send(frame_head(op, n, fin, key))
        tb = c.ctx._buf
        tmv = c.ctx._bufmv
        step = len(tb)
        src = memoryview(data)
        i = 0
        while i < n:
            k = min(step, n - i)
            tb[:k] = src[i:i + k]
            unmask(tb, 0, k, key, 0, i & 3)
            c.send(tmv[:k])
            i += k

    def receive(self, c, data):
        r = c.proto.on_client_receive(c, data)
        if r is not None:
            c.later(r)


def _send_z(base):
    """send() of a connection whose messages may go compressed: a whole
    message above compress_min, when deflating makes it shorter."""
    def send(self, c, op, data, fin=True):
        z = c.ws.pmd
        m = z.compress_min
        if m and fin and (op == OP_TEXT or op == OP_BINARY) and \
                len(data) >= m and c.ws.status == _OPEN:
            d = z.deflate(data)
            if d is not None:
                op |= _RSV1
                data = d
        base.send(self, c, op, data, fin)
    return send


class WsZ(Ws):
    send = _send_z(Ws)


class WsClientZ(WsClient):
    send = _send_z(WsClient)


def set_extension_option(c, ext, name, value):
    """lws_set_extension_option: before the upgrade is answered (from
    on_filter_protocol_connection), what this connection accepts; after
    it, compress_min of its own messages (0: send uncompressed)."""
    if ext != "permessage-deflate":
        raise ValueError("no extension " + ext)
    from . import ws_deflate as wd
    if c.ws is None:
        req = c.req
        o = getattr(req, "ext_opts", None)
        if o is None:
            o = req.ext_opts = wd.Options(c.vhost.ws_deflate)
        wd.set_option(o, name, value)
    elif c.ws.pmd is not None:
        if name != "compress_min":
            raise ValueError(name + " is agreed already")
        wd.set_option(c.ws.pmd, name, value if wd.CAN_COMPRESS else 0)


ROLE = Ws()
CLIENT = WsClient()
ROLE_Z = WsZ()
CLIENT_Z = WsClientZ()
