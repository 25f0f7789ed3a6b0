"""A simulated `network` module for the MicroPython unix port.

It follows ESP32 MicroPython's network.WLAN (station and access point),
driven by a JSON file of fake access points: the path in $LWS_FAKE_APS,
else ./fake_aps.json. The file is read again on every scan() and
connect(), so a test can change the air while the board runs:

    {"seed": 1, "mac": "24:0a:c4:12:34:56",
     "aps": [{"ssid": "home", "password": "secret123", "rssi": -40,
              "channel": 6, "connect_delay": 0.5, "flaky": 0.0,
              "bssid": "aa:bb:cc:dd:ee:01", "hidden": false}]}

A bare list of access points works too. The board's own access point
(AP_IF) is written, as {"active", "essid", "authmode", "password"}, to
the file in $LWS_FAKE_AP_STATE whenever it changes, so a test can see
how the board set it up; with it the names the board goes by, as on
ESP32: "dhcp_hostname", the hostname when the station last called
connect() (what its DHCP client sends), and "mdns_hostname", the hostname
when the station first got an address (what the mDNS responder answers
for as HOSTNAME.local: it takes the name once per boot), null before.
"flaky" is the probability that a connect fails (STAT_CONNECT_FAIL); the
draws come from a generator seeded with "seed", so a run is repeatable.
Connecting takes "connect_delay" seconds without blocking: status() is
STAT_CONNECTING until then.
"""
import json
import os
import time

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_CONNECT_FAIL = 203
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4

_MISSING_DELAY = 0.3
_state = {"hostname": "mpy-unix", "seed": None, "rng": 1,
          "dhcp_hostname": None, "mdns_hostname": None}
_ifs = {}


def _path():
    return os.getenv("LWS_FAKE_APS") or "fake_aps.json"


def _air():
    """The file as (aps, options); no file or a bad one: no APs."""
    try:
        with open(_path()) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return [], {}
    if isinstance(d, list):
        return d, {}
    seed = d.get("seed")
    if seed is not None and seed != _state["seed"]:
        _state["seed"] = seed
        _state["rng"] = (int(seed) & 0x7FFFFFFF) or 1
    return d.get("aps", []), d


def _random():
    """A float in [0, 1) from a seeded LCG (repeatable runs)."""
    x = (_state["rng"] * 1103515245 + 12345) & 0x7FFFFFFF
    _state["rng"] = x
    return x / 2147483648


def _mac_bytes(s):
    return bytes(int(h, 16) for h in s.split(":"))


def _bssid(ap):
    b = ap.get("bssid")
    if b:
        return _mac_bytes(b)
    h = 5381
    for c in ap.get("ssid", "").encode():
        h = (h * 33 + c) & 0xFFFFFFFF
    return bytes((0x02, 0x00, h >> 24, (h >> 16) & 255, (h >> 8) & 255,
                  h & 255))


def _auth(ap):
    if "security" in ap:
        return ap["security"]
    return AUTH_WPA2_PSK if ap.get("password") else AUTH_OPEN


def _now():
    return time.ticks_ms()


def _record(w):
    """The access point's settings, for the tests ($LWS_FAKE_AP_STATE)."""
    p = os.getenv("LWS_FAKE_AP_STATE")
    if p:
        c = w._cfg
        with open(p, "w") as f:
            json.dump({"active": w._active, "essid": c["essid"],
                       "authmode": c["authmode"],
                       "password": c["password"],
                       "dhcp_hostname": _state["dhcp_hostname"],
                       "mdns_hostname": _state["mdns_hostname"]}, f)


def _set_hostname(name):
    if not 0 < len(name) <= 32:
        raise ValueError("hostname")
    _state["hostname"] = name


def hostname(name=None):
    """network.hostname([name]), as MicroPython 1.20+ (a test may delete
    it to play an older port: config(dhcp_hostname=...) still works)."""
    if name is None:
        return _state["hostname"]
    _set_hostname(name)


def country(code=None):
    if code is None:
        return _state.get("country", "XX")
    _state["country"] = code


