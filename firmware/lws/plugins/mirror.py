"""lws-mirror-protocol: every message goes to every connection of the
protocol, through one lws.ring with a tail per connection. The ring is
small and bounded: when it is full, the oldest message is dropped, so a
slow reader loses the oldest messages and never blocks the others."""
from lws import Protocol

_MAX = const(256)        # largest message mirrored, bytes
_ELEMENTS = const(16)    # messages the ring holds


class Mirror(Protocol):
    name = "lws-mirror-protocol"
    rx_buffer_size = _MAX
    # drawing commands of a few dozen bytes: nothing to compress
    ws_deflate = False
    max_message_size = _MAX

    def __init__(self):
        self.ring = None

    def on_established(self, conn):
        if self.ring is None:
            from lws.ring import Ring
            # an element: length (2 bytes), binary flag, payload
            self.ring = Ring(3 + _MAX, _ELEMENTS)
        conn.user = self.ring.tail()

    def on_receive(self, conn, data):
        ring = self.ring
        if not ring.free():
            ring.drop_oldest()
        slot = ring.insert_slot()
        n = len(data)
        slot[0] = n >> 8
        slot[1] = n & 255
        slot[2] = conn.frame_is_binary()
        slot[3:3 + n] = data
        ring.bump_head()
        conn.ctx.callback_on_writable_all_protocol(self)

    def on_server_writeable(self, conn):
        t = conn.user
        mv = t.get()
        if mv is None:
            return
        n = mv[0] << 8 | mv[1]
        if mv[2]:
            conn.send_binary(mv[3:3 + n])
        else:
            conn.send_text(mv[3:3 + n])
        t.consume()
        if t.waiting():
            conn.callback_on_writable()

    def on_closed(self, conn):
        if self.ring is not None and conn.user is not None:
            self.ring.release(conn.user)
