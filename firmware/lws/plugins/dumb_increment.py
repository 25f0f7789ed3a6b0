"""dumb-increment-protocol: every connection gets its own counter, sent
every 50 ms; "reset\\n" resets it (the lws test server's first protocol)."""
from lws import Protocol

_PERIOD_MS = const(50)


class DumbIncrement(Protocol):
    name = "dumb-increment-protocol"
    rx_buffer_size = 64
    # its messages are a few digits; and lws's own test client cannot
    # take the extension on this protocol (its buffer is too small)
    ws_deflate = False

    def __init__(self):
        self.timer = None

    def new_user(self, conn):
        return [0]  # this connection's counter

    def on_established(self, conn):
        if self.timer is None:
            ctx = conn.ctx
            self.timer = ctx.every(
                _PERIOD_MS, lambda: ctx.callback_on_writable_all_protocol(self))

    def on_server_writeable(self, conn):
        u = conn.user
        conn.send_text(str(u[0]))
        u[0] += 1

    def on_receive(self, conn, data):
        if bytes(data) in (b"reset\n", b"reset"):
            conn.user[0] = 0
