"""Small helpers: percent-decoding and query strings."""


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
