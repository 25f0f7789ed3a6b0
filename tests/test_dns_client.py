"""Host names of client connections looked up on the loop (lws.resolve)
against a DNS server of this test (CPython, UDP on 127.0.0.1, answers
built by hand): HTTP, WebSocket and SMTP clients through a name, NXDOMAIN,
SERVFAIL and no A record as error values, a silent server timing out
while the same process serves HTTP, spoofed answers ignored, CNAME
chains, the cache and its TTL, literals and localhost never asked."""
import json
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import free_port, peer, wait_port
from lwstool import unixport
from test_client import aio, http_server, mpy, ws_server  # noqa: F401
from test_smtp import Handler, smtpd  # noqa: F401

pytestmark = pytest.mark.timeout(40)


# -- a DNS server -------------------------------------------------------------


def qname(data, i=12):
    labels = []
    while data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode())
        i += n + 1
    return ".".join(labels), i + 1


def encode(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) \
        + b"\0"


def rr(name, rtype, ttl, rdata):
    """A record of class IN; name b"\\xc0\\x0c" points at the question's."""
    n = name if isinstance(name, bytes) else encode(name)
    return n + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def a(name, ip, ttl=60):
    return rr(name, 1, ttl, socket.inet_aton(ip))


def cname(name, target, ttl=60):
    return rr(name, 5, ttl, encode(target))


def response(query, records=(), rcode=0, qid=None, question=None):
    """The answer to query: its id (or qid), its question (or another)."""
    _, end = qname(query)
    q = query[12:end + 4] if question is None else \
        encode(question) + b"\0\1\0\1"
    hid = struct.unpack("!H", query[:2])[0] if qid is None else qid
    return struct.pack("!HHHHHH", hid, 0x8180 | rcode, 1, len(records),
                       0, 0) + q + b"".join(records)


class DnsServer:
    """UDP on 127.0.0.1; zone: {name: fn(query) -> [(delay, bytes, sock)]
    or records, or an rcode}; a name not in it: NXDOMAIN. silent: never
    answers. queries: (name, qtype, id, source port) as they came."""

    def __init__(self, zone=None, silent=False):
        self.zone = zone or {}
        self.silent = silent
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        self.stopped = False
        self.sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    def names(self):
        return [q[0] for q in self.queries]

    def _serve(self):
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            name, end = qname(data)
            qtype = struct.unpack("!H", data[end:end + 2])[0]
            self.queries.append((name, qtype, data[:2], src[1]))
            if self.silent:
                continue
            z = self.zone.get(name.lower(), 3)
            if callable(z):
                for delay, pkt, sock in z(data, self):
                    time.sleep(delay)
                    (sock or self.sock).sendto(pkt, src)
                continue
            if isinstance(z, int):
                pkt = response(data, rcode=z)
            else:
                pkt = response(data, z)
            self.sock.sendto(pkt, src)

    def close(self):
        self.stopped = True
        self.sock.close()
        self.other.close()


