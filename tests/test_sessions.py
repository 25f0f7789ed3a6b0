"""Generic sessions (lws.sessions, lws.accounts, lws.plugins.sessions):
accounts on flash, login, session cookies, guards, CSRF, brute-force
back-off, admin pages, email confirmation. The firmware runs on the
MicroPython unix port; the peers are curl (a cookie jar), CPython's
http.client and websockets."""
import asyncio
import http.client
import json
import random
import re
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest
import websockets
import websockets.exceptions

from conftest import REPO, free_port, peer, start, wait_port

sys.path.insert(0, str(REPO / "host_tools"))
from lwstool import unixport  # noqa: E402

pytestmark = pytest.mark.timeout(120)

APP = r'''
import json
import lws
from lws.sessions import Sessions
from lws.plugins.echo import Echo

cfg = json.load(open("cfg.json"))


class Secret(lws.Protocol):
    name = "secret"

    def on_http(self, conn, req):
        conn.respond(200, body="secret for %s\n" % req.auth_user,
                     content_type="text/plain")


class Boss(Secret):
    name = "boss"


def routes(s):
    """An lws.App whose routes need a session (of an admin)."""
    from lws.app import App
    app = App("routes")

    @app.get("/mine/<int:n>")
    @s.login_required
    def mine(request, n):
        return "route %d for %s\n" % (n, request.user)

    @app.get("/boss")
    @s.admin_required
    def boss(request):
        return "admin route for %s\n" % request.user, 200, {}
    return app


def send_mail(to, subject, body):
    with open("mail.txt", "a") as f:
        f.write(json.dumps({"to": to, "subject": subject, "body": body})
                + "\n")
    print("MAIL to", to)


MAIL = []  # the lws.smtp.Email, once the context is made


def send_smtp(to, subject, body):
    MAIL[0].send("board@example.org", [to], subject, body,
                 done=lambda ok, reply: print("SENT", ok, reply[0]))


opts = cfg.get("sessions", {})
if cfg.get("mail"):
    opts["send_mail"] = send_mail
if cfg.get("smtp"):
    opts["send_mail"] = send_smtp
s = Sessions("accounts.json", **opts)
for name, pw, admin in cfg.get("users", ()):
    if not s.accounts.exists(name):
        s.add_user(name, pw, admin=admin)


def vhost(name, port, **kw):
    mounts = [lws.Mount("/auth", "callback://lws-sessions"),
              lws.Mount("/secret", "callback://secret"),
              lws.Mount("/boss", "callback://boss"),
              lws.Mount("/ws", "callback://echo"),
              lws.Mount("/app", "callback://routes"),
              lws.Mount("/files", "file://www")]
    vh = lws.Vhost(name, port, mounts, [
        s.protocol(), s.guard(Secret()), s.guard(Boss(), admin=True),
        s.guard(Echo()), routes(s)], **kw)
    vh.add_filter(s.filter("/files/private"))
    return vh


vhs = [vhost("plain", cfg["port"])]
if cfg.get("tls_port"):
    vhs.append(vhost("tls", cfg["tls_port"], tls_cert=cfg["cert"],
                     tls_key=cfg["key"]))
print("READY")
ctx = lws.Context(vhs)
if cfg.get("smtp"):
    from lws.smtp import Email
    MAIL.append(Email(ctx, "127.0.0.1", cfg["smtp"], starttls=False,
                      timeout=5))
ctx.run()
'''

ADMIN = ("root", "root password 1", True)
ALICE = ("alice", "alice password", False)


def site(tmp_path, users=(ADMIN, ALICE), **cfg):
    port = cfg.setdefault("port", free_port())
    cfg["users"] = users
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    www = tmp_path / "www"
    (www / "private").mkdir(parents=True, exist_ok=True)
    (www / "pub.txt").write_text("public\n")
    (www / "private" / "a.txt").write_text("private\n")
    script = tmp_path / "app.py"
    script.write_text(APP)
    srv = start(tmp_path, script=script, port=port)
    if cfg.get("tls_port"):
        wait_port(cfg["tls_port"], srv.proc)
    return srv


@pytest.fixture
def srv(tmp_path):
    s = site(tmp_path)
    yield s
    s.stop()


