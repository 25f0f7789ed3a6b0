"""Mounts: map URL space to a folder (file://), a protocol (callback://)
or a redirect (http://, https://), like lws_http_mount."""
import os
from . import log
from .roles.http import HttpError, http_date

MIME = {
    "html": "text/html", "htm": "text/html", "css": "text/css",
    "js": "application/javascript", "mjs": "application/javascript",
    "json": "application/json", "txt": "text/plain", "xml": "text/xml",
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "gif": "image/gif", "svg": "image/svg+xml", "ico": "image/x-icon",
    "webp": "image/webp", "wasm": "application/wasm",
    "pdf": "application/pdf", "zip": "application/zip",
    "gz": "application/gzip", "mp3": "audio/mpeg", "mp4": "video/mp4",
    "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf",
    "bin": "application/octet-stream",
}
_DEFAULT_MIME = "application/octet-stream"
_S_IFDIR = const(0x4000)
_BURST = const(4)


def mime_type(name, extra=None):
    ext = name[name.rfind(".") + 1:].lower() if "." in name else ""
    if extra and ext in extra:
        return extra[ext]
    return MIME.get(ext, _DEFAULT_MIME)


def safe_relpath(sub):
    """URL path (still percent-encoded) -> a relative path with no escape
    from the mount's folder. Raises HttpError for what it refuses."""
    from .util import unquote
    low = sub.lower()
    if "%2f" in low or "%5c" in low or "\\" in sub:
        raise HttpError(400, "encoded slash")
    try:
        p = unquote(sub).decode()
    except (ValueError, UnicodeError):
        raise HttpError(400, "bad escape")
    if "\x00" in p:
        raise HttpError(400, "NUL in path")
    out = []
    for seg in p.split("/"):
        if seg == "..":
            raise HttpError(403, "path outside the mount")
        if seg and seg != ".":
            out.append(seg)
    return "/".join(out)


class Mount:
    """mountpoint + origin: 'file://folder', 'callback://protocol-name',
    or 'http(s)://...' for a redirect (lws LWSMPRO_REDIR_HTTP(S)).
    """

    def __init__(self, mountpoint, origin, default="index.html",
                 cache_max_age=0, extra_mimetypes=None):
        if not mountpoint.startswith("/"):
            raise ValueError("mountpoint must start with /")
        self.mountpoint = mountpoint.rstrip("/")
        self.origin = origin
        self.default = default
        self.cache_max_age = cache_max_age
        self.extra_mimetypes = extra_mimetypes
        scheme, _, rest = origin.partition("://")
        if scheme == "file":
            self.kind = "file"
            self.target = rest.rstrip("/") or "/"
        elif scheme == "callback":
            self.kind = "callback"
            self.target = rest
        elif scheme in ("http", "https"):
            self.kind = "redirect"
            self.target = origin
        else:
            raise ValueError("unknown mount origin " + origin)

    def __repr__(self):
        return "<mount %s -> %s>" % (self.mountpoint or "/", self.origin)

    def matches(self, path):
        mp = self.mountpoint
        return (path.startswith(mp)
                and (len(path) == len(mp) or path[len(mp)] == "/"))

    def subpath(self, path):
        return path[len(self.mountpoint):] or "/"

    def handler(self, conn):
        if self.kind == "file":
            return FILES
        if self.kind == "callback":
            p = conn.vhost.protocol(self.target)
            if p is None:
                log.warn("mount %s: no protocol '%s'", self.mountpoint,
                         self.target)
                raise HttpError(404, "no such protocol")
            return p.handler(conn)
        return REDIRECT


class Redirect:
    def on_http(self, c, req):
        c.respond(301, {"Location": c.mount.target + req.subpath.lstrip("/")},
                  "")

    def on_http_body(self, c, data):
        pass

    def on_http_body_completion(self, c):
        pass

    def on_http_writeable(self, c):
        pass

    def on_closed_http(self, c):
        pass


