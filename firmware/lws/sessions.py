"""Login sessions over an account store (lws's generic-sessions plugin):
a bounded table of sessions in RAM, a session cookie, guards for
protocols, paths and App routes, and the pages (lws.plugins.sessions)
to log in, log out, register and manage accounts.

    from lws.sessions import Sessions
    s = Sessions("accounts.json", base="/auth")
    s.add_user("admin", "a long password", admin=True)   # the first admin
    mounts = [lws.Mount("/auth", "callback://lws-sessions"), ...]
    protocols = [s.protocol(), s.guard(MyProtocol())]

A session id is 128 bits from os.urandom, sent only as an HttpOnly,
SameSite cookie (Secure over TLS); the table holds its SHA-256, never
the id, so a lookup tells nothing of ids by its timing. Sessions end
max_age seconds after login, idle seconds after last use, at logout, or
when the table is full and a newer one needs the room of the least
recently used. They live in RAM: a reboot logs everybody out."""
import binascii
import os
import time
from . import log

_ID = const(16)       # session id bytes (128 bits)
_KEY = const(16)      # bytes of its SHA-256 the table is keyed by
_NAME = const(0)      # a session: [account name, born, last used] (secs)
_BORN = const(1)
_USED = const(2)


def _now():
    return int(time.time())


