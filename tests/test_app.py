"""lws.app: Microdot-style routes on a callback:// mount, run on the
MicroPython unix port (served as an asyncio task, ctx.serve()), driven by
http.client, curl and websockets."""
import hashlib
import json
import os
import socket
import subprocess
import time

import pytest
import websockets

from conftest import arun, free_port, peer, recv_all, run_mpy, start

HEAP = "384K"  # the module's server (firmware as .mpy)
SMALL_HEAP = "128K"  # smaller than the 200 KB file sent from it
BIG = 200 * 1024

APP = r'''
import gc
import sys
import asyncio
import lws
from lws.app import App, Response, abort, redirect, send_file
from lws.sse import SSE
from lws.plugins.echo import Echo

app = App()
app.max_body = 4096
streams = []


@app.get("/")
def index(request):
    return "hello"


@app.get("/heap")
def heap(request):
    gc.collect()
    return {"alloc": gc.mem_alloc(), "free": gc.mem_free()}


@app.get("/int/<int:i>")
def conv_int(request, i):
    return {"v": i, "t": "int"}


@app.get("/float/<float:x>")
def conv_float(request, x):
    return {"v": x, "t": "float"}


@app.get("/str/<name>")
def conv_str(request, name):
    return {"v": name, "t": "str"}


@app.get("/path/<path:rest>")
def conv_path(request, rest):
    return {"v": rest, "t": "path"}


@app.get("/re/<re:[a-z]+:word>")
def conv_re(request, word):
    return {"v": word, "t": "re"}


@app.get("/two/<a>/<int:b>")
def two(request, a, b):
    return {"a": a, "b": b}


@app.route("/item", methods=["PUT", "DELETE"])
def item(request):
    return request.method


@app.get("/args")
def args(request):
    a = request.args
    return {"a": a["a"], "all": a.getlist("a"), "b": a.get("b"),
            "c": a.get("c", "none"), "n": a.get("n", 0, int),
            "qs": request.query_string}


@app.post("/json")
def post_json(request):
    return {"got": request.json}


@app.post("/form")
def post_form(request):
    f = request.form
    if f is None:
        return "no form", 415
    files = []
    for k in request.files:
        for x in request.files.getlist(k):
            files.append({"field": x.name, "filename": x.filename,
                          "type": x.content_type, "size": len(x.content)})
            x.save("upload.bin")
    return {"fields": {k: f.getlist(k) for k in f}, "files": files}


@app.post("/raw", max_body=8192)
def post_raw(request):
    return bytes(request.body)


@app.get("/cookies")
def cookies(request):
    r = Response({"in": request.cookies})
    r.set_cookie("sid", "abc123", path="/", http_only=True, max_age=60)
    r.set_cookie("theme", "dark")
    return r


@app.get("/tuple3")
def tuple3(request):
    return "made", 201, {"X-Made": "yes"}


@app.get("/tuple2")
def tuple2(request):
    return "hdrs", {"X-Only": "headers"}


@app.get("/status")
def status(request):
    return 202


@app.get("/none")
def none(request):
    pass


@app.get("/bytes")
def as_bytes(request):
    return b"\x00\x01\x02"


@app.get("/html")
def html(request):
    return Response("<b>x</b>", 200, {"Content-Type": "text/html"})


@app.get("/go")
def go(request):
    return redirect("/there")


@app.get("/go-to")
def go_to(request):
    return redirect(request.args.get("next", "/"))


@app.get("/file")
def big_file(request):
    return send_file("big.bin")


@app.get("/page")
def page(request):
    return send_file("page.html")


@app.get("/nofile")
def no_file(request):
    return send_file("missing.bin")


@app.get("/gen/<int:n>")
def gen(request, n):
    def pieces():
        for i in range(n):
            yield "%05d %s\n" % (i, "x" * 1000)
    return Response(pieces(), headers={"X-Stream": "1"})


@app.get("/lowlevel")
def lowlevel(request):
    # answered on the lws connection itself: nothing more is sent
    request.conn.respond(200, {"X-Low": "1"}, "by conn", "text/plain")


@app.get("/boom")
def boom(request):
    return 1 // 0


@app.get("/keyerr")
def keyerr(request):
    return {}["missing"]


@app.get("/forbidden")
def forbidden(request):
    abort(403, "not for you")


@app.errorhandler(404)
def not_found(request):
    return {"error": "no such page", "path": request.path}


@app.errorhandler(KeyError)
def key_error(request, exc):
    return "key missing: %s" % exc, 400


@app.before_request
def before(request):
    request.g.seen = True
    if request.headers.get("x-block"):
        return "blocked", 429


@app.after_request
def after(request, response):
    response.headers["X-After"] = "1" if request.g.seen else "0"
    return response


@app.get("/events")
def events(request):
    s = SSE(request)
    s.send("hello", event="greeting", id=0)
    streams.append(s)
    return s


@app.get("/streams")
def n_streams(request):
    return {"open": len([s for s in streams if not s.closed])}


quiet = []


@app.get("/quiet-events")
def quiet_events(request):
    s = SSE(request)
    s.keepalive = 300
    s.send("hello")
    quiet.append(s)
    return s


@app.get("/quiet-streams")
def n_quiet(request):
    return {"open": len([s for s in quiet if not s.closed])}


floods = []


@app.get("/sseflood")
def sseflood(request):
    s = SSE(request)
    s.max_queue = 4
    floods.append(s)
    return s


n_tick = [0]


def tick():
    n_tick[0] += 1
    for s in streams[:]:
        if s.closed:
            streams.remove(s)
        elif not s.send({"n": n_tick[0]}, event="tick", id=n_tick[0]):
            streams.remove(s)
    for s in floods[:]:
        for i in range(20):
            if not s.send("y" * 2000):
                floods.remove(s)
                break


@app.get("/async/<int:ms>")
async def slow(request, ms):
    await asyncio.sleep_ms(ms)
    return {"slept": ms}


@app.get("/asyncboom")
async def asyncboom(request):
    await asyncio.sleep_ms(10)
    raise ValueError("async failure")


async def main():
    ctx = lws.Context(port=int(sys.argv[1]),
                      mounts=[app.mount("/"),
                              lws.Mount("/echo", "callback://echo")],
                      protocols=[app, Echo()], timeout_secs=5)
    ctx.every(100, tick)
    await ctx.serve()

asyncio.run(main())
'''


