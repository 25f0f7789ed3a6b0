"""lws-config: a new configuration uploaded over HTTP and reloaded
without dropping anyone (lwstool config push FILE --reload --url ...).

PUT (or POST) a JSON configuration to its mount: it is checked by the
loader that watches the file (lws.config.watch: the board's lws.json,
the test server's --config), the context reloads, and only then is the
file replaced (written beside it, then renamed). A wrong one is a 400
naming the key, and nothing changes. GET gives the file as it is.

It answers only requests the mount's auth_file let in (HTTP Basic,
lws.auth): without one it refuses everything, so that nobody else on
the network can reconfigure the board."""
from lws import Protocol

_MAX = const(16384)  # bytes of configuration


class ConfigPush(Protocol):
    name = "lws-config"
    rx_buffer_size = 64

    def __init__(self, path="lws.json", max_size=_MAX):
        self.path = path
        self.max_size = max_size

    def on_http(self, conn, req):
        if req.auth_user is None:
            conn.send_error(403, "lws-config: its mount needs an auth_file")
            return
        m = req.method
        if m in ("GET", "HEAD"):
            try:
                with open(self.path) as f:
                    body = f.read()
            except OSError:
                conn.send_error(404, "no " + self.path)
                return
            conn.respond(200, None, body, "application/json")
        elif m in ("PUT", "POST"):
            if req.remaining > self.max_size:
                conn.send_error(413, "at most %d bytes" % self.max_size,
                                close=True)
                return
            if getattr(conn.ctx, "conf_apply", None) is None:
                conn.send_error(503, "no configuration file is watched")
                return
            conn.user = []
        else:
            conn.respond(405, {"Allow": "GET, HEAD, PUT, POST"}, "")

    def on_http_body(self, conn, data):
        b = conn.user
        if b is None:
            return
        b.append(bytes(data))
        if sum(len(x) for x in b) > self.max_size:
            conn.user = None
            conn.send_error(413, "at most %d bytes" % self.max_size,
                            close=True)

    def on_http_body_completion(self, conn):
        b = conn.user
        conn.user = None
        if b is None:
            return
        new = self.path + ".new"
        import os
        try:
            with open(new, "wb") as f:
                for x in b:
                    f.write(x)
            del b
            conn.ctx.conf_apply(new)
        except (ValueError, OSError) as e:
            try:
                os.remove(new)
            except OSError:
                pass
            conn.send_error(400, "not reloaded: %s" % e)
            return
        conn.respond(200, None, "reloaded: %d vhosts\n" % len(conn.ctx.vhosts),
                     "text/plain")