@pytest.fixture
def dns():
    made = []

    def make(*a, **kw):
        d = DnsServer(*a, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def opts(*servers, **kw):
    """Context options naming our DNS servers."""
    s = ", ".join('("127.0.0.1", %d)' % d.port for d in servers)
    kw = "".join(", %s=%r" % x for x in kw.items())
    return "dns_servers=[%s]%s" % (s, kw)


# -- tests --------------------------------------------------------------------


def test_a_name_resolved_and_fetched(dns, http_server, tmp_path):
    d = dns({"web.test": [a(b"\xc0\x0c", "127.0.0.1")]})
    ev = mpy(tmp_path, r'''
import sys
ctx = lws.Context(vhosts=[], %s)
conn("a", "http://Web.Test:%d/hello")
out("imported", "lws.resolve" in sys.modules)
run(8, lambda: seen("completed") or seen("error"))
''' % (opts(d), http_server.server_port))
    assert ev.one("completed", "a")[4] == "hello world\n", ev
    assert ev.one("response", "a")[3]["x-test"] == "yes"
    assert ev.one("imported")[1] is True
    ((name, qtype, qid, sport),) = d.queries
    assert (name.lower(), qtype) == ("web.test", 1)
    assert sport != d.port


def test_literals_and_localhost_are_never_asked(dns, http_server, tmp_path):
    d = dns()
    p = http_server.server_port
    ev = mpy(tmp_path, r'''
import sys
ctx = lws.Context(vhosts=[], %s)
conn("ip", "http://127.0.0.1:%d/hello")
conn("lh", "http://localhost:%d/hello")
run(8, lambda: seen("completed", 2) or seen("error"))
out("imported", "lws.resolve" in sys.modules)
''' % (opts(d), p, p))
    assert len(ev.of("completed")) == 2, ev
    assert d.queries == []
    assert ev.one("imported")[1] is False  # the module is not even loaded


def test_errors_name_what_the_server_said(dns, tmp_path):
    d = dns({"fail.test": 2, "noa.test": [], "refused.test": 5,
             "other.test": [a("elsewhere.test", "127.0.0.1")]})
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], %s)
conn("nx", "http://nx.test/")
conn("fail", "ws://fail.test/")
conn("noa", "raw://noa.test:25")
conn("other", "http://other.test/")
conn("refused", "http://refused.test/")
conn("invalid", "http://no-such-host.invalid/")
conn("long", "http://%%s.test/" %% ("x" * 64))
run(8, lambda: seen("error", 7))
''' % opts(d, dns_timeout=1))
    want = {"nx": "DNS: NXDOMAIN (nx.test)",
            "fail": "DNS: SERVFAIL (fail.test)",
            "noa": "DNS: no A record (noa.test)",
            "other": "DNS: no A record (other.test)",
            "refused": "DNS: REFUSED (refused.test)",
            "invalid": "DNS: NXDOMAIN (no-such-host.invalid)",
            "long": "DNS: bad host name (%s.test)" % ("x" * 64)}
    for tag, why in want.items():
        assert ev.one("error", tag)[2] == why, ev
    # SERVFAIL and REFUSED: asked again (another server may know)
    assert d.names().count("fail.test") == 2
    assert d.names().count("nx.test") == 1
    assert "no-such-host.invalid" not in d.names()  # RFC 6761


SILENT_APP = r'''
import lws, sys, time
class Page(lws.Protocol):
    name = "page"
    def on_http(self, conn, req):
        conn.respond(200, body="still serving\n", content_type="text/plain")
class Cli(lws.Protocol):
    name = "cli"
    def on_client_connection_error(self, c, why):
        print("ERROR", why, time.ticks_diff(time.ticks_ms(), t0))
        ctx.stop()
ctx = lws.Context(vhosts=[lws.Vhost("web", %d, [lws.Mount("/",
                  "callback://page")], [Page()])], %s)