@pytest.fixture(scope="module")
def mpy_dir(tmp_path_factory):
    """The firmware compiled with mpy-cross (as boards load it)."""
    from lwstool import mpy
    d = tmp_path_factory.mktemp("mpy")
    mpy.build(d)
    return d


@pytest.fixture(scope="module")
def srv(tmp_path_factory, mpy_dir):
    d = tmp_path_factory.mktemp("app")
    (d / "app.py").write_text(APP)
    (d / "big.bin").write_bytes(os.urandom(BIG))
    (d / "page.html").write_text("<p>page</p>\n")
    port = free_port()
    s = start(d, script=d / "app.py", args=["{port}"], port=port, heap=HEAP,
              path=mpy_dir)
    s.dir = d
    yield s
    s.stop()


def get(srv, path, method="GET", headers=None, body=None):
    return srv.get(path, headers=headers, method=method, body=body)


def jget(srv, path, **kw):
    st, h, b = get(srv, path, **kw)
    return st, h, json.loads(b)


def alive(srv):
    assert srv.proc.poll() is None, "server died:\n" + srv.log()
    st, _, b = get(srv, "/")
    assert (st, b) == (200, b"hello")


# -- routing ---------------------------------------------------------------

@pytest.mark.parametrize("path,v,t", [
    ("/int/42", 42, "int"), ("/int/-7", -7, "int"),
    ("/float/2.5", 2.5, "float"), ("/float/-3", -3.0, "float"),
    ("/str/caf%C3%A9", "caf\u00e9", "str"),
    ("/path/a/b/c.txt", "a/b/c.txt", "path"),
    ("/re/abc", "abc", "re")])
def test_converters(srv, path, v, t):
    st, h, b = jget(srv, path)
    assert st == 200 and b == {"v": v, "t": t}
    assert h["Content-Type"] == "application/json; charset=UTF-8"


@pytest.mark.parametrize("path", ["/int/4x", "/int/", "/float/1.2.3",
                                  "/re/ABC", "/str/a/b", "/path/",
                                  "/two/x", "/two/x/1/2"])
