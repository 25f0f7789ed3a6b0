"""WLAN credential slots and a non-blocking connection manager.

As lws's ESP32 port: a few numbered slots of (SSID, password) kept in one
JSON file; the manager scans, tries the saved networks that are in range
(the last good one first, then by signal strength, then slot order),
retries with a backoff, and when none connects opens an access point
(lws-XXXX, from the MAC) so the set-up page can be reached, while it goes
on trying the stations in the background. The access point is WPA2: with
ap_password, else with the board's own password, made once and kept in
the slot file (printed on the console when the AP comes up; `lwstool wifi
ap` reads it); only ap_open=True opens it.

    from lws.wlan import Slots, Manager
    m = Manager(Slots("wlan.json"), hostname="lws")
    m.connect(20)          # blocking, at boot
    m.attach(ctx)          # then stepped by the server's loop

`network` is imported when first needed (on the unix port the simulated
one from boards/unix).
"""
import json
import os
import time
from . import log

_MAX_SSID = const(32)
_MAX_PASSWORD = const(64)
_AP_KEY_LEN = const(12)
# 32 letters and digits, none to mistake for another (0/o, 1/l) when read
# off a console: 5 random bits each, 60 in all
_AP_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def _valid(e):
    return (isinstance(e, dict) and isinstance(e.get("ssid"), str)
            and 0 < len(e["ssid"]) <= _MAX_SSID
            and isinstance(e.get("password", ""), str))


class Slots:
    """n numbered credential slots in one JSON file, written atomically
    (a temp file, synced, then renamed over the old one). The file also
    keeps the board's own access point password (Manager.ap_key())."""

    def __init__(self, path="wlan.json", n=4):
        self.path = path
        self.n = n
        self.slots = [None] * n  # each (ssid, password) or None
        self.last_good = None
        self.ap_password = None
        self.load()

    # -- the file ---------------------------------------------------------

    def _check(self, f):
        d = json.load(f)
        if not isinstance(d, dict) or not isinstance(d.get("slots"), list):
            raise ValueError("no slot list")
        return d

    def _use(self, d):
        s = d["slots"][:self.n]
        self.slots = [(e["ssid"], e.get("password", "")) if _valid(e)
                      else None for e in s] + [None] * (self.n - len(s))
        g = d.get("last_good")
        self.last_good = g if isinstance(g, int) and 0 <= g < self.n \
            and self.slots[g] else None
        k = d.get("ap_password")
        self.ap_password = k if isinstance(k, str) and len(k) >= 8 else None

    def load(self):
        """Read the file; a corrupt or half-written one is logged, kept
        aside as <path>.bad, and never raises (lws.atomic)."""
        from . import atomic
        d = atomic.load(self.path, self._check, "wlan", "slot")
        if d is None:
            self.slots = [None] * self.n
            self.last_good = None
            self.ap_password = None
            log.info("wlan: no saved networks in %s", self.path)
        else:
            self._use(d)

    def save(self):
        """Write the file atomically (lws.atomic): never a half-written
        slot file."""
        d = {"version": 1, "last_good": self.last_good,
             "slots": [{"ssid": e[0], "password": e[1]} if e else None
                       for e in self.slots]}
        if self.ap_password:
            d["ap_password"] = self.ap_password
        from . import atomic
        atomic.save(self.path, lambda f: json.dump(d, f))

    # -- the slots --------------------------------------------------------

    def find(self, ssid):
        for i, e in enumerate(self.slots):
            if e and e[0] == ssid:
                return i
        return None

    def add(self, ssid, password="", slot=None):
        """Save a network: in slot, else the slot that holds this SSID,
        else the first free one. Returns the slot number; ValueError for a
        bad SSID/password or when every slot is in use."""
        password = password or ""
        if not isinstance(ssid, str) or not 0 < len(ssid.encode()) <= \
                _MAX_SSID:
            raise ValueError("SSID must be 1..32 bytes")
        if len(password) > _MAX_PASSWORD or 0 < len(password) < 8:
            raise ValueError("password must be 8..64 characters "
                             "(empty for an open network)")
        old = self.find(ssid)
        if slot is None:
            slot = old
            if slot is None:
                if None not in self.slots:
                    raise ValueError("all %d slots are in use: remove one "
                                     "first" % self.n)
                slot = self.slots.index(None)
        elif not 0 <= slot < self.n:
            raise ValueError("slot must be 0..%d" % (self.n - 1))
        if old is not None and old != slot:
            self.slots[old] = None
            if self.last_good == old:
                self.last_good = None
        if self.last_good == slot and self.slots[slot] and \
                self.slots[slot][0] != ssid:
            self.last_good = None
        self.slots[slot] = (ssid, password)
        self.save()
        log.notice("wlan: '%s' saved in slot %d", ssid, slot)
        return slot

    def remove(self, which):
        """Forget a slot (its number or its SSID); False when not found."""
        i = which if isinstance(which, int) else self.find(which)
        if i is None or not 0 <= i < self.n or self.slots[i] is None:
            return False
        self.slots[i] = None
        if self.last_good == i:
            self.last_good = None
        self.save()
        return True

    def get(self, i):
        """(ssid, password) of slot i, or None."""
        return self.slots[i]

    def list(self):
        """The saved networks, never their passwords."""
        return [{"slot": i, "ssid": e[0], "open": not e[1],
                 "last_good": i == self.last_good}
                for i, e in enumerate(self.slots) if e]

    def set_good(self, i):
        if self.last_good != i:
            self.last_good = i
            self.save()


