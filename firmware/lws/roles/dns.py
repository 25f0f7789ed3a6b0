"""The DNS role: a responder on a UDP socket that answers every A query
with one address, the captive portal's (plugins/captive.py).

    from lws.roles import dns
    c = dns.listen(ctx, "192.168.4.1", port=53)   # in ctx's poll set
    c.drop()                                      # socket closed

Each datagram is one query (RFC 1035 4.1), answered at once from the
loop, never blocking: an A (or ANY) query of class IN gets the address,
every other type an empty NOERROR answer (the name exists, with no
record of that type: a client falls back to A, where NXDOMAIN would tell
it that the name has no records at all). One question only: a query with
more or none gets FORMERR, an opcode other than QUERY NOTIMP. What cannot
be a query (short, cut off, a response, a name that runs off the end,
compression pointers that loop or point forward) is dropped unanswered.
An answer is never much longer than its query: 16 bytes more at most.
"""
from .. import log
from . import Role

_HEADER = const(12)
# a query's first bytes are read, the rest of a longer datagram is cut
# off (the question comes first; EDNS options after it are not needed)
_MAX_QUERY = const(512)
# datagrams read per poll event
_BURST = const(8)
# compression pointers followed in one name
_MAX_HOPS = const(8)
_MAX_NAME = const(255)
_MAX_LABEL = const(63)
_TYPE_A = const(1)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)
_CLASS_ANY = const(255)
_FORMERR = const(1)
_NOTIMP = const(4)
_EAGAIN = const(11)


def name_end(q, n):
    """The offset just after the question's name (at offset 12 of the
    query q, n bytes long), or -1 if it is no well-formed name (at most
    255 bytes, labels of 63). Compression pointers (RFC 1035 4.1.4) are
    followed when they point back, past the header, a few times at most:
    no loop, no reading past the end."""
    i = _HEADER
    end = -1
    size = 0
    hops = 0
    while i < n:
        b = q[i]
        if b == 0:
            return i + 1 if end < 0 else end
        if b & 0xC0 == 0xC0:
            if i + 1 >= n or hops >= _MAX_HOPS:
                return -1
            to = ((b & 0x3F) << 8) | q[i + 1]
            if to < _HEADER or to >= i:
                return -1
            if end < 0:
                end = i + 2
            hops += 1
            i = to
            continue
        if b > _MAX_LABEL:  # 0x40 and 0x80: label types no one uses
            return -1
        size += b + 1
        if size > _MAX_NAME:
            return -1
        i += b + 1
    return -1


def _refuse(q, rcode):
    """A header alone: the query's id, opcode and RD, and rcode."""
    return bytes((q[0], q[1], 0x80 | (q[2] & 0x79), 0x80 | rcode)) + \
        bytes(8)


def answer(q, ip, ttl):
    """The answer to the query q (bytes), or None when it gets none."""
    n = len(q)
    if n < _HEADER or q[2] & 0x80:  # short, or a response: no answer
        return None
    if q[2] & 0x78:  # opcode: not a QUERY
        return _refuse(q, _NOTIMP)
    if q[4] or q[5] != 1:  # one question, no more, no less
        return _refuse(q, _FORMERR)
    e = name_end(q, n)
    if e < 0 or e + 4 > n:
        return None
    qtype = (q[e] << 8) | q[e + 1]
    qclass = (q[e + 2] << 8) | q[e + 3]
    a = qtype in (_TYPE_A, _TYPE_ANY) and qclass in (_CLASS_IN, _CLASS_ANY)
    e += 4
    r = bytearray(e + (16 if a else 0))
    r[0] = q[0]
    r[1] = q[1]
    r[2] = 0x84 | (q[2] & 1)  # a response, authoritative, RD as asked
    r[3] = 0x80       # recursion available (every name resolves), NOERROR
    r[5] = 1
    r[7] = 1 if a else 0
    r[_HEADER:e] = q[_HEADER:e]  # the question as it came
    if a:
        # the name: a pointer to the question's; type A, class IN, TTL,
        # 4 bytes of address
        r[e:e + 12] = bytes((0xC0, _HEADER, 0, 1, 0, 1, ttl >> 24,
                             (ttl >> 16) & 255, (ttl >> 8) & 255, ttl & 255,
                             0, 4))
        r[e + 12:e + 16] = ip
    return r


def ip4(s):
    """'192.168.4.1' -> 4 bytes."""
    p = s.split(".")
    if len(p) != 4:
        raise ValueError("not an IPv4 address: " + s)
    return bytes(int(x) for x in p)


class Dns(Role):
    name = "dns"

    def start(self, c):
        c.deadline = None  # it listens for as long as it is up
        c.update()

    def rx(self, c):
        s = c.sock
        st = c.user
        for _ in range(_BURST):
            try:
                q, peer = s.recvfrom(_MAX_QUERY)
            except OSError as e:
                if e.args[0] != _EAGAIN:
                    log.info("dns: recv: %s", e)
                return
            r = None
            try:
                r = answer(q, st[0], st[1])
            except Exception as e:  # never one packet's fault for the rest
                log.info("dns: query dropped: %s", e)
            if r is None:
                log.debug("dns: dropped %d bytes", len(q))
                continue
            try:
                s.sendto(r, peer)
            except OSError as e:  # a full send buffer loses an answer
                log.info("dns: send: %s", e)

    def poll_error(self, c):
        # an error on the socket (an ICMP error for an earlier answer)
        # is read and forgotten: the responder stays up
        try:
            c.sock.recvfrom(1)
        except OSError:
            pass
        return True

    def dropped(self, c):
        log.notice("dns: responder stopped")


ROLE = Dns()


def listen(ctx, ip, port=53, bind="0.0.0.0", ttl=10):
    """Answer DNS queries on UDP port (on address bind) from ctx's loop,
    every A query with ip, valid for ttl seconds. Returns the connection:
    drop() it to stop. OSError when the port cannot be had."""
    import socket
    from ..conn import Conn
    a = ip4(ip)
    ttl = max(0, min(int(ttl), 0x7FFFFFFF))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(bind, port, 0, socket.SOCK_DGRAM)[0][-1])
        s.setblocking(False)
    except Exception:
        s.close()
        raise
    c = Conn(ctx, s, None, ctx.vhosts)
    c.user = (a, ttl)
    ctx.add(c, s)
    c.transition(ROLE)
    log.notice("dns: answering every name with %s on UDP port %d", ip, port)
    return c