class FileServe(Redirect):
    """Serves a file mount: index files, MIME types, ETag, ranges, and
    large files streamed a chunk at a time as the socket drains."""

    def on_http(self, c, req):
        m = c.mount
        if req.method not in ("GET", "HEAD"):
            if req.method == "OPTIONS":
                c.respond(204, {"Allow": "GET, HEAD, OPTIONS"})
                return
            c.respond(405, {"Allow": "GET, HEAD, OPTIONS"},
                      "<html><body><h1>405 Method Not Allowed</h1>"
                      "</body></html>\n")
            return
        rel = safe_relpath(req.subpath)
        path = m.target + "/" + rel if rel else m.target
        try:
            st = os.stat(path)
            if st[0] & _S_IFDIR:
                if not req.path.endswith("/"):
                    loc = req.path + "/"
                    if req.query:
                        loc += "?" + req.query
                    c.respond(301, {"Location": loc}, "")
                    return
                path = path + "/" + m.default
                st = os.stat(path)
                if st[0] & _S_IFDIR:
                    raise OSError(2)
        except OSError:
            c.send_error(404)
            return
        self.serve(c, req, path, st[6], st[8])

    def serve(self, c, req, path, size, mtime):
        m = c.mount
        etag = '"%x-%x"' % (mtime, size)
        h = {"Accept-Ranges": "bytes", "ETag": etag}
        lm = http_date(mtime)
        if lm:
            h["Last-Modified"] = lm
        if m.cache_max_age:
            h["Cache-Control"] = "max-age=%d" % m.cache_max_age
        inm = req.headers.get("if-none-match")
        if (inm is not None and (inm == "*" or etag in inm)) or (
                inm is None and lm is not None
                and req.headers.get("if-modified-since") == lm):
            c.respond(304, h)
            return
        start, n, status = 0, size, 200
        rng = req.headers.get("range")
        ifr = req.headers.get("if-range")
        if rng is not None and (ifr is None or ifr == etag or ifr == lm):
            r = parse_range(rng, size)
            if r is False:
                h["Content-Range"] = "bytes */%d" % size
                c.respond(416, h, "")
                return
            if r:
                start, n = r
                status = 206
                h["Content-Range"] = "bytes %d-%d/%d" % (
                    start, start + n - 1, size)
        ctype = mime_type(path, m.extra_mimetypes)
        if req.method == "HEAD" or n == 0:
            c.respond(status, h, content_type=ctype, length=n)
            c.complete()
            return
        f = open(path, "rb")
        if start:
            f.seek(start)
        c.f = f
        c.respond(status, h, content_type=ctype, length=n)
        self.on_http_writeable(c)

    def on_http_writeable(self, c):
        f = c.f
        if f is None:
            return
        buf = c.ctx.file_buf()
        mv = memoryview(buf)
        for _ in range(_BURST):
            k = f.readinto(mv[:min(len(buf), c.out_left)])
            if not k:
                log.warn("%r: file ended early", c)
                c.close()
                return
            c.out_left -= k
            c.send(mv[:k])
            if c.out_left <= 0:
                f.close()
                c.f = None
                c.complete()
                return
            if c.tx or c.closed:
                break
        c.callback_on_writable()

    def on_closed_http(self, c):
        if c.f:
            c.f.close()
            c.f = None


def parse_range(v, size):
    """One RFC 7233 byte range -> (start, length); None to ignore the
    header (bad syntax or several ranges: we send the whole file); False
    when unsatisfiable (416)."""
    if not v.startswith("bytes=") or "," in v:
        return None
    a, sep, b = v[6:].strip().partition("-")
    a, b = a.strip(), b.strip()
    if not sep or (a and not a.isdigit()) or (b and not b.isdigit()):
        return None
    if not a:
        if not b:
            return None
        n = int(b)
        if n == 0 or size == 0:
            return False
        n = min(n, size)
        return size - n, n
    s = int(a)
    e = int(b) if b else size - 1
    if e < s:
        return None
    if s >= size:
        return False
    e = min(e, size - 1)
    return s, e - s + 1


FILES = FileServe()
REDIRECT = Redirect()