def test_converter_mismatch_is_404(srv, path):
    st, h, b = jget(srv, path)
    # the app's 404 handler: its body, the 404 kept
    assert st == 404 and b["error"] == "no such page"


def test_two_params(srv):
    assert jget(srv, "/two/x/9")[2] == {"a": "x", "b": 9}


def test_405_with_allow_and_options(srv):
    st, h, b = get(srv, "/item", method="POST")
    assert st == 405 and h["Allow"] == "PUT, DELETE, OPTIONS"
    assert get(srv, "/item", method="PUT")[2] == b"PUT"
    st, h, b = get(srv, "/int/1", method="POST")
    assert st == 405 and h["Allow"] == "GET, HEAD, OPTIONS"
    st, h, b = get(srv, "/int/1", method="OPTIONS")
    assert st == 204 and h["Allow"] == "GET, HEAD, OPTIONS" and b == b""
    assert get(srv, "/nothing", method="OPTIONS")[0] == 404


def test_head_is_served_by_get_routes(srv):
    st, h, b = get(srv, "/", method="HEAD")
    assert st == 200 and h["Content-Length"] == "5" and b == b""
    st, h, b = get(srv, "/file", method="HEAD")
    assert st == 200 and h["Content-Length"] == str(BIG) and b == b""


# -- the request -------------------------------------------------------------

def test_query_multidict(srv):
    st, h, b = jget(srv, "/args?a=1&b=x%20y&a=2&n=5")
    assert b == {"a": "1", "all": ["1", "2"], "b": "x y", "c": "none",
                 "n": 5, "qs": "a=1&b=x%20y&a=2&n=5"}
    assert jget(srv, "/args?a=1&n=notint")[2]["n"] == 0
    st, _, b = get(srv, "/args?a=%zz")
    assert st == 400 and b"percent" in b


def test_json_good_bad_and_not_json(srv):
    hj = {"Content-Type": "application/json"}
    st, _, b = jget(srv, "/json", method="POST", headers=hj,
                    body=b'{"a": [1, 2], "b": "\\u00e9"}')
    assert st == 200 and b == {"got": {"a": [1, 2], "b": "\u00e9"}}
    st, _, b = get(srv, "/json", method="POST", headers=hj, body=b'{"a": ')
    assert st == 400 and b == b"bad JSON"
    st, _, b = jget(srv, "/json", method="POST", body=b'{"a": 1}',
                    headers={"Content-Type": "text/plain"})
    assert b == {"got": None}
    alive(srv)


def test_form_urlencoded(srv):
    st, _, b = jget(srv, "/form", method="POST",
                    headers={"Content-Type":
                             "application/x-www-form-urlencoded"},
                    body=b"x=1&y=caf%C3%A9&x=two+words")
    assert st == 200
    assert b == {"fields": {"x": ["1", "two words"], "y": ["caf\u00e9"]},
                 "files": []}
    st, _, b = get(srv, "/form", method="POST", body=b"x",
                   headers={"Content-Type": "text/plain"})
    assert (st, b) == (415, b"no form")


def test_form_multipart_with_curl(srv, tmp_path):
    f = tmp_path / "up.bin"
    data = os.urandom(1500)
    f.write_bytes(data)
    out = subprocess.run(
        [peer("curl"), "-s", "-F", "name=value one", "-F", "n=2",
         "-F", "doc=@%s;type=application/x-thing" % f,
         srv.url + "/form"], capture_output=True, timeout=20)
    b = json.loads(out.stdout)
    assert b["fields"] == {"name": ["value one"], "n": ["2"]}
    assert b["files"] == [{"field": "doc", "filename": "up.bin",
                           "type": "application/x-thing", "size": 1500}]
    assert (srv.dir / "upload.bin").read_bytes() == data


def test_bad_multipart_is_400(srv):
    st, _, b = get(srv, "/form", method="POST", body=b"--zz\r\nbroken",
                   headers={"Content-Type":
                            "multipart/form-data; boundary=zz"})
    assert st == 400
    alive(srv)


def test_cookies_in_and_out(srv):
    c = srv.conn()
    c.request("GET", "/cookies", headers={"Cookie": "a=1; b=\"two\""})
    r = c.getresponse()
    body = json.loads(r.read())
    sc = r.headers.get_all("Set-Cookie")
    c.close()
    assert body == {"in": {"a": "1", "b": "two"}}
    assert sc == ["sid=abc123; Path=/; Max-Age=60; HttpOnly", "theme=dark"]


