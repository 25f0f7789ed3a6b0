"""Counters the server keeps as it goes (lws LWS_WITH_STATS), cheap
enough to leave on: a few integer additions on paths that already run.
ctx.stats is one of these; stats.as_dict() is what status.json shows."""


class Stats:
    def __init__(self):
        self.accepted = 0     # connections accepted
        self.refused = 0      # refused at once (full, heap, ip limits)
        self.bytes_in = 0
        self.bytes_out = 0
        self.http = [0] * 6   # responses by status class: http[2] is 2xx
        self.ws_rx = 0        # WebSocket messages received (whole)
        self.ws_tx = 0        # and sent (final frames of data messages)
        self.ah_waits = 0     # connections that waited for a header buffer
        self.tls_waits = 0    # handshakes that waited for a slot
        # callback_on_writable() to the writeable callback, ms
        self.ww_n = 0
        self.ww_sum = 0
        self.ww_min = 0
        self.ww_max = 0

    def writeable(self, ms):
        if not self.ww_n or ms < self.ww_min:
            self.ww_min = ms
        if ms > self.ww_max:
            self.ww_max = ms
        self.ww_n += 1
        self.ww_sum += ms

    def as_dict(self):
        h = self.http
        return {"accepted": self.accepted, "refused": self.refused,
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "http": {"1xx": h[1], "2xx": h[2], "3xx": h[3], "4xx": h[4],
                         "5xx": h[5]},
                "ws_messages": {"rx": self.ws_rx, "tx": self.ws_tx},
                "ah_waits": self.ah_waits, "tls_waits": self.tls_waits,
                "writeable_ms": {"n": self.ww_n, "min": self.ww_min,
                                 "mean": self.ww_sum / self.ww_n
                                 if self.ww_n else 0, "max": self.ww_max}}
