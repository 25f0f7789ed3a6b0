"""Routes in Microdot's style on a callback:// mount.

    from lws.app import App
    app = App()                       # a Protocol named "app"

    @app.get("/api/<int:id>")
    def item(request, id):
        return {"id": id, "name": request.args.get("name", "?")}

    ctx = lws.Context(port=80, mounts=[app.mount("/")], protocols=[app])

Routes match the request's path relative to the mount (req.subpath):
mounted at "/api", the pattern "/<int:id>" answers /api/7. Handlers get
(request, **url_args) and return a str, bytes, a dict or list (JSON),
None (204), an int (a status), (body, status[, headers]), a Response,
send_file(path), Response(generator) (streamed chunked, a piece per
writeable callback), an lws.sse.SSE stream, or are `async def` (run as an
asyncio task; the context must be served by asyncio, ctx.serve()). On
MicroPython a coroutine is a generator: a generator returned bare is
awaited (as Microdot does there); a generator to stream goes in a
Response or a tuple.

Nothing here is imported by the server itself: an application that does
not import lws.app does not pay for it.
"""
import json
from . import log
from .httpmsg import HttpError, is_token, reason
from .protocol import Protocol

# pieces sent in one writeable callback, while the socket takes them whole
_BURST = const(4)
_TEXT = "text/plain; charset=UTF-8"  # Microdot's, for str bodies
_JSON = "application/json; charset=UTF-8"
_BIN = "application/octet-stream"
_URLENC = "application/x-www-form-urlencoded"
_MULTI = "multipart/form-data"

# path parameter kinds
_STR = const(0)
_INT = const(1)
_FLOAT = const(2)
_PATH = const(3)
_RE = const(4)
_KINDS = ("string", "int", "float", "path")


def _g():
    yield


_GEN = type(_g())  # a generator's type, which a coroutine's is too


def abort(status, msg=None):
    """Stop the handler and answer status (with msg as the body)."""
    raise HttpError(status, msg)


#: what abort() raises (Microdot's name)
HTTPException = HttpError


def _unq(s, plus=False):
    if "%" not in s and not plus:
        return s
    from .util import unquote
    try:
        return unquote(s, plus).decode()
    except (ValueError, UnicodeError):
        raise HttpError(400, "bad percent-encoding")


class MultiDict:
    """Names with one or more values: d[k] and d.get(k, default, type)
    give the first, d.getlist(k) all of them."""

    def __init__(self):
        self._d = {}

    def add(self, k, v):
        x = self._d.get(k)
        if x is None:
            self._d[k] = [v]
        else:
            x.append(v)

    def __getitem__(self, k):
        return self._d[k][0]

    def get(self, k, default=None, type=None):
        x = self._d.get(k)
        if x is None:
            return default
        if type is None:
            return x[0]
        try:
            return type(x[0])
        except ValueError:
            return default

    def getlist(self, k, type=None):
        x = self._d.get(k, ())
        return [type(v) for v in x] if type else list(x)

    def __contains__(self, k):
        return k in self._d

    def __len__(self):
        return len(self._d)

    def __iter__(self):
        return iter(self._d)

    def keys(self):
        return self._d.keys()

    def items(self):
        return [(k, v[0]) for k, v in self._d.items()]

    def __repr__(self):
        return "MultiDict(%r)" % self._d


def parse_query(q):
    """'a=1&a=2&b=x%20y' -> a MultiDict; HttpError(400) for a bad escape."""
    d = MultiDict()
    for kv in q.split("&"):
        if kv:
            k, _, v = kv.partition("=")
            d.add(_unq(k, True), _unq(v, True))
    return d


class File:
    """An uploaded file (a multipart part with a filename), whole in
    memory: name, filename (the client's: see lws.spa.safe_name before
    using it in a path), content_type, content (bytes)."""

    def __init__(self, name, filename, content_type, content):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.content = content

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.content)


_Collect = None


def _collector():
    """The form parser (lws.spa), made at the first form."""
    global _Collect
    if _Collect is None:
        from .spa import Spa

        class Collect(Spa):
            def on_part(self, part):
                self._v = bytearray()

            def on_data(self, part, data):
                self._v.extend(data)

            def on_part_end(self, part):
                v = bytes(self._v)
                self._v = None
                if part.filename is None:
                    try:
                        v = v.decode()
                    except UnicodeError:
                        pass
                    self.fields.add(part.name, v)
                else:
                    self.files.add(part.name, File(part.name, part.filename,
                                                   part.content_type, v))
        _Collect = Collect
    return _Collect


class _G:
    """request.g: the handlers' scratch space for one request."""


