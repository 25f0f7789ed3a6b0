"""lws-sessions: the pages of lws.sessions, mounted at Sessions.base
(lws's generic-sessions pages). Forms are POSTed urlencoded; each POST
must come from this site (Origin/Referer) or carry the form's token.

GET  /            who is logged in, a logout button (else the login form)
GET  /login       the login form (?next=/local/path)
POST /login       name, password, next: 303 to next (a local path only)
POST /logout      ends the session
GET  /whoami      {"user", "admin", "csrf"} as JSON
GET  /register    with registration: a form; POST makes the account
GET  /confirm     ?u=NAME&t=TOKEN: the link mailed at registration
GET  /admin       admins: the accounts; POST action=add|delete
GET  /setup       with setup, while there is no admin: make the first
"""
import json
from lws import Protocol

_MAX_BODY = const(1024)
_HEAD = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
         '<title>%s</title></head><body><h1>%s</h1>')


def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _field(name, kind="text", value=""):
    return '<p><label>%s <input name="%s" type="%s" value="%s"></label></p>' \
        % (name, name, kind, _esc(value))


class SessionPages(Protocol):
    name = "lws-sessions"

    def __init__(self, sessions):
        self.s = sessions

    # -- answers ----------------------------------------------------------

    def _page(self, conn, title, body, status=200, headers=None):
        conn.respond(status, headers or {"Cache-Control": "no-store"},
                     _HEAD % (title, title) + body + "</body></html>\n",
                     "text/html; charset=utf-8")

    def _form(self, req, action, fields, button):
        return '<form method="post" action="%s/%s">%s' \
               '<input type="hidden" name="csrf" value="%s">' \
               '<input type="submit" value="%s"></form>' % (
                   self.s.base, action, fields, self.s.token(req), button)

    def _see(self, conn, where):
        conn.respond(303, {"Location": where, "Cache-Control": "no-store"},
                     "", "text/plain")

    def _login_page(self, conn, req, nxt="", msg="", status=200):
        f = _field("name") + _field("password", "password") + \
            '<input type="hidden" name="next" value="%s">' % _esc(nxt)
        extra = ('<p><a href="%s/register">make an account</a></p>'
                 % self.s.base) if self.s.registration else ""
        self._page(conn, "Log in", (msg and "<p>%s</p>" % _esc(msg)) +
                   self._form(req, "login", f, "Log in") + extra, status)

    # -- requests ---------------------------------------------------------

    def on_http(self, conn, req):
        p = req.subpath
        if req.method == "POST":
            if p not in ("/login", "/logout", "/register", "/admin",
                         "/setup"):
                conn.send_error(404)
                return
            if "x-www-form-urlencoded" not in req.h.get("content-type", ""):
                conn.send_error(415, "a urlencoded form")
                return
            conn.user = bytearray()
            return
        if req.method not in ("GET", "HEAD"):
            conn.send_error(405)
            return
        s = self.s
        u = s.user(req)
        if p == "/whoami":
            conn.respond(200, {"Cache-Control": "no-store"}, json.dumps(
                {"user": u, "admin": u is not None and
                 s.accounts.is_admin(u), "csrf": s.token(req)}),
                "application/json")
        elif p == "/login" or p == "/" and u is None:
            self._login_page(conn, req, req.args().get("next", ""))
        elif p == "/":
            self._page(conn, "Logged in", "<p>as %s</p>" % _esc(u) + (
                '<p><a href="%s/admin">accounts</a></p>' % s.base
                if s.accounts.is_admin(u) else "") +
                self._form(req, "logout", "", "Log out"))
        elif p == "/register" and s.registration:
            self._page(conn, "New account", self._form(
                req, "register", _field("name") + _field(
                    "password", "password") + _field("email", "email"),
                "Make it"))
        elif p == "/confirm":
            a = req.args()
            if s.accounts.confirm(a.get("u"), a.get("t")):
                self._page(conn, "Confirmed", '<p><a href="%s/login">Log '
                           'in</a></p>' % s.base)
            else:
                self._page(conn, "Not confirmed", "<p>no such link</p>", 404)
        elif p == "/admin":
            if s.allowed(conn, req, True):
                self._admin_page(conn, req)
        elif p == "/setup" and s.setup and not s.accounts.admins():
            self._page(conn, "First admin", self._form(
                req, "setup", _field("name") + _field("password",
                                                      "password"), "Make"))
        else:
            conn.send_error(404)

    def on_http_body(self, conn, data):
        b = conn.user
        if b is None:
            return
        if len(b) + len(data) > _MAX_BODY:
            conn.user = None
            conn.send_error(413, "form too large", close=True)
            return
        b.extend(data)

    def on_http_body_completion(self, conn):
        b = conn.user
        if b is None:
            return
        conn.user = None
        from lws.util import parse_qs
        try:
            form = parse_qs(bytes(b).decode())
        except UnicodeError:
            conn.send_error(400)
            return
        req = conn.req
        if not self.s.same_origin(conn, req, form):
            conn.send_error(403, "cross-site form refused")
            return
        getattr(self, "_post_" + req.subpath[1:])(conn, req, form)

    # -- forms ------------------------------------------------------------

    def _post_login(self, conn, req, form):
        s = self.s
        w = s.wait(conn)
        if w:
            conn.respond(429, {"Retry-After": str(w)}, "try again later\n",
                         "text/plain")
            return
        nxt = form.get("next", "")
        if not s.login(conn, req, form.get("name"), form.get("password")):
            self._login_page(conn, req, nxt, "wrong name or password", 401)
            return
        from lws.util import local_path
        self._see(conn, local_path(nxt) or s.base + "/")

    def _post_logout(self, conn, req, form):
        self.s.logout(conn, req)
        self._see(conn, self.s.base + "/login")

    def _post_register(self, conn, req, form):
        s = self.s
        if not s.registration:
            conn.send_error(404)
            return
        mail = s.send_mail
        if mail and s.accounts.pending() >= s.max_pending:
            conn.send_error(503, "too many registrations waiting")
            return
        name = form.get("name", "")
        email = form.get("email") or None
        if mail and not email:
            conn.send_error(400, "an email address is needed")
            return
        try:
            token = s.accounts.add(name, form.get("password", ""),
                                   email=email, confirmed=not mail)
        except ValueError as e:
            conn.send_error(400, _esc(e))
            return
        if not mail:
            self._page(conn, "Account made", '<p><a href="%s/login">Log in'
                       '</a></p>' % s.base)
            return
        from lws.util import quote
        site = s.site_url or ("https://" if conn.tls else "http://") + \
            req.h.get("host", "")
        link = "%s%s/confirm?u=%s&t=%s" % (site, s.base, quote(name), token)
        try:
            mail(email, "Confirm your account",
                 "Someone (you?) made the account %s.\r\nTo confirm it, "
                 "open\r\n\r\n%s\r\n" % (name, link))
        except Exception as e:
            import lws.log as log
            log.exc(e, "sessions: send_mail")
            s.accounts.remove(name)
            conn.send_error(503, "cannot send the mail now")
            return
        self._page(conn, "Almost there", "<p>a link is on its way to %s</p>"
                   % _esc(email))

    def _post_setup(self, conn, req, form):
        s = self.s
        if not s.setup or s.accounts.admins():
            conn.send_error(404)
            return
        try:
            s.accounts.add(form.get("name", ""), form.get("password", ""),
                           admin=True)
        except ValueError as e:
            conn.send_error(400, _esc(e))
            return
        self._see(conn, s.base + "/login")

    def _admin_page(self, conn, req):
        rows = "".join(
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
            "</tr>" % (_esc(a["name"]), a["admin"] and "admin" or "",
                       _esc(a["email"] or ""),
                       "" if a["confirmed"] else "unconfirmed",
                       self._form(req, "admin",
                                  '<input type="hidden" name="action" '
                                  'value="delete"><input type="hidden" '
                                  'name="name" value="%s">'
                                  % _esc(a["name"]), "Delete"))
            for a in self.s.accounts.list())
        add = self._form(req, "admin", '<input type="hidden" name="action" '
                         'value="add">' + _field("name") + _field(
                             "password", "password") + _field("email") +
                         '<p><label><input type="checkbox" name="admin"> '
                         'admin</label></p>', "Add")
        self._page(conn, "Accounts", "<table>%s</table><h2>New</h2>%s"
                   % (rows, add))

    def _post_admin(self, conn, req, form):
        s = self.s
        if not s.allowed(conn, req, True):
            return
        act = form.get("action")
        name = form.get("name", "")
        if act == "add":
            try:
                s.accounts.add(name, form.get("password", ""),
                               admin=bool(form.get("admin")),
                               email=form.get("email") or None)
            except ValueError as e:
                conn.send_error(400, _esc(e))
                return
        elif act == "delete":
            if name == req.auth_user:
                conn.send_error(400, "not your own account")
                return
            if not s.remove_user(name):
                conn.send_error(404, "no such account")
                return
        else:
            conn.send_error(400, "action: add or delete")
            return
        self._see(conn, s.base + "/admin")