class Browser:
    """http.client with a cookie jar and a source address, posting forms
    as a page of the site would (Origin: the site)."""

    def __init__(self, srv, source="127.0.0.1"):
        self.port = srv.port
        self.source = source
        self.jar = {}

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def req(self, method, path, form=None, headers=None, origin=True):
        h = {}
        if self.jar:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.jar.items())
        body = None
        if form is not None:
            body = urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
            if origin:
                h["Origin"] = self.origin if origin is True else origin
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                       source_address=(self.source, 0))
        try:
            c.request(method, path, body, h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        for v in r.headers.get_all("Set-Cookie") or ():
            k, _, rest = v.partition("=")
            val = rest.partition(";")[0]
            if "Max-Age=0" in v:
                self.jar.pop(k, None)
            else:
                self.jar[k] = val
        return r.status, r.headers, data

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.req("POST", path, form, **kw)

    def login(self, name, pw, nxt="", **kw):
        return self.post("/auth/login", {"name": name, "password": pw,
                                         "next": nxt}, **kw)

    def csrf(self):
        return json.loads(self.get("/auth/whoami")[2])["csrf"]


def curl(*args):
    p = subprocess.run([peer("curl"), "-s", "-o", "-", "-w",
                        "\n%{http_code}", *args], capture_output=True,
                       timeout=20)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


# -- login, cookies, guards ----------------------------------------------

def test_login_good_and_bad_with_curl(srv, tmp_path):
    jar = str(tmp_path / "jar")
    u = srv.url
    org = ["-H", "Origin: " + u]
    code, body = curl("-c", jar, "-b", jar, *org, "-d",
                      "name=alice&password=wrong+password&next=/secret",
                      u + "/auth/login")
    assert code == 401 and b"wrong name or password" in body
    assert "lws_sid" not in (tmp_path / "jar").read_text()
    assert curl("-b", jar, u + "/secret")[0] == 401
    code, _ = curl("-c", jar, "-b", jar, *org, "-d",
                   "name=nobody&password=alice+password", u + "/auth/login")
    assert code == 401
    code, body = curl("-c", jar, "-b", jar, *org, "-L", "-d",
                      "name=alice&password=alice+password&next=/secret",
                      u + "/auth/login")
    assert code == 200 and body == b"secret for alice\n"  # 303 followed
    assert "#HttpOnly_127.0.0.1" in (tmp_path / "jar").read_text()
    code, body = curl("-b", jar, u + "/auth/whoami")
    assert json.loads(body)["user"] == "alice"


def test_cookie_attributes(srv):
    b = Browser(srv)
    st, h, _ = b.login(*ALICE[:2])
    assert st == 303 and h["Location"] == "/auth/"
    c = h["Set-Cookie"]
    attrs = [a.strip() for a in c.split(";")]
    name, _, sid = attrs[0].partition("=")
    assert name == "lws_sid" and re.fullmatch("[0-9a-f]{32}", sid)
    assert "HttpOnly" in attrs and "SameSite=Lax" in attrs
    assert "Max-Age=86400" in attrs and "Path=/" in attrs
    assert "Secure" not in attrs  # plain HTTP
    # a new login is a new id (no fixation): the old one is dropped
    st, h, _ = b.login(*ALICE[:2])
    sid2 = h["Set-Cookie"].split(";")[0].partition("=")[2]
    assert sid2 != sid
    assert b.get("/secret")[0] == 200
    b.jar["lws_sid"] = sid
    assert b.get("/secret")[0] == 401


def test_secure_cookie_over_tls_and_strict(tmp_path):
    from lwstool.certs import make_cert
    import ssl
    cp, kp, _ = make_cert(tmp_path / "tls")
    tls = free_port()
    s = site(tmp_path, tls_port=tls, cert=str(cp), key=str(kp),
             sessions={"same_site": "Strict", "cookie": "sid"})
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", tls, timeout=20,
                                        context=ctx)
        c.request("POST", "/auth/login", urlencode(
            {"name": "alice", "password": ALICE[1]}), {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://127.0.0.1:%d" % tls})
        r = c.getresponse()
        r.read()
        assert r.status == 303
        attrs = [a.strip() for a in r.getheader("Set-Cookie").split(";")]
        assert attrs[0].startswith("sid=")
        assert "Secure" in attrs and "SameSite=Strict" in attrs
        c.request("GET", "/secret", headers={"Cookie": attrs[0]})
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"secret for alice\n"
        c.close()
    finally:
        s.stop()


def test_guarded_protocol_file_path_and_websocket(srv):
    b = Browser(srv)
    st, h, _ = b.get("/secret/x?y=1", headers={"Accept": "text/html"})
    assert st == 303
    assert h["Location"] == "/auth/login?next=/secret/x%3Fy%3D1"
    st, h, body = b.get("/secret")
    assert st == 401 and body == b"login needed\n"
    assert h["WWW-Authenticate"].startswith("Cookie ")
    # a request body to a refused protocol goes nowhere, and the server
    # goes on
    st, _, _ = b.req("PUT", "/secret", headers={"Content-Length": "5"})
    assert st == 401 or st == 400
    assert b.get("/files/pub.txt")[0] == 200           # not guarded
    assert b.get("/files/private/a.txt")[0] == 401     # filter(prefix)
    assert b.get("/files/%70rivate/a.txt")[0] == 401   # however spelt

    async def ws(cookie=None):
        h = {"Cookie": cookie} if cookie else {}
        async with websockets.connect(srv.ws_url("/ws"),
                                      additional_headers=h) as w:
            await w.send("hello")
            return await asyncio.wait_for(w.recv(), 5)

    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        asyncio.run(asyncio.wait_for(ws(), 10))
    assert e.value.response.status_code == 401
    assert b.login(*ALICE[:2])[0] == 303
    st, _, body = b.get("/secret")
    assert st == 200 and body == b"secret for alice\n"
    assert b.get("/files/private/a.txt")[2] == b"private\n"
    cookie = "lws_sid=" + b.jar["lws_sid"]
    assert asyncio.run(asyncio.wait_for(ws(cookie), 10)) == "hello"


def test_app_route_decorators(srv):
    """@login_required / @admin_required on lws.App routes: the handler
    runs with request.user set, else a redirect, 401 or 403."""
    b = Browser(srv)
    assert b.get("/app/mine/7")[0] == 401
    st, h, _ = b.get("/app/mine/7", headers={"Accept": "text/html"})
    assert st == 303 and h["Location"] == "/auth/login?next=/app/mine/7"
    b.login(*ALICE[:2])
    assert b.get("/app/mine/7")[2] == b"route 7 for alice\n"
    assert b.get("/app/boss")[0] == 403
    a = Browser(srv)
    a.login(*ADMIN[:2])
    assert a.get("/app/boss")[2] == b"admin route for root\n"


def test_logout_invalidates_the_session_server_side(srv):
    b = Browser(srv)
    b.login(*ALICE[:2])
    old = b.jar["lws_sid"]
    assert b.get("/secret")[0] == 200
    st, h, _ = b.post("/auth/logout", {})
    assert st == 303 and h["Location"] == "/auth/login"
    assert "Max-Age=0" in h["Set-Cookie"] and "lws_sid" not in b.jar
    b.jar["lws_sid"] = old  # the cookie kept, replayed
    assert b.get("/secret")[0] == 401
    assert json.loads(b.get("/auth/whoami")[2])["user"] is None


def test_session_expiry_and_idle_timeout(tmp_path):
    # the table counts whole seconds: margins of a second either side
    s = site(tmp_path, sessions={"max_age": 5, "idle": 3})
    try:
        b = Browser(s)
        t = time.monotonic()
        st, h, _ = b.login(*ALICE[:2])
        assert "Max-Age=5" in h["Set-Cookie"]
        for _ in range(3):  # used every second: never idle for 3
            time.sleep(1)
            assert b.get("/secret")[0] == 200
        time.sleep(max(0, t + 6.5 - time.monotonic()))
        assert b.get("/secret")[0] == 401  # max_age is over
        b.login(*ALICE[:2])
        assert b.get("/secret")[0] == 200
        time.sleep(4.5)     # idle for longer than 3 s
        assert b.get("/secret")[0] == 401
    finally:
        s.stop()


def test_table_is_bounded_least_recently_used_goes(tmp_path):
    s = site(tmp_path, sessions={"max_sessions": 3})
    try:
        bs = [Browser(s) for _ in range(5)]
        for b in bs[:3]:
            assert b.login(*ALICE[:2])[0] == 303
            time.sleep(1.1)  # seconds are the table's clock
        assert bs[0].get("/secret")[0] == 200  # 0 used: 1 is the oldest
        bs[3].login(*ALICE[:2])
        assert [b.get("/secret")[0] for b in bs[:4]] == [200, 401, 200, 200]
        time.sleep(1.1)
        assert bs[0].get("/secret")[0] == bs[3].get("/secret")[0] == 200
        bs[4].login(*ADMIN[:2])  # 2 is now the least recently used
        assert [b.get("/secret")[0] for b in bs] == [200, 401, 401, 200,
                                                     200]
    finally:
        s.stop()


# -- attacks ---------------------------------------------------------------

def test_brute_force_slowed_per_address(srv):
    bad = Browser(srv)
    for _ in range(5):
        assert bad.login("alice", "guess guess")[0] == 401
    st, h, _ = bad.login("alice", "guess guess")
    assert st == 429 and int(h["Retry-After"]) >= 1
    # the right password too, while the address must wait
    assert bad.login(*ALICE[:2])[0] == 429
    # another address logs in at once, and is served
    good = Browser(srv, source="127.0.0.2")
    t = time.monotonic()
    assert good.login(*ALICE[:2])[0] == 303
    assert good.get("/secret")[0] == 200
    assert time.monotonic() - t < 2
    time.sleep(int(h["Retry-After"]) + 0.2)
    assert bad.login(*ALICE[:2])[0] == 303  # the wait is over


def test_cross_origin_posts_refused(srv):
    b = Browser(srv)
    for kw in ({"origin": "http://evil.example"},
               {"origin": "null"},
               {"origin": False, "headers": {
                   "Referer": "http://evil.example/login"}},
               {"origin": False}):  # neither, and no token
        st, h, _ = b.login(*ALICE[:2], **kw)
        assert st == 403 and "Set-Cookie" not in h, kw
    # no Origin and no Referer: the form's token lets it in
    st, _, _ = b.post("/auth/login", {"name": "alice",
                                      "password": ALICE[1],
                                      "csrf": b.csrf()}, origin=False)
    assert st == 303
    st, _, _ = b.post("/auth/logout", {}, origin="http://evil.example")
    assert st == 403 and b.get("/secret")[0] == 200  # still logged in
    st, _, _ = b.post("/auth/logout", {"csrf": "0" * 32}, origin=False)
    assert st == 403 and b.get("/secret")[0] == 200
    a = Browser(srv)
    a.login(*ADMIN[:2])
    st, _, _ = a.post("/auth/admin", {"action": "add", "name": "mallory",
                                      "password": "mallory pw 1",
                                      "admin": "on"},
                      origin="http://evil.example")
    assert st == 403
    assert Browser(srv).login("mallory", "mallory pw 1")[0] == 401
    st, _, _ = b.post("/auth/logout", {"csrf": b.csrf()}, origin=False)
    assert st == 303 and b.get("/secret")[0] == 401


@pytest.mark.parametrize("nxt,where", [
    ("/secret?a=1", "/secret?a=1"),
    ("//evil.example/x", "/auth/"),
    ("http://evil.example/", "/auth/"),
    ("/\\evil.example", "/auth/"),
    ("javascript:alert(1)", "/auth/"),
    ("/x\r\nSet-Cookie: a=b", "/auth/"),
    ("", "/auth/"),
])
def test_open_redirect_refused(srv, nxt, where):
    st, h, _ = Browser(srv).login(*ALICE[:2], nxt=nxt)
    assert st == 303 and h["Location"] == where


def test_login_page_escapes_next(srv):
    st, _, body = Browser(srv).get('/auth/login?next=/"><script>x')
    assert st == 200 and b"<script>x" not in body
    assert b'value="/&quot;&gt;&lt;script&gt;x"' in body


# -- accounts ----------------------------------------------------------------

def test_admin_adds_and_deletes_accounts(srv):
    a = Browser(srv)
    a.login(*ADMIN[:2])
    st, _, body = a.get("/auth/admin")
    assert st == 200 and b"alice" in body and b"root" in body
    st, h, _ = a.post("/auth/admin", {"action": "add", "name": "bob",
                                      "password": "bob password",
                                      "email": "bob@example.org"})
    assert st == 303 and h["Location"] == "/auth/admin"
    assert b"bob@example.org" in a.get("/auth/admin")[2]
    bob = Browser(srv)
    assert bob.login("bob", "bob password")[0] == 303
    assert bob.get("/secret")[2] == b"secret for bob\n"
    assert bob.get("/boss")[0] == 403             # not an admin
    assert a.get("/boss")[2] == b"secret for root\n"
    st, _, _ = a.post("/auth/admin", {"action": "add", "name": "bob",
                                      "password": "other password"})
    assert st == 400                              # taken
    st, _, _ = a.post("/auth/admin", {"action": "add", "name": "x y",
                                      "password": "other password"})
    assert st == 400                              # bad name
    st, _, _ = a.post("/auth/admin", {"action": "add", "name": "eve",
                                      "password": "short"})
    assert st == 400
    assert a.post("/auth/admin", {"action": "delete",
                                  "name": "bob"})[0] == 303
    assert bob.get("/secret")[0] == 401           # its session ended
    assert bob.login("bob", "bob password")[0] == 401
    assert a.post("/auth/admin", {"action": "delete",
                                  "name": "root"})[0] == 400  # oneself
    assert b"bob" not in a.get("/auth/admin")[2]


def test_non_admin_refused_admin_pages(srv):
    b = Browser(srv)
    assert b.get("/auth/admin")[0] == 401
    st, h, _ = b.get("/auth/admin", headers={"Accept": "text/html"})
    assert st == 303 and "next=/auth/admin" in h["Location"]
    b.login(*ALICE[:2])
    st, _, body = b.get("/auth/admin")
    assert st == 403 and b"root" not in body
    st, _, _ = b.post("/auth/admin", {"action": "add", "name": "alice2",
                                      "password": "alice2 password",
                                      "admin": "on"})
    assert st == 403
    assert b.post("/auth/admin", {"action": "delete",
                                  "name": "root"})[0] == 403
    assert Browser(srv).login("alice2", "alice2 password")[0] == 401
    assert Browser(srv).login(*ADMIN[:2])[0] == 303


def test_no_admin_over_the_network_by_default(tmp_path):
    """No account, no default password: nobody logs in, and neither the
    setup nor the registration page exists unless asked for."""
    s = site(tmp_path, users=())
    try:
        b = Browser(s)
        for p in ("/auth/setup", "/auth/register"):
            assert b.get(p)[0] == 404
        assert b.post("/auth/setup", {"name": "me",
                                      "password": "me password"})[0] == 404
        assert b.post("/auth/register", {"name": "me",
                                         "password": "me password"}
                      )[0] == 404
        assert b.login("admin", "admin")[0] == 401
        assert b.login("me", "me password")[0] == 401
    finally:
        s.stop()


def test_setup_makes_the_first_admin_once(tmp_path):
    s = site(tmp_path, users=(), sessions={"setup": True})
    try:
        b = Browser(s)
        assert b.get("/auth/setup")[0] == 200
        assert b.post("/auth/setup", {"name": "me", "password":
                                      "me password"})[0] == 303
        assert b.get("/auth/setup")[0] == 404
        assert b.post("/auth/setup", {"name": "you", "password":
                                      "you password"})[0] == 404
        b.login("me", "me password")
        assert b.get("/boss")[0] == 200
    finally:
        s.stop()


def test_email_confirmation_flow(tmp_path):
    s = site(tmp_path, mail=True, sessions={"registration": True})
    jar = str(tmp_path / "jar")
    org = ["-H", "Origin: " + s.url]
    try:
        code, body = curl("-c", jar, *org, "-d",
                          "name=carol&password=carol+password&email=carol"
                          "%40example.org&admin=on", s.url + "/auth/register")
        assert code == 200 and b"carol@example.org" in body
        mail = json.loads((tmp_path / "mail.txt").read_text())
        assert mail["to"] == "carol@example.org"
        assert "MAIL to carol@example.org" in s.log()
        link = re.search(r"http://\S+", mail["body"]).group(0)
        assert link.startswith(s.url + "/auth/confirm?u=carol&t=")
        # not confirmed yet: cannot log in
        code, _ = curl("-c", jar, "-b", jar, *org, "-d",
                       "name=carol&password=carol+password",
                       s.url + "/auth/login")
        assert code == 401
        assert curl(link[:-4] + "0000")[0] == 404   # a wrong token
        code, body = curl(link)
        assert code == 200 and b"Confirmed" in body
        assert curl(link)[0] == 404                 # once only
        code, body = curl("-c", jar, "-b", jar, *org, "-L", "-d",
                          "name=carol&password=carol+password&next=/secret",
                          s.url + "/auth/login")
        assert code == 200 and body == b"secret for carol\n"
        assert curl("-b", jar, s.url + "/boss")[0] == 403  # never an admin
        # without an address, no account
        code, _ = curl(*org, "-d", "name=dan&password=dan+password",
                       s.url + "/auth/register")
        assert code == 400
    finally:
        s.stop()


def test_confirmation_mailed_by_lws_smtp_to_aiosmtpd(tmp_path):
    """The sessions' send_mail hook given lws.smtp: the link arrives at a
    real SMTP server (aiosmtpd) and confirms the account."""
    import email
    from aiosmtpd.controller import Controller

    got = []

    class Box:
        async def handle_DATA(self, server, session, envelope):
            got.append(envelope)
            return "250 OK"

    smtp = Controller(Box(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    s = site(tmp_path, smtp=smtp.port, sessions={"registration": True})
    org = ["-H", "Origin: " + s.url]
    try:
        code, _ = curl(*org, "-d", "name=erin&password=erin+password&email="
                       "erin%40example.org", s.url + "/auth/register")
        assert code == 200
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            time.sleep(0.05)
        assert got, s.log()
        env = got[0]
        assert env.mail_from == "board@example.org"
        assert env.rcpt_tos == ["erin@example.org"]
        msg = email.message_from_bytes(env.content)
        link = re.search(r"http://\S+", msg.get_payload(decode=True).decode()
                         ).group(0)
        code, body = curl(link)
        assert code == 200 and b"Confirmed" in body
        jar = str(tmp_path / "jar")
        code, body = curl("-c", jar, "-b", jar, *org, "-L", "-d",
                          "name=erin&password=erin+password&next=/secret",
                          s.url + "/auth/login")
        assert code == 200 and body == b"secret for erin\n"
        assert "SENT True 250" in s.log()
    finally:
        s.stop()
        smtp.stop()


# -- the store: power cuts --------------------------------------------------

STORE_LOOP = r'''
import sys
from lws.accounts import Accounts
run = int(sys.argv[1])
a = Accounts("accounts.json", iterations=1, max_accounts=1000)
for n in sorted(a.a):
    if int(n.split("_")[0][1:]) < run - 1:
        print("WILL", n)   # the change in flight may land or not
        a.remove(n)
        print("DEL", n)
i = 0
while True:
    n = "r%d_%d" % (run, i)
    a.add(n, "password %d" % i, email="%s@x.org" % n)
    print("ADD", n)
    if i % 3 == 0:
        a.set_password(n, "changed %d" % i)
        print("PW", n)
    i += 1
'''

STORE_CHECK = r'''
import json
from lws.accounts import Accounts
a = Accounts("accounts.json", iterations=1)
print(json.dumps({n: a.check(n, "changed %s" % n.split("_")[1])
                  for n in a.a}))
'''


def test_store_survives_kills_at_random_moments(tmp_path):
    """SIGKILL a MicroPython adding, changing and removing accounts, 30
    times at random moments: the file always loads, and holds every
    change that was acknowledged (printed after save() returned)."""
    rnd = random.Random(19)
    env = unixport.environment()
    (tmp_path / "loop.py").write_text(STORE_LOOP)
    (tmp_path / "check.py").write_text(STORE_CHECK)
    mpy = unixport.micropython()
    present, deleted, pw_changed, kills, acks = set(), set(), set(), 0, 0
    cut = 0
    end = time.monotonic() + 90
    for run in range(30):
        assert time.monotonic() < end
        p = subprocess.Popen([mpy, "loop.py", str(run)], cwd=str(tmp_path),
                             env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        out = p.communicate(timeout=10)[0].decode().split("\n")
        kills += p.returncode == -signal.SIGKILL
        for line in out[:-1]:  # the last one may be cut off
            op, n = line.split()
            acks += 1
            if op == "WILL":  # it may land or not, unless acknowledged
                present.discard(n)
                pw_changed.discard(n)
            elif op == "ADD":
                present.add(n)
            elif op == "DEL":
                present.discard(n)
                pw_changed.discard(n)
                deleted.add(n)
            else:
                pw_changed.add(n)
        r = subprocess.run([mpy, "check.py"], cwd=str(tmp_path), env=env,
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert "corrupt" not in r.stderr
        cut += "interrupted save" in r.stderr  # killed while writing
        got = json.loads(r.stdout.strip().splitlines()[-1])
        missing = present - set(got)
        assert not missing, (run, sorted(missing))
        assert not deleted & set(got), (run, sorted(deleted & set(got)))
        assert all(got[n] for n in pw_changed), run
    assert kills == 30
    assert acks > 300  # the loops did get work done
    assert cut >= 3    # and some kills came in the middle of a save
