"""Small helpers: percent-encoding and decoding, query strings, paths."""


def unquote(s, plus=False):
    """Percent-decode s (str) to bytes; ValueError on a bad escape."""
    if plus:
        s = s.replace("+", " ")
    if "%" not in s:
        return s.encode()
    parts = s.split("%")
    out = bytearray(parts[0].encode())
    for p in parts[1:]:
        h = p[:2]
        if len(h) != 2:
            raise ValueError("bad escape")
        out.append(int(h, 16))
        out.extend(p[2:].encode())
    return bytes(out)


_SAFE = b"-._~/"


def quote(s):
    """Percent-encode s (str) for a query value: all but letters,
    digits and -._~/ (so a path stays readable)."""
    out = []
    for b in s.encode():
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in _SAFE:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def parse_qs(q):
    """'a=1&b=x%20y' -> {'a': '1', 'b': 'x y'} (the last value wins)."""
    d = {}
    for kv in q.split("&"):
        if not kv:
            continue
        k, _, v = kv.partition("=")
        try:
            d[unquote(k, True).decode()] = unquote(v, True).decode()
        except (ValueError, UnicodeError):
            pass
    return d


def local_path(p):
    """p when it is a path on this site ('/x?y'), else None: no scheme,
    no '//host', no backslash or control character a browser might
    read as another site (no open redirect through a next= value)."""
    if not p or p[0] != "/" or p[:2] == "//" or "\\" in p:
        return None
    for c in p:
        if c < " " or c == "\x7f":
            return None
    return p


_HEX = "0123456789abcdefABCDEF"


def canonical_path(p):
    """The request path as mounts are matched on it (RFC 3986 6.2.2):
    escapes of unreserved characters decoded ("/%61dmin" is "/admin"),
    empty and "." segments dropped ("//admin/./x" is "/admin/x"), the
    other escapes left for the mount to decode. None for a ".."
    segment (none is resolved); ValueError(reason) for a bad escape."""
    if "%" in p:
        parts = p.split("%")
        out = [parts[0]]
        for x in parts[1:]:
            if len(x) < 2 or x[0] not in _HEX or x[1] not in _HEX:
                raise ValueError("bad escape")
            ch = chr(int(x[:2], 16))
            if ch == "\x00":
                raise ValueError("NUL in path")
            if ch.isalpha() and ch < "\x80" or ch.isdigit() or ch in "-._~":
                out.append(ch + x[2:])
            else:
                out.append("%" + x)
        p = "".join(out)
    segs = []
    for s in p.split("/"):
        if s == "..":
            return None
        if s and s != ".":
            segs.append(s)
    q = "/" + "/".join(segs)
    if segs and (p[-1] == "/" or p.endswith("/.")):
        q += "/"  # a folder stays one
    return q
