"""echo: every message goes back as it came, text as text, binary as
binary, fragmented as fragmented (what conformance suites drive)."""
from lws import Protocol


class Echo(Protocol):
    name = "echo"
    rx_buffer_size = 4096

    def on_receive(self, conn, data):
        # the frame's state read directly: what is_first_fragment() and
        # frame_is_binary() say, with fewer calls on the hot path
        ws = conn.ws
        conn.role.send(conn, ws.msg_op if ws.first else 0, data, ws.final)
