"""URL parsing like lws_parse_uri."""

PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443, "raw": 0,
         "socks5": 1080}


def parse_uri(url):
    """'ws://[::1]:7681/echo?x=1' -> ('ws', '::1', 7681, '/echo?x=1').

    The scheme is lower-cased; the default port comes from it; the path
    always starts with '/'. ValueError for what is not a URL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("no scheme in " + url)
    scheme = scheme.lower()
    i = len(rest)
    for ch in "/?#":
        j = rest.find(ch)
        if 0 <= j < i:
            i = j
    hostport, path = rest[:i], rest[i:]
    if "@" in hostport:
        hostport = hostport[hostport.rfind("@") + 1:]
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("bad IPv6 literal in " + url)
        host, tail = hostport[1:end], hostport[end + 1:]
        if tail and not tail.startswith(":"):
            raise ValueError("bad port in " + url)
        port = tail[1:]
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ValueError("no host in " + url)
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("bad port in " + url)
        port = int(port)
    else:
        port = PORTS.get(scheme, 0)
    if path.startswith("#"):
        path = ""
    path = path.partition("#")[0]
    if not path.startswith("/"):
        path = "/" + path
    return scheme, host, port, path


def userinfo(url):
    """(user, password) from 'scheme://user:pw@host', or None."""
    hp = url.partition("://")[2]
    for ch in "/?#":
        hp = hp.split(ch, 1)[0]
    if "@" not in hp:
        return None
    ui = hp[:hp.rfind("@")]
    user, _, pw = ui.partition(":")
    from .util import unquote
    return unquote(user).decode(), unquote(pw).decode()
