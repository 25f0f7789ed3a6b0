"""WLAN slots and the lws.json config on a board, over the raw REPL.

The slots live on the board (`lws.wlan.Slots("wlan.json")`) and are
changed there, by snippets; passwords go to the board and never come back
(Slots.list() leaves them out) or get printed. The one exception is the
set-up access point's password (wifi_ap), which is there to be read by
the person setting the board up. lws.json is read, changed
on the host and written back atomically; values of secret-looking keys
are shown as ***.
"""
import json

from .board import Board
from .errors import LwsToolError

WLAN_FILE = "wlan.json"
CONFIG_FILE = "lws.json"
SECRET_WORDS = ("pass", "secret", "key", "psk", "token")

_SLOTS = "from lws import wlan\n_s=wlan.Slots(%r)" % WLAN_FILE


def _board(conn, port):
    return conn or Board(port)


def _done(b, conn):
    if conn is None:
        b.close()


def check_ssid(ssid):
    """An LwsToolError unless ssid is 1..32 bytes."""
    if not 0 < len(ssid.encode()) <= 32:
        raise LwsToolError("an SSID is 1..32 bytes, not %d"
                           % len(ssid.encode()))


def check_password(password):
    """An LwsToolError, naming no character of it, unless password is a
    WPA2 one (8..63 characters, or a key of 64 hex digits) or empty (an
    open network). Said before anything is sent to the board."""
    if not password:
        return
    n = len(password.encode())
    if n == 64 and all(c in "0123456789abcdefABCDEF" for c in password):
        return
    if not 8 <= n <= 63:
        raise LwsToolError(
            "a WPA2 password is 8..63 characters, or 64 hex digits (this "
            "one: %d%s); nothing was sent to the board"
            % (n, " bytes" if n != len(password) else ""))


def wifi_add(ssid, password="", slot=None, port=None, conn=None):
    """Save a network on the board; returns its slot number. The SSID and
    the password are checked first (check_ssid, check_password)."""
    check_ssid(ssid)
    check_password(password)
    b = _board(conn, port)
    try:
        return b.call(_SLOTS, "_s.add(%r,%r%s)" % (
            ssid, password or "", "" if slot is None else ",%d" % slot),
            secret=password or None)
    finally:
        _done(b, conn)


def wifi_list(port=None, conn=None):
    """[{"slot", "ssid", "open", ...}] without passwords."""
    b = _board(conn, port)
    try:
        rows = b.call(_SLOTS, "_s.list()")
    finally:
        _done(b, conn)
    return [{k: v for k, v in r.items() if not is_secret(k)}
            if isinstance(r, dict) else r for r in rows]


def wifi_remove(which, port=None, conn=None):
    """Forget a network by SSID (or slot number); False when not found."""
    b = _board(conn, port)
    try:
        return b.call(_SLOTS, "_s.remove(%r)" % (which,))
    finally:
        _done(b, conn)


# what the network module's STAT_* constants mean (their names differ
# in value from port to port: ESP32 1000.., ESP8266 0..)
STATES = {"IDLE": "idle", "CONNECTING": "connecting", "GOT_IP": "got IP",
          "WRONG_PASSWORD": "wrong password", "NO_AP_FOUND": "no AP found",
          "CONNECT_FAIL": "connect failed",
          "ASSOC_FAIL": "association failed",
          "BEACON_TIMEOUT": "beacon timeout (the AP went away)",
          "HANDSHAKE_TIMEOUT": "handshake timeout"}


def state_name(names):
    """(STAT_ name, words) for the names a status value has on the board
    (STAT_CONNECT_FAIL and STAT_ASSOC_FAIL can share one)."""
    for n in names:
        if n[5:] in STATES:
            return n, STATES[n[5:]]
    if names:
        return names[0], names[0][5:].lower().replace("_", " ")
    return None, None


def wifi_status(port=None, conn=None):
    """The station interface: {"active", "connected", "status", "stat"
    (the network module's STAT_* name), "state" (in words: "idle", "got
    IP", "wrong password", ...), "ssid" (connected or being tried; "" for
    none), "ip", "rssi" (when connected)}: what the board's network
    module can tell."""
    code = (
        "import network\n_w=network.WLAN(network.STA_IF)\n_d={}\n"
        "for _k,_f in (('active',lambda:_w.active()),"
        "('connected',lambda:_w.isconnected()),"
        "('status',lambda:_w.status()),"
        "('ssid',lambda:_w.config('essid')),"
        "('ip',lambda:_w.ifconfig()[0])):\n"
        " try:\n  _d[_k]=_f()\n except Exception as e:\n  pass\n"
        "_d['names']=[_k for _k in dir(network) if _k.startswith('STAT_')"
        " and getattr(network,_k)==_d.get('status')]\n"
        "if _d.get('connected'):\n"
        " try:\n  _d['rssi']=_w.status('rssi')\n except Exception:\n"
        "  pass\n")
    # no soft reset: it would drop the connection (on the simulated
    # network at least, which lives in the interpreter)
    b = conn or Board(port, soft_reset=False)
    try:
        d = b.call(code, "_d")
    finally:
        _done(b, conn)
    d["stat"], d["state"] = state_name(d.pop("names", []))
    if isinstance(d.get("ssid"), bytes):
        d["ssid"] = d["ssid"].decode(errors="replace")
    return d


