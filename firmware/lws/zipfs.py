"""A ZIP archive as the folder of a file:// mount (lws fops-zip): the
central directory read once into a name table and packed records; stored
entries sent as they are, deflated ones as gzip (no inflating) to clients
that take it, inflated as they go out to the others. Loaded by a mount
whose origin names a .zip file."""
import os
import struct
from . import log
from .httpmsg import http_date

#: entries kept from one archive; more is an error at mount time
MAX_ENTRIES = 512
#: bytes of archive comment looked through for the end record
MAX_COMMENT = 1024
_EOCD = const(22)
_CDH = const(46)
_LFH = const(30)
# one record per entry: local header offset, compressed size, size,
# CRC-32, method, window bits
_REC = "<IIIIHH"
_RECLEN = const(20)
_DIR = const(-1)


def _bad_name(n):
    """Names never served: absolute, drive letters, backslashes, NUL,
    empty or dot segments."""
    if not n or n[0] == "/" or "\\" in n or "\x00" in n or \
            (len(n) > 1 and n[1] == ":"):
        return True
    for seg in n.rstrip("/").split("/"):
        if seg in ("", ".", ".."):
            return True
    return False


class ZipDir:
    """The directory of one archive. ValueError (with the archive's name)
    for what is no archive, a truncated one, ZIP64 or too many entries."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.load()

    def load(self):
        st = os.stat(self.path)
        self.stamp = (st[8], st[6])
        self.mtime = st[8]
        try:
            self._read(st[6])
        except (ValueError, OSError, IndexError) as e:
            raise ValueError("%s: %s" % (self.path, e))

    def fresh(self):
        """Read the directory again when the archive changed; False when
        it is gone or broken now (its requests get a 500)."""
        try:
            st = os.stat(self.path)
            if (st[8], st[6]) != self.stamp:
                log.notice("%s changed: reading its directory again",
                           self.path)
                self.load()
            return True
        except (ValueError, OSError) as e:
            log.warn("%s", e)
            self.stamp = None
            return False

    def _read(self, size):
        if size < _EOCD:
            raise ValueError("not a zip archive (too short)")
        with open(self.path, "rb") as f:
            n = min(size, _EOCD + MAX_COMMENT)
            f.seek(size - n)
            tail = f.read(n)
            i = tail.rfind(b"PK\x05\x06")
            if i < 0 or i + _EOCD > len(tail):
                raise ValueError("not a zip archive (no end record)")
            (disk, cdisk, here, total, cdsize,
             cdoff) = struct.unpack("<HHHHII", tail[i + 4:i + 20])
            if total == 0xffff or cdoff == 0xffffffff:
                raise ValueError("ZIP64 archives are not served")
            if disk or cdisk or here != total:
                raise ValueError("multi-disk archives are not served")
            if total > MAX_ENTRIES:
                raise ValueError("more than %d entries" % MAX_ENTRIES)
            end = size - n + i
            if cdoff + cdsize > end:
                raise ValueError("truncated (central directory past the "
                                 "end)")
            self.cdoff = cdoff
            del tail
            names = {}
            recs = bytearray(total * _RECLEN)
            f.seek(cdoff)
            from .gz import marked_wbits
            k = 0
            for _ in range(total):
                h = f.read(_CDH)
                if len(h) < _CDH or h[:4] != b"PK\x01\x02":
                    raise ValueError("corrupt central directory")
                (flags, method, _t, _d, crc, csize, usize, nlen, xlen,
                 clen) = struct.unpack("<HHHHIIIHHH", h[8:34])
                lho = struct.unpack("<I", h[42:46])[0]
                name = f.read(nlen)
                extra = f.read(xlen)
                f.seek(clen, 1)
                if len(extra) < xlen:
                    raise ValueError("truncated central directory")
                try:
                    name = name.decode()
                except UnicodeError:
                    continue
                if _bad_name(name):
                    log.warn("%s: entry %r never served", self.path, name)
                    continue
                if name[-1] == "/":
                    names[name[:-1]] = _DIR
                    continue
                if flags & 1:
                    method = 0xffff  # encrypted: answered 500
                struct.pack_into(_REC, recs, k * _RECLEN, lho, csize, usize,
                                 crc, method, marked_wbits(extra))
                names[name] = k
                k += 1
                p = name.rfind("/")
                while p > 0:  # the folders it is in
                    name = name[:p]
                    names[name] = _DIR
                    p = name.rfind("/")
        self.names = names
        self.recs = bytes(memoryview(recs)[:k * _RECLEN])

    def find(self, name):
        """An entry's record (lho, csize, size, crc, method, wbits), _DIR
        for a folder, or None."""
        i = self.names.get(name)
        if i is None or i == _DIR:
            return i
        return struct.unpack_from(_REC, self.recs, i * _RECLEN)

    def open_data(self, lho, csize):
        """(the archive open, the offset of an entry's data); ValueError
        for a local header that does not check out."""
        f = open(self.path, "rb")
        try:
            f.seek(lho)
            h = f.read(_LFH)
            if len(h) < _LFH or h[:4] != b"PK\x03\x04":
                raise ValueError("bad local header")
            nlen, xlen = struct.unpack("<HH", h[26:30])
            off = lho + _LFH + nlen + xlen
            if off + csize > self.cdoff:
                raise ValueError("entry data past its end")
            return f, off
        except Exception:
            f.close()
            raise


def serve_zip(fs, c, req, rel, mime_type):
    """Answer a GET/HEAD on a zip mount (fs: the FileServe)."""
    m = req.mount
    z = m.zip
    if not z.fresh():
        c.send_error(500, "the archive cannot be read")
        return
    r = z.find(rel) if rel else _DIR
    if r == _DIR:
        if not req.path.endswith("/"):
            loc = req.path + "/"
            if req.query:
                loc += "?" + req.query
            c.respond(301, {"Location": loc}, "")
            return
        rel = rel + "/" + m.default if rel else m.default
        r = z.find(rel)
    if r is None or r == _DIR:
        c.send_error(404)
        return
    lho, csize, size, crc, method, wbits = r
    if method != 0 and method != 8:
        c.send_error(500, "entry not stored or deflated")
        return
    from .gz import VARY, GzWrap, Span, inflate, wants_gzip
    ctype = mime_type(rel, m.extra_mimetypes)
    lm = http_date(z.mtime)
    h = ""
    if lm:
        h = "Last-Modified: " + lm + "\r\n"
    if m.cache_max_age:
        h += "Cache-Control: max-age=%d\r\n" % m.cache_max_age
    gzip = method == 8 and wants_gzip(req.h.get("accept-encoding"))
    etag = '"%x-%x%s"' % (crc, size, "-gz" if gzip else "")
    h = "ETag: " + etag + "\r\n" + h
    if method == 8:
        h += VARY
    try:
        f, off = z.open_data(lho, csize)
    except (ValueError, OSError) as e:
        log.warn("%s: %s: %s", z.path, rel, e)
        c.send_error(500, "broken archive entry")
        return
    if method == 0:
        if csize != size:
            f.close()
            c.send_error(500, "broken archive entry")
            return
        fs.send_rep(c, req, Span(f, off, size), None, size,
                    "Accept-Ranges: bytes\r\n" + h, ctype, etag, lm, True)
    elif gzip:
        s = GzWrap(f, off, csize, crc, size)
        fs.send_rep(c, req, s, None, s.size(), "Accept-Ranges: bytes\r\n"
                    "Content-Encoding: gzip\r\n" + h, ctype, etag, lm, True)
    else:
        try:
            s = inflate(Span(f, off, csize), False, wbits)
        except MemoryError:
            f.close()
            c.send_error(503, "no heap to inflate it: ask for gzip")
            return
        except OSError:
            f.close()
            c.send_error(500, "broken archive entry")
            return
        fs.send_rep(c, req, s, None, size, h, ctype, etag, lm, False)