t0 = time.ticks_ms()
ctx.connect("http://slow.test:%d/", Cli())
print("CONNECTING", time.ticks_diff(time.ticks_ms(), t0))
ctx.run()
'''


def run_app(tmp_path, code, http_port):
    script = tmp_path / "app.py"
    script.write_text(code)
    proc = subprocess.Popen(unixport.command(script),
                            env=unixport.environment(), cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    wait_port(http_port, proc)
    return proc


def finish(proc, timeout=20):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("app did not finish:\n" + out)
    return out


def test_silent_servers_time_out_while_http_is_served(dns, tmp_path):
    """Two silent servers, each asked twice in turn, 1 s a try: DNS:
    timeout after 4 s, and all the while the loop answers curl."""
    curl = peer("curl")
    d1 = dns(silent=True)
    d2 = dns(silent=True)
    hp = free_port()
    proc = run_app(tmp_path, SILENT_APP % (hp, opts(d1, d2, dns_timeout=1),
                                           free_port()), hp)
    try:
        t_end = time.monotonic() + 3
        n = 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = subprocess.run([curl, "-s", "-m", "2",
                                "http://127.0.0.1:%d/" % hp],
                               capture_output=True, text=True, timeout=5)
            assert r.stdout == "still serving\n"
            assert time.monotonic() - t0 < 0.5
            n += 1
            time.sleep(0.2)
        assert n >= 5
    finally:
        out = finish(proc)
    assert "Traceback" not in out, out
    connecting = [ln for ln in out.splitlines() if ln.startswith("CONNECTING")]
    assert int(connecting[0].split()[1]) < 50, out  # connect() returned
    err = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert len(err) == 1, out
    assert err[0].startswith("ERROR DNS: timeout (slow.test) "), out
    assert 3500 <= int(err[0].split()[-1]) < 6000, out
    assert d1.names() == ["slow.test"] * 2 and d2.names() == ["slow.test"] * 2
    # a try again is the same question with the same id
    assert len({q[2] for q in d1.queries + d2.queries}) == 1


def test_connect_timeout_bounds_the_lookup(dns, tmp_path):
    d = dns(silent=True)
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], connect_timeout=1, %s)
conn("a", "http://slow.test/")
run(8, lambda: seen("error"))
''' % opts(d, dns_timeout=5))
    e = ev.one("error", "a")
    assert e[2] == "DNS: timeout (slow.test)"
    assert 900 <= e[3] < 2000, ev
    assert len(d.queries) == 1


def test_spoofed_answers_are_ignored(dns, http_server, tmp_path):
    """NXDOMAIN with another id, from another port, for another question:
    none counts; the true answer that follows does."""
    def spoofs(q, srv):
        qid = struct.unpack("!H", q[:2])[0]
        return [(0, response(q, rcode=3, qid=qid ^ 1), None),
                (0, response(q, rcode=3), srv.other),
                (0, response(q, rcode=3, question="other.test"), None),
                (0, response(q, [a("spoof.test", "127.0.0.1")])[:20], None),
                (0.3, response(q, [a("spoof.test", "127.0.0.1")]), None)]
    d = dns({"spoof.test": spoofs})
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], %s)
conn("a", "http://spoof.test:%d/hello")
run(8, lambda: seen("completed") or seen("error"))
''' % (opts(d), http_server.server_port))
    assert not ev.of("error"), ev
    assert ev.one("completed", "a")[4] == "hello world\n"
    assert len(d.queries) == 1


def test_cname_chain_in_any_order(dns, http_server, tmp_path):
    d = dns({"alias.test": [a("web.test", "127.0.0.1", 300),
                            cname("mid.test", "web.test", 300),
                            a("decoy.test", "127.0.0.9"),
                            cname(b"\xc0\x0c", "mid.test", 300)],
             "loop.test": [cname(b"\xc0\x0c", "loop2.test"),
                           cname("loop2.test", "loop.test")]})
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], %s)
conn("a", "http://alias.test:%d/hello")
conn("loop", "http://loop.test:%d/hello")
run(8, lambda: (seen("completed") and seen("error")))
''' % (opts(d), http_server.server_port, http_server.server_port))
    assert ev.one("completed", "a")[4] == "hello world\n", ev
    assert ev.one("error", "loop")[2] == "DNS: no A record (loop.test)"


