"""The SMTP client (lws.smtp, lws_email) on MicroPython against aiosmtpd:
delivery (envelope, headers, body, dot-stuffing), rejected recipients,
STARTTLS and implicit TLS with certificate checks, AUTH PLAIN and LOGIN,
retries after 4xx, none after 5xx, a silent server, a refused port, a full
queue, and an HTTP server that keeps serving while a server hangs."""
import email
import email.policy
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import cpu_seconds, free_port, peer, wait_port
from lwstool import unixport

pytestmark = pytest.mark.timeout(90)

APP = """
import json
import sys
import time
import lws
from lws.smtp import Email

conf = json.loads(open(sys.argv[1]).read())
vhosts = []
if conf.get("http_port"):
    class Page(lws.Protocol):
        name = "page"

        def on_http(self, conn, req):
            conn.respond(200, body="still serving\\n",
                         content_type="text/plain")

    vhosts = [lws.Vhost("web", conf["http_port"],
                        [lws.Mount("/", "callback://page")], [Page()])]
ctx = lws.Context(vhosts=vhosts)
mail = Email(ctx, conf["host"], conf["port"], **conf["opts"])
t0 = time.ticks_ms()
left = []


def report(i):
    def done(ok, reply):
        left.remove(i)
        print("DONE", json.dumps([i, ok, reply[0], reply[1],
                                  [list(r) for r in reply[2]],
                                  time.ticks_diff(time.ticks_ms(), t0)]))
    return done


for i, m in enumerate(conf["messages"]):
    left.append(i)
    q = mail.send(m["from"], m["to"], m["subject"], m["body"],
                  headers=m.get("headers"), done=report(i))
    print("QUEUED", json.dumps([i, q]))
    if not q:
        left.remove(i)
print("READY")
end = time.ticks_add(t0, int(conf.get("secs", 20) * 1000))
while left and time.ticks_diff(end, time.ticks_ms()) > 0:
    ctx.service(50)
print("END", "done" if not left else "stuck")
ctx.close()
"""

MSG = {"from": "board@example.com", "to": ["you@example.com"],
       "subject": "Hello", "body": "hello\n"}