class WLAN:
    """network.WLAN(STA_IF | AP_IF): one object per interface."""

    def __new__(cls, interface=STA_IF):
        w = _ifs.get(interface)
        if w is None:
            w = object.__new__(cls)
            w._init(interface)
            _ifs[interface] = w
        return w

    def __init__(self, interface=STA_IF):
        pass

    def _init(self, interface):
        if interface not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface
        self._active = False
        self._status = STAT_IDLE
        self._ap = None        # the AP connected or being connected to
        self._result = None    # the status the connect will end in
        self._until = 0        # when it does (ticks_ms)
        self._checked = 0
        self._cfg = {"essid": "", "password": "", "channel": 1,
                     "authmode": AUTH_OPEN, "max_clients": 4,
                     "reconnects": -1, "txpower": 20}
        if interface == AP_IF:
            self._cfg["essid"] = "ESP_" + "".join(
                "%02X" % b for b in self.config("mac")[3:])

    def __repr__(self):
        return "<WLAN %s>" % ("STA" if self._if == STA_IF else "AP")

    def _need_active(self):
        if not self._active:
            raise OSError("Wifi Not Started")

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._status = STAT_IDLE
            self._ap = None
        if self._if == AP_IF:
            _record(self)
        return None

    # -- station -----------------------------------------------------------

    def scan(self):
        """[(ssid, bssid, channel, RSSI, security, hidden), ...]"""
        if self._if != STA_IF:
            raise OSError("STA must be active")
        self._need_active()
        aps, opt = _air()
        d = opt.get("scan_delay", 0)
        if d:
            time.sleep(d)
        out = []
        for ap in aps:
            hidden = bool(ap.get("hidden"))
            out.append((b"" if hidden else ap.get("ssid", "").encode(),
                        _bssid(ap), ap.get("channel", 1),
                        ap.get("rssi", -60), _auth(ap), hidden))
        return out

    def connect(self, ssid=None, key=None, *, bssid=None):
        if self._if != STA_IF:
            raise OSError("STA must be active")
        self._need_active()
        if ssid is None:
            ssid, key = self._cfg["essid"], self._cfg["password"]
        aps, opt = _air()
        best = None
        for ap in aps:
            if ap.get("ssid") != ssid:
                continue
            if bssid is not None and _bssid(ap) != bytes(bssid):
                continue
            if best is None or ap.get("rssi", -60) > best.get("rssi", -60):
                best = ap
        self._cfg["essid"] = ssid
        self._cfg["password"] = key or ""
        self._ap = best
        _state["dhcp_hostname"] = _state["hostname"]  # as ESP32's connect()
        _record(WLAN(AP_IF))
        self._status = STAT_CONNECTING
        if best is None:
            self._result = STAT_NO_AP_FOUND
            delay = opt.get("missing_delay", _MISSING_DELAY)
        else:
            delay = best.get("connect_delay", 0.5)
            if (best.get("password") or "") != (key or ""):
                self._result = STAT_WRONG_PASSWORD
            elif best.get("flaky", 0) and _random() < best["flaky"]:
                self._result = STAT_CONNECT_FAIL
            else:
                self._result = STAT_GOT_IP
        self._until = time.ticks_add(_now(), int(delay * 1000))

    def disconnect(self):
        self._status = STAT_IDLE
        self._ap = None

    def _update(self):
        s = self._status
        if s == STAT_CONNECTING:
            if time.ticks_diff(_now(), self._until) >= 0:
                self._status = s = self._result
                if s != STAT_GOT_IP:
                    self._ap = None
                elif _state["mdns_hostname"] is None:
                    # ESP32 starts its mDNS responder at the first address
                    _state["mdns_hostname"] = _state["hostname"]
                    _record(WLAN(AP_IF))
        elif s == STAT_GOT_IP and \
                time.ticks_diff(_now(), self._checked) >= 500:
            # the link drops when its AP leaves the file or changes key
            self._checked = _now()
            ap = self._ap
            for a in _air()[0]:
                if a.get("ssid") == ap.get("ssid") and \
                        (a.get("password") or "") == self._cfg["password"]:
                    self._ap = a
                    return s
            self._status = s = STAT_BEACON_TIMEOUT
            self._ap = None
        return s

    def status(self, param=None):
        if param is None:
            if self._if == AP_IF:
                return STAT_IDLE
            return self._update() if self._active else STAT_IDLE
        if param == "rssi":
            if self._if != STA_IF or self._update() != STAT_GOT_IP:
                raise OSError("not connected")
            return self._ap.get("rssi", -60)
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def isconnected(self):
        if self._if == AP_IF:
            return False  # no station ever joins the simulated AP
        return self._active and self._update() == STAT_GOT_IP

    # -- addresses ---------------------------------------------------------

    def ifconfig(self, cfg=None):
        if cfg is not None:
            self._static = tuple(cfg)
            return None
        st = getattr(self, "_static", None)
        if st:
            return st
        if self._if == AP_IF:
            if self._active:
                return ("192.168.4.1", "255.255.255.0", "192.168.4.1",
                        "0.0.0.0")
        elif self.isconnected():
            ip = self._ap.get("ip", "192.168.1.%d" % (
                100 + self.config("mac")[5] % 100))
            return (ip, "255.255.255.0", ip.rsplit(".", 1)[0] + ".1",
                    ip.rsplit(".", 1)[0] + ".1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def ipconfig(self, *args, **kw):
        if kw:
            return None  # dhcp4=, addr4=, gw4=: accepted, not simulated
        a = self.ifconfig()
        vals = {"addr4": (a[0], a[1]), "gw4": a[2], "dhcp4": True,
                "has_dhcp4": self._if == STA_IF}
        if len(args) != 1 or args[0] not in vals:
            raise ValueError("unexpected key")
        return vals[args[0]]

    # -- configuration -----------------------------------------------------

    def config(self, *args, **kw):
        if kw:
            old = dict(self._cfg)
            for k, v in kw.items():
                if k == "key":
                    k = "password"
                if k == "ssid":
                    k = "essid"
                if k == "hostname" or k == "dhcp_hostname":
                    _set_hostname(v)
                elif k in self._cfg or k in ("security",):
                    self._cfg["authmode" if k == "security" else k] = v
                else:
                    raise ValueError("unknown config param")
            if self._if == AP_IF:
                c = self._cfg
                if c["authmode"] != AUTH_OPEN and \
                        not 8 <= len(c["password"]) <= 64:
                    # as ESP-IDF refuses a WPA key of the wrong length
                    self._cfg = old
                    raise OSError("Wifi Invalid Password")
                _record(self)
            return None
        if len(args) != 1:
            raise TypeError("can query only one param")
        k = args[0]
        if k == "mac":
            opt = _air()[1]
            m = _mac_bytes(opt.get("mac", "24:0a:c4:12:34:56"))
            if self._if == AP_IF:
                m = m[:5] + bytes(((m[5] + 1) & 255,))
            return m
        if k in ("hostname", "dhcp_hostname"):
            return _state["hostname"]
        if k in ("essid", "ssid"):
            if self._if == STA_IF and self._ap is None and \
                    self._status != STAT_CONNECTING:
                return ""
            return self._cfg["essid"]
        if k == "security":
            k = "authmode"
        if k in self._cfg and k not in ("password", "key"):
            return self._cfg[k]
        raise ValueError("unknown config param")
