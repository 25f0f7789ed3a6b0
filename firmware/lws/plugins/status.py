"""lws-status: the server's state, pushed once a second to every
connection of the protocol; GET on its callback:// mount gives the same
as JSON (e.g. /status.json).

What is public is the application's choice: by default the uptime, the
heap and how many connections there are per role and protocol;
Status(peers=True) adds each connection's peer address and port, and
with the context's ip_limit_wsi / ip_limit_ah the connections and header
buffers each client address holds."""
import gc
import json
import time
from lws import Protocol

_PERIOD_MS = const(1000)


def _ip_text(k):
    """A client address as the context counts it (lws.context.peer_ip),
    as text."""
    if isinstance(k, str):
        return k
    import socket
    a = socket.sockaddr(k[:2] + b"\0\0" + k[2:])
    return socket.inet_ntop(a[0], a[1])


class Status(Protocol):
    name = "lws-status"
    rx_buffer_size = 64

    def __init__(self, peers=False):
        self.peers = peers
        self.timer = None
        self.t0 = time.ticks_ms()

    def report(self, ctx):
        roles = {}
        protos = {}
        conns = [] if self.peers else None
        for c in ctx.conns.values():
            r = c.role.name
            p = getattr(c.proto, "name", None)
            roles[r] = roles.get(r, 0) + 1
            if p:
                protos[p] = protos.get(p, 0) + 1
            if conns is not None:
                conns.append({"peer": repr(c)[6:-1], "role": r,
                              "protocol": p})
        gc.collect()
        d = {"uptime_ms": time.ticks_diff(time.ticks_ms(), self.t0),
             "heap": {"alloc": gc.mem_alloc(), "free": gc.mem_free()},
             "count": len(ctx.conns), "roles": roles, "protocols": protos}
        d["stats"] = ctx.stats.as_dict()
        if ctx._ips is not None:
            d["ip_limits"] = {"wsi": ctx.ip_limit_wsi, "ah": ctx.ip_limit_ah}
            if conns is not None:
                d["per_ip"] = {_ip_text(k): {"conns": n[0], "ah": n[1]}
                               for k, n in ctx._ips.items()}
        if conns is not None:
            d["connections"] = conns
        return json.dumps(d)

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
