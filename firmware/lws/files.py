"""Serving file:// mounts: index files, MIME types, ETag and conditional
requests, RFC 7233 byte ranges, and large files streamed a chunk at a time
as the socket drains; x.gz beside x for gzip clients (lws.gz), several
ranges (lws.ranges) and ZIP archives (lws.zipfs) loaded when first met.
Loaded when a file mount is first used."""
import os
import time
from . import log
from .protocol import Protocol
from .httpmsg import HttpError, date_line, http_date
from .mime import mime_type
from .util import unquote

_S_IFMT = const(0xF000)
_S_IFDIR = const(0x4000)
_S_IFREG = const(0x8000)
_S_IFLNK = const(0xA000)
_BURST = const(4)
_CACHED = const(8)
_RECHECK_MS = const(250)  # a file answered unparsed is stat()ed this often
_VARY = "Vary: Accept-Encoding\r\n"


def safe_relpath(sub):
    """URL path (still percent-encoded) -> a relative path that cannot
    leave the mount's folder. Raises HttpError for what it refuses."""
    if ("%" not in sub and "/." not in sub and "\\" not in sub
            and "//" not in sub):
        return sub.strip("/")  # nothing to decode, no dot segments
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


def _realdir(p):
    """The real path of folder p (symlinks resolved), or None when p is
    no folder. The port has no realpath(); getcwd() resolves."""
    cwd = os.getcwd()
    try:
        os.chdir(p)
        return os.getcwd()
    except OSError:
        return None
    finally:
        os.chdir(cwd)


def _inside(m, rel):
    """True if no part of rel under the mount's folder is a symlink; with
    m.follow_symlinks, links to folders are followed when their real path
    lies inside the mount's folder (where a link to a file leads, this
    port cannot tell: those are never served). Only POSIX file systems
    (the unix port) have links; a board's FAT or LittleFS has none."""
    if not rel or not hasattr(os, "VfsPosix"):
        return True
    d = m.target
    for seg in rel.split("/"):
        e = None
        for e in os.ilistdir(d):
            if e[0] == seg:
                break
        else:
            return True  # not there: stat() answers 404
        d = d + "/" + seg
        t = e[1]
        if t == _S_IFLNK or (t != _S_IFDIR and t != _S_IFREG and
                             len(e) > 2 and os.stat(d)[1] != e[2]):
            # a link (where the file system does not tell the type, its
            # entry and what stat() reaches are different inodes)
            if not m.follow_symlinks:
                return False
            real = _realdir(d)
            root = m.real_root
            if root is None:
                root = m.real_root = _realdir(m.target) or m.target
            if real is None or not (real == root or
                                    real.startswith(root.rstrip("/") + "/")):
                return False
    return True