class Request:
    """What a handler gets: method, path (the whole of it), query_string,
    args, headers (lower-case names), cookies, body, json, form, files,
    client_addr, url_args, g; conn and req are the lws connection and
    lws Request under it."""

    url_args = None
    route = None
    #: the connection closed before the response was sent
    closed = False
    _args = _form = _files = _json = _g = _buf = _src = _res = None
    _n = 0
    _limit = 0
    _hooks = False

    def __init__(self, app, conn, req):
        self.app = app
        self.conn = conn
        self.req = req
        self.method = req.method
        self.path = req.path
        self.query_string = req.query

    @property
    def headers(self):
        return self.req.headers

    @property
    def cookies(self):
        return self.req.cookies

    @property
    def args(self):
        a = self._args
        if a is None:
            a = self._args = parse_query(self.query_string)
        return a

    @property
    def content_type(self):
        return self.req.h.get("content-type")

    @property
    def content_length(self):
        return self._n

    @property
    def body(self):
        """The request body (a bytearray, as it came; b"" without one)."""
        b = self._buf
        return b"" if b is None else b

    @property
    def json(self):
        """The body parsed as JSON when it says it is (None if it does
        not); bad JSON aborts with 400."""
        j = self._json
        if j is None:
            if _mime(self.content_type) != "application/json":
                return None
            try:
                j = self._json = (json.loads(self.body),)
            except ValueError:
                raise HttpError(400, "bad JSON")
        return j[0]

    @property
    def form(self):
        """The fields of a urlencoded or multipart body, a MultiDict of
        str (bytes when not UTF-8); None when the body is no form."""
        if self._form is None:
            self._parse_form()
        return self._form or None

    @property
    def files(self):
        """The multipart body's files: a MultiDict of File."""
        if self._form is None:
            self._parse_form()
        return self._files

    def _parse_form(self):
        ct = self.content_type
        self._files = MultiDict()
        if _mime(ct) not in (_URLENC, _MULTI):
            self._form = False
            return
        lim = self._limit or self.app.max_body
        p = _collector()(ct, max_value=lim, max_file=lim, max_total=lim)
        p.fields = MultiDict()
        p.files = self._files
        p.process(self.body)
        p.finalize()
        self._form = p.fields

    @property
    def client_addr(self):
        """(ip, port) of the client."""
        a = self.conn.addr
        if isinstance(a, tuple):
            return a
        import socket
        a = socket.sockaddr(a)
        return socket.inet_ntop(a[0], a[1]), a[2]

    @property
    def g(self):
        g = self._g
        if g is None:
            g = self._g = _G()
        return g


def _mime(ct):
    return ct.partition(";")[0].strip().lower() if ct else None


class Response:
    """A response: body (as a handler may return it), status_code,
    headers (a dict), cookies to set."""

    cookies = None

    def __init__(self, body="", status=200, headers=None):
        if body is None and status == 200:
            status = 204
        self.body = body
        self.status_code = status
        self.headers = headers if isinstance(headers, dict) else \
            dict(headers or ())

    @property
    def status(self):
        return self.status_code

    def set_cookie(self, name, value, **attrs):
        """lws.cookie.set_cookie's attributes: path=, domain=, max_age=,
        expires=, http_only=, secure=, same_site=."""
        from .cookie import set_cookie
        if self.cookies is None:
            self.cookies = []
        self.cookies.append(set_cookie(name, value, **attrs))

    def delete_cookie(self, name, **attrs):
        attrs["max_age"] = 0
        attrs["expires"] = "Thu, 01 Jan 1970 00:00:01 GMT"
        self.set_cookie(name, "", **attrs)

    @staticmethod
    def redirect(location, status=302):
        return Response("", status, {"Location": location})

    @staticmethod
    def send_file(path, content_type=None, status=200, max_age=None):
        """The file at path, streamed from flash a file_chunk at a time
        (404 if there is none); the type from its name unless given."""
        h = {}
        if max_age is not None:
            h["Cache-Control"] = "max-age=%d" % max_age
        if content_type is not None:
            h["Content-Type"] = content_type
        return Response(_File(path), status, h)


redirect = Response.redirect
send_file = Response.send_file