def test_cache_and_its_ttl(dns, http_server, tmp_path):
    zone = {"n%d.test" % i: [a(b"\xc0\x0c", "127.0.0.1")] for i in range(5)}
    zone["web.test"] = [a(b"\xc0\x0c", "127.0.0.1", 60)]
    zone["short.test"] = [a(b"\xc0\x0c", "127.0.0.1", 1)]
    d = dns(zone)
    p = http_server.server_port
    ev = mpy(tmp_path, r'''
ctx = lws.Context(vhosts=[], %s)
conn("a1", "http://web.test:%d/hello", keepalive=False)
conn("s1", "http://short.test:%d/hello", keepalive=False)
run(8, lambda: seen("completed", 2))
conn("a2", "http://web.test:%d/hello", keepalive=False)
conn("s2", "http://short.test:%d/hello", keepalive=False)
run(8, lambda: seen("completed", 4))
time.sleep_ms(1200)
conn("a3", "http://web.test:%d/hello", keepalive=False)
conn("s3", "http://short.test:%d/hello", keepalive=False)
run(8, lambda: seen("completed", 6))
# more names than the cache keeps: the oldest goes, others stay
for i in range(6):
    conn("n%%d" %% i, "http://web.test:%d/hello" if i == 5 else
         "http://n%%d.test:%d/hello" %% i, keepalive=False)
run(8, lambda: seen("completed", 12) or seen("error"))
out("cache", len(ctx._dns.cache))
''' % ((opts(d),) + (p,) * 8))
    assert len(ev.of("completed")) == 12 and not ev.of("error"), ev
    # web.test asked once; short.test again after its TTL of 1 s
    assert d.names().count("web.test") == 1
    assert d.names().count("short.test") == 2
    assert ev.one("cache")[1] <= 4


def test_ws_client_through_a_name(dns, aio, tmp_path):
    port, log = ws_server(aio)
    d = dns({"ws.test": [a(b"\xc0\x0c", "127.0.0.1")]})
    ev = mpy(tmp_path, r'''
class E(Cli):
    def on_client_established(self, c):
        Cli.on_client_established(self, c)
        c.send_text("hello by name")
ctx = lws.Context(vhosts=[], %s)
conn("w", "ws://ws.test:%d/", E())
run(8, lambda: seen("rx") or seen("error"))
''' % (opts(d), port))
    assert ev.one("rx", "w")[5] == "hello by name", ev
    assert log.requests[0]["host"] == "ws.test:%d" % port  # the name
    assert d.names() == ["ws.test"]


SMTP_APP = r'''
import lws, time
from lws.smtp import Email
ctx = lws.Context(vhosts=[], %s)
mail = Email(ctx, "mail.test", %d, starttls=False, helo="board.test")
res = []
mail.send("board@example.com", ["you@example.com"], "By name", "hi\n",
          done=lambda ok, reply: res.append((ok, reply[0])))
end = time.ticks_add(time.ticks_ms(), 10000)
while not res and time.ticks_diff(end, time.ticks_ms()) > 0:
    ctx.service(50)
print("RESULT", res)
'''


def test_smtp_client_through_a_name(dns, smtpd, tmp_path):
    c, h = smtpd()
    d = dns({"mail.test": [a(b"\xc0\x0c", "127.0.0.1")]})
    script = tmp_path / "mail.py"
    script.write_text(SMTP_APP % (opts(d), c.port))
    r = subprocess.run(unixport.command(script), env=unixport.environment(),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=20)
    assert "RESULT [(True, 250)]" in r.stdout, r.stdout + r.stderr
    (env,) = h.envelopes
    assert env.rcpt_tos == ["you@example.com"]
    assert d.names() == ["mail.test"]


def test_smtp_dns_failure_is_reported_as_dns(dns, tmp_path):
    d = dns()
    script = tmp_path / "mail.py"
    script.write_text(SMTP_APP.replace("starttls=False", "starttls=False, "
                                       "retries=0") % (opts(d), 25))
    r = subprocess.run(unixport.command(script), env=unixport.environment(),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=20)
    assert "RESULT [(False, 0)]" in r.stdout, r.stdout + r.stderr


RESOLVER_CODE = r'''
import json
from lws import resolve
class C:
    dns_servers = None
out = {}
for v in (None, "10.0.0.1", ("10.0.0.2", 5353), ["10.0.0.3", ("10.0.0.4", 54)]):
    C.dns_servers = v
    out[repr(v)] = len(resolve.servers(C))
q = resolve.query(0x1234, "a.example")
out["query"] = list(q)
bad = []
for p in (b"", b"\x12\x34\x81\x80\0\1\0\0\0\0\0\0\xc0\x0c\0\1\0\1",
          b"\x12\x34\x81\x80\0\1\0\0\0\0\0\0\x3fab"):
    try:
        bad.append(resolve.parse(p, 0x1234, "a.example"))
    except Exception as e:
        bad.append(repr(e))
out["bad"] = bad
print(json.dumps(out))
'''