def parse_range(v, size):
    """One RFC 7233 byte range -> (start, length); None to ignore the
    header (bad syntax, or several ranges: the whole file is sent); False
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
    if s >= size:
        return False
    if e < s:
        return None
    return s, min(e, size - 1) - s + 1


def _is_file(p):
    try:
        return os.stat(p)[0] & _S_IFMT == _S_IFREG
    except OSError:
        return False


def _wants_gzip(req):
    ae = req.h.get("accept-encoding")
    if ae is None:
        return False
    from .gz import wants_gzip
    return wants_gzip(ae)


def _not_modified(hd, etag, lm):
    """True when If-None-Match (or, without it, If-Modified-Since) says
    the client has this representation."""
    inm = hd.get("if-none-match")
    if inm is not None:
        return inm == "*" or etag in inm
    return lm is not None and hd.get("if-modified-since") == lm


class FileServe(Protocol):
    """The handler of every file:// mount."""

    _cache = {}
    _kept = 0  # bytes of files kept whole in _cache (Context.file_cache)

    def on_http(self, c, req):
        m = req.mount
        if req.method != "GET" and req.method != "HEAD":
            allow = {"Allow": "GET, HEAD, OPTIONS"}
            if req.method == "OPTIONS":
                c.respond(204, allow)
            else:
                c.respond(405, allow, "<html><body><h1>405 Method Not "
                          "Allowed</h1></body></html>\n")
            return
        rel = safe_relpath(req.subpath)
        if not m.dotfiles and (rel.startswith(".") or "/." in rel):
            c.send_error(404)  # hidden: .env, .git/...
            return
        if m.zip is not None:
            from .zipfs import serve_zip
            serve_zip(self, c, req, rel, mime_type)
            return
        path = m.target + "/" + rel if rel else m.target
        try:
            st = os.stat(path)
            if st[0] & _S_IFDIR:
                if not req.path.endswith("/"):
                    if not _inside(m, rel):
                        raise OSError(2)
                    loc = req.path + "/"
                    if req.query:
                        loc += "?" + req.query
                    c.respond(301, {"Location": loc}, "")
                    return
                path = path + "/" + m.default
                rel = rel + "/" + m.default if rel else m.default
                st = os.stat(path)
            if st[0] & _S_IFMT != _S_IFREG:
                raise OSError(2)  # only regular files: no fifo, no device
        except OSError:
            # x missing: x.gz, for gzip clients as it is, else inflated
            if rel and not rel.endswith("/") and _is_file(path + ".gz") \
                    and self._serve_gz(c, req, path, rel, _wants_gzip(req)):
                return
            c.send_error(404)
            return
        self.serve(c, req, path, st[6], st[8], rel)

    def _meta(self, path, size, mtime, m, rel):
        """(etag, Last-Modified, header lines, MIME type) of a file, kept
        for a few files while their mtime and size stay the same; None
        when the path leads outside the mount (checked once per entry)."""
        e = self._cache.get(path)
        if e is None or e[0] != mtime or e[1] != size or e[2] is not m:
            if not _inside(m, rel):
                return None
            etag = '"%x-%x"' % (mtime, size)
            lm = http_date(mtime)
            h = "Accept-Ranges: bytes\r\nETag: " + etag + "\r\n"
            if lm:
                h += "Last-Modified: " + lm + "\r\n"
            if m.cache_max_age:
                h += "Cache-Control: max-age=%d\r\n" % m.cache_max_age
            gz = _is_file(path + ".gz")
            if gz:
                h += _VARY
            if len(self._cache) >= _CACHED:
                self._cache.clear()
                FileServe._kept = 0
            # [.., the whole 200 response for repeated GETs, its Date]
            e = self._cache[path] = [mtime, size, m, etag, lm, h,
                                     mime_type(path, m.extra_mimetypes),
                                     None, None, 0, None, gz]
        return e

    def _whole(self, ctx, path, e, size):
        """The whole 200 response (head and body) of a small file, as the
        fast path sends it (HTTP/1.1, keep-alive, plain), kept while the
        file and the second (its Date) stay the same, or None when it is
        not kept (too big, or the cache is full)."""
        d = http_date()
        w = e[7]
        if w is not None and e[8] is d:
            return w
        if w is None:
            limit = ctx.file_cache
            if size > limit >> 2:
                return None
            if FileServe._kept + size > limit:
                for x in self._cache.values():  # make room: drop them all
                    x[7] = None
                FileServe._kept = 0
            FileServe._kept += size
        with open(path, "rb") as f:
            body = f.read(size + 1)
        if len(body) != size:
            return None  # changed as we read it: the next request sees
        head = ("HTTP/1.1 200 OK\r\nServer: microlws\r\n%sContent-Type: %s"
                "\r\nContent-Length: %d\r\n%s\r\n" % (
                    date_line(), e[6], size, e[5])).encode()
        w = e[7] = head + body
        e[8] = d
        e[9] = len(head)
        e[10] = None  # the Connection: close one, made when asked for
        return w

    def _whole_close(self, ctx, path, e, size):
        """The same with Connection: close (a connection per request);
        its head is 19 bytes longer."""
        w = self._whole(ctx, path, e, size)
        if w is None:
            return None
        wc = e[10]
        if wc is None:
            i = e[9] - 2
            wc = e[10] = w[:i] + b"Connection: close\r\n" + w[i:]
        return wc

    def serve(self, c, req, path, size, mtime, rel):
        e = self._meta(path, size, mtime, req.mount, rel)
        if e is None:
            c.send_error(404)
            return
        if e[11] and _wants_gzip(req) and \
                self._serve_gz(c, req, path, rel, True):
            return  # x.gz beside x, to a client that takes gzip
        etag, lm, h, ctype = e[3], e[4], e[5], e[6]
        hd = req.h
        if _not_modified(hd, etag, lm):
            c.respond(304, h)
            return
        rng = hd.get("range")
        if rng is None and req.version == "HTTP/1.1" and not c.tls and \
                size and not req.remaining and req.chunked is None:
            close = not req.keepalive
            try:
                w = (self._whole_close if close else self._whole)(
                    c.ctx, path, e, size)
            except MemoryError:
                w = None  # a heap too full to keep it: sent as any file
            if w is not None:
                # the fast path: a small file, answered as it was last time
                head_only = req.method == "HEAD"
                c.role.send_whole(c, memoryview(w)[:len(w) - size]
                                  if head_only else w)
                if "if-none-match" not in hd and \
                        "if-modified-since" not in hd:
                    # the same head again gets the same answer, unparsed
                    known = c.ctx._answers
                    if len(known) >= _CACHED:
                        known.clear()
                    try:
                        known[req.raw] = Answer(req.raw, c.vhosts, path, e,
                                                head_only, close)
                    except MemoryError:
                        pass  # answered; only not remembered
                return
        self.send_rep(c, req, None, path, size, h, ctype, etag, lm, True,
                      False)

    def _serve_gz(self, c, req, path, rel, gzip):
        """path + ".gz" (if it is a file inside the mount) as gzip, or
        inflated as it goes out; False when there is none."""
        gp = path + ".gz"
        m = req.mount
        if not _is_file(gp) or not _inside(m, rel + ".gz"):
            return False
        from .gz import gz_info, inflate
        st = os.stat(gp)
        lm = http_date(st[8])
        h = _VARY
        if lm:
            h += "Last-Modified: " + lm + "\r\n"
        if m.cache_max_age:
            h += "Cache-Control: max-age=%d\r\n" % m.cache_max_age
        ctype = mime_type(path, m.extra_mimetypes)
        if gzip:
            etag = '"%x-%x-gz"' % (st[8], st[6])
            h = "Accept-Ranges: bytes\r\nContent-Encoding: gzip\r\nETag: " \
                + etag + "\r\n" + h
            self.send_rep(c, req, None, gp, st[6], h, ctype, etag, lm, True)
            return True
        etag = '"%x-%x"' % (st[8], st[6])
        h = "ETag: " + etag + "\r\n" + h
        if _not_modified(req.h, etag, lm):
            c.respond(304, h)
            return True
        f = open(gp, "rb")
        try:
            wbits, isize, _ = gz_info(f, st[6])
            f = inflate(f, True, wbits)
        except (ValueError, OSError):
            f.close()
            c.send_error(500, "bad gzip file")
            return True
        except MemoryError:
            f.close()
            c.send_error(503, "no heap to inflate it: ask for gzip")
            return True
        self.send_rep(c, req, f, None, isize, h, ctype, etag, lm, False,
                      False)
        return True

    def send_rep(self, c, req, f, path, size, h, ctype, etag, lm,
                 rangeable, cond=True):
        """Send a representation of size bytes: an open stream f (seek
        and readinto; closed here or when the transaction ends) or the
        file at path; cond: answer If-None-Match / If-Modified-Since;
        rangeable: honour Range (one range, or several as multipart)."""
        hd = req.h
        if cond and _not_modified(hd, etag, lm):
            if f is not None:
                f.close()
            c.respond(304, h)
            return
        start, n, status = 0, size, 200
        rng = hd.get("range")
        parts = None
        if rangeable and rng is not None and req.method == "GET":
            ifr = hd.get("if-range")
            r = None
            if ifr is None or ifr == etag or ifr == lm:
                if "," in rng:
                    from .ranges import parse_ranges
                    r = parse_ranges(rng, size)
                    if r and len(r) == 1:
                        r = r[0]
                    elif r:
                        parts, r = r, None
                else:
                    r = parse_range(rng, size)
            if r is False:
                if f is not None:
                    f.close()
                c.respond(416, h + "Content-Range: bytes */%d\r\n" % size,
                          "")
                return
            if r:
                start, n = r
                status = 206
                h += "Content-Range: bytes %d-%d/%d\r\n" % (
                    start, start + n - 1, size)
            elif parts:
                from .ranges import BOUNDARY, Multi, body_length
                status = 206
                n = body_length(parts, ctype, size)
                if req.method != "HEAD":
                    if f is None:
                        f = open(path, "rb")
                    f = Multi(f, parts, ctype, size)
                ctype = "multipart/byteranges; boundary=" + BOUNDARY
        if req.method == "HEAD" or n == 0:
            if f is not None:
                f.close()
            c.respond(status, h, content_type=ctype, length=n)
            c.complete()
            return
        if f is None:
            f = open(path, "rb")
        if start:
            f.seek(start)
        buf = c.ctx.file_buf()
        if n <= len(buf):
            # small: head and body leave in one send
            mv = memoryview(buf)[:n]
            k = 0
            try:
                while k < n:
                    j = f.readinto(mv[k:])
                    if not j:
                        break
                    k += j
            finally:
                f.close()
            if k != n:
                raise OSError(5)
            c.respond(status, h, mv, ctype)
            return
        req.f = f
        c.respond(status, h, content_type=ctype, length=n)
        self.on_http_writeable(c)

    def on_http_writeable(self, c):
        req = c.req
        f = req.f
        if f is None:
            return
        buf = c.ctx.file_buf()
        mv = memoryview(buf)
        for _ in range(_BURST):
            k = f.readinto(mv[:min(len(buf), req.out_left)])
            if not k:
                log.warn("%r: file ended early", c)
                c.drop()
                return
            req.out_left -= k
            c.send(mv[:k])
            if req.out_left <= 0:
                self.on_closed_http(c)
                c.complete()
                return
            if c.tx or c.closed:
                break
        c.callback_on_writable()

    def on_closed_http(self, c):
        req = c.req
        if req.f:
            req.f.close()
            req.f = None


