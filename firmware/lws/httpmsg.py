"""What the HTTP/1.1 server and client share (RFC 7230/7231): the error
type, reason phrases, dates, token and field-value checks, one header
field parser and the chunk framer. A leaf: it imports nothing of lws."""
import time

# one constant instead of a dict of strings: less heap
_REASONS = (b"\n100 Continue\n101 Switching Protocols\n200 OK\n201 Created\n"
            b"204 No Content\n206 Partial Content\n301 Moved Permanently\n"
            b"302 Found\n303 See Other\n304 Not Modified\n"
            b"307 Temporary Redirect\n308 Permanent Redirect\n"
            b"400 Bad Request\n401 Unauthorized\n"
            b"403 Forbidden\n404 Not Found\n405 Method Not Allowed\n"
            b"408 Request Timeout\n411 Length Required\n"
            b"413 Content Too Large\n414 URI Too Long\n"
            b"415 Unsupported Media Type\n416 Range Not Satisfiable\n"
            b"426 Upgrade Required\n429 Too Many Requests\n"
            b"431 Request Header Fields Too Large\n"
            b"500 Internal Server Error\n501 Not Implemented\n"
            b"502 Bad Gateway\n503 Service Unavailable\n"
            b"504 Gateway Timeout\n505 HTTP Version Not Supported\n")

# RFC 7230 tchar, as a 256-entry table
_TOK = bytearray(256)
for _c in b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _TOK[_c] = 1

# the usual header names, spelled as clients send them: no token check
_KNOWN = {}
for _n in ("Host", "User-Agent", "Accept", "Accept-Encoding", "Connection",
           "Content-Length", "Content-Type", "Upgrade"):
    _KNOWN[_n.encode()] = _n.lower()


class HttpError(Exception):
    """A message answered with an error (args: status, message)."""


def reason(status):
    i = _REASONS.find(b"\n%d " % status)
    if i < 0:
        return "Unknown"
    return _REASONS[i + 5:_REASONS.find(b"\n", i + 1)].decode()


def is_token(b):
    if not b:
        return False
    for c in b:
        if not _TOK[c]:
            return False
    return True


def bad_value(v):
    """True if a header value holds a control byte other than HTAB."""
    if v and min(v) < 32:
        for c in v:
            if c < 32 and c != 9:
                return True
    return b"\x7f" in v


def parse_fields(lines, first=1):
    """Header field lines (bytes, from lines[first]) -> a dict of
    lower-case names to str values, a repeated field's values joined with
    ", " (Set-Cookie's with a newline: its values hold commas, RFC 7230
    3.2.2). HttpError(400) for a name that is not a token, a line without a
    colon, obsolete line folding, control bytes or non-UTF-8 in a value,
    and a second Host."""
    headers = {}
    for i in range(first, len(lines)):
        line = lines[i]
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line:
            continue
        if line[0] in (32, 9):
            raise HttpError(400, "obsolete line folding")
        c = line.find(b":")
        if c <= 0:
            raise HttpError(400, "header without colon")
        name = _KNOWN.get(line[:c])
        if name is None:
            name = line[:c]
            if not is_token(name):
                raise HttpError(400, "bad header name")
            name = name.decode().lower()
        v = line[c + 1:].strip(b" \t")
        if bad_value(v):
            raise HttpError(400, "bad bytes in header value")
        try:
            v = v.decode()
        except UnicodeError:
            raise HttpError(400, "header value is not UTF-8")
        old = headers.get(name)
        if old is not None:
            if name == "host":
                raise HttpError(400, "more than one Host")
            v = old + ("\n" if name == "set-cookie" else ", ") + v
        headers[name] = v
    return headers


def chunk(data):
    """data framed as one chunk of a chunked body."""
    return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))


_date = None
_date_t = 0
_date_ms = 0
_line = ""
_line_d = None


def date_line():
    """'Date: <now>\\r\\n' (made once a second), or "" without a clock."""
    global _line, _line_d
    d = http_date()
    if d is not _line_d:
        _line_d = d
        _line = "Date: %s\r\n" % d if d else ""
    return _line


def http_date(t=None):
    """RFC 7231 IMF-fixdate, or None while the clock was never set.
    Now's is made again when the clock has moved on (looked at by ticks,
    which costs no allocation, a few times a second)."""
    global _date, _date_t, _date_ms
    now = t is None
    if now:
        ms = time.ticks_ms()
        if time.ticks_diff(ms, _date_ms) < 200 and _date_t:
            return _date
        _date_ms = ms
        t = int(time.time())  # a float on the unix port
        if t == _date_t:
            return _date
    g = time.gmtime(t)
    d = None
    if g[0] >= 2020:
        d = "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
            "MonTueWedThuFriSatSun"[g[6] * 3:g[6] * 3 + 3], g[2],
            "JanFebMarAprMayJunJulAugSepOctNovDec"[g[1] * 3 - 3:g[1] * 3],
            g[0], g[3], g[4], g[5])
    if now:
        _date, _date_t = d, t
    return d
