"""microlws, the app the bench measures: the file's folder mounted at /
(file://, as any static site), GET /heap answering the heap, the echo
protocol at /echo (WebSocket), and a routed JSON API (lws.app) at /api:
GET /api/<int:id>, the same app as the Microdot peer. (make
run's test server carries every test protocol besides, so it is not what
a small device would run.)

usage: micropython lws_app.py PORT FILE [TLS_PORT CERT KEY]
(with a TLS port, the same mounts are served over https/wss there too)

LWS_LOOP=asyncio in the environment serves with asyncio.run(ctx.serve());
LWS_LOOP=poll with the loop lws.aio had before (service(0) and a 5 ms
sleep when idle, kept here to compare); LWS_LOOP=imported: ctx.run(),
with asyncio and lws.aio imported (what importing them costs, apart from
the loop); otherwise ctx.run().
"""
import gc
import os
import sys

import lws
from lws.plugins.echo import Echo


def routes():
    from lws.app import App
    api = App("api")

    @api.get("/<int:id>")
    def item(request, id):
        return {"id": id, "name": "item %d" % id}
    return api


class Api(lws.Protocol):
    """The routed JSON API at /api: lws.app is imported at its first
    request, so the figures measured before (idle heap, connections, the
    heap budgets of tests/test_ws_heap.py) are the app's without it, and
    the bench's heap after the routed load counts it."""
    name = "api"
    app = None

    def _app(self):
        if self.app is None:
            self.app = routes()
        return self.app

    def on_http(self, conn, req):
        return self._app().on_http(conn, req)

    def on_http_body(self, conn, data):
        return self._app().on_http_body(conn, data)

    def on_http_body_completion(self, conn):
        return self._app().on_http_body_completion(conn)

    def on_http_writeable(self, conn):
        return self._app().on_http_writeable(conn)

    def on_closed_http(self, conn):
        return self._app().on_closed_http(conn)


class Heap(lws.Protocol):
    name = "heap"

    def on_http(self, conn, req):
        gc.collect()
        conn.respond(200, body="%d %d\n" % (gc.mem_alloc(), gc.mem_free()),
                     content_type="text/plain")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    root = path[:path.rfind("/")]
    mounts = [lws.Mount("/", "file://" + root),
              lws.Mount("/heap", "callback://heap"),
              lws.Mount("/echo", "callback://echo"),
              lws.Mount("/api", "callback://api")]
    protocols = [Heap(), Echo(), Api()]
    vhosts = [lws.Vhost("localhost", port, mounts, protocols)]
    if len(sys.argv) > 5:
        vhosts.append(lws.Vhost("tls", int(sys.argv[3]), mounts, protocols,
                                tls_cert=sys.argv[4], tls_key=sys.argv[5]))
    ctx = lws.Context(vhosts)
    loop = os.getenv("LWS_LOOP")
    if loop == "asyncio":
        import asyncio
        try:
            asyncio.run(ctx.serve())
        except KeyboardInterrupt:
            pass
    elif loop == "poll":
        import asyncio

        async def poll():
            try:
                while not ctx._stop:
                    await asyncio.sleep_ms(0 if ctx.service(0) else 5)
            finally:
                ctx.close()
        try:
            asyncio.run(poll())
        except KeyboardInterrupt:
            pass
    else:
        if loop == "imported":
            __import__("lws.aio")
        ctx.run()


main()
