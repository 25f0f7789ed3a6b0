"""gzip for the file server: Accept-Encoding (RFC 7231 5.3.4), streams
over part of a file, a deflate stream sent as gzip, and inflating on the
fly. Loaded when a gzip representation is first asked for or found."""
import io
import struct

# the header sent in front of a zip entry's raw deflate data: no name, no
# time (mtime 0), XFL 2 (best compression), OS 255 (unknown)
GZ_HEAD = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
_GZ_LEN = const(10)
VARY = "Vary: Accept-Encoding\r\n"
#: the window (log2) of deflate data that does not say otherwise: 32 KiB,
#: as zlib writes; lwstool writes 1 KiB windows and says so (_MARK)
WBITS = const(15)
# lwstool's mark of its deflate window, a gzip FEXTRA subfield and a zip
# extra field: "LW", length 1, then a byte of flags (1) and the wbits
_MARK = b"LW"


def _q(s):
    """An RFC 7231 qvalue -> thousandths, or -1 when malformed."""
    s = s.strip()
    if not s or len(s) > 5 or s[0] not in "01":
        return -1
    if len(s) == 1:
        return int(s) * 1000
    if s[1] != "." or (len(s) > 2 and not s[2:].isdigit()):
        return -1
    v = int(s[0]) * 1000 + int((s[2:] + "000")[:3])
    return v if v <= 1000 else -1


def wants_gzip(v):
    """True when an Accept-Encoding value prefers gzip to identity (ties
    go to gzip). Malformed elements are ignored; no header: identity."""
    if v is None:
        return False
    gz = star = ident = None
    for el in v.split(","):
        name, _, par = el.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1000
        for p in par.split(";"):
            k, eq, val = p.partition("=")
            k = k.strip().lower()
            if k == "q":
                q = _q(val) if eq else -1
            elif k:
                q = -1  # codings take no other parameter
        if q < 0:
            continue
        if name == "gzip" or name == "x-gzip":
            gz = q if gz is None else max(gz, q)
        elif name == "identity":
            ident = q
        elif name == "*":
            star = q
    if gz is None:
        gz = star or 0
    if ident is None:
        ident = 1000 if star is None else star
    return gz > 0 and gz >= ident


def gz_info(f, size):
    """(window bits, ISIZE, CRC-32) of an open gzip file of that size;
    ValueError when it is none."""
    h = f.read(_GZ_LEN)
    if len(h) < _GZ_LEN or h[0] != 0x1f or h[1] != 0x8b or h[2] != 8 \
            or size < 18:
        raise ValueError("not gzip")
    wbits = WBITS
    if h[3] & 4:  # FEXTRA
        x = f.read(2)
        wbits = marked_wbits(f.read(struct.unpack("<H", x)[0]))
    f.seek(size - 8)
    crc, isize = struct.unpack("<II", f.read(8))
    f.seek(0)
    return wbits, isize, crc


def marked_wbits(extra):
    """The window of lwstool's mark in an extra field (gzip or zip), or
    WBITS without it."""
    i = 0
    while i + 4 <= len(extra):
        n = extra[i + 2] | extra[i + 3] << 8
        if extra[i:i + 2] == _MARK and n == 2 and i + 6 <= len(extra):
            w = extra[i + 5]
            return w if 9 <= w <= 15 else WBITS
        i += 4 + n
    return WBITS


class Span(io.IOBase):
    """n bytes of an open file from offset base, as a stream that can
    seek (within the span) and readinto; it closes the file."""

    def __init__(self, f, base, n):
        self.f = f
        self.base = base
        self.n = n
        self.pos = 0
        f.seek(base)

    def seek(self, pos):
        self.pos = min(pos, self.n)
        self.f.seek(self.base + self.pos)

    def readinto(self, mv, n=None):
        k = min(len(mv) if n is None else n, self.n - self.pos)
        if k <= 0:
            return 0
        k = self.f.readinto(memoryview(mv)[:k])
        self.pos += k
        return k

    def read(self, n):
        b = bytearray(n)
        return bytes(memoryview(b)[:self.readinto(b)])

    def close(self):
        self.f.close()


class GzWrap(Span):
    """Raw deflate data (a zip entry's) sent as a gzip member: GZ_HEAD,
    the data, then CRC-32 and ISIZE; it seeks, for ranges of it."""

    def __init__(self, f, base, n, crc, isize):
        Span.__init__(self, f, base, n)
        self.tail = struct.pack("<II", crc, isize & 0xffffffff)
        self.vpos = 0

    def size(self):
        return _GZ_LEN + self.n + 8

    def seek(self, pos):
        self.vpos = pos
        Span.seek(self, max(0, pos - _GZ_LEN))

    def readinto(self, mv):
        p = self.vpos
        mv = memoryview(mv)
        if p < _GZ_LEN:
            k = min(len(mv), _GZ_LEN - p)
            mv[:k] = GZ_HEAD[p:p + k]
        elif p < _GZ_LEN + self.n:
            k = Span.readinto(self, mv)
        else:
            t = p - _GZ_LEN - self.n
            k = max(0, min(len(mv), 8 - t))
            mv[:k] = self.tail[t:t + k]
        self.vpos += k
        return k


class Inflate:
    """A deflate stream (RAW in a zip, GZIP in a .gz file) inflated as it
    is read: the window's block (1 << wbits) is the only heap it takes
    beyond the decompressor's state."""

    def __init__(self, raw, fmt, wbits):
        import deflate
        self.raw = raw
        self.d = deflate.DeflateIO(raw, fmt, wbits)
        # the window is taken at the first read: a heap without room for
        # it says so now (MemoryError), before the response has begun
        self.first = self.d.read(1)

    def readinto(self, mv):
        f = self.first
        if f:
            self.first = None
            mv[0] = f[0]
            return 1
        return self.d.readinto(mv)

    def close(self):
        self.d = None
        self.raw.close()


def inflate(raw, gzip, wbits):
    """An Inflate over raw (a file or a Span): gzip format or raw deflate."""
    import deflate
    return Inflate(raw, deflate.GZIP if gzip else deflate.RAW, wbits)