# -- what handlers return -----------------------------------------------------

def test_return_values(srv):
    st, h, b = get(srv, "/tuple3")
    assert (st, b, h["X-Made"]) == (201, b"made", "yes")
    assert h["Content-Type"] == "text/plain; charset=UTF-8"
    st, h, b = get(srv, "/tuple2")
    assert (st, b, h["X-Only"]) == (200, b"hdrs", "headers")
    st, h, b = get(srv, "/status")
    assert (st, b) == (202, b"")
    st, h, b = get(srv, "/none")
    assert (st, b) == (204, b"") and "Content-Length" not in h
    st, h, b = get(srv, "/bytes")
    assert (st, b) == (200, b"\x00\x01\x02")
    assert h["Content-Type"] == "application/octet-stream"
    st, h, b = get(srv, "/html")
    assert (b, h["Content-Type"]) == (b"<b>x</b>", "text/html")


def test_handler_may_answer_on_the_connection(srv):
    st, h, b = get(srv, "/lowlevel")
    assert (st, b, h["X-Low"]) == (200, b"by conn", "1")
    alive(srv)


def test_head_of_a_stream(srv):
    st, h, b = get(srv, "/gen/5", method="HEAD")
    assert st == 200 and b == b"" and h["X-Stream"] == "1"
    alive(srv)


def test_redirect(srv):
    st, h, b = get(srv, "/go")
    assert st == 302 and h["Location"] == "/there"
    # a header value from the client cannot split the response
    st, h, b = get(srv, "/go-to?next=/x%0d%0aSet-Cookie:%20evil=1")
    assert st == 500 and "evil" not in str(h), h
    st, h, b = get(srv, "/go-to?next=/fine")
    assert st == 302 and h["Location"] == "/fine"


SMALL_APP = """
import gc, sys
from lws.app import App, send_file
app = App()

@app.get("/file")
def f(request):
    return send_file("big.bin")

@app.get("/heap")
def heap(request):
    gc.collect()
    return {"alloc": gc.mem_alloc(), "free": gc.mem_free()}

app.run(port=int(sys.argv[1]))
"""


def test_send_file_bigger_than_the_heap(tmp_path, mpy_dir):
    """200 KB from a 128K heap: streamed a buffer at a time, and the heap
    after it as before."""
    (tmp_path / "app.py").write_text(SMALL_APP)
    (tmp_path / "big.bin").write_bytes(os.urandom(BIG))
    want = hashlib.sha256((tmp_path / "big.bin").read_bytes()).digest()
    port = free_port()
    s = start(tmp_path, script=tmp_path / "app.py", args=["{port}"],
              port=port, heap=SMALL_HEAP, path=mpy_dir)
    try:
        h0 = jget(s, "/heap")[2]
        assert h0["alloc"] + h0["free"] < BIG
        for _ in range(4):
            st, h, b = get(s, "/file")
            assert st == 200 and h["Content-Length"] == str(BIG)
            assert h["Content-Type"] == "application/octet-stream"
            assert hashlib.sha256(b).digest() == want
            # what the first one loads (lws.mime) stays; then no growth
            h1 = h1 if _ else jget(s, "/heap")[2]["alloc"]
        assert jget(s, "/heap")[2]["alloc"] < h1 + 2048
        assert h1 < h0["alloc"] + 4096
    finally:
        s.stop()


def test_send_file_types_and_missing(srv):
    st, h, b = get(srv, "/page")
    assert (st, b, h["Content-Type"]) == (200, b"<p>page</p>\n", "text/html")
    st, h, b = get(srv, "/nofile")
    assert st == 404


def test_generator_streams_chunked(srv):
    c = srv.conn()
    c.request("GET", "/gen/50")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.getheader("X-Stream") == "1"
    lines = r.read().decode().splitlines()
    assert len(lines) == 50 and lines[49].startswith("00049 x")
    # keep-alive: the same connection serves the next request
    c.request("GET", "/")
    assert c.getresponse().read() == b"hello"
    c.close()