class Sessions:
    #: the session cookie's name
    cookie = "lws_sid"
    #: sessions kept at once; a login past it ends the least recently
    #: used one
    max_sessions = 8
    #: seconds a session lasts from its login (the cookie's Max-Age)
    max_age = 86400
    #: seconds without a request after which a session ends
    idle = 3600
    #: the cookie's SameSite: "Lax" (links from other sites arrive logged
    #: in) or "Strict"
    same_site = "Lax"
    #: where the pages (protocol()) are mounted: login is base + "/login"
    base = "/auth"
    #: anybody may make an account at base + "/register" (never an admin)
    registration = False
    #: send_mail(to, subject, body): with registration, new accounts must
    #: follow a link mailed to them before they can log in
    send_mail = None
    #: the site as mails link to it ("https://board.local"); else taken
    #: from the request's Host
    site_url = None
    #: registrations that may wait for their confirmation at once
    max_pending = 4
    #: base + "/setup" makes the first admin while there is none; for a
    #: board set up over its own access point only
    setup = False
    #: other origins whose pages may post the forms ("https://proxy.lan")
    origins = ()

    def __init__(self, accounts="accounts.json", **options):
        for k in options:
            if k[0] == "_" or not hasattr(Sessions, k) or \
                    callable(getattr(Sessions, k)):
                raise ValueError("unknown option " + k)
            setattr(self, k, options[k])
        if self.same_site not in ("Lax", "Strict"):
            raise ValueError("same_site: Lax or Strict")
        if isinstance(accounts, str):
            from .accounts import Accounts
            accounts = Accounts(accounts)
        self.accounts = accounts
        self.t = {}       # sha256(id)[:16] -> [name, born, last used]
        self.secret = os.urandom(_ID)  # CSRF tokens' key, new each boot
        self.tries = None  # lws.auth.Backoff, at the first login

    # -- accounts ---------------------------------------------------------

    def add_user(self, name, password, admin=False, email=None):
        """An account made by code (the first admin, say)."""
        self.accounts.add(name, password, admin=admin, email=email)

    def remove_user(self, name):
        self.drop(name)
        return self.accounts.remove(name)

    def drop(self, name):
        """End every session of an account."""
        for k in [k for k, e in self.t.items() if e[_NAME] == name]:
            del self.t[k]

    # -- the table --------------------------------------------------------

    def _key(self, req):
        v = req.cookies.get(self.cookie)
        if not v or len(v) != 2 * _ID:
            return None
        try:
            raw = binascii.unhexlify(v)
        except ValueError:
            return None
        from .genhash import digest
        return digest("sha256", raw)[:_KEY]

    def _find(self, req):
        k = self._key(req)
        e = self.t.get(k) if k else None
        if e is None:
            return None, None
        now = _now()
        if now - e[_BORN] >= self.max_age or now - e[_USED] >= self.idle \
                or not self.accounts.exists(e[_NAME]):
            del self.t[k]
            return None, None
        e[_USED] = now
        return k, e

    def user(self, req):
        """The account name the request's session cookie logs in, or
        None."""
        e = self._find(req)[1]
        return e and e[_NAME]

    def is_admin(self, req):
        u = self.user(req)
        return u is not None and self.accounts.is_admin(u)

    def _purge(self, now):
        for k in [k for k, e in self.t.items()
                  if now - e[_BORN] >= self.max_age or
                  now - e[_USED] >= self.idle]:
            del self.t[k]

    def _new(self, name):
        now = _now()
        t = self.t
        if len(t) >= self.max_sessions:
            self._purge(now)
        while len(t) >= self.max_sessions:
            old = min(t, key=lambda k: t[k][_USED])
            log.info("sessions: %s's session ended for room", t[old][_NAME])
            del t[old]
        sid = os.urandom(_ID)
        from .genhash import digest
        t[digest("sha256", sid)[:_KEY]] = [name, now, now]
        return binascii.hexlify(sid).decode()

    def _cookie(self, conn, value, max_age):
        conn.set_cookie(self.cookie, value, path="/", max_age=max_age,
                        http_only=True, secure=bool(conn.tls),
                        same_site=self.same_site)

    # -- logging in and out -----------------------------------------------

    def _peer(self, conn):
        from .conn import peer_ip
        return peer_ip(conn.addr)

    def wait(self, conn):
        """Seconds this client's address must wait before it may try a
        password again (0: it may)."""
        return self.tries.wait(self._peer(conn)) if self.tries else 0

    def login(self, conn, req, name, password):
        """Check the password; if good, a new session and its cookie on
        the response about to start (an old session of this request
        ends: no fixation). False for a wrong name or password, an
        unconfirmed account, or an address that must wait."""
        if self.tries is None:
            from .auth import Backoff
            self.tries = Backoff()
        ip = self._peer(conn)
        if self.tries.wait(ip):
            return False
        if not isinstance(name, str) or not isinstance(password, str) or \
                not self.accounts.check(name, password) or \
                not self.accounts.confirmed(name):
            self.tries.failed(ip)
            log.notice("%r: sessions: login as %r refused", conn, name)
            return False
        self.tries.passed(ip)
        k, _ = self._find(req)
        if k:
            del self.t[k]
        self._cookie(conn, self._new(name), self.max_age)
        req.auth_user = name
        log.notice("%r: sessions: %s logged in", conn, name)
        return True

    def logout(self, conn, req):
        """End the request's session (server side: its cookie is worth
        nothing from now on) and clear the cookie."""
        k, e = self._find(req)
        if k:
            del self.t[k]
            log.notice("%r: sessions: %s logged out", conn, e[_NAME])
        self._cookie(conn, "", 0)

    # -- CSRF -------------------------------------------------------------

    def token(self, req):
        """The CSRF token the forms of this request's session carry."""
        from .genhash import hmac
        k = self._key(req) or b""
        return binascii.hexlify(hmac("sha256", self.secret, k)[:16]).decode()

    def same_origin(self, conn, req, form):
        """May this POST change things? Its Origin (else Referer) must be
        this site's; a request with neither must carry the form token."""
        o = req.h.get("origin") or req.headers.get("referer")
        if o is None:
            from .auth import same
            t = form.get("csrf", "")
            return same(t.encode(), self.token(req).encode())
        mine = ("https://" if conn.tls else "http://") + req.h.get("host", "")
        for m in (mine,) + tuple(self.origins):
            if o == m or o.startswith(m + "/"):
                return True
        log.notice("%r: sessions: POST from %s refused", conn, o[:64])
        return False

    # -- guards -----------------------------------------------------------

    def _refuse(self, req, admin):
        """(status, headers, body) for a request without the session it
        needs: a page asking text/html is sent to the login page (303),
        others get 401 (403: logged in, but not an admin)."""
        if admin and self.user(req) is not None:
            return 403, {}, "admins only\n"
        if req.method in ("GET", "HEAD") and \
                "text/html" in req.headers.get("accept", ""):
            from .util import quote
            return 303, {"Location": "%s/login?next=%s" % (
                self.base, quote(req.target))}, ""
        return 401, {"WWW-Authenticate": 'Cookie realm="microlws" '
                     'form-action="%s/login" cookie-name="%s"'
                     % (self.base, self.cookie)}, "login needed\n"

    def allowed(self, conn, req, admin=False):
        """True (req.auth_user set) if the request has a session (of an
        admin); else it has been answered (303, 401 or 403) and its body,
        if any, goes nowhere."""
        u = self.user(req)
        if u is not None and (not admin or self.accounts.is_admin(u)):
            req.auth_user = u
            return True
        st, h, body = self._refuse(req, admin)
        if "upgrade" in req.h:  # a WebSocket upgrade: no redirect
            st = 401 if st == 303 else st
        conn.respond(st, h, body, "text/plain")
        req.handler = conn.proto = _swallow()
        return False

    def guard(self, proto, admin=False):
        """proto, its HTTP requests and WebSocket upgrades let in only
        with a session (of an admin). Returns proto."""
        on_http = proto.on_http
        on_filter = proto.on_filter_protocol_connection

        def guarded_http(conn, req):
            if self.allowed(conn, req, admin):
                on_http(conn, req)

        def guarded_ws(conn, req):
            u = self.user(req)
            if u is None or admin and not self.accounts.is_admin(u):
                from .httpmsg import HttpError
                raise HttpError(401 if u is None else 403, "login needed")
            req.auth_user = u
            return on_filter(conn, req)

        proto.on_http = guarded_http
        proto.on_filter_protocol_connection = guarded_ws
        return proto

    def filter(self, prefix, admin=False):
        """A vhost filter (vh.add_filter()) that lets requests under
        prefix, of any mount, in only with a session."""
        prefix = prefix.rstrip("/")

        def f(conn, req):
            p = req.path
            if p.startswith(prefix) and (len(p) == len(prefix) or
                                         p[len(prefix)] == "/"):
                return not self.allowed(conn, req, admin)
            return False
        return f

    def login_required(self, f, admin=False):
        """For lws.App routes: the handler runs with request.user set,
        else the answer is a redirect to the login page or a 401."""
        def wrapped(request, *args, **kw):
            req = request.req
            u = self.user(req)
            if u is None or admin and not self.accounts.is_admin(u):
                st, h, body = self._refuse(req, admin)
                return body, st, h
            request.user = req.auth_user = u
            return f(request, *args, **kw)
        return wrapped

    def admin_required(self, f):
        return self.login_required(f, True)

    def protocol(self):
        """The pages, a Protocol named 'lws-sessions' to mount at base."""
        from .plugins.sessions import SessionPages
        return SessionPages(self)


_SWALLOW = None


def _swallow():
    """A protocol whose callbacks do nothing: takes a refused request's
    body in place of the protocol that was not let in."""
    global _SWALLOW
    if _SWALLOW is None:
        from .protocol import Protocol
        _SWALLOW = Protocol()
    return _SWALLOW
