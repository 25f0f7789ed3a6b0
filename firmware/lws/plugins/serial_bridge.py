"""lws-serial-bridge: a stream (a machine.UART on a board, a pty on the
unix port) bridged to WebSocket clients, on ctx.adopt():

    bridge = SerialBridge()
    ctx = lws.Context(port=80, protocols=[bridge],
                      mounts=[lws.Mount("/serial", "callback://lws-serial-bridge")])
    ctx.adopt(machine.UART(1, 115200, timeout=0), bridge)
    ctx.run()

(on the unix port: ctx.adopt(open_tty("/dev/pts/3"), bridge))

What the stream sends goes to every connected client as binary messages,
through one lws.ring with a tail per client: a slow client loses the
oldest bytes, and never holds up the stream or the others. What a client
sends goes to the stream; while the stream has not taken it all, that
client is not read (flow control), so nothing is lost on the way in."""
from lws import Protocol

_CHUNK = const(128)    # bytes of stream data a ring element holds
_ELEMENTS = const(16)
_VTIME = const(5)      # termios c_cc indexes (Linux)
_VMIN = const(6)


def open_tty(path):
    """A tty (a pty on the unix port) opened for ctx.adopt(): raw, and a
    read gives what has arrived instead of waiting for a full buffer
    (VMIN and VTIME 0). A board's machine.UART(..., timeout=0) needs none
    of this."""
    import termios
    f = open(path, "r+b")
    fd = f.fileno()
    termios.setraw(fd)
    a = termios.tcgetattr(fd)
    a[6][_VMIN] = 0
    a[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)
    return f


class SerialBridge(Protocol):
    name = "lws-serial-bridge"
    rx_buffer_size = 256

    def __init__(self):
        self.stream = None
        self.ring = None
        self.paused = []

    # -- the stream (the adopted raw connection) ---------------------------

    def _ring(self):
        if self.ring is None:
            from lws.ring import Ring
            # an element: length (1 byte), then the bytes
            self.ring = Ring(1 + _CHUNK, _ELEMENTS)
        return self.ring

    def on_raw_adopt(self, conn):
        self.stream = conn

    def on_raw_rx(self, conn, data):
        ring = self._ring()
        for i in range(0, len(data), _CHUNK):
            piece = data[i:i + _CHUNK]
            if not ring.free():
                ring.drop_oldest()
            slot = ring.insert_slot()
            slot[0] = len(piece)
            slot[1:1 + len(piece)] = piece
            ring.bump_head()
        conn.ctx.callback_on_writable_all_protocol(self)

    def on_raw_writeable(self, conn):
        # the stream took what was queued: read the paused clients again
        for c in self.paused:
            c.rx_flow_control(True)
        self.paused = []

    def on_raw_close(self, conn):
        if self.stream is conn:
            self.stream = None

    # -- the WebSocket clients ------------------------------------------------

    def on_established(self, conn):
        conn.user = self._ring().tail()

    def on_receive(self, conn, data):
        s = self.stream
        if s is None:
            return  # no stream (yet): dropped
        s.send(data)
        if s.tx:
            conn.rx_flow_control(False)
            self.paused.append(conn)
            s.callback_on_writable()

    def on_server_writeable(self, conn):
        t = conn.user
        mv = t.get()
        if mv is None:
            return
        conn.send_binary(mv[1:1 + mv[0]])
        t.consume()
        if t.waiting():
            conn.callback_on_writable()

    def on_closed(self, conn):
        if conn in self.paused:
            self.paused.remove(conn)
        if self.ring is not None and conn.user is not None:
            self.ring.release(conn.user)
