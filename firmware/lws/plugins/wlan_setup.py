"""lws-wlan-setup: the WLAN set-up page, for a wlan.Manager.

    vh = lws.Vhost(..., mounts=[lws.Mount("/setup", "callback://lws-wlan-setup")],
                   protocols=[WlanSetup(manager)])

GET  /setup              the page: status, networks in range, saved slots
                         (never their passwords), a form to add one
GET  /setup?scan=1       the same after a fresh scan
GET  /setup/scan.json    a fresh scan, as JSON
GET  /setup/status.json  the manager's state and the saved slots
POST /setup/add          ssid=...&password=...&token=... (a form): saved
                         in a slot, and the manager tries it at once
POST /setup/remove       slot=N or ssid=..., and token=...

Nobody else changes the board's WLAN:
- each form carries a token made (os.urandom) when the protocol is, so
  once per boot; a POST without it, or whose Origin (else Referer) names
  another host than the one it was sent to, gets 403 and changes nothing;
- auth=True (the page offered on the station network too): every request
  needs HTTP Basic, user admin, password `password` (default: the
  manager's access point password), else 401. auth=None, the default:
  the same while a station is connected; while the board is an access
  point only, the AP's WPA2 password keeps strangers out. auth=False:
  never (the application guards the page).
"""
import json
from lws import Protocol

_MAX_BODY = const(256)
# header lines, ready-made (conn.respond takes them as they are)
_NO_STORE = "Cache-Control: no-store\r\n"
_ASK = _NO_STORE + 'WWW-Authenticate: Basic realm="lws-wlan-setup"\r\n'


def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _same(a, b):
    """a == b (bytes), in a time that depends on the length of b (the
    secret) only, not on where they differ."""
    n = len(b)
    r = len(a) ^ n
    if r:
        a = b
    for i in range(n):
        r |= a[i] ^ b[i]
    return r == 0


def _same_origin(conn, h):
    """False when Origin (else Referer) is sent and does not name the
    scheme and Host the request was sent to. (Browsers leave a default
    port out of both; a Host that names it is refused: the safe side.)"""
    o = h.get("origin", h.get("referer"))
    if o is None:
        return True  # no browser's form from another page
    i = o.find("/", 8)  # the path, after "https://" and a host
    if i > 0:
        o = o[:i]
    host = h.get("host")
    return host is not None and o.lower() == (
        "https://" if conn.tls else "http://") + host.lower()


