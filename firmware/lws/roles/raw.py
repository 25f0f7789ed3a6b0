"""Raw connections: plain TCP with rx, writeable and close callbacks
(lws RAW: LWS_CALLBACK_RAW_ADOPT, RAW_RX, RAW_WRITEABLE, RAW_CLOSE)."""
from . import Role


def adopt(c, proto):
    """The connection is raw from now on, served by proto."""
    c.proto = proto
    if c.client is not None:
        c.client.established = True
    c.transition(ROLE)


class Raw(Role):
    name = "raw"

    def start(self, c):
        c.deadline = None  # raw streams may idle
        c.update()
        c.proto.on_raw_adopt(c)

    def rx(self, c):
        buf = c.ctx.rx_buf()
        n = c.recv_into(buf)
        if n is None:
            return
        if n == 0:
            c.drop()
            return
        c.proto.on_raw_rx(c, memoryview(buf)[:n])

    def writable(self, c):
        c.proto.on_raw_writeable(c)

    def dropped(self, c):
        c.proto.on_raw_close(c)


ROLE = Raw()