class _File:
    """A file body: read into the context's file buffer, one piece per
    writeable callback (never whole into the heap)."""

    f = None
    left = 0
    ctype = None

    def __init__(self, path):
        self.path = path

    def open(self):
        import os
        st = os.stat(self.path)
        if st[0] & 0xF000 != 0x8000:
            raise OSError(2)  # a folder, a device: no file to send
        self.f = open(self.path, "rb")
        self.left = st[6]
        if self.ctype is None:
            from .mime import mime_type
            self.ctype = mime_type(self.path)
        return self.left

    def piece(self, c):
        if self.left <= 0:
            raise StopIteration
        buf = c.ctx.file_buf()
        mv = memoryview(buf)
        k = self.f.readinto(mv[:min(len(buf), self.left)])
        if not k:
            raise OSError(5)  # shorter than it was: cut it off
        self.left -= k
        return mv[:k]

    def close(self):
        f = self.f
        self.f = None
        if f is not None:
            f.close()


class _Gen:
    """A generator body: each piece it yields (str or bytes) a chunk."""

    ctype = _TEXT

    def __init__(self, g):
        self.g = g

    def piece(self, c):
        p = next(self.g)
        if p is None:
            return b""
        return p.encode() if isinstance(p, str) else p

    def close(self):
        try:
            self.g.close()
        except Exception:
            pass


class _Route:
    def __init__(self, pattern, methods, fn, max_body):
        if not pattern.startswith("/"):
            raise ValueError("a route starts with /")
        self.pattern = pattern
        self.methods = methods
        self.fn = fn
        self.max_body = max_body
        self.segs = _compile(pattern) if "<" in pattern else None

    def match(self, parts):
        """url_args for the path's segments, or None."""
        segs = self.segs
        n = len(parts)
        args = {}
        for i in range(len(segs)):
            s = segs[i]
            if i >= n:
                return None
            p = parts[i]
            if isinstance(s, str):
                if p != s:
                    return None
                continue
            kind, name, rx = s
            if kind == _PATH:
                v = "/".join(parts[i:])
                if not v:
                    return None
                args[name] = _unq(v)
                return args
            if not p:
                return None
            if kind == _INT:
                if not (p[1:] if p[0] == "-" else p).isdigit():
                    return None
                v = int(p)
            elif kind == _FLOAT:
                q = p[1:] if p[0] == "-" else p
                if not q.replace(".", "", 1).isdigit():
                    return None
                v = float(p)
            else:
                v = _unq(p)
                if kind == _RE and not rx.match(v):
                    return None
            args[name] = v
        return args if n == len(segs) else None


def _compile(pattern):
    """'/a/<int:id>/<path:rest>' -> ['a', (_INT, 'id', None), (_PATH,
    'rest', None)]; ValueError for a bad pattern."""
    out = []
    segs = pattern[1:].split("/")
    for i in range(len(segs)):
        s = segs[i]
        if not s.startswith("<"):
            if "<" in s or ">" in s:
                raise ValueError("bad route segment " + s)
            out.append(s)
            continue
        if not s.endswith(">"):
            raise ValueError("bad route segment " + s)
        s = s[1:-1]
        kind, _, name = s.rpartition(":")
        rx = None
        if kind.startswith("re:"):
            import re
            rx = re.compile("^(" + kind[3:] + ")$")
            k = _RE
        elif kind in _KINDS or not kind:
            k = _KINDS.index(kind or "string")
        else:
            raise ValueError("unknown parameter type " + kind)
        if not name:
            raise ValueError("parameter without a name")
        if k == _PATH and i != len(segs) - 1:
            raise ValueError("<path:...> must be the last segment")
        out.append((k, name, rx))
    return out


def _response(x):
    """What a handler returned, as a Response (Microdot's rules)."""
    if isinstance(x, Response):
        return x
    if isinstance(x, tuple):
        if isinstance(x[0], int):  # (status[, headers]): no body
            x = ("",) + x
        body, st, h = x[0], 200, None
        if len(x) > 1:
            if isinstance(x[1], int):
                st = x[1]
                if len(x) > 2:
                    h = x[2]
            else:
                h = x[1]
        return Response(body, st, h)
    if isinstance(x, int):
        return Response("", x)
    return Response(x)