def test_generator_slow_reader_does_not_grow_the_heap(srv):
    """A client that does not read a 3 MB stream: the server makes a
    piece per writeable callback, so its heap stays as it was."""
    h0 = jget(srv, "/heap")[2]["alloc"]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /gen/3000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(1.0)
    h1 = jget(srv, "/heap")[2]["alloc"]
    assert h1 < h0 + 16384, (h0, h1)
    data = recv_until(s, b"\r\n0\r\n\r\n", limit=4 << 20)
    s.close()
    assert data.endswith(b"\r\n0\r\n\r\n") and b"02999 x" in data
    alive(srv)


def recv_until(s, end, limit):
    out = b""
    while not out.endswith(end) and len(out) < limit:
        d = s.recv(65536)
        if not d:
            break
        out += d
    return out


# -- errors and hooks ---------------------------------------------------------

def test_error_handlers(srv):
    st, h, b = jget(srv, "/nope")
    assert st == 404 and b == {"error": "no such page", "path": "/nope"}
    st, h, b = get(srv, "/keyerr")
    assert st == 400 and b.startswith(b"key missing: ")
    assert b"missing" in b[13:]
    st, h, b = get(srv, "/forbidden")
    assert (st, b) == (403, b"not for you")


def test_exception_is_500_and_the_server_goes_on(srv):
    c = srv.conn()
    c.request("GET", "/boom")
    r = c.getresponse()
    assert r.status == 500 and r.read() == b"Internal Server Error"
    alive(srv)
    assert "ZeroDivisionError" in srv.log()


def test_before_and_after_hooks(srv):
    st, h, b = get(srv, "/", headers={"X-Block": "1"})
    assert (st, b, h["X-After"]) == (429, b"blocked", "1")
    st, h, b = get(srv, "/")
    assert (st, h["X-After"]) == (200, "1")
    # not routed: no after hook
    st, h, b = get(srv, "/nope")
    assert "X-After" not in h


