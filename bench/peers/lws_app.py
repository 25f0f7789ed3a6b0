"""microlws, the app the bench measures: the file's folder mounted at /
(file://, as any static site), GET /heap answering the heap, the echo
protocol at /echo (WebSocket), and a routed JSON API (lws.app) at /api:
GET /api/<int:id>, the same app as the Microdot peer. (make
run's test server carries every test protocol besides, so it is not what
a small device would run.)

usage: micropython lws_app.py PORT FILE [TLS_PORT CERT KEY]
(with a TLS port, the same mounts are served over https/wss there too)
"""
import gc
import sys

import lws
from lws.app import App
from lws.plugins.echo import Echo

api = App("api")


@api.get("/<int:id>")
def item(request, id):
    return {"id": id, "name": "item %d" % id}


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
              api.mount("/api")]
    protocols = [Heap(), Echo(), api]
    vhosts = [lws.Vhost("localhost", port, mounts, protocols)]
    if len(sys.argv) > 5:
        vhosts.append(lws.Vhost("tls", int(sys.argv[3]), mounts, protocols,
                                tls_cert=sys.argv[4], tls_key=sys.argv[5]))
    lws.Context(vhosts).run()


main()
