"""A stub resolver on the loop: host names of client connections looked up
without blocking it (lwIP's getaddrinfo can stall a board for seconds).

    addr = resolve(ctx, "example.com", fn)  # cached: the address now
    # else None, and fn(addr, None) or fn(None, why) later, from the loop

One A query (RFC 1035) per name over a UDP socket in the context's poll
set, opened while queries wait and closed after; an answer counts only
from a server we asked, with our random id and our question (a spoofer
must guess the id and the port). Each server is asked twice, the servers
in turn, dns_timeout seconds a try. CNAMEs within the answer are
followed; a few names are kept for their TTL. No server found (no
dns_servers, none in /etc/resolv.conf, none from the station's DHCP):
blocking getaddrinfo, as before. Imported only when a name (not an IP
literal nor localhost) must be resolved.
"""
import os
import socket
import time
from . import log
from .conn import Conn
from .roles import Role

_PORT = const(53)
_TRIES = const(2)       # per server
_CACHE = const(4)       # names kept
_PENDING = const(8)     # lookups at once
_MAX_TTL = const(3600)  # seconds an answer is kept at most
_MAX_RR = const(16)     # records of an answer looked at
_MAX_HOPS = const(8)    # compression pointers in a name, CNAMEs in a chain
_MAX_ANSWER = const(512)
_BURST = const(8)
_HEADER = const(12)
_TYPE_A = const(1)
_TYPE_CNAME = const(5)
_CLASS_IN = const(1)
_EAGAIN = const(11)
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
           5: "REFUSED"}


def query(qid, name):
    """An A query of class IN for name (str), recursion desired."""
    q = bytearray((qid >> 8, qid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0))
    for label in name.split("."):
        b = label.encode()
        if not b or len(b) > 63:
            raise ValueError("bad host name")
        q.append(len(b))
        q.extend(b)
    q.extend(b"\x00\x00\x01\x00\x01")
    return q


def read_name(p, i):
    """(the name at offset i of packet p, lower case, the offset after
    it); pointers are followed backwards a few times at most. ValueError
    when it is not a well-formed name."""
    out = []
    end = -1
    hops = 0
    n = len(p)
    while True:
        if i >= n:
            raise ValueError
        b = p[i]
        if b == 0:
            return ".".join(out).lower(), (i + 1 if end < 0 else end)
        if b & 0xC0 == 0xC0:
            if i + 1 >= n or hops >= _MAX_HOPS:
                raise ValueError
            to = ((b & 0x3F) << 8) | p[i + 1]
            if to < _HEADER or to >= i:
                raise ValueError
            if end < 0:
                end = i + 2
            hops += 1
            i = to
            continue
        if b > 63 or i + 1 + b > n:
            raise ValueError
        out.append(bytes(p[i + 1:i + 1 + b]).decode())
        i += b + 1


def _u16(p, i):
    return (p[i] << 8) | p[i + 1]


def parse(p, qid, name):
    """The answer p to our query (qid, name): None when it is not ours
    (another id, another question, not a response: ignored), else
    (address, ttl) or (None, why)."""
    if len(p) < _HEADER or _u16(p, 0) != qid or not p[2] & 0x80 or \
            _u16(p, 4) != 1:
        return None
    try:
        qn, i = read_name(p, _HEADER)
        if qn != name or _u16(p, i) != _TYPE_A or _u16(p, i + 2) != _CLASS_IN:
            return None
    except (ValueError, IndexError, UnicodeError):
        return None
    rcode = p[3] & 15
    if rcode:
        return None, _RCODES.get(rcode, "error %d" % rcode)
    i += 4
    rrs = []
    try:
        for _ in range(min(_u16(p, 6), _MAX_RR)):
            rn, i = read_name(p, i)
            t = _u16(p, i)
            ttl = (_u16(p, i + 4) << 16) | _u16(p, i + 6)
            k = _u16(p, i + 8)
            i += 10
            if i + k > len(p):
                raise ValueError
            if _u16(p, i - 8) == _CLASS_IN:
                rrs.append((rn, t, ttl, i, k))
            i += k
    except (ValueError, IndexError, UnicodeError):
        if not rrs:
            return None, "bad answer"
    # the chain from our name: CNAMEs in any order, then its A
    want = name
    low = _MAX_TTL
    for _ in range(_MAX_HOPS):
        nxt = None
        for rn, t, ttl, at, k in rrs:
            if rn != want:
                continue
            if t == _TYPE_A and k == 4:
                return "%d.%d.%d.%d" % tuple(p[at:at + 4]), min(low, ttl)
            if t == _TYPE_CNAME and nxt is None:
                try:
                    nxt = read_name(p, at)[0]
                except (ValueError, IndexError, UnicodeError):
                    return None, "bad answer"
                low = min(low, ttl)
        if nxt is None:
            break
        want = nxt
    return None, "truncated answer" if p[2] & 2 else "no A record"


