"""The captive portal while the set-up access point is up: the DNS
responder (lws.roles.dns) asked by dig and by hand-made packets, the probe
URLs and foreign Hosts over HTTP (http.client, curl), and the portal's
start and stop as main.py drives it from the WLAN manager, on the unix
port with the simulated network."""
import json
import random
import socket
import struct
import subprocess
import time

import pytest

from conftest import free_port, peer, start, unixport
from test_wlan import (CAFE, HOME, air, board, boards,  # noqa: F401
                       env, post, status, wait_for)

AP_IP = "192.168.4.1"  # the simulated access point's address


def udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- DNS packets by hand ------------------------------------------------------

def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes((len(label),)) + label.encode()
    return out + b"\0"


def query(name, qtype=1, qid=0x1234, flags=0x0100, qclass=1, raw=None):
    """A query (RD set); raw: the question as given bytes."""
    q = raw if raw is not None else qname(name) + struct.pack(
        ">HH", qtype, qclass)
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + q


def parse(r):
    """(id, flags, rcode, counts, answers [(type, ttl, rdata)])."""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", r[:12])
    i = 12
    for _ in range(qd):
        i = skip_name(r, i) + 4
    answers = []
    for _ in range(an):
        i = skip_name(r, i)
        t, c, ttl, n = struct.unpack(">HHIH", r[i:i + 10])
        answers.append((t, ttl, r[i + 10:i + 10 + n]))
        i += 10 + n
    assert i == len(r), "trailing bytes"
    return qid, flags, flags & 15, (qd, an, ns, ar), answers


def skip_name(r, i):
    while True:
        b = r[i]
        if b == 0:
            return i + 1
        if b & 0xC0 == 0xC0:
            return i + 2
        i += b + 1


class Dns:
    """A client socket towards the responder on 127.0.0.1:port."""

    def __init__(self, port):
        self.port = port
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(3)
        # connected: a closed port is told at once (ICMP), not by a timeout
        self.s.connect(("127.0.0.1", port))

    def send(self, pkt):
        self.s.send(pkt)

    def ask(self, pkt):
        self.send(pkt)
        return self.recv()

    def recv(self):
        r, _ = self.s.recvfrom(4096)
        return r

    def close(self):
        self.s.close()


def dig(port, *args):
    r = subprocess.run([peer("dig"), "@127.0.0.1", "-p", str(port),
                        "+time=2", "+tries=1", *args],
                       capture_output=True, text=True, timeout=20)
    return r.stdout


def dns_server(tmp_path, udp, ttl=10):
    """The responder alone on a context of its own (its vhost's TCP port
    tells when it is up)."""
    port = free_port()
    code = ("import lws\nfrom lws.roles import dns\n"
            "ctx = lws.Context(port=%d)\n"
            "dns.listen(ctx, %r, %d, '127.0.0.1', %d)\n"
            "ctx.run()\n" % (port, AP_IP, udp, ttl))
    return start(tmp_path, script="-c", args=[code], port=port)


@pytest.fixture
def responder(tmp_path):
    udp = udp_port()
    srv = dns_server(tmp_path, udp)
    srv.udp = udp
    yield srv
    srv.stop()


# -- the responder ------------------------------------------------------------

def test_dig_gets_the_access_point_for_every_name(responder):
    p = responder.udp
    for name in ("example.com", "connectivitycheck.gstatic.com",
                 "captive.apple.com", "www.msftconnecttest.com",
                 "lws-test.local", "a.b.c.d.e.f.example", "x"):
        assert dig(p, "+short", name, "A").split() == [AP_IP], name
    out = dig(p, "+noall", "+answer", "+comments", "Example.COM", "A")
    assert "status: NOERROR" in out and "flags: qr aa rd ra;" in out
    # the name as asked, the TTL: short
    assert "Example.COM.\t\t10\tIN\tA\t192.168.4.1" in out
    # no EDNS, no recursion asked: the same answer
    assert dig(p, "+short", "+noedns", "+norecurse", "foo.bar").split() \
        == [AP_IP]
    out = dig(p, "+norecurse", "foo.bar")
    assert "flags: qr aa ra;" in out
    # the longest name there can be: 4 labels of 63, 253 characters
    long = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert dig(p, "+short", long).split() == [AP_IP]
    # other types: NOERROR, no answer (the name exists: a client falls
    # back to A), never NXDOMAIN
    for t in ("AAAA", "MX", "TXT", "HTTPS", "NS", "PTR", "SRV"):
        out = dig(p, "example.com", t)
        assert "status: NOERROR" in out and "ANSWER: 0," in out, t
    assert dig(p, "+short", "-x", "192.168.4.2") == ""
    # ANY: the address (over UDP: dig asks ANY over TCP, which the
    # responder does not speak, as no answer of it is ever truncated)
    assert dig(p, "+short", "+notcp", "example.com", "ANY").split() == \
        [AP_IP]
    # class CHAOS: nothing
    out = dig(p, "version.bind", "TXT", "CH")
    assert "status: NOERROR" in out and "ANSWER: 0," in out


