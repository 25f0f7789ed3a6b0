"""permessage-deflate (RFC 7692) for the ws role: the negotiation, received
messages inflated as they stream in, sent ones deflated where the
interpreter's deflate can compress.

Imported only when an offer is accepted (server) or asked for (client):
a connection without the extension carries none of it.

What MicroPython's deflate decides here:
- DeflateIO reads its input a byte at a time from a stream and raises when
  that stream runs dry, losing its place: so it is only run over input
  that cannot run out (a margin of _HOLD bytes is kept back until more
  arrives, and the end of a message is closed with a final empty block),
  and each message gets a new inflater. The peer is therefore asked not to
  keep its context across messages (client_no_context_takeover from the
  server, server_no_context_takeover from the client), as RFC 7692 lets
  the receiving side do.
- Its compressor writes one final block per stream: each message sent is
  deflated on its own, so we never keep our context either.
Neither side's window is kept between messages: the heap a deflate
connection needs at rest is this object's few fields.
"""
import io
from deflate import DeflateIO, RAW

NAME = "permessage-deflate"
#: the interpreter's deflate can compress (not the PyPI unix port's)
CAN_COMPRESS = hasattr(DeflateIO, "write")

_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
           "server_max_window_bits", "client_max_window_bits")
# compressed bytes kept back while a message is incomplete, so that the
# inflater never runs out mid-stream (block headers, empty blocks)
_HOLD = const(1024)
# at most this many input bytes per output byte are assumed (one-byte
# fragments each with their own block and sync flush)
_SHIFT = const(4)
# the end of a message: the 4 octets the sender removed (RFC 7692 7.2.2),
# then an empty final block, so the inflater stops rather than runs dry
_TAIL = b"\x00\x00\xff\xff\x03\x00"


class Options:
    """What a vhost (or a connection) accepts; lws's extension options.
    Vhost(ws_deflate={...}) and set_extension_option() override them."""

    #: the largest window (bits) the peer may compress with: our inflater
    #: takes 2**rx_window_bits bytes while a message is being received
    #: (the client_max_window_bits a server answers, the
    #: server_max_window_bits a client offers); 0: what a 16th of the
    #: heap holds (15 on the unix port, 12 on an ESP32, 11 on an ESP8266)
    rx_window_bits = 0
    #: our compressor's window (bits) at most (0: as rx_window_bits)
    tx_window_bits = 0
    #: messages shorter than this go uncompressed (0: never compress)
    compress_min = 64

    def __init__(self, opts=None):
        if not self.rx_window_bits or not self.tx_window_bits:
            import gc
            room = (gc.mem_free() + gc.mem_alloc()) >> 4
            bits = 9
            while bits < 15 and 2 << bits <= room:
                bits += 1
            self.rx_window_bits = self.rx_window_bits or bits
            self.tx_window_bits = self.tx_window_bits or bits
        if isinstance(opts, dict):
            for k in opts:
                set_option(self, k, opts[k])


def set_option(obj, name, value):
    if name not in ("rx_window_bits", "tx_window_bits", "compress_min"):
        raise ValueError("no permessage-deflate option " + name)
    value = int(value)
    if name != "compress_min" and not 8 <= value <= 15:
        raise ValueError(name + " must be 8..15")
    setattr(obj, name, value)


def parse(header):
    """Sec-WebSocket-Extensions -> [(name, [(param, value or None)])];
    None when it does not parse."""
    out = []
    for ext in header.split(","):
        parts = [p.strip() for p in ext.split(";")]
        if not parts[0]:
            if len(parts) == 1:
                continue
            return None
        params = []
        for p in parts[1:]:
            k, eq, v = p.partition("=")
            k = k.strip()
            v = v.strip()
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            if not k or (eq and not v):
                return None
            params.append((k, v if eq else None))
        out.append((parts[0], params))
    return out


def _bits(v):
    """A max_window_bits value: 8..15 without leading zeros, else None."""
    if v and v.isdigit() and v[0] != "0" and 8 <= int(v) <= 15:
        return int(v)
    return None