class Handler:
    """Records what aiosmtpd received; hooks decide what it answers."""

    def __init__(self, rcpt=None, data=None, mail=None, ehlo=None):
        self.envelopes = []
        self.sessions = []
        self.datas = 0
        self._rcpt = rcpt
        self._data = data
        self._mail = mail
        self._ehlo = ehlo

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        if self._ehlo:
            return self._ehlo(responses)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self._mail:
            return self._mail(address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self._rcpt:
            r = self._rcpt(address)
            if r:
                return r
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.datas += 1
        if self._data:
            r = self._data(self.datas)
            if r:
                return r
        self.envelopes.append(envelope)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append((session.host_name, tls,
                              session.authenticated, session.auth_data))
        return "250 2.0.0 queued as 42"


@pytest.fixture
def smtpd():
    """smtpd(handler, **SMTP options): aiosmtpd on 127.0.0.1, a thread."""
    made = []

    def make(handler=None, **kw):
        h = handler or Handler()
        c = Controller(h, hostname="127.0.0.1", port=free_port(), **kw)
        c.start()
        made.append(c)
        return c, h

    yield make
    for c in made:
        c.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from lwstool.certs import make_cert
    d = tmp_path_factory.mktemp("smtp-certs")
    return {"good": make_cert(d / "good"), "other": make_cert(d / "other")}


def server_tls(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and \
        data.login == b"board" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False,
                      auth_data=(mechanism, data.login) if ok else None)


class App:
    """The app on MicroPython; its output parsed as it finishes."""

    def __init__(self, tmp_path, port, messages=(MSG,), host="127.0.0.1",
                 http_port=None, secs=20, heap=None, **opts):
        conf = {"host": host, "port": port, "opts": opts,
                "messages": list(messages), "secs": secs,
                "http_port": http_port}
        n = free_port()
        (tmp_path / ("smtp-%d.json" % n)).write_text(json.dumps(conf))
        script = tmp_path / "smtpapp.py"
        script.write_text(APP)
        self.proc = subprocess.Popen(
            unixport.command(script, ["smtp-%d.json" % n], heap),
            env=unixport.environment(), cwd=str(tmp_path), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def finish(self, timeout=40):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError("app did not finish:\n" + out)
        self.out = out
        assert "END done" in out, out
        self.queued = {}
        self.done = {}
        for line in out.splitlines():
            if line.startswith("QUEUED "):
                i, q = json.loads(line[7:])
                self.queued[i] = q
            elif line.startswith("DONE "):
                i, ok, code, text, rej, ms = json.loads(line[5:])
                assert i not in self.done, out  # one outcome each
                self.done[i] = (ok, code, text, rej, ms)
        return self


def run(tmp_path, port, **kw):
    return App(tmp_path, port, **kw).finish()


def parsed(env):
    return email.message_from_bytes(env.content, policy=email.policy.default)


BODY = ("first line\n"
        ".a line that starts with a dot\n"
        ".\n"
        "..two dots\r\n"
        "\n"
        "caf\u00e9 and the last line without an end")


def test_plain_delivery(tmp_path, smtpd):
    c, h = smtpd()
    m = dict(MSG, to=["you@example.com", "them@example.org"], body=BODY,
             subject="Caf\u00e9 status", headers={"X-Board": "esp32-1"})
    app = run(tmp_path, c.port, messages=[m], helo="board.example.com",
              starttls=False)
    ok, code, text, rej, _ = app.done[0]
    assert ok and code == 250 and "queued as 42" in text, app.out
    assert rej == []
    (env,) = h.envelopes
    assert env.mail_from == "board@example.com"
    assert env.rcpt_tos == ["you@example.com", "them@example.org"]
    assert h.sessions[0][0] == "board.example.com"
    msg = parsed(env)
    assert msg["From"] == "board@example.com"
    assert msg["To"] == "you@example.com, them@example.org"
    assert msg["Subject"] == "Caf\u00e9 status"  # RFC 2047 encoded
    assert msg["X-Board"] == "esp32-1"
    assert msg["Date"] is not None and msg["Date"].datetime is not None
    assert abs(msg["Date"].datetime.timestamp() - time.time()) < 60
    mid = msg["Message-ID"]
    assert mid.startswith("<") and mid.endswith("@board.example.com>")
    # the body as sent: CRLF line endings, the dots aiosmtpd unstuffed
    body = env.content.split(b"\r\n\r\n", 1)[1]
    assert body == BODY.replace("\r\n", "\n").replace("\n", "\r\n").encode() \
        + b"\r\n"
    assert msg.get_content().replace("\r\n", "\n") == \
        BODY.replace("\r\n", "\n") + "\n"


def test_dot_stuffing_on_the_wire(tmp_path):
    """What goes on the wire: lines starting with '.' get one more, and
    the message ends with CRLF.CRLF (a listener of our own reads it)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    got = []

    def serve():
        s, _ = ls.accept()
        s.settimeout(10)
        f = s.makefile("rb")
        s.sendall(b"220 hi\r\n")
        data = b""
        while True:
            line = f.readline()
            if not line:
                break
            if line.startswith(b"DATA"):
                s.sendall(b"354 go\r\n")
                while not data.endswith(b"\r\n.\r\n"):
                    data += f.readline()
                got.append(data)
                s.sendall(b"250 ok\r\n")
            elif line.startswith(b"QUIT"):
                s.sendall(b"221 bye\r\n")
                break
            else:
                s.sendall(b"250 ok\r\n")
        s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    m = dict(MSG, body=".\n..\nx\n.end")
    app = run(tmp_path, port, messages=[m], starttls=False)
    t.join(5)
    ls.close()
    assert app.done[0][:2] == (True, 250), app.out
    (data,) = got
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body == b"..\r\n...\r\nx\r\n..end\r\n.\r\n"
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare LF


def test_several_messages_one_connection(tmp_path, smtpd):
    c, h = smtpd()
    msgs = [dict(MSG, subject="n%d" % i, body="message %d\n" % i)
            for i in range(3)]
    app = run(tmp_path, c.port, messages=msgs, starttls=False)
    assert [app.done[i][:2] for i in range(3)] == [(True, 250)] * 3, app.out
    assert [parsed(e)["Subject"] for e in h.envelopes] == ["n0", "n1", "n2"]


def test_rejected_recipient_reported(tmp_path, smtpd):
    def rcpt(addr):
        if addr.startswith("nobody@"):
            return "550 5.1.1 <%s>: no such user" % addr
    c, h = smtpd(Handler(rcpt=rcpt))
    m = dict(MSG, to=["you@example.com", "nobody@example.com",
                      "them@example.org"])
    alone = dict(MSG, to=["nobody@example.com"])
    app = run(tmp_path, c.port, messages=[m, alone], starttls=False)
    ok, code, text, rej, _ = app.done[0]
    assert ok and code == 250, app.out
    assert rej == [["nobody@example.com", 550,
                    "5.1.1 <nobody@example.com>: no such user"]]
    assert h.envelopes[0].rcpt_tos == ["you@example.com", "them@example.org"]
    assert parsed(h.envelopes[0])["To"] == \
        "you@example.com, nobody@example.com, them@example.org"
    # nobody left: the message fails with the last refusal, no DATA
    ok, code, text, rej, _ = app.done[1]
    assert not ok and code == 550 and "no such user" in text
    assert len(rej) == 1
    assert h.datas == 1


def test_helo_when_ehlo_is_refused(tmp_path, smtpd):
    c, h = smtpd(Handler(ehlo=lambda r: ["502 5.5.2 EHLO not here"]))
    app = run(tmp_path, c.port, starttls=True, helo="old.example.com")
    assert app.done[0][:2] == (True, 250), app.out
    assert len(h.envelopes) == 1


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_starttls_verified(tmp_path, smtpd, certs, host):
    good = certs["good"]
    c, h = smtpd(tls_context=server_tls(good), require_starttls=True)
    app = run(tmp_path, c.port, host=host, ca=str(good[0]),
              starttls="required")
    assert app.done[0][:2] == (True, 250), app.out
    assert h.sessions[0][1]  # the message came over TLS


def test_starttls_wrong_ca_fails_with_tls(tmp_path, smtpd, certs):
    c, h = smtpd(tls_context=server_tls(certs["good"]))
    app = run(tmp_path, c.port, host="localhost", ca=str(certs["other"][0]),
              retry_delay=0.2)
    ok, code, text, _, _ = app.done[0]
    assert (ok, code, text) == (False, 0, "tls"), app.out
    assert h.datas == 0  # nothing went in clear after that


def test_starttls_name_mismatch_fails_with_tls(tmp_path, smtpd, certs):
    from lwstool.certs import make_cert
    cp, kp, _ = make_cert(tmp_path / "named", cn="mail.example.com",
                          names=["mail.example.com"])
    c, h = smtpd(tls_context=server_tls((cp, kp)))
    app = run(tmp_path, c.port, host="localhost", ca=str(cp))
    assert app.done[0][:3] == (False, 0, "tls"), app.out
    assert h.datas == 0


def test_nothing_in_clear_after_starttls_counts(tmp_path, certs):
    """A reply injected in clear behind the 220 to STARTTLS is not taken
    for the answer to the EHLO sent over TLS: the client waits for the
    real one (RFC 3207 5, CVE-2011-0411)."""
    cp, kp, _ = certs["good"]
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    seen = []

    def serve():
        s, _ = ls.accept()
        s.settimeout(10)
        s.sendall(b"220 hi\r\n")
        assert s.recv(512).startswith(b"EHLO")
        s.sendall(b"250-hi\r\n250 STARTTLS\r\n")
        assert s.recv(512) == b"STARTTLS\r\n"
        s.sendall(b"220 go ahead\r\n250 injected\r\n")
        t = server_tls((cp, kp)).wrap_socket(s, server_side=True)
        f = t.makefile("rb")
        seen.append(f.readline())
        t.settimeout(0.5)
        try:
            early = t.recv(512)  # the client must wait for our answer
        except (socket.timeout, ssl.SSLError):
            early = b""
        seen.append(early)
        t.settimeout(10)
        t.sendall(b"250 hi again\r\n")
        while True:
            line, early = early or f.readline(), b""
            if not line or line.startswith(b"QUIT"):
                break
            if line.startswith(b"DATA"):
                t.sendall(b"354 go\r\n")
                while f.readline() not in (b".\r\n", b""):
                    pass
            t.sendall(b"250 ok\r\n")
        t.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    app = run(tmp_path, ls.getsockname()[1], host="localhost", ca=str(cp))
    th.join(5)
    ls.close()
    assert seen[0].startswith(b"EHLO") and seen[1] == b"", seen
    assert app.done[0][:2] == (True, 250), app.out
    assert "in clear after STARTTLS dropped" in app.out


def test_starttls_required_but_not_offered(tmp_path, smtpd):
    c, h = smtpd()
    app = run(tmp_path, c.port, starttls="required")
    assert app.done[0][:3] == (False, 0, "starttls"), app.out
    assert h.datas == 0


def test_implicit_tls(tmp_path, smtpd, certs):
    good = certs["good"]
    c, h = smtpd(ssl_context=server_tls(good))
    app = run(tmp_path, c.port, host="localhost", ca=str(good[0]), tls=True)
    assert app.done[0][:2] == (True, 250), app.out
    assert h.sessions[0][1]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_after_starttls(tmp_path, smtpd, certs, mech):
    good = certs["good"]
    other = "LOGIN" if mech == "PLAIN" else "PLAIN"
    c, h = smtpd(tls_context=server_tls(good), authenticator=authenticator,
                 auth_require_tls=True, auth_required=True,
                 auth_exclude_mechanism=[other])
    kw = dict(host="localhost", ca=str(good[0]), user="board")
    app = run(tmp_path, c.port, password="s3cret", **kw)
    assert app.done[0][:2] == (True, 250), app.out
    _, tls, authed, login = h.sessions[0]
    assert tls and authed and login == (mech, b"board")
    app = run(tmp_path, c.port, password="wrong", retry_delay=0.2, **kw)
    ok, code, text, _, _ = app.done[0]
    assert not ok and code == 535, app.out
    assert len(h.sessions) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_credentials_in_clear(tmp_path, smtpd):
    c, h = smtpd(authenticator=authenticator, auth_require_tls=False,
                 auth_required=True)
    kw = dict(user="board", password="s3cret")
    app = run(tmp_path, c.port, **kw)
    assert app.done[0][:3] == (False, 0, "cleartext"), app.out
    assert h.datas == 0
    app = run(tmp_path, c.port, cleartext_auth=True, **kw)
    assert app.done[0][:2] == (True, 250), app.out
    assert h.sessions[0][2]


def test_temporary_failure_is_retried(tmp_path, smtpd):
    h = Handler(data=lambda n: "451 4.3.0 try again later" if n == 1
                else None)
    c, _ = smtpd(h)
    app = run(tmp_path, c.port, starttls=False, retries=2, retry_delay=0.5)
    ok, code, text, _, ms = app.done[0]
    assert ok and code == 250, app.out
    assert h.datas == 2 and len(h.envelopes) == 1
    assert ms >= 500  # after the delay


def test_temporary_failure_gives_up_after_retries(tmp_path, smtpd):
    h = Handler(mail=lambda a: "421 4.7.0 busy, later")
    c, _ = smtpd(h)
    app = run(tmp_path, c.port, starttls=False, retries=2, retry_delay=0.2)
    ok, code, text, _, ms = app.done[0]
    assert (ok, code, text) == (False, 421, "4.7.0 busy, later"), app.out
    assert ms >= 400


def test_permanent_failure_is_not_retried(tmp_path, smtpd):
    tries = []

    def mail(a):
        tries.append(a)
        return "550 5.7.1 not from you"
    c, h = smtpd(Handler(mail=mail))
    app = run(tmp_path, c.port, starttls=False, retries=3, retry_delay=0.2,
              messages=[MSG, dict(MSG, subject="second")])
    assert app.done[0][:3] == (False, 550, "5.7.1 not from you"), app.out
    assert app.done[1][:2] == (False, 550)
    assert len(tries) == 2  # one try each


def silent_listener():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    return ls


def test_silent_server_times_out_while_http_is_served(tmp_path):
    curl = peer("curl")
    ls = silent_listener()
    held = []
    t = threading.Thread(target=lambda: held.append(ls.accept()),
                         daemon=True)
    t.start()
    http_port = free_port()
    app = App(tmp_path, ls.getsockname()[1], http_port=http_port,
              timeout=3, retries=0, starttls=False)
    try:
        wait_port(http_port, app.proc)
        t.join(5)
        assert held, "the client never connected"
        t0 = time.monotonic()
        for _ in range(3):
            r = subprocess.run([curl, "-s", "-m", "2",
                                "http://127.0.0.1:%d/" % http_port],
                               capture_output=True, text=True, timeout=5)
            assert r.stdout == "still serving\n"
        assert time.monotonic() - t0 < 2.5  # answered while SMTP hangs
        app.finish()
    finally:
        ls.close()
        for s, _ in held:
            s.close()
    ok, code, text, _, ms = app.done[0]
    assert (ok, code, text) == (False, 0, "timeout"), app.out
    assert 2500 <= ms < 8000


def test_silent_after_starttls_times_out_without_spinning(tmp_path):
    """A server that says 220 to STARTTLS and then nothing: the handshake
    waits without the loop spinning, and the step's timeout ends it."""
    ls = silent_listener()
    held = []

    def serve():
        s, _ = ls.accept()
        held.append(s)
        s.sendall(b"220 hi\r\n")
        s.recv(512)
        s.sendall(b"250-hi\r\n250 STARTTLS\r\n")
        s.recv(512)
        s.sendall(b"220 go ahead\r\n")  # and then silence

    threading.Thread(target=serve, daemon=True).start()
    app = App(tmp_path, ls.getsockname()[1], host="localhost",
              insecure=True, timeout=3, retries=0)
    try:
        time.sleep(1)
        c0 = cpu_seconds(app.proc)
        time.sleep(1.5)
        used = cpu_seconds(app.proc) - c0
        app.finish()
    finally:
        ls.close()
        for s in held:
            s.close()
    assert app.done[0][:3] == (False, 0, "timeout"), app.out
    assert used < 0.5, "the loop spun: %.2fs of CPU in 1.5s" % used


def test_refused_port(tmp_path):
    port = free_port()  # nothing listens there
    app = run(tmp_path, port, retries=1, retry_delay=0.3)
    ok, code, text, _, ms = app.done[0]
    assert (ok, code, text) == (False, 0, "refused"), app.out
    assert ms >= 300  # tried again after the delay


def test_queue_full(tmp_path, smtpd):
    c, h = smtpd()
    msgs = [dict(MSG, subject="n%d" % i) for i in range(3)]
    app = run(tmp_path, c.port, messages=msgs, queue_max=2, starttls=False)
    assert app.queued == {0: True, 1: True, 2: False}
    assert sorted(app.done) == [0, 1]
    assert [parsed(e)["Subject"] for e in h.envelopes] == ["n0", "n1"]


def test_long_reply_lines_are_cut(tmp_path):
    """A server's endless line is cut at 512 bytes; the dialogue goes on."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        s, _ = ls.accept()
        s.settimeout(10)
        f = s.makefile("rb")
        s.sendall(b"220 " + b"x" * 20000 + b"\r\n")
        while True:
            line = f.readline()
            if not line or line.startswith(b"QUIT"):
                break
            if line.startswith(b"DATA"):
                s.sendall(b"354 go\r\n")
                while f.readline() not in (b".\r\n", b""):
                    pass
            s.sendall(b"250-" + b"y" * 3000 + b"\r\n250 ok\r\n")
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    app = run(tmp_path, ls.getsockname()[1], starttls=False)
    ls.close()
    ok, code, text, _, _ = app.done[0]
    assert ok and code == 250, app.out
    assert len(text) < 600 and text.endswith("\nok")


def test_costs_nothing_unless_imported_and_refuses_line_breaks():
    from conftest import run_mpy
    r = run_mpy("""
import sys
import lws
ctx = lws.Context(vhosts=[])
print("imported", "lws.smtp" in sys.modules)
from lws.smtp import Email
m = Email(ctx, "127.0.0.1", 1, retries=0)
for a in (("a@b\\r\\nRCPT TO:<x@y>", "c@d", "s"), ("a@b", "<c@d>", "s"),
          ("a@b", "c@d", "s\\r\\nBcc: x@y")):
    try:
        m.send(a[0], a[1], a[2], "body")
        print("sent", a)
    except ValueError as e:
        print("refused")
try:
    Email(ctx, "h", tmeout=3)
except ValueError as e:
    print(e)
print("queued", m.pending())
""")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:6] == [
        "imported False", "refused", "refused", "refused",
        "unknown option tmeout", "queued 0"], r.stdout
