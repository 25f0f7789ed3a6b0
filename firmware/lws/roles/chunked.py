"""Decoding a chunked request body (RFC 7230 4.1), loaded when needed."""
from ..httpmsg import HttpError

_SIZE = const(0)
_DATA = const(1)
_CRLF = const(2)
_TRAILER = const(3)
_DONE = const(4)
_MAX_LINE = const(64)


class Dechunk:
    def __init__(self):
        self.state = _SIZE
        self.left = 0

    def done(self):
        """The last chunk and the trailers have been read."""
        return self.state == _DONE

    def feed(self, c, h, buf, n):
        """Hand the data in buf[:n] to h.on_http_body; return bytes used."""
        mv = memoryview(buf)
        pos = 0
        while pos < n and self.state != _DONE and not c.closed:
            if self.state == _DATA:
                k = min(self.left, n - pos)
                r = h.on_http_body(c, mv[pos:pos + k])
                pos += k
                self.left -= k
                if not self.left:
                    self.state = _CRLF
                if r is not None:
                    c.later(r)  # the rest waits for it
                    break
                continue
            e = buf.find(b"\n", pos, n)
            if e < 0:
                if self.state != _TRAILER and n - pos > _MAX_LINE:
                    raise HttpError(400, "chunk size line too long")
                if pos == 0 and n >= len(buf):
                    raise HttpError(431, "chunk trailers too large")
                break
            line = bytes(mv[pos:e])
            pos = e + 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if self.state == _SIZE:
                self._size(line)
            elif self.state == _CRLF:
                if line:
                    raise HttpError(400, "chunk data longer than its size")
                self.state = _SIZE
            elif not line:
                self.state = _DONE
        return pos

    def _size(self, line):
        sz = line.split(b";")[0].strip(b" \t")
        if not sz or len(sz) > 15:
            raise HttpError(400, "bad chunk size")
        for ch in sz:
            if not (48 <= ch <= 57 or 97 <= ch | 32 <= 102):
                raise HttpError(400, "bad chunk size")
        k = int(sz, 16)
        if k:
            self.state = _DATA
            self.left = k
        else:
            self.state = _TRAILER


def for_request(te):
    """The decoder for a request's Transfer-Encoding, or an HttpError:
    chunked must be the last coding, and the only one we know."""
    codings = [x.strip().lower() for x in te.split(",")]
    if codings[-1] != "chunked":
        if "chunked" in codings:
            raise HttpError(400, "chunked is not the last coding")
        raise HttpError(501, "transfer coding not implemented")
    if len(codings) > 1:
        raise HttpError(501, "transfer coding not implemented")
    return Dechunk()