def _check(params, client):
    """{param: value} of one offer (server) or response (client), or None
    when a parameter is unknown, repeated or out of range."""
    got = {}
    for k, v in params:
        if k not in _PARAMS or k in got:
            return None
        if k.endswith("takeover"):
            if v is not None:
                return None
        elif v is not None or k == "server_max_window_bits" or client:
            v = _bits(v)
            if v is None:
                return None
        got[k] = v
    return got


def accept(header, opts):
    """The server's side: the first acceptable offer in header ->
    (response value, Deflate), or None (the extension is declined)."""
    offers = parse(header)
    for name, params in offers or ():
        if name != NAME:
            continue
        got = _check(params, False)
        if got is None:
            continue  # declined: the next offer, if any
        if "client_max_window_bits" in got:
            # RFC 7692 7.1.2.2: we may answer a value at most its own
            rx = min(got["client_max_window_bits"] or 15,
                     opts.rx_window_bits)
        elif opts.rx_window_bits < 15:
            continue  # it would send with 2**15 windows: too big for us
        else:
            rx = 15
        tx = min(got.get("server_max_window_bits") or 15,
                 opts.tx_window_bits)
        resp = NAME + "; server_no_context_takeover; client_no_context_takeover"
        if "server_max_window_bits" in got:
            resp += "; server_max_window_bits=%d" % tx
        if "client_max_window_bits" in got:
            resp += "; client_max_window_bits=%d" % rx
        return resp, Deflate(rx, tx, opts.compress_min)
    return None


def offer(opts):
    """The client's offer: our inflater keeps no window between messages,
    and its window is bounded by the server_max_window_bits we ask for."""
    s = NAME + "; server_no_context_takeover"
    if CAN_COMPRESS:
        s += "; client_no_context_takeover"
    if opts.rx_window_bits < 15:
        s += "; server_max_window_bits=%d" % opts.rx_window_bits
    return s + "; client_max_window_bits"


def agree(header, opts):
    """The client's side: the server's answer -> (Deflate, None), or
    (None, why the connection fails)."""
    exts = parse(header)
    if not exts or len(exts) != 1 or exts[0][0] != NAME:
        return None, "server chose an extension we did not offer: " + header
    got = _check(exts[0][1], True)
    if got is None:
        return None, "invalid permessage-deflate response: " + header
    if "server_no_context_takeover" not in got:
        # we asked for it: a server that accepts must agree (7.1.1.1)
        return None, "permessage-deflate response without " \
                     "server_no_context_takeover"
    rx = got.get("server_max_window_bits") or 15
    if rx > opts.rx_window_bits:
        return None, "server_max_window_bits above what we offered"
    if CAN_COMPRESS and "client_no_context_takeover" not in got:
        return None, "permessage-deflate response without " \
                     "client_no_context_takeover"
    tx = min(got.get("client_max_window_bits") or 15,
             opts.tx_window_bits)
    return Deflate(rx, tx, opts.compress_min), None


class _Feed(io.IOBase):
    """The inflater's input stream: what is kept back of the message,
    then the piece just read, then (at the message's end) _TAIL."""

    def __init__(self):
        self.segs = []
        self.s = b""
        self.i = 0
        self.left = 0

    def add(self, data):
        self.segs.append(data)
        self.left += len(data)

    def readinto(self, b):
        s = self.s
        i = self.i
        while i >= len(s):
            if not self.segs:
                return 0  # DeflateIO raises EOFError: kept from happening
            s = self.s = self.segs.pop(0)
            i = 0
        b[0] = s[i]
        self.i = i + 1
        self.left -= 1
        return 1

    def keep(self, buf):
        """Copy what is left into buf (held over to the next read), or
        drop it (buf None)."""
        n = 0
        if buf is not None:
            for s in [self.s[self.i:]] + self.segs:
                buf[n:n + len(s)] = s
                n += len(s)
        self.segs = []
        self.s = b""
        self.i = 0
        self.left = 0
        return n


