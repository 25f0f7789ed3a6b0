"""Raw connections: plain TCP with rx, writeable and close callbacks
(lws RAW: LWS_CALLBACK_RAW_ADOPT, RAW_RX, RAW_WRITEABLE, RAW_CLOSE)."""
from . import Role


def adopt(c, proto):
    """The connection is raw from now on, served by proto."""
    c.role = ROLE
    c.deadline = None
    if c.cl is not None:
        c.cl.established = True
    proto.on_raw_adopt(c)
    c.update()


class Raw(Role):
    name = "raw"

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

    def closed(self, c):
        c.proto.on_raw_close(c)


ROLE = Raw()