class WlanSetup(Protocol):
    name = "lws-wlan-setup"
    rx_buffer_size = 64

    def __init__(self, manager, password=None, auth=None):
        import binascii
        import os
        self.m = manager
        self.password = password
        self.auth = auth
        self.token = binascii.hexlify(os.urandom(16)).decode()
        self._basic = None

    def _authorized(self, req):
        a = self.auth
        if not (self.m.isconnected() if a is None else a):
            return True
        b = self._basic
        if b is None:
            # the one header that lets in, compared whole in constant
            # time, rather than decoding what a stranger sent
            import binascii
            b = self._basic = b"Basic " + binascii.b2a_base64(
                b"admin:" + (self.password or self.m.ap_key()).encode())[:-1]
        return _same(req.h.get("authorization", "").encode(), b)

    def on_http(self, conn, req):
        conn.user = None
        what = req.subpath.strip("/")
        m = self.m
        if not self._authorized(req):
            conn.respond(401, _ASK, "admin password needed")
        elif req.method == "POST" and what in ("add", "remove"):
            if _same_origin(conn, req.headers):
                conn.user = bytearray()
            else:
                conn.respond(403, _NO_STORE, "not from this page")
        elif req.method not in ("GET", "HEAD"):
            conn.send_error(405)
        elif what == "":
            if "scan=1" in req.query:
                m.scan()
            self._page(conn, req)
        elif what == "scan.json":
            if m.state != "connecting":
                m.scan()
            conn.respond(200, _NO_STORE, json.dumps(
                [{"ssid": r[0], "rssi": r[1], "channel": r[2],
                  "open": not r[3]} for r in m.last_scan]),
                "application/json")
        elif what == "status.json":
            d = m.status()
            d["slots"] = m.slots.list()
            conn.respond(200, _NO_STORE, json.dumps(d), "application/json")
        else:
            conn.send_error(404)

    def on_http_body(self, conn, data):
        b = conn.user
        if b is not None:
            if len(b) + len(data) > _MAX_BODY:
                conn.user = None
                conn.respond(413, _NO_STORE, "too long")
            else:
                b.extend(data)

    def on_http_body_completion(self, conn):
        b = conn.user
        if b is None or conn.req.head_sent:
            return
        conn.user = None
        from lws.util import parse_qs
        try:
            q = parse_qs(bytes(b).decode())
        except UnicodeError:
            q = {}
        if not _same(q.get("token", "").encode(), self.token.encode()):
            conn.respond(403, _NO_STORE, "reload the page")
            return
        m = self.m
        back = conn.req.mount.mountpoint if conn.req.mount else "/setup"
        if conn.req.subpath.strip("/") == "remove":
            w = q.get("slot")
            w = int(w) if w and w.isdigit() else q.get("ssid")
            if not m.slots.remove(w):
                conn.respond(404, _NO_STORE, "no such slot")
                return
            msg = "Removed."
        else:
            ssid = q.get("ssid", "")
            try:
                n = m.slots.add(ssid, q.get("password", ""))
            except ValueError as e:
                conn.respond(400, _NO_STORE, _esc(e))
                return
            m.kick(ssid)
            msg = "Saved %s in slot %d: connecting." % (_esc(ssid), n)
        conn.respond(200, "%sRefresh: 3; url=%s\r\n" % (_NO_STORE, back),
                     "<!doctype html><p>%s <a href=\"%s\">back</a>"
                     % (msg, back))

    def _page(self, conn, req):
        m = self.m
        s = m.status()
        base = req.mount.mountpoint if req.mount else "/setup"
        tok = "<input type=hidden name=token value=%s>" % self.token
        if s["state"] == "connected":
            st = "connected to %s (%s)" % (_esc(s["ssid"]), s["ip"])
        else:
            st = _esc(s["state"])
            if s["error"]:
                st += ": " + _esc(s["error"])
        if s["ap"]:
            st += "; access point " + _esc(s["ap"])
        # the page goes out in pieces: no long string on a small heap
        conn.respond(200, _NO_STORE)
        def w(s):
            conn.write(s.encode())
        w("<!doctype html><meta name=viewport content='width=device-width'>"
          "<title>WLAN set-up</title><h1>WLAN set-up</h1><p>Status: %s"
          "<h2>Networks in range</h2><ul>" % st)
        for r in m.last_scan:
            w("<li>%s %d dBm%s" % (_esc(r[0]), r[1],
                                   "" if r[3] else " (open)"))
        w("</ul><a href='%s?scan=1'>scan</a><h2>Saved</h2><ol start=0>"
          % base)
        for e in m.slots.list():
            w("<li>%s%s <form method=post action='%s/remove' "
              "style=display:inline>%s<input type=hidden name=slot value=%d>"
              "<button>forget</button></form>"
              % (_esc(e["ssid"]), " (last good)" if e["last_good"] else "",
                 base, tok, e["slot"]))
        w("</ol><h2>Add a network</h2><form method=post action='%s/add'>%s"
          "<input name=ssid placeholder=SSID list=aps required maxlength=32>"
          " <input name=password type=password placeholder=password "
          "maxlength=64> <button>save</button><datalist id=aps>"
          % (base, tok))
        for r in m.last_scan:
            w("<option value=\"%s\">" % _esc(r[0]))
        w("</datalist></form>")
        conn.complete()
