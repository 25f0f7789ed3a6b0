"""echo: every message goes back as it came, text as text, binary as
binary, fragmented as fragmented (what conformance suites drive)."""
from lws import Protocol


class Echo(Protocol):
    name = "echo"
    rx_buffer_size = 4096

    def on_receive(self, conn, data):
        first = conn.is_first_fragment()
        final = conn.is_final_fragment()
        if first:
            op = 2 if conn.frame_is_binary() else 1
        else:
            op = 0  # continuation
        conn.send_frame(op, data, final)
