"""lws-status: the live list of connections and the heap, pushed once a
second to every connection of the protocol; GET on its callback:// mount
gives the same as JSON (e.g. /status.json)."""
import gc
import json
import time
from lws import Protocol

_PERIOD_MS = const(1000)


class Status(Protocol):
    name = "lws-status"
    rx_buffer_size = 64

    def __init__(self):
        self.timer = None
        self.t0 = time.ticks_ms()

    def report(self, ctx):
        conns = []
        for c in ctx.conns.values():
            p = c.proto
            conns.append({"peer": repr(c)[6:-1], "role": c.role.name,
                          "protocol": getattr(p, "name", None)})
        gc.collect()
        return json.dumps({
            "uptime_ms": time.ticks_diff(time.ticks_ms(), self.t0),
            "heap": {"alloc": gc.mem_alloc(), "free": gc.mem_free()},
            "connections": conns})

    def on_http(self, conn, req):
        conn.respond(200, {"Cache-Control": "no-store"},
                     self.report(conn.ctx), "application/json")

    def on_established(self, conn):
        if self.timer is None:
            ctx = conn.ctx
            self.timer = ctx.every(
                _PERIOD_MS, lambda: ctx.callback_on_writable_all_protocol(self))
        conn.callback_on_writable()

    def on_server_writeable(self, conn):
        conn.send_text(self.report(conn.ctx))
