"""Several byte ranges in one response: multipart/byteranges (RFC 7233
4.1, appendix A). Loaded when a Range header names more than one range."""
import io

#: range specs read from one header; more and the header is ignored
MAX_SPECS = 32
#: parts sent after coalescing; more and the whole file is sent
MAX_PARTS = 8
BOUNDARY = "lws-byteranges-7f3a9c"


def parse_ranges(v, size):
    """A Range value with one or more specs -> a sorted list of
    coalesced (start, length), None to ignore the header (bad syntax, too
    many specs or parts), False when no spec is satisfiable (416)."""
    if not v.startswith("bytes="):
        return None
    specs = v[6:].split(",")
    if len(specs) > MAX_SPECS:
        return None
    out = []
    bad = False
    for s in specs:
        s = s.strip()
        if not s:
            continue  # RFC 7230 7: empty list elements are allowed
        a, sep, b = s.partition("-")
        a, b = a.strip(), b.strip()
        if not sep or (a and not a.isdigit()) or (b and not b.isdigit()) \
                or not (a or b):
            return None
        if not a:
            n = min(int(b), size)
            if n == 0:
                bad = True
                continue
            out.append((size - n, size))
            continue
        st = int(a)
        if b and int(b) < st:
            return None  # last-byte-pos below first-byte-pos: invalid
        e = int(b) + 1 if b else size
        if st >= size:
            bad = True
            continue
        out.append((st, min(e, size)))
    if not out:
        return False if bad else None
    out.sort()
    merged = [out[0]]
    for st, e in out[1:]:
        ls, le = merged[-1]
        if st <= le:  # overlapping or adjacent
            merged[-1] = (ls, max(le, e))
        else:
            merged.append((st, e))
    if len(merged) > MAX_PARTS:
        return None
    return [(s, e - s) for s, e in merged]


def _part_head(ctype, st, n, size):
    return ("\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d"
            "\r\n\r\n" % (BOUNDARY, ctype, st, st + n - 1, size)).encode()


def body_length(parts, ctype, size):
    """The Content-Length of the multipart body for these parts."""
    t = len(BOUNDARY) + 8
    for st, n in parts:
        t += len(_part_head(ctype, st, n, size)) + n
    return t


class Multi(io.IOBase):
    """The multipart/byteranges body as a stream: part heads made as they
    are reached, the bytes of each part read from f (seek + readinto)."""

    def __init__(self, f, parts, ctype, size):
        self.f = f
        self.parts = parts
        self.ctype = ctype
        self.size = size
        self.i = -1
        self.pend = b""  # the head (or the closing line) still to send
        self.left = 0   # bytes of the current part still to read
        self._next()

    def _next(self):
        self.i += 1
        if self.i < len(self.parts):
            st, n = self.parts[self.i]
            self.pend = _part_head(self.ctype, st, n, self.size)
            self.left = n
            self.f.seek(st)
        elif self.i == len(self.parts):
            self.pend = ("\r\n--%s--\r\n" % BOUNDARY).encode()
            self.left = 0
        else:
            self.pend = None

    def readinto(self, mv):
        mv = memoryview(mv)
        while True:
            p = self.pend
            if p is None:
                return 0
            if p:
                k = min(len(p), len(mv))
                mv[:k] = p[:k]
                self.pend = p[k:]
                return k
            if self.left:
                k = self.f.readinto(mv[:min(len(mv), self.left)])
                if not k:
                    raise OSError(5)  # the file got shorter
                self.left -= k
                return k
            self._next()

    def close(self):
        self.f.close()