class Answer:
    """How a request head was answered, to answer it again unparsed
    (Context._answers): a small file's whole response, while the file
    stays the same; its head is rebuilt when the second (its Date)
    changes."""

    def __init__(self, head, vhosts, path, e, head_only, close):
        self.head = head
        self.vhosts = vhosts
        self.seen = time.ticks_ms()
        self.path = path
        self.e = e
        self.head_only = head_only
        #: the connection closes after it (Connection: close)
        self.close = close

    def answer(self, c):
        e = self.e
        if FileServe._cache.get(self.path) is not e:
            return False
        now = time.ticks_ms()
        if time.ticks_diff(now, self.seen) >= _RECHECK_MS:
            # the file is looked at again a few times a second, not at
            # every request
            try:
                st = os.stat(self.path)
            except OSError:
                return False
            if st[8] != e[0] or st[6] != e[1]:
                return False  # changed: parsed and served afresh
            self.seen = now
        if self.close:
            w = FILES._whole_close(c.ctx, self.path, e, e[1])
            n = e[9] + 19
        else:
            w = e[7]
            if w is None or e[8] is not http_date():
                w = FILES._whole(c.ctx, self.path, e, e[1])
            n = e[9]
        if w is None:
            return False
        c.send(memoryview(w)[:n] if self.head_only else w)
        return True


FILES = FileServe()