def test_servers_option_forms_and_bad_packets(tmp_path):
    from conftest import run_mpy
    r = run_mpy(RESOLVER_CODE)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["'10.0.0.1'"] == 1
    assert out["('10.0.0.2', 5353)"] == 1
    assert out["['10.0.0.3', ('10.0.0.4', 54)]"] == 2
    assert out["None"] >= 0  # /etc/resolv.conf's, whatever it holds
    assert bytes(out["query"]) == (b"\x12\x34\x01\x00\0\1\0\0\0\0\0\0"
                                   b"\x01a\x07example\0\0\1\0\1")
    assert out["bad"] == [None, None, None]  # not ours: ignored, no crash


def hosts_name():
    """A name /etc/hosts gives 127.0.0.1 (not localhost), or None."""
    try:
        lines = open("/etc/hosts").read().splitlines()
    except OSError:
        return None
    for line in lines:
        w = line.split("#")[0].split()
        if len(w) > 1 and w[0] == "127.0.0.1":
            for n in w[1:]:
                if n != "localhost" and "." not in n:
                    return n
    return None


def test_no_server_known_falls_back_to_getaddrinfo(http_server, tmp_path):
    """dns_servers=(): no server to ask, getaddrinfo (blocking) as
    before, with a warning in the log."""
    name = hosts_name()
    if name is None:
        pytest.skip("/etc/hosts names nothing but localhost")
    from test_client import PRELUDE
    script = tmp_path / "fallback.py"
    script.write_text(PRELUDE + r'''
ctx = lws.Context(vhosts=[], dns_servers=())
conn("a", "http://%s:%d/hello")
run(8, lambda: seen("completed") or seen("error"))
''' % (name, http_server.server_port))
    r = subprocess.run(unixport.command(script), env=unixport.environment(),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=20)
    assert '"completed", "a", 12' in r.stdout, r.stdout + r.stderr
    assert "no DNS server known: %s looked up blocking" % name in r.stderr


def test_a_name_under_asyncio(dns, http_server, tmp_path):
    """ctx.serve() (lws.aio) polls the resolver's socket too."""
    d = dns({"web.test": [a(b"\xc0\x0c", "127.0.0.1")]})
    ev = mpy(tmp_path, r'''
import asyncio
class S(Cli):
    def on_client_http_completed(self, c):
        Cli.on_client_http_completed(self, c)
        ctx.stop()
    def on_client_connection_error(self, c, why):
        Cli.on_client_connection_error(self, c, why)
        ctx.stop()
ctx = lws.Context(vhosts=[], %s)
conn("a", "http://web.test:%d/hello", S())
asyncio.run(ctx.serve())
''' % (opts(d), http_server.server_port))
    assert ev.one("completed", "a")[4] == "hello world\n", ev
    assert d.names() == ["web.test"]


PROXY_APP = r'''
import lws
ctx = lws.Context([lws.Vhost("proxy", %d, [
    lws.Mount("/o", "http://origin.test:%d/"),
    lws.Mount("/nx", "http://nx.test:%d/")])], %s)
ctx.run()
'''


def test_proxy_mount_to_a_name(dns, http_server, tmp_path):
    d = dns({"origin.test": [a(b"\xc0\x0c", "127.0.0.1")]})
    hp = free_port()
    op = http_server.server_port
    proc = run_app(tmp_path, PROXY_APP % (hp, op, op, opts(d)), hp)
    try:
        import http.client
        for path, status in (("/o/hello", 200), ("/o/hello", 200),
                             ("/nx/hello", 502)):
            c = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
            assert r.status == status, (path, r.status, body)
            if status == 200:
                assert body == b"hello world\n"
    finally:
        proc.send_signal(2)
        out = finish(proc)
    assert "Traceback" not in out, out
    assert d.names() == ["origin.test", "nx.test"]  # the second: cached