def servers(ctx):
    """[sockaddr] of the DNS servers: ctx.dns_servers ("ip" or (ip,
    port) each), else the unix port's /etc/resolv.conf, else the board's
    station DNS (DHCP's)."""
    conf = ctx.dns_servers
    if conf is None:
        conf = []
        try:
            with open("/etc/resolv.conf") as f:
                for line in f:
                    w = line.split()
                    if len(w) > 1 and w[0] == "nameserver" and \
                            ":" not in w[1]:
                        conf.append(w[1])
        except OSError:
            pass
        if not conf:
            try:
                import network
                ip = network.WLAN(network.STA_IF).ifconfig()[3]
                if ip and ip != "0.0.0.0":
                    conf.append(ip)
            except Exception:  # no network module, the interface is down
                pass
    elif isinstance(conf, str) or (len(conf) == 2 and
                                   isinstance(conf[1], int)):
        conf = (conf,)
    out = []
    for s in conf:
        ip, port = (s, _PORT) if isinstance(s, str) else s
        a = socket.getaddrinfo(ip, port, 0, socket.SOCK_DGRAM)[0][-1]
        out.append(bytes(a) if isinstance(a, bytearray) else a)
    return out


class _Lookup:
    """One name being asked for, and who waits for it."""

    def __init__(self, name, qid):
        self.name = name
        self.qid = qid
        self.pkt = query(qid, name)  # ValueError for a bad name
        self.tries = 0   # sent so far
        self.due = 0     # ticks_ms of the next try
        self.waiters = []  # [(conn, fn)]


