"""SOCKS5 (RFC 1928, RFC 1929 username/password) for client connections."""
import socket

_GREETING = const(0)   # method selection sent
_AUTH = const(1)       # username/password sent
_CONNECT = const(2)    # connect request sent
SOCKS_OPEN = const(3)  # the tunnel is open


def greeting(auth):
    return b"\x05\x02\x00\x02" if auth else b"\x05\x01\x00"


def _connect_request(host, port):
    try:
        a = socket.inet_pton(socket.AF_INET, host)
        return b"\x05\x01\x00\x01" + a + port.to_bytes(2, "big")
    except (OSError, ValueError):
        pass
    try:
        a = socket.inet_pton(socket.AF_INET6, host)
        return b"\x05\x01\x00\x04" + a + port.to_bytes(2, "big")
    except (OSError, ValueError):
        pass
    h = host.encode()
    return b"\x05\x01\x00\x03" + bytes((len(h),)) + h + port.to_bytes(2, "big")


_REPLIES = ("succeeded", "general SOCKS server failure",
            "connection not allowed by ruleset", "network unreachable",
            "host unreachable", "connection refused", "TTL expired",
            "command not supported", "address type not supported")


def step(c, cl, data):
    """Feed the proxy's reply; returns an error text, or None. When the
    tunnel is open cl.socks_step becomes SOCKS_OPEN."""
    data = cl.socks_buf + data if cl.socks_buf else data
    if cl.socks_step == _GREETING:
        if len(data) < 2:
            cl.socks_buf = data
            return None
        if data[0] != 5:
            return "not a SOCKS5 proxy"
        if data[1] == 2 and cl.socks:
            user, pw = (x.encode() for x in cl.socks)
            c.send(b"\x01" + bytes((len(user),)) + user +
                   bytes((len(pw),)) + pw)
            cl.socks_step = _AUTH
        elif data[1] == 0:
            c.send(_connect_request(cl.host, cl.port))
            cl.socks_step = _CONNECT
        else:
            return "SOCKS5 proxy accepts none of our methods"
        cl.socks_buf = data[2:]
        return None
    if cl.socks_step == _AUTH:  # the username/password reply
        if len(data) < 2:
            cl.socks_buf = data
            return None
        if data[1] != 0:
            return "SOCKS5 proxy refused the username/password"
        c.send(_connect_request(cl.host, cl.port))
        cl.socks_step = _CONNECT
        cl.socks_buf = data[2:]
        return None
    # connect reply: VER REP RSV ATYP ADDR PORT
    if len(data) < 5:
        cl.socks_buf = data
        return None
    if data[1] != 0:
        r = data[1]
        return "SOCKS5 proxy: " + (_REPLIES[r] if r < len(_REPLIES)
                                   else "error %d" % r)
    atyp = data[3]
    n = 4 + (4 if atyp == 1 else 16 if atyp == 4 else 1 + data[4]) + 2
    if len(data) < n:
        cl.socks_buf = data
        return None
    cl.socks_buf = data[n:]  # the tunnel's first bytes, if they came along
    cl.socks_step = SOCKS_OPEN
    return None
