"""lws-wlan-setup: the WLAN set-up page, for a wlan.Manager.

    vh = lws.Vhost(..., mounts=[lws.Mount("/setup", "callback://lws-wlan-setup")],
                   protocols=[WlanSetup(manager)])

GET  /setup              the page: status, networks in range, saved slots
                         (never their passwords), a form to add one
GET  /setup?scan=1       the same after a fresh scan
GET  /setup/scan.json    a fresh scan, as JSON
GET  /setup/status.json  the manager's state and the saved slots
POST /setup/add          ssid=...&password=... (a form): saved in a slot,
                         and the manager tries it at once
POST /setup/remove       slot=N or ssid=...
"""
import json
from lws import Protocol

_MAX_BODY = const(256)


def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


class WlanSetup(Protocol):
    name = "lws-wlan-setup"
    rx_buffer_size = 64

    def __init__(self, manager):
        self.m = manager

    def _json(self, conn, d):
        conn.respond(200, {"Cache-Control": "no-store"}, json.dumps(d),
                     "application/json")

    def on_http(self, conn, req):
        what = req.subpath.strip("/")
        m = self.m
        if req.method == "POST" and what in ("add", "remove"):
            conn.user = bytearray()
            return
        if req.method not in ("GET", "HEAD"):
            conn.send_error(405)
        elif what == "":
            if "scan=1" in req.query:
                m.scan()
            self._page(conn, req)
        elif what == "scan.json":
            if m.state != "connecting":
                m.scan()
            self._json(conn, [{"ssid": r[0], "rssi": r[1], "channel": r[2],
                               "open": not r[3]} for r in m.last_scan])
        elif what == "status.json":
            d = m.status()
            d["slots"] = m.slots.list()
            self._json(conn, d)
        else:
            conn.send_error(404)

    def on_http_body(self, conn, data):
        b = conn.user
        if b is not None:
            if len(b) + len(data) > _MAX_BODY:
                conn.user = None
                conn.send_error(413, close=True)
            else:
                b.extend(data)

    def on_http_body_completion(self, conn):
        b = conn.user
        if b is None or conn.req.head_sent:
            return
        from lws.util import parse_qs
        try:
            q = parse_qs(bytes(b).decode())
        except UnicodeError:
            q = {}
        m = self.m
        back = conn.req.mount.mountpoint if conn.req.mount else "/setup"
        if conn.req.subpath.strip("/") == "remove":
            w = q.get("slot")
            w = int(w) if w and w.isdigit() else q.get("ssid")
            if not m.slots.remove(w):
                conn.send_error(404, "no such slot")
                return
            msg = "Removed."
        else:
            ssid = q.get("ssid", "")
            try:
                n = m.slots.add(ssid, q.get("password", ""))
            except ValueError as e:
                conn.send_error(400, str(e))
                return
            m.kick(ssid)
            msg = "Saved %s in slot %d: connecting." % (_esc(ssid), n)
        conn.respond(200, {"Refresh": "3; url=" + back},
                     "<!doctype html><p>%s <a href=\"%s\">back</a>"
                     % (msg, back))

    def _page(self, conn, req):
        m = self.m
        s = m.status()
        base = req.mount.mountpoint if req.mount else "/setup"
        if s["state"] == "connected":
            st = "connected to %s (%s)" % (_esc(s["ssid"]), s["ip"])
        else:
            st = _esc(s["state"])
            if s["error"]:
                st += ": " + _esc(s["error"])
        if s["ap"]:
            st += "; access point " + _esc(s["ap"])
        # the page goes out in pieces: no long string on a small heap
        conn.respond(200, {"Cache-Control": "no-store"})
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
              "style=display:inline><input type=hidden name=slot value=%d>"
              "<button>forget</button></form>"
              % (_esc(e["ssid"]), " (last good)" if e["last_good"] else "",
                 base, e["slot"]))
        w("</ol><h2>Add a network</h2><form method=post action='%s/add'>"
          "<input name=ssid placeholder=SSID list=aps required maxlength=32>"
          " <input name=password type=password placeholder=password "
          "maxlength=64> <button>save</button><datalist id=aps>" % base)
        for r in m.last_scan:
            w("<option value=\"%s\">" % _esc(r[0]))
        w("</datalist></form>")
        conn.complete()