class Resolver:
    """A context's resolver: the cache, and the socket while it asks."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.cache = {}  # name: (address, expires ticks_ms)
        self.busy = []   # [_Lookup]
        self.c = None    # the socket's connection, while busy
        self.srv = None

    def cached(self, name):
        e = self.cache.get(name)
        if e is not None:
            if time.ticks_diff(e[1], time.ticks_ms()) > 0:
                return e[0]
            del self.cache[name]
        return None

    def keep(self, name, addr, ttl):
        if ttl <= 0:
            return
        cache = self.cache
        if name not in cache and len(cache) >= _CACHE:
            old = None
            for k in cache:  # out goes the one that expires first
                if old is None or time.ticks_diff(cache[k][1],
                                                  cache[old][1]) < 0:
                    old = k
            del cache[old]
        cache[name] = (addr, time.ticks_add(time.ticks_ms(),
                                            min(ttl, _MAX_TTL) * 1000))

    def ask(self, name, c, fn):
        """Queue c's lookup of name; fn(addr, why) from the loop."""
        for q in self.busy:
            if q.name == name:
                q.waiters.append((c, fn))
                return
        if len(self.busy) >= _PENDING:
            raise OSError("too many lookups at once")
        while True:
            qid = (os.urandom(1)[0] << 8) | os.urandom(1)[0]
            if all(q.qid != qid for q in self.busy):
                break
        q = _Lookup(name, qid)
        q.waiters.append((c, fn))
        if self.c is None:
            self._open()
        self.busy.append(q)
        self._send(q)
        self._arm()

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        c = Conn(self.ctx, s, None, self.ctx.vhosts)
        c.user = self
        self.ctx.add(c, s)
        c.transition(ROLE)
        self.c = c

    def _send(self, q):
        srv = self.srv
        a = srv[q.tries % len(srv)]
        q.tries += 1
        q.due = time.ticks_add(time.ticks_ms(),
                               int(self.ctx.dns_timeout * 1000))
        try:
            self.c.sock.sendto(q.pkt, a)
        except OSError as e:  # no route yet: the next try may have one
            log.info("dns: send: %s", e)

    def _arm(self):
        """The socket's deadline: the next try, or a waiter's end."""
        c = self.c
        if c is None:
            return
        d = None
        for q in self.busy:
            for w in q.waiters:
                t = w[0].deadline
                if t is not None and (d is None or time.ticks_diff(t, d) < 0):
                    d = t
            if d is None or time.ticks_diff(q.due, d) < 0:
                d = q.due
        c.deadline = d

    def _end(self, q, addr, why):
        self.busy.remove(q)
        for c, fn in q.waiters:
            if not c.closed:
                fn(addr, why)
        if not self.busy and self.c is not None:
            c = self.c
            self.c = None
            c.drop()

    def rx(self, c):
        s = c.sock
        for _ in range(_BURST):
            try:
                p, peer = s.recvfrom(_MAX_ANSWER)
            except OSError as e:
                if e.args[0] != _EAGAIN:
                    log.info("dns: recv: %s", e)
                return
            if peer not in self.srv:
                log.info("dns: answer from a stranger ignored")
                continue
            for q in self.busy:
                r = parse(p, q.qid, q.name)
                if r is not None:
                    break
            else:
                log.info("dns: an answer to no question of ours ignored")
                continue
            addr, why = r
            if addr is not None:
                self.keep(q.name, addr, why)
                why = None
            elif why == "SERVFAIL" or why == "REFUSED":
                if q.tries < _TRIES * len(self.srv):
                    self._send(q)  # another server may know
                    continue
            self._end(q, addr, why)
            if self.c is not c:
                return
        self._arm()

    def tick(self):
        """The socket's deadline: tries again, or gives up."""
        now = time.ticks_ms()
        for q in self.busy[:]:
            q.waiters = [w for w in q.waiters if not w[0].closed]
            late = [w for w in q.waiters if w[0].deadline is not None and
                    time.ticks_diff(now, w[0].deadline) >= 0]
            for w in late:  # connect_timeout is over
                q.waiters.remove(w)
                w[1](None, "timeout")
            if not q.waiters:
                self._end(q, None, None)
            elif time.ticks_diff(now, q.due) >= 0:
                if q.tries < _TRIES * len(self.srv):
                    self._send(q)
                else:
                    self._end(q, None, "timeout")
        self._arm()

    def stop(self):
        """The socket was dropped (ctx.close()): who waits is dropped."""
        self.c = None
        busy = self.busy
        self.busy = []
        for q in busy:
            for w in q.waiters:
                w[0].drop()


class _Udp(Role):
    name = "resolver"

    def start(self, c):
        c.deadline = None
        c.update()

    def rx(self, c):
        c.user.rx(c)

    def timeout(self, c):
        c.user.tick()

    def poll_error(self, c):
        try:
            c.sock.recvfrom(1)  # an ICMP error for a query: read, forgotten
        except OSError:
            pass
        return True

    def dropped(self, c):
        r = c.user
        if r.c is c:
            r.stop()


ROLE = _Udp()


def resolve(ctx, name, c, fn):
    """The address of host name for connection c: now (a cached answer,
    or blocking getaddrinfo when no DNS server is known), else None and
    fn(address, None) or fn(None, why) later from the loop. OSError when
    it cannot even be asked."""
    name = name.lower().rstrip(".")
    r = ctx._dns
    if r is None:
        r = ctx._dns = Resolver(ctx)
    addr = r.cached(name)
    if addr is not None:
        return addr
    if name.endswith(".invalid") or name == "invalid":  # RFC 6761 6.4
        raise OSError("NXDOMAIN")
    if not r.busy:
        r.srv = servers(ctx)  # again: DHCP may have given another
    if not r.srv:
        log.warn("dns: no DNS server known: %s looked up blocking", name)
        ai = socket.getaddrinfo(name, 0, 0, socket.SOCK_STREAM)
        if not ai:
            raise OSError("no address")
        a = ai[0][-1]
        if isinstance(a, tuple):
            return a[0]
        a = socket.sockaddr(a)  # the unix port: (family, address, port)
        return socket.inet_ntop(a[0], a[1])
    r.ask(name, c, fn)
    return None