def wifi_ap(port=None, conn=None):
    """The set-up access point as main.py brings it up from lws.json:
    {"ssid", "open", "password", "own", "admin"}. "own": the password is
    the board's own, made on the board (now, if it had none yet) and
    kept in wlan.json; "admin": the set-up page's password, or None when
    it is setup_password from lws.json (not shown)."""
    b = _board(conn, port)
    try:
        w = config_read(conn=b).get("wlan")
        if not isinstance(w, dict):
            w = {}
        pw = w.get("ap_password") or None
        # collected first: a stock esp8266 compiles lws.wlan from source
        # in a 40 KB heap that earlier commands' objects have scattered
        code = (
            "import gc\ngc.collect()\nfrom lws import wlan\n"
            "_m=wlan.Manager(wlan.Slots(%r),ap_ssid=%r,ap_password=%r)\n"
            "try:\n _n=_m.ap_ssid or _m.default_ap_ssid()\n"
            "except (ImportError,OSError,AttributeError):\n _n=None\n"
            "_d={'ssid':_n,'key':_m.ap_key()}\ndel _m,_n"
            % (w.get("slots", WLAN_FILE), w.get("ap_ssid"), pw))
        d = b.call(code, "_d", secret=pw)
    finally:
        _done(b, conn)
    is_open = bool(w.get("ap_open")) and not pw
    return {"ssid": d["ssid"], "open": is_open,
            "password": None if is_open else d["key"], "own": not pw,
            "admin": None if w.get("setup_password") else d["key"]}


def is_secret(key):
    k = str(key).lower()
    return any(w in k for w in SECRET_WORDS)


def masked(value, key=""):
    """A copy with the values of secret-looking keys replaced by ***."""
    if is_secret(key) and not isinstance(value, (dict, list)):
        return "***"
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    return value


def config_read(port=None, conn=None):
    b = _board(conn, port)
    try:
        raw = b.read(CONFIG_FILE)
    finally:
        _done(b, conn)
    if raw is None:
        return {}
    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise LwsToolError("%s on the board is not JSON (%s): lwstool "
                           "config push FILE replaces it" % (CONFIG_FILE, e))
    if not isinstance(cfg, dict):
        raise LwsToolError("%s on the board is not a JSON object"
                           % CONFIG_FILE)
    return cfg


def config_get(key=None, port=None, conn=None):
    """The whole config, or one (dotted) key's value."""
    cfg = config_read(port, conn)
    if key is None:
        return cfg
    v = cfg
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            raise LwsToolError("no %r in %s" % (key, CONFIG_FILE))
        v = v[part]
    return v


def parse_value(text):
    """VALUE as JSON when it is JSON (80, true, [1], {"a":1}), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def config_set(key, value, port=None, conn=None):
    """Set a (dotted) key and write lws.json back; returns the config."""
    b = _board(conn, port)
    try:
        cfg = config_read(conn=b)
        d = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(d.get(part), dict):
                d[part] = {}
            d = d[part]
        d[parts[-1]] = value
        b.write(CONFIG_FILE, json.dumps(cfg).encode())
        return cfg
    finally:
        _done(b, conn)


def config_push_data(cfg, port=None, conn=None):
    """Replace lws.json with cfg (a dict)."""
    if not isinstance(cfg, dict):
        raise LwsToolError("the config must be a JSON object")
    b = _board(conn, port)
    try:
        b.write(CONFIG_FILE, json.dumps(cfg).encode())
    finally:
        _done(b, conn)
    return cfg


def config_push(path, port=None, conn=None):
    """Replace lws.json with a local file (checked to be a JSON object)."""
    try:
        text = open(path, "rb").read()
        cfg = json.loads(text)
    except OSError as e:
        raise LwsToolError("cannot read %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise LwsToolError("%s is not JSON: %s" % (path, e))
    if not isinstance(cfg, dict):
        raise LwsToolError("%s is not a JSON object" % path)
    return config_push_data(cfg, port, conn)


def config_upload(path, url, user, password, cafile=None, timeout=30):
    """PUT a local configuration file to a board's lws-config mount (the
    graceful reload: checked there, nobody dropped); returns the board's
    answer. LwsToolError with the board's reason when it refuses it."""
    import base64
    import ssl
    import urllib.error
    import urllib.request
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise LwsToolError("cannot read %s: %s" % (path, e.strerror))
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    req = urllib.request.Request(url, data=data, method="PUT", headers={
        "Authorization": "Basic " + auth,
        "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as e:
        why = e.read().decode(errors="replace").strip()
        raise LwsToolError("%s refused the configuration (%d): %s"
                           % (url, e.code, why or e.reason))
    except (urllib.error.URLError, OSError) as e:
        raise LwsToolError("%s: %s" % (url, getattr(e, "reason", e)))