class App(Protocol):
    """The routes, hooks and error handlers of one application: a
    Protocol (callback://name mounts); WebSocket protocols live beside
    it on the same vhost."""

    #: largest request body read (bytes): a larger one gets 413, before
    #: it is read when its Content-Length says so; per route: max_body=
    max_body = 16 * 1024

    def __init__(self, name="app"):
        self.name = name
        self.routes = []
        self.errors = {}
        self.before = []
        self.after = []

    # -- building ----------------------------------------------------------

    def route(self, pattern, methods=None, max_body=None):
        """A decorator: pattern with <name>, <int:name>, <float:name>,
        <path:name> (the rest, slashes too), <re:REGEX:name> (one
        segment); methods default to GET (which serves HEAD)."""
        m = tuple(x.upper() for x in methods) if methods else ("GET",)

        def deco(fn):
            self.routes.append(_Route(pattern, m, fn, max_body))
            return fn
        return deco

    def get(self, pattern, **kw):
        return self.route(pattern, ("GET",), **kw)

    def post(self, pattern, **kw):
        return self.route(pattern, ("POST",), **kw)

    def put(self, pattern, **kw):
        return self.route(pattern, ("PUT",), **kw)

    def patch(self, pattern, **kw):
        return self.route(pattern, ("PATCH",), **kw)

    def delete(self, pattern, **kw):
        return self.route(pattern, ("DELETE",), **kw)

    def errorhandler(self, key):
        """For a status (handler(request)) or an exception class
        (handler(request, exc)); what it returns is the response (a bare
        body keeps the error's status)."""
        def deco(fn):
            self.errors[key] = fn
            return fn
        return deco

    def before_request(self, fn):
        """fn(request) before each routed request: a value it returns is
        the response, and the handler is not called."""
        self.before.append(fn)
        return fn

    def after_request(self, fn):
        """fn(request, response): it may change the response, or return
        another (a Response, tuple ...)."""
        self.after.append(fn)
        return fn

    abort = staticmethod(abort)

    def mount(self, mountpoint="/"):
        """The lws.Mount that serves this app at mountpoint."""
        from .mounts import Mount
        return Mount(mountpoint, "callback://" + self.name)

    def run(self, port=5000, mounts=(), protocols=(), **options):
        """Serve the app at / (and other mounts, protocols) until
        interrupted; options are lws.Context's."""
        from .context import Context
        Context(port=port, mounts=[self.mount("/")] + list(mounts),
                protocols=[self] + list(protocols), **options).run()

    # -- the protocol's callbacks ------------------------------------------

    def on_http(self, c, req):
        r = Request(self, c, req)
        c.user = r
        m = req.method
        try:
            rt, args, allow = self._find(m, req.subpath)
        except HttpError as e:
            self._finish(r, self._error(r, e.args[0], e.args[1]))
            return
        if rt is None:
            if allow is None:
                res = self._error(r, 404)
            else:
                if "GET" in allow:
                    allow.append("HEAD")
                allow.append("OPTIONS")
                h = {"Allow": ", ".join(allow)}
                res = Response("", 204, h) if m == "OPTIONS" else \
                    self._error(r, 405, None, h)
            self._finish(r, res)
            return
        r.route = rt
        r.url_args = args
        lim = r._limit = rt.max_body or self.max_body
        if req.remaining > lim:
            self._finish(r, self._error(r, 413, "body larger than %d" % lim))
            return
        if req.remaining or req.chunked is not None:
            r._buf = bytearray(req.remaining)
        # bodiless ones too: on_http_body_completion comes next

    def on_http_body(self, c, data):
        r = c.user
        if r is None or r._buf is None:
            return
        n = r._n
        k = len(data)
        if n + k > r._limit:
            r._buf = None
            r.route = None
            self._finish(r, self._error(r, 413, "body larger than %d"
                                        % r._limit))
            return
        b = r._buf
        if n + k <= len(b):
            b[n:n + k] = data
        else:
            b.extend(data)
        r._n = n + k

    def on_http_body_completion(self, c):
        r = c.user
        if r is None or r.route is None or r._hooks:
            return
        r._hooks = True  # dispatched once
        try:
            res = None
            for h in self.before:
                res = h(r)
                if res is not None:
                    break
            if res is None:
                res = r.route.fn(r, **r.url_args)
            if type(res) is _GEN:  # a coroutine: async def
                self._spawn(r, res)
                return
        except Exception as e:
            r._hooks = False
            res = self._exc(r, e)
        self._finish(r, res)

    def on_http_writeable(self, c):
        r = c.user
        if r is None:
            return
        if r._res is not None:  # an async handler is done
            res = r._res[0]
            r._res = None
            self._finish(r, res)
            return
        src = r._src
        if src is None:
            return
        for _ in range(_BURST):
            try:
                p = src.piece(c)
            except StopIteration:
                self._end(c, r)
                c.complete()
                return
            except Exception as e:
                log.exc(e, "%r: %s: response body failed", c, r.path)
                c.drop()
                return
            if p is None:
                return  # nothing to send now (an idle SSE stream)
            c.write(p)
            if c.tx or c.closed:
                break
        c.callback_on_writable()

    def on_closed_http(self, c):
        r = c.user
        if r is not None:
            r.closed = True
            self._end(c, r)

    # -- dispatching ------------------------------------------------------

    def _find(self, m, path):
        """(route, url_args, None), or (None, None, the methods allowed
        on path, None if it matches no route)."""
        parts = None
        allow = None
        want = "GET" if m == "HEAD" else m
        for rt in self.routes:
            if rt.segs is None:
                if rt.pattern != path:
                    continue
                args = {}
            else:
                if parts is None:
                    parts = path[1:].split("/")
                args = rt.match(parts)
                if args is None:
                    continue
            ms = rt.methods
            if want in ms or m in ms:
                return rt, args, None
            if allow is None:
                allow = []
            for x in ms:
                if x not in allow:
                    allow.append(x)
        return None, None, allow

    def _spawn(self, r, coro):
        import asyncio
        try:
            asyncio.current_task()
        except RuntimeError:
            coro.close()
            raise RuntimeError("async handler: serve the context with "
                               "asyncio (ctx.serve())")
        asyncio.create_task(self._wait(r, coro))

    async def _wait(self, r, coro):
        try:
            res = await coro
        except Exception as e:
            r._hooks = False
            res = self._exc(r, e)
        if r.closed or r.conn.closed:
            return  # the client went away meanwhile: dropped
        r._res = (res,)
        r.conn.callback_on_writable()  # sent from the loop, in its event

    def _exc(self, r, e):
        """The response for an exception out of a handler."""
        if isinstance(e, HttpError):
            a = e.args
            return self._error(r, a[0], a[1] if len(a) > 1 else None)
        log.exc(e, "%r: %s %s: handler failed", r.conn, r.method, r.path)
        for k, h in self.errors.items():
            if not isinstance(k, int) and isinstance(e, k):
                try:
                    return h(r, e)
                except Exception as e2:
                    log.exc(e2, "error handler failed")
                break
        return self._error(r, 500)

    def _error(self, r, status, msg=None, headers=None):
        h = self.errors.get(status)
        if h is not None:
            try:
                res = h(r)
                if not isinstance(res, (tuple, Response, int)):
                    res = Response(res, status, headers)
                return res
            except Exception as e:
                log.exc(e, "error handler %d failed", status)
        return Response(msg or reason(status), status, headers)

    def _finish(self, r, res):
        """Run the after hooks (for routed responses), then send."""
        c = r.conn
        try:
            res = _response(res)
            if r._hooks:
                for h in self.after:
                    res = _response(h(r, res) or res)
            self._send(r, res)
        except Exception as e:
            log.exc(e, "%r: %s: response failed", c, r.path)
            self._end(c, r)
            if not c.closed and c.req is r.req and not r.req.head_sent:
                c.send_error(500, None, True)
            else:
                c.drop()

    def _send(self, r, res):
        c = r.conn
        req = r.req
        if c.closed or c.req is not req or req.head_sent:
            return  # gone, or the handler answered on conn itself
        ctype = None
        hs = []
        for k, v in res.headers.items():
            v = str(v)
            if "\r" in v or "\n" in v or not is_token(k.encode()):
                raise ValueError("bad header %r" % k)
            lk = k.lower()
            if lk == "content-type":
                ctype = v
            elif lk != "content-length":
                hs.append((k, v))
        if res.cookies:
            req.set_cookies = (req.set_cookies or []) + res.cookies
        body = res.body
        st = res.status_code
        src = None
        if body is None:
            body = ""
        elif isinstance(body, str):
            pass
        elif isinstance(body, (bytes, bytearray, memoryview)):
            ctype = ctype or _BIN
        elif isinstance(body, (dict, list)):
            body = json.dumps(body)
            ctype = ctype or _JSON
        elif hasattr(body, "piece"):
            src = body
        elif type(body) is _GEN or hasattr(body, "__next__"):
            src = _Gen(body)
        else:
            raise TypeError("cannot send a %s" % type(body).__name__)
        if src is None:
            c.user = None
            c.respond(st, hs, body, ctype or _TEXT)
            return
        length = None
        if isinstance(src, _File):
            src.ctype = ctype
            try:
                length = src.open()
            except OSError:
                c.user = None
                c.respond(404, None, reason(404), _TEXT)
                return
        r._src = src
        c.respond(st, hs, None, ctype or src.ctype, length)
        if req.method == "HEAD":
            self._end(c, r)
            c.complete()
            return
        self.on_http_writeable(c)  # the first pieces go at once

    def _end(self, c, r):
        src = r._src
        r._src = None
        if c.user is r:
            c.user = None
        if src is not None:
            try:
                src.close()
            except Exception as e:
                log.exc(e, "closing a response body")