class Manager:
    """Brings the station up through the slots, without blocking.

    Call step() often (attach(ctx) has the server's loop do it), or
    connect(timeout) to wait at boot. on_change(state, info) hears
    "scanning", "connecting", "connected", "failed", "lost", "waiting"
    and "ap".
    """

    #: seconds a slot may take to connect
    timeout = 10
    #: attempts per slot in one round, when a connect fails for a reason
    #: that may pass (not a wrong password or a missing AP)
    retries = 2
    #: seconds before the next round; doubled each failed round
    backoff = 2
    #: up to this many seconds
    backoff_max = 60
    #: failed rounds before the access point opens
    ap_after = 1
    #: keep the access point up once a station is connected
    keep_ap = False
    #: an open access point when no ap_password is given (anyone in range
    #: could then reach the set-up page)
    ap_open = False

    def __init__(self, slots, hostname=None, ap_ssid=None, ap_password=None,
                 timeout=10, on_change=None, **options):
        for k in options:
            if not hasattr(self, k):
                raise ValueError("unknown option " + k)
            setattr(self, k, options[k])
        if ap_password and not 8 <= len(ap_password) <= 64:
            raise ValueError("ap_password must be 8..64 characters")
        self.slots = slots
        self.hostname = hostname
        self.ap_ssid = ap_ssid
        self.ap_password = ap_password
        self.timeout = timeout
        self.on_change = on_change
        self.state = "idle"
        self.ssid = None     # the network connected or being tried
        self.slot = None
        self.ip = None
        self.ap = None       # the access point's essid while it is up
        self.ap_ip = None    # and its address
        self.error = None    # why the last attempt failed
        self.attempts = 0
        self.last_scan = []  # [(ssid, rssi, channel, security), ...]
        self._net = None
        self._cands = []
        self._tries = 0
        self._until = 0
        self._rounds = 0
        self._prefer = None
        self._timer = None

    # -- the radio --------------------------------------------------------

    def _network(self):
        net = self._net
        if net is None:
            import network
            net = self._net = network
            self.sta = network.WLAN(network.STA_IF)
            name = self.hostname
            if name:
                # before any interface comes up: ESP32 gives it to DHCP
                # at connect() and its mDNS responder (HOSTNAME.local)
                # takes it once, at the first address; ports older than
                # MicroPython 1.20 have config(dhcp_hostname=) instead
                try:
                    network.hostname(name)
                except (AttributeError, ValueError, OSError):
                    try:
                        self.sta.config(dhcp_hostname=name)
                    except (ValueError, OSError) as e:
                        log.warn("wlan: cannot set the hostname %s: %s",
                                 name, e)
            try:
                # the driver gives up after a few tries, so status() tells
                # why (ESP32); this manager does the retrying
                self.sta.config(reconnects=self.retries)
            except (ValueError, OSError, TypeError):
                pass
        return net

    def _stat(self, name):
        return getattr(self._net, "STAT_" + name, None)

    def _set(self, state, **info):
        self.state = state
        log.notice("wlan: %s%s", state, "".join(
            " %s=%s" % kv for kv in info.items()))
        cb = self.on_change
        if cb:
            try:
                cb(state, info)
            except Exception as e:
                log.exc(e, "wlan: on_change")

    def scan(self):
        """Scan now; returns and keeps [(ssid, rssi, channel, security)],
        strongest first."""
        self._network()
        try:
            if not self.sta.active():
                self.sta.active(True)
            found = self.sta.scan()
        except OSError as e:
            log.warn("wlan: scan failed: %s", e)
            return self.last_scan
        out = []
        for r in found:
            try:
                out.append((r[0].decode(), r[3], r[2], r[4]))
            except UnicodeError:
                pass
        out.sort(key=lambda r: -r[1])
        self.last_scan = out
        return out

    def default_ap_ssid(self):
        self._network()
        mac = self.sta.config("mac")
        return "lws-%02X%02X" % (mac[-2], mac[-1])

    def ap_key(self):
        """The access point's password: ap_password, else the board's own,
        made once from os.urandom and kept in the slot file, so it stays
        the same across boots. Also the set-up page's, unless it has one."""
        s = self.slots
        k = self.ap_password or s.ap_password
        if not k:
            k = s.ap_password = "".join(_AP_ALPHABET[b & 31]
                                        for b in os.urandom(_AP_KEY_LEN))
            s.save()
        return k

    def start_ap(self):
        net = self._network()
        name = self.ap_ssid or self.default_ap_ssid()
        op = self.ap_open and not self.ap_password
        try:
            ap = net.WLAN(net.AP_IF)
            ap.active(True)
            if op:
                ap.config(essid=name, authmode=getattr(net, "AUTH_OPEN", 0))
            else:
                ap.config(essid=name, password=self.ap_key(),
                          authmode=getattr(net, "AUTH_WPA2_PSK", 3))
        except OSError as e:
            log.err("wlan: access point failed: %s", e)
            return
        self.ap = name
        self.ap_ip = ip = ap.ifconfig()[0]
        if op:
            log.warn("wlan: access point %s is open (ap_open): anyone in "
                     "range can reach it", name)
        else:
            log.notice("wlan: access point %s: WPA2, password %s", name,
                       self.ap_key())
        self._set("ap", essid=name, ip=ip, open=op)

    def stop_ap(self):
        if self.ap:
            net = self._network()
            net.WLAN(net.AP_IF).active(False)
            log.notice("wlan: access point %s closed", self.ap)
            self.ap = self.ap_ip = None

    # -- the state machine ------------------------------------------------

    def step(self):
        """One non-blocking step (only scan() waits for the radio)."""
        try:
            self._step()
        except OSError as e:  # the radio refused: log, back off, go on
            self.error = "radio: %s" % e
            self._failed_round()

    def _step(self):
        s = self.state
        if s == "connecting":
            self._poll()
        elif s == "connected":
            if not self.sta.isconnected():
                self.ip = None
                self._set("lost", ssid=self.ssid)
                self._round()
        elif s == "idle" or time.ticks_diff(time.ticks_ms(),
                                            self._until) >= 0:
            self._round()

    def _round(self):
        """Scan, then try the saved networks in range, in order."""
        self._network()
        self._set("scanning")
        seen = {}
        hidden = False
        for ssid, rssi, _, _ in self.scan():
            if ssid:
                seen[ssid] = max(rssi, seen.get(ssid, -999))
            else:
                hidden = True
        good = self.slots.last_good
        order = []
        for i, e in enumerate(self.slots.slots):
            if e is None:
                continue
            if e[0] in seen:
                rank = 0 if e[0] == self._prefer else 1 if i == good else 2
                order.append((rank, -seen[e[0]], i))
            elif hidden or e[0] == self._prefer:
                order.append((3, 0, i))  # maybe a hidden network
        order.sort()
        self._prefer = None
        self._cands = [t[2] for t in order]
        if not self._cands:
            self.error = "no saved network in range"
            self._failed_round()
        else:
            self._next()

    def _next(self):
        if not self._cands:
            self._failed_round()
            return
        self.slot = self._cands.pop(0)
        self._tries = 0
        self._try()

    def _try(self):
        i = self.slot
        e = self.slots.get(i)
        if e is None:  # forgotten meanwhile
            self._next()
            return
        ssid, pw = e
        self.ssid = ssid
        self._tries += 1
        self.attempts += 1
        self._until = time.ticks_add(time.ticks_ms(),
                                     int(self.timeout * 1000))
        self._set("connecting", ssid=ssid, slot=i, attempt=self._tries)
        try:
            self.sta.connect(ssid, pw or None)
        except OSError as e:
            self._fail(str(e), True)

    def _poll(self):
        st = self.sta.status()
        if st == self._stat("GOT_IP"):
            self.ip = self.sta.ifconfig()[0]
            self.error = None
            self._rounds = 0
            if self.slots.get(self.slot):
                self.slots.set_good(self.slot)
            if self.ap and not self.keep_ap:
                self.stop_ap()
            self._set("connected", ssid=self.ssid, slot=self.slot,
                      ip=self.ip)
        elif st == self._stat("WRONG_PASSWORD"):
            self._fail("wrong password", False)
        elif st == self._stat("NO_AP_FOUND"):
            self._fail("network not found", False)
        elif st in (self._stat("CONNECTING"), self._stat("IDLE")):
            if time.ticks_diff(time.ticks_ms(), self._until) >= 0:
                self._fail("timeout", True)
        else:
            self._fail("connect failed (%s)" % st, True)

    def _fail(self, why, again):
        try:
            self.sta.disconnect()
        except OSError:
            pass
        self.error = why
        self._set("failed", ssid=self.ssid, slot=self.slot, reason=why)
        if again and self._tries < self.retries:
            self._try()
        else:
            self._next()

    def _failed_round(self):
        self._rounds += 1
        self.ssid = self.slot = None
        if self.ap is None and self._rounds >= self.ap_after:
            self.start_ap()
        wait = min(self.backoff * (1 << min(self._rounds - 1, 10)),
                   self.backoff_max)
        self._until = time.ticks_add(time.ticks_ms(), int(wait * 1000))
        self._set("waiting", seconds=wait, reason=self.error)

    # -- the application's side -------------------------------------------

    def kick(self, ssid=None):
        """Try again at the next step, ssid first (a network just added)."""
        if self.state == "connected" and ssid == self.ssid:
            return
        self._prefer = ssid
        if self.state in ("connecting", "connected"):
            try:
                self.sta.disconnect()
            except OSError:
                pass
        self.state = "waiting"
        self._until = time.ticks_ms()

    def isconnected(self):
        return self.state == "connected"

    def connect(self, timeout=None):
        """Block until a station connects (True) or the access point is
        up or timeout seconds passed (False); the manager goes on in the
        background through step()."""
        if timeout is not None:
            end = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while True:
            self.step()
            if self.state == "connected":
                return True
            if self.ap is not None:
                return False
            if timeout is not None and \
                    time.ticks_diff(time.ticks_ms(), end) >= 0:
                self.start_ap()
                return False
            time.sleep_ms(20)

    def attach(self, ctx, ms=250):
        """Have ctx's loop call step() every ms milliseconds."""
        self._timer = ctx.every(ms, self.step)
        return self._timer

    def status(self):
        """State, network, address, access point (no passwords)."""
        d = {"state": self.state, "ssid": self.ssid, "slot": self.slot,
             "ip": self.ip, "ap": self.ap, "error": self.error,
             "attempts": self.attempts}
        if self.state == "connected":
            try:
                d["rssi"] = self.sta.status("rssi")
            except (OSError, ValueError):
                pass
        return d