def test_413_by_content_length_before_the_body(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: 100000\r\n\r\n")
    data = recv_all(s)  # answered without the body, and closed
    s.close()
    assert data.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in data
    # the route's own limit
    st, _, b = get(srv, "/raw", method="POST", body=b"z" * 6000)
    assert (st, b) == (200, b"z" * 6000)
    assert get(srv, "/raw", method="POST", body=b"z" * 9000)[0] == 413
    alive(srv)


def test_413_for_a_chunked_body_that_grows_too_large(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):
        s.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
    data = recv_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 413 "), data[:100]
    # a chunked body within the limit is read
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n4\r\n[1, \r\n2\r\n2]\r\n0\r\n\r\n")
    data = recv_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(
        b'{"got": [1, 2]}')


# -- SSE ----------------------------------------------------------------------

def read_event(r):
    ev = {}
    while True:
        line = r.readline().decode()
        if line in ("\n", ""):
            return ev
        k, _, v = line.rstrip("\n").partition(": ")
        ev[k] = v


def test_sse_stream(srv):
    c = srv.conn()
    c.request("GET", "/events")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/event-stream"
    assert r.getheader("Cache-Control") == "no-cache"
    assert read_event(r) == {"event": "greeting", "id": "0",
                             "data": "hello"}
    seen = [read_event(r) for _ in range(3)]
    assert all(e["event"] == "tick" for e in seen)
    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(ids) and json.loads(seen[0]["data"])["n"] == ids[0]
    c.close()
    # the server finds it gone at its next sends
    end = time.monotonic() + 5
    while jget(srv, "/streams")[2]["open"] and time.monotonic() < end:
        time.sleep(0.1)
    assert jget(srv, "/streams")[2]["open"] == 0


def test_sse_client_gone_while_nothing_is_sent_is_found(srv):
    """No events: the keepalive comment finds the client gone, so its
    connection is not held until the next event."""
    c = srv.conn()
    c.request("GET", "/quiet-events")
    r = c.getresponse()
    assert read_event(r) == {"data": "hello"}
    # quiet: the comment lines come, and EventSource skips them
    assert r.readline() == b":\n" and r.readline() == b"\n"
    assert jget(srv, "/quiet-streams")[2]["open"] == 1
    c.close()
    end = time.monotonic() + 5
    while jget(srv, "/quiet-streams")[2]["open"] and time.monotonic() < end:
        time.sleep(0.1)
    assert jget(srv, "/quiet-streams")[2]["open"] == 0


def test_sse_slow_client_is_dropped(srv):
    """A client that reads nothing of a fast stream (400 KB/s): once the
    socket buffers are full and 4 events wait, it is dropped rather than
    queued without end, and the heap is as before."""
    h0 = jget(srv, "/heap")[2]["alloc"]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /sseflood HTTP/1.1\r\nHost: x\r\n\r\n")
    end = time.monotonic() + 30
    while "events behind: dropped" not in srv.log() and \
            time.monotonic() < end:
        time.sleep(0.2)
    assert "events behind: dropped" in srv.log()
    got = b""
    while len(got) < 16384:  # some of what the kernel held
        got += s.recv(65536)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 ") and b"data: yyyy" in got
    alive(srv)
    assert jget(srv, "/heap")[2]["alloc"] < h0 + 8192


# -- async --------------------------------------------------------------------

def test_async_handlers_run_as_tasks(srv):
    """Two slow async requests overlap, and a plain one is served while
    they wait."""
    import threading
    out = {}

    def fetch(k, path):
        t0 = time.monotonic()
        out[k] = (jget(srv, path)[2], time.monotonic() - t0)

    ts = [threading.Thread(target=fetch, args=(i, "/async/1000"))
          for i in range(2)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    time.sleep(0.1)
    t1 = time.monotonic()
    alive(srv)
    assert time.monotonic() - t1 < 0.8  # not behind the sleeping ones
    for t in ts:
        t.join(5)
    assert out[0][0] == out[1][0] == {"slept": 1000}
    # side by side, not one after the other (that would be 2 s)
    assert time.monotonic() - t0 < 1.8


def test_async_errors_and_gone_clients(srv):
    st, _, b = get(srv, "/asyncboom")
    assert (st, b) == (500, b"Internal Server Error")
    assert "async failure" in srv.log()
    # the client leaves before the result: it is dropped, nothing breaks
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /async/300 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    s.close()
    time.sleep(0.5)
    alive(srv)


def test_async_handler_without_asyncio_is_500(tmp_path):
    port = free_port()
    (tmp_path / "app.py").write_text(
        "import lws, sys\nfrom lws.app import App\napp = App()\n"
        "@app.get('/')\nasync def a(request):\n    return 'x'\n"
        "@app.get('/ok')\ndef ok(request):\n    return 'ok'\n"
        "app.run(port=int(sys.argv[1]))\n")
    s = start(tmp_path, script=tmp_path / "app.py", args=["{port}"],
              port=port)
    try:
        st, _, b = s.get("/")
        assert st == 500
        assert "serve the context with asyncio" in s.log()
        assert s.get("/ok")[2] == b"ok"
    finally:
        s.stop()


# -- beside a WebSocket protocol ----------------------------------------------

def test_websocket_beside_the_routes(srv):
    async def go():
        async with websockets.connect(srv.ws_url("/echo")) as ws:
            await ws.send("hi there")
            assert await ws.recv() == "hi there"
            st, _, b = await asyncio_to_thread(get, srv, "/int/5")
            assert st == 200 and json.loads(b)["v"] == 5
            await ws.send(b"\x01\x02")
            assert await ws.recv() == b"\x01\x02"
    arun(go(), 20)


async def asyncio_to_thread(fn, *a):
    import asyncio
    return await asyncio.to_thread(fn, *a)


# -- cost ---------------------------------------------------------------------

def test_the_server_does_not_import_the_app():
    r = run_mpy("import sys, lws\n"
                "ctx = lws.Context(port=%d, mounts=[lws.Mount('/', "
                "'file://.')])\nctx.close()\n"
                "print('lws.app' in sys.modules, 'lws.sse' in sys.modules)\n"
                "from lws import App\nprint(App.__name__, "
                "'lws.app' in sys.modules)\n" % free_port())
    assert r.stdout.split() == ["False", "False", "App", "True"], r


def test_bad_patterns_are_refused():
    r = run_mpy("from lws.app import App\napp = App()\n"
                "for p in ('nolead', '/<path:x>/y', '/<bogus:x>', '/<int:>',"
                " '/a<b>'):\n"
                "    try:\n        app.route(p)(print)\n"
                "        print('accepted', p)\n"
                "    except ValueError as e:\n        print('refused')\n")
    assert r.stdout.split() == ["refused"] * 5, r