class Deflate:
    """One connection's agreement, and the message being inflated."""

    z = None        # the inflater of the message in progress
    out = None      # its pieces are gathered here (rx_buffer_size)
    fill = 0
    total = 0       # inflated bytes of the message so far
    held = None     # compressed bytes kept back between reads
    nheld = 0
    ended = False   # the deflate stream of this message has ended

    def __init__(self, rx_bits, tx_bits, compress_min):
        self.rx_bits = rx_bits
        self.tx_bits = tx_bits
        self.compress_min = compress_min if CAN_COMPRESS else 0

    # -- sending --------------------------------------------------------

    def deflate(self, data):
        """data compressed as one message (a final block, then the empty
        block's header: RFC 7692 7.2.1 with 7.2.3.4), or None when that
        would not be shorter."""
        out = io.BytesIO()
        d = DeflateIO(out, RAW, self.tx_bits)
        d.write(data)
        d.close()
        out.write(b"\x00")
        z = out.getvalue()
        return z if len(z) < len(data) else None

    # -- receiving ------------------------------------------------------

    def rx(self, role, c, ws, mv, last):
        """mv: the next (unmasked) compressed bytes of the message; last:
        they end it. Inflates what is safe to, delivers pieces of
        rx_buffer_size through role.deliver(); a violation raises
        role.error(code, reason)."""
        if self.z is None:
            if last and not len(mv):
                # no deflate data at all: an empty message
                ws.z = False
                role.deliver(c, ws, mv, True)
                return
            self.feed = _Feed()
            self.z = DeflateIO(self.feed, RAW, self.rx_bits)
            self.out = bytearray(c.proto.rx_buffer_size)
            self.fill = 0
            self.total = 0
            self.ended = False
        f = self.feed
        if self.nheld:
            f.add(memoryview(self.held)[:self.nheld])
            self.nheld = 0
        if len(mv) and not self.ended:
            f.add(mv)
        if last:
            f.add(_TAIL)
        self.inflate(role, c, ws, last)
        if last or c.closed or ws.status != 0:  # over (0: still open)
            self.reset()
        elif self.ended:
            f.keep(None)  # what follows a final block is not inflated
        elif f.left:
            if self.held is None:
                self.held = bytearray(_HOLD + (1 << _SHIFT))
            self.nheld = f.keep(self.held)

    def inflate(self, role, c, ws, last):
        """Inflate into the piece buffer while the input cannot run out
        (all of it is there, or more than _HOLD is left over); a full
        piece goes to the protocol once a byte beyond it shows that the
        message goes on."""
        f = self.feed
        z = self.z
        out = self.out
        omv = memoryview(out)
        cap = len(out)
        mx = c.proto.max_message_size
        err = role.error
        while not self.ended:
            room = cap - self.fill
            want = room if last else min(room,
                                         (f.left - _HOLD) >> _SHIFT)
            if room == 0:
                if not last and f.left < _HOLD + (1 << _SHIFT):
                    return  # wait for more input
                one = bytearray(1)
                n = self.run(z, one, err)
                if n:
                    self.piece(role, c, ws, omv, False)
                    if c.closed or ws.status != 0:
                        return
                    out[0] = one[0]
                    self.got(role, ws, omv[:1], mx)
                    self.fill = 1
                else:
                    self.ended = True
                continue
            if want <= 0:
                return  # wait for more input
            n = self.run(z, omv[self.fill:self.fill + want], err)
            if n:
                self.got(role, ws, omv[self.fill:self.fill + n], mx)
                self.fill += n
            if n < want:
                self.ended = True  # its final block has been read
        if last:
            if ws.text:
                role.text(ws, b"", True)
            self.piece(role, c, ws, omv[:self.fill], True)

    def run(self, z, buf, err):
        try:
            return z.readinto(buf)
        except (OSError, EOFError):
            # EOFError: the data ran out before its end (a truncated
            # stream); OSError: the inflater found it corrupt
            raise err(1007, "invalid compressed data")

    def got(self, role, ws, data, mx):
        self.total += len(data)
        if mx and self.total > mx:
            raise role.error(1009, "message too big (inflated)")
        if ws.text:
            role.text(ws, data, False)

    def piece(self, role, c, ws, data, final):
        self.fill = 0
        if final:
            ws.z = False
        role.deliver(c, ws, data, final)

    def reset(self):
        """The message is over (or the connection): its inflater, window
        and buffers go."""
        self.z = self.feed = self.out = self.held = None
        self.nheld = 0
