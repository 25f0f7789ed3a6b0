"""lws-http-test: the test server's HTTP callback demo.

GET  .../info          the request as JSON (method, path, query, headers)
POST .../body          length and sha256 of the request body, as JSON
GET  .../stream?n=&size=   n pieces of size bytes, chunked, sent as the
                       socket drains (callback_on_writable)
GET  .../heap          heap in use and free after a collection
GET  .../pool          the header pool (max_http_header_pool) as JSON:
                       "buffers" made so far, "free" ones, connections
                       "waiting" for one, and "held": 1 while this request
                       holds one itself (a request holds one while its head
                       is handled, and gives it back after). At rest,
                       free + held == buffers and waiting == 0.
GET  .../crash         the callback raises: 500, the server goes on
Any other path is a 404; to a POST it is sent once the body has been read
(and dropped), so the connection stays open for the next request.
"""
import gc
import json
from lws import Protocol

_MAX_PIECE = const(4096)
_MAX_PIECES = const(1000000)


class HttpTest(Protocol):
    name = "lws-http-test"

    def new_user(self, conn):
        return {}

    def on_http(self, conn, req):
        what = req.subpath.strip("/")
        u = conn.user
        if what == "info":
            conn.respond(200, body=json.dumps({
                "method": req.method, "path": req.path, "query": req.query,
                "version": req.version, "headers": req.headers,
                "subpath": req.subpath}), content_type="application/json")
        elif what == "body":
            from lws.genhash import Hash
            u["h"] = Hash("sha256")
            u["n"] = 0
        elif what == "stream":
            a = req.args()
            try:
                n = int(a.get("n", "10"))
                size = min(int(a.get("size", "100")), _MAX_PIECE)
                if not (0 <= n <= _MAX_PIECES and size > 0):
                    raise ValueError
            except ValueError:
                conn.send_error(400, "n must be 0..%d, size 1.." % _MAX_PIECES)
                return
            u["left"] = n
            u["piece"] = bytes((48 + i % 10 for i in range(size)))
            conn.respond(200, content_type="text/plain")
            conn.callback_on_writable()
        elif what == "heap":
            gc.collect()
            conn.respond(200, body="%d %d\n" % (gc.mem_alloc(), gc.mem_free()),
                         content_type="text/plain")
        elif what == "pool":
            ctx = conn.ctx
            conn.respond(200, body=json.dumps({
                "buffers": ctx._ah_count, "free": len(ctx._ah_free),
                "waiting": len(ctx._ah_wait),
                "held": 0 if conn.inbuf is None else 1}),
                content_type="application/json")
        elif what == "crash":
            raise RuntimeError("crash requested")
        elif req.method != "POST":
            conn.send_error(404)
        # a POST elsewhere: its 404 once the body is read and dropped

    def on_http_body(self, conn, data):
        h = conn.user.get("h")
        if h is not None:
            h.update(data)
            conn.user["n"] += len(data)

    def on_http_body_completion(self, conn):
        u = conn.user
        if "h" in u:
            import binascii
            conn.respond(200, body=json.dumps({
                "length": u["n"],
                "sha256": binascii.hexlify(u.pop("h").digest()).decode()}),
                content_type="application/json")
        elif conn.req.method == "POST" and not conn.req.head_sent:
            conn.send_error(404)

    def on_http_writeable(self, conn):
        u = conn.user
        if u.get("left", 0) > 0:
            u["left"] -= 1
            conn.write(u["piece"])
        if u.get("left", 0) > 0:
            conn.callback_on_writable()
        else:
            conn.complete()