def test_answers_exactly(responder):
    d = Dns(responder.udp)
    try:
        r = d.ask(query("example.com", qid=0xBEEF))
        qid, flags, rcode, counts, ans = parse(r)
        assert qid == 0xBEEF and rcode == 0 and counts == (1, 1, 0, 0)
        assert flags == 0x8580  # QR AA RD RA
        assert ans == [(1, 10, socket.inet_aton(AP_IP))]
        # the question comes back as it was asked
        assert r[12:12 + len(qname("example.com")) + 4] == \
            query("example.com")[12:]
        # RD not set: not set in the answer either
        assert parse(d.ask(query("example.com", flags=0)))[1] == 0x8480
        r = d.ask(query("example.com", qtype=28, qid=7))
        assert parse(r)[:4] == (7, 0x8580, 0, (1, 0, 0, 0))
        # an answer is never much longer than its query
        assert len(r) == len(query("example.com"))
    finally:
        d.close()


def header(qid=1, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


A_IN = b"\0\1\0\1"
MALFORMED = [
    b"",
    b"\x12",
    header()[:11],
    header(),                                   # no question
    header() + b"\x07example",                  # name runs off the end
    header() + qname("example.com"),            # no type and class
    header() + qname("example.com") + b"\0\1",  # half of them
    header() + b"\x40" + b"a" * 64 + b"\0" + A_IN,   # label of 64
    header() + b"\x80abc\0" + A_IN,             # reserved label type
    header() + (b"\x3f" + b"a" * 63) * 4 + b"\0" + A_IN,  # 256 bytes long
    header() + b"\xc0\x0c" + A_IN,              # pointer to itself
    header() + b"\x03abc\xc0\x0c" + A_IN,       # a loop: abc.abc.abc...
    header() + b"\x03abc\xc0\x14" + A_IN,       # a pointer forward
    header() + b"\xc0\x02" + A_IN,              # into the header
    header() + b"\x03abc\xc0" ,                 # half a pointer
    header() + b"\xff\xff" + A_IN,
    header(flags=0x8180) + qname("x.y") + A_IN,  # a response: no answer
    header(flags=0x8000) + qname("x.y") + A_IN,
]


def test_malformed_packets_get_no_answer_and_no_crash(responder):
    d = Dns(responder.udp)
    try:
        for i, pkt in enumerate(MALFORMED):
            d.send(pkt)
            # UDP on loopback keeps the order: the next answer is this one's
            r = d.ask(query("ok.example", qid=1000 + i))
            assert parse(r)[0] == 1000 + i, (i, pkt)
        # random bytes, and valid queries with bytes flipped
        rnd = random.Random(12)
        good = query("www.example.com")
        for i in range(1500):
            if i % 2:
                pkt = bytes(rnd.randrange(256)
                            for _ in range(rnd.randrange(0, 80)))
            else:
                b = bytearray(good)
                for _ in range(rnd.randrange(1, 4)):
                    b[rnd.randrange(len(b))] = rnd.randrange(256)
                pkt = bytes(b)
            d.send(pkt)
            if i % 50 == 0:
                time.sleep(0.02)  # let the socket buffer drain
        # whatever was answered, answers are well-formed and not long
        d.s.settimeout(0.5)
        got = 0
        try:
            while True:
                r = d.recv()
                got += 1
                assert len(r) <= 80 + 16 and r[2] & 0x80
                parse(r)
        except socket.timeout:
            pass
        d.s.settimeout(3)
        assert parse(d.ask(query("still.here", qid=4242)))[0] == 4242
        assert got > 0
    finally:
        d.close()
    assert responder.proc.poll() is None
    assert "Traceback" not in responder.log()
    # the context it shares still serves
    assert responder.get("/")[0] == 404


def test_multiple_questions_and_other_opcodes_refused(responder):
    d = Dns(responder.udp)
    try:
        two = header(qid=9, qd=2) + qname("a.example") + A_IN + \
            qname("b.example") + A_IN
        r = d.ask(two)
        assert r == struct.pack(">HHHHHH", 9, 0x8181, 0, 0, 0, 0)  # FORMERR
        r = d.ask(header(qid=10, qd=0))
        assert parse(r)[2:4] == (1, (0, 0, 0, 0))
        # IQUERY, STATUS, NOTIFY, UPDATE: NOTIMP, the opcode as asked
        for op in (1, 2, 4, 5):
            r = d.ask(header(qid=20 + op, flags=op << 11) + qname("x") + A_IN)
            qid, flags, rcode, counts, _ = parse(r)
            assert (qid, rcode, counts) == (20 + op, 4, (0, 0, 0, 0))
            assert flags & 0x8000 and (flags >> 11) & 15 == op
        # a backward compression pointer in the question is followed: a
        # label of 5 whose bytes are the name "b", then a pointer into it
        q = header(qid=77) + b"\x05\x01b\x00xx\xc0\x0d" + A_IN
        qid, _, rcode, counts, ans = parse(d.ask(q))
        assert (qid, rcode, counts) == (77, 0, (1, 1, 0, 0))
        assert ans[0][2] == socket.inet_aton(AP_IP)
        # answer/authority/additional counts in a query are ignored (EDNS)
        r = d.ask(header(qid=78, ar=1) + qname("e.example") + A_IN +
                  b"\0\0\x29\x04\xd0\0\0\0\0\0\0")
        assert parse(r)[0] == 78 and parse(r)[3] == (1, 1, 0, 0)
        # a long datagram: only its start is read, the question answered
        r = d.ask(header(qid=79, ar=1) + qname("f.example") + A_IN +
                  b"\0" * 3000)
        assert parse(r)[0] == 79 and parse(r)[3] == (1, 1, 0, 0)
    finally:
        d.close()


# -- the portal on a booted board ---------------------------------------------

PROBES = [  # (Host, path) as phones and laptops send them
    ("connectivitycheck.gstatic.com", "/generate_204"),
    ("clients3.google.com", "/generate_204"),
    ("www.google.com", "/gen_204"),
    ("captive.apple.com", "/hotspot-detect.html"),
    ("www.apple.com", "/library/test/success.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),
    ("www.msftncsi.com", "/ncsi.txt"),
    ("www.msftconnecttest.com", "/redirect"),
    ("detectportal.firefox.com", "/canonical.html"),
    ("detectportal.firefox.com", "/success.txt"),
]


def ap_board(tmp_path, wlan=None, aps=(), **kw):
    """A board with no network it knows in range: its access point up,
    the portal's DNS on a UDP port of 127.0.0.1."""
    udp = udp_port()
    w = {"hostname": "lws-test", "wait": 2,
         "captive_portal": {"dns_port": udp, "dns_bind": "127.0.0.1"},
         "options": {"backoff": 0.3, "backoff_max": 0.5}}
    w.update(wlan or {})
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "index.html").write_text("<h1>board</h1>\n")
    # two WebSocket protocols: lws-status the default (the first), echo
    # on its mount
    cfg = {"wlan": w, "server": {"docroot": "www", "mounts": [
        ["/echo", "callback://echo"], ["/status", "callback://lws-status"]],
        "protocols": ["lws.plugins.status.Status", "lws.plugins.echo.Echo"]}}
    srv = board(tmp_path, cfg, list(aps), **kw)
    srv.udp = udp
    return srv


def redirected(srv, host, path, method="GET"):
    st, h, body = srv.get(path, {"Host": host}, method=method)
    return st == 302 and h.get("Location") == \
        "http://%s:%d/setup" % (AP_IP, srv.port) and \
        h.get("Cache-Control") == "no-store"


def test_probes_and_foreign_hosts_go_to_the_setup_page(tmp_path, boards):
    srv = ap_board(tmp_path)
    boards.append(srv)
    assert status(srv)["ap"] == "lws-12EF"
    for host, path in PROBES:
        assert redirected(srv, host, path), (host, path)
        # also when asked by the board's address
        assert redirected(srv, "127.0.0.1:%d" % srv.port, path), path
    # any other name the DNS led here, any path, any method
    for host in ("example.com", "example.com:%d" % srv.port, "neverssl.com",
                 "EXAMPLE.org.", "lws-test.example"):
        for path in ("/", "/index.html", "/setup", "/some/page?q=1"):
            assert redirected(srv, host, path), (host, path)
    assert redirected(srv, "example.com", "/", "HEAD")
    assert redirected(srv, "example.com", "/form", "POST")
    st, h, body = srv.get("/", {"Host": "example.com"})
    assert b'href="http://192.168.4.1:%d/setup"' % srv.port in body
    # the board's own names: served as always
    for host in ("127.0.0.1:%d" % srv.port, AP_IP, "%s:%d" % (AP_IP, srv.port),
                 "lws-test.local", "LWS-Test.local.", "lws-test",
                 "[::1]:%d" % srv.port, "localhost:%d" % srv.port):
        st, _, body = srv.get("/", {"Host": host})
        assert (st, body) == (200, b"<h1>board</h1>\n"), host
        st, _, page = srv.get("/setup", {"Host": host})
        assert st == 200 and b"WLAN set-up" in page, host
        assert srv.get("/nothing", {"Host": host})[0] == 404
    assert "Traceback" not in srv.log()


def test_curl_follows_the_portal_by_name(tmp_path, boards):
    """curl, resolving the probe hosts to the board as the portal's DNS
    would, gets the redirect; the board's DNS gives dig the same address."""
    srv = ap_board(tmp_path)
    boards.append(srv)
    curl = peer("curl")
    for host, path in PROBES[::3]:
        out = subprocess.run(
            [curl, "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
             "%{http_code} %{redirect_url}", "--resolve",
             "%s:%d:127.0.0.1" % (host, srv.port),
             "http://%s:%d%s" % (host, srv.port, path)],
            capture_output=True, text=True, timeout=20).stdout
        assert out == "302 http://%s:%d/setup" % (AP_IP, srv.port), host
    for host, _ in PROBES:
        assert dig(srv.udp, "+short", host).split() == [AP_IP]
    assert dig(srv.udp, "+short", "lws-test.local").split() == [AP_IP]


def test_websockets_untouched_by_the_portal(tmp_path, boards):
    from conftest import arun
    import websockets
    srv = ap_board(tmp_path)
    boards.append(srv)

    async def echo(path, host=None):
        # by name: the request says Host: name, the socket goes to the board
        url = "ws://%s:%d%s" % (host, srv.port, path) if host else \
            srv.ws_url(path)
        async with websockets.connect(url, host="127.0.0.1") as ws:
            await ws.send("hello")
            return await ws.recv()
    # the protocol of the mount, also by another name
    assert arun(echo("/echo")) == "hello"
    assert arun(echo("/echo", "example.com")) == "hello"
    # elsewhere the default protocol (which sends its status)
    assert "uptime_ms" in json.loads(arun(echo("/")))
    assert "uptime_ms" in json.loads(arun(echo("/nothing", "example.com")))
    # and plain HTTP to a mount of a WebSocket protocol: as it was
    assert srv.get("/echo")[0] == 404
    st, _, body = srv.get("/status")
    assert st == 200 and "uptime_ms" in json.loads(body)


def dns_closed(port):
    """True when nothing answers on the UDP port any more."""
    d = Dns(port)
    d.s.settimeout(1)
    try:
        d.ask(query("example.com"))
        return False
    except (ConnectionRefusedError, socket.timeout):
        return True
    finally:
        d.close()


def test_portal_stops_when_the_station_connects(tmp_path, boards):
    srv = ap_board(tmp_path, aps=[HOME], wlan={"options": {
        "backoff": 0.3, "backoff_max": 0.5}})
    boards.append(srv)
    assert status(srv)["ap"] == "lws-12EF"
    assert dig(srv.udp, "+short", "example.com").split() == [AP_IP]
    assert redirected(srv, "captive.apple.com", "/hotspot-detect.html")
    assert post(srv, "/setup/add", {"ssid": "home",
                                    "password": "homepass1"})[0] == 200
    wait_for(lambda: srv.get("/setup/status.json")[0] == 404, 10)
    # the station is up: no DNS, no redirect, names are served as any
    assert dns_closed(srv.udp)
    for host, path in PROBES[:3]:
        assert srv.get(path, {"Host": host})[0] == 404
    st, _, body = srv.get("/", {"Host": "example.com"})
    assert (st, body) == (200, b"<h1>board</h1>\n")
    log = srv.log()
    assert log.index("captive: portal up") < log.index("wlan: connected") \
        < log.index("captive: portal stopped")
    assert "dns: responder stopped" in log
    # the network goes away: the access point, and the portal, come back
    air(tmp_path, [], mac="24:0a:c4:00:12:ef")
    wait_for(lambda: srv.get("/setup/status.json")[0] == 200, 15)
    wait_for(lambda: not dns_closed(srv.udp), 5)
    assert dig(srv.udp, "+short", "example.com").split() == [AP_IP]
    assert redirected(srv, "captive.apple.com", "/hotspot-detect.html")
    assert srv.log().count("captive: portal up") == 2
    assert "Traceback" not in srv.log()


def test_portal_stops_with_keep_ap_too(tmp_path, boards):
    """keep_ap: the access point stays, the page too (behind the admin
    password), but the portal stops: the board is set up."""
    srv = ap_board(tmp_path, aps=[CAFE], wlan={"options": {
        "backoff": 5, "keep_ap": True}})
    boards.append(srv)
    assert redirected(srv, "example.com", "/")
    assert post(srv, "/setup/add", {"ssid": "cafe",
                                    "password": "cafepass1"})[0] == 200
    wait_for(lambda: srv.get("/setup/status.json")[0] == 401, 10)
    assert dns_closed(srv.udp)
    assert srv.get("/", {"Host": "example.com"})[0] == 200


@pytest.mark.parametrize("wlan, on", [
    ({}, True),                                   # "setup": "ap": on
    ({"captive_portal": False}, False),
    ({"setup": "always", "setup_password": "adminpass1"}, False),
    ({"setup": "always", "setup_password": "adminpass1",
      "captive_portal": True}, True),
    ({"setup": "never", "captive_portal": True}, False),
])
def test_when_the_portal_runs(tmp_path, boards, wlan, on):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("<h1>board</h1>\n")
    srv = board(tmp_path, {"wlan": dict(wlan, wait=2),
                           "server": {"docroot": "www"}}, [])
    boards.append(srv)
    wait_for(lambda: "main: serving on port" in srv.log(), 10)
    st, h, _ = srv.get("/generate_204", {"Host": "clients3.google.com"})
    assert st == (302 if on else 404)
    log = srv.log()
    assert ("captive: portal up" in log) == on
    if on:
        # on the unix port, port 53 is the computer's: no DNS unless a
        # port is given
        assert "captive: no DNS responder on the unix port unless " \
            "dns_port is set" in log
    if wlan.get("setup") == "never":
        assert "main: no captive portal without a set-up page" in log


def test_dns_port_taken_leaves_the_redirects(tmp_path, boards):
    """Another program has the DNS port: logged, the HTTP part runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()[1]
        srv = ap_board(tmp_path, wlan={"captive_portal": {
            "dns_port": taken, "dns_bind": "127.0.0.1"}})
        boards.append(srv)
        assert redirected(srv, "example.com", "/")
        assert "captive: no DNS responder on UDP port %d" % taken in srv.log()
    assert srv.proc.poll() is None


def test_portal_options_checked(tmp_path):
    air(tmp_path, [])
    r = subprocess.run(
        [unixport.micropython(), "-c",
         "import lws\nfrom lws.plugins.captive import Portal\n"
         "vh = lws.Vhost()\n"
         "try:\n    Portal(vh, dns_prot=5353)\nexcept ValueError as e:\n"
         "    print(e)\n"
         "p = Portal(vh, 'lws', hosts=('board.example',))\n"
         "print(p.own_host('board.example:80'), p.own_host('LWS.local'),"
         " p.own_host('10.0.0.7'), p.own_host('lws.example'),"
         " p.own_host(''), p.own_host('1.2.3'),"
         " p.own_host('localhost:8080'))\n"],
        env=env(tmp_path), cwd=str(tmp_path), capture_output=True,
        text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == [
        "unknown captive portal option dns_prot",
        "True True True False True False True"]
