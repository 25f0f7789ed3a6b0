"""Cookies (RFC 6265): the request's Cookie header parsed, Set-Cookie
values made. Loaded when req.cookies or conn.set_cookie() is first used."""
from .httpmsg import http_date, is_token

_SAME_SITE = ("Strict", "Lax", "None")


def parse(header):
    """'a=1; b="x y"' -> {'a': '1', 'b': 'x y'}. Pairs that are not
    name=value with a token name are skipped; the first of a name wins
    (the most specific path, as browsers order them)."""
    d = {}
    for kv in header.split(";"):
        k, eq, v = kv.strip().partition("=")
        if not eq or not is_token(k.encode()):
            continue
        v = v.strip()
        if len(v) > 1 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        if k not in d:
            d[k] = v
    return d


def _octets_ok(v):
    # cookie-octet: visible ASCII but DQUOTE, comma, semicolon, backslash
    for c in v.encode():
        if c < 0x21 or c > 0x7e or c in b'",;\\':
            return False
    return True


def set_cookie(name, value, path=None, domain=None, max_age=None,
               expires=None, http_only=False, secure=False, same_site=None):
    """The value of a Set-Cookie header. expires: a time.time() (int)
    or an HTTP date; same_site: 'Strict', 'Lax' or 'None' (which needs secure,
    as browsers insist). ValueError for what a browser would refuse."""
    value = str(value)
    if not is_token(name.encode()):
        raise ValueError("bad cookie name")
    if not _octets_ok(value):
        raise ValueError("bad cookie value (quote or encode it)")
    p = [name + "=" + value]
    for attr, v in (("Path", path), ("Domain", domain)):
        if v is not None:
            if not _octets_ok(v.replace(" ", "")) or ";" in v:
                raise ValueError("bad cookie " + attr)
            p.append(attr + "=" + v)
    if max_age is not None:
        p.append("Max-Age=%d" % max_age)
    if expires is not None:
        d = expires if isinstance(expires, str) else http_date(expires)
        if d:  # a board whose clock was never set has no dates: Max-Age
            p.append("Expires=" + d)
    if secure:
        p.append("Secure")
    if http_only:
        p.append("HttpOnly")
    if same_site is not None:
        if same_site not in _SAME_SITE:
            raise ValueError("same_site: Strict, Lax or None")
        if same_site == "None" and not secure:
            raise ValueError("SameSite=None needs secure=True")
        p.append("SameSite=" + same_site)
    return "; ".join(p)


def add(req, name, value, attrs):
    """Conn.set_cookie: a Set-Cookie for req's response, not started yet."""
    if req is None or req.head_sent:
        raise ValueError("set_cookie: no response about to start")
    v = set_cookie(name, value, **attrs)
    if req.set_cookies is None:
        req.set_cookies = []
    req.set_cookies.append(v)
