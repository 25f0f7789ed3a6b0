"""The WLAN slots, the manager and the set-up page, on the unix port with
the simulated network module (boards/unix/network.py)."""
import base64
import json
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import REPO, FIRMWARE, free_port, start, unixport

BOARD = REPO / "boards" / "unix"
PATH = ".frozen:%s:%s" % (FIRMWARE, BOARD)

HOME = {"ssid": "home", "password": "homepass1", "rssi": -70,
        "connect_delay": 0.05}
CAFE = {"ssid": "cafe", "password": "cafepass1", "rssi": -40,
        "connect_delay": 0.05}
SHOP = {"ssid": "shop", "password": "", "rssi": -55, "connect_delay": 0.05}


def air(tmp_path, aps, **opt):
    opt["aps"] = aps
    (tmp_path / "fake_aps.json").write_text(json.dumps(opt))


def env(tmp_path, path=PATH):
    e = unixport.environment()
    e["MICROPYPATH"] = path
    e["LWS_FAKE_APS"] = str(tmp_path / "fake_aps.json")
    e["LWS_FAKE_AP_STATE"] = str(tmp_path / "ap_state.json")
    return e


def ap_state(tmp_path):
    """What the simulated radio's access point was last set to."""
    return json.loads((tmp_path / "ap_state.json").read_text())


def saved_ap_password(tmp_path):
    return json.loads((tmp_path / "wlan.json").read_text()).get(
        "ap_password")


def mpy(tmp_path, code, heap=None, timeout=30, path=PATH):
    argv = [unixport.micropython()]
    if heap:
        argv += ["-X", "heapsize=%s" % heap]
    r = subprocess.run(argv + ["-c", code], env=env(tmp_path, path),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=timeout)
    return r


def result(r):
    """The last stdout line, as JSON."""
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# a manager whose events are recorded; fast timings for the tests
PRELUDE = """
import json, time, network
from lws.wlan import Slots, Manager
ev = []
def rec(state, info):
    ev.append([state, info.get('ssid'), info.get('reason')])
def tried():
    return [e[1] for e in ev if e[0] == 'connecting']
"""


def manager(args="", slots=()):
    adds = "".join("s.add(%r, %r)\n" % a for a in slots)
    return (PRELUDE + "s = Slots()\n" + adds +
            "m = Manager(s, timeout=1, on_change=rec, backoff=0.2%s)\n"
            % ("," + args if args else ""))


# -- the simulated network itself -----------------------------------------

def test_network_sim_api(tmp_path):
    air(tmp_path, [dict(HOME, connect_delay=0.5), dict(SHOP, hidden=True)],
        mac="24:0a:c4:00:ab:cd")
    r = mpy(tmp_path, """
import network, time, json
w = network.WLAN(network.STA_IF)
out = {'same': w is network.WLAN(network.STA_IF), 'active0': w.active()}
try:
    w.scan()
except OSError:
    out['scan_inactive'] = True
w.active(True)
out['scan'] = [[s.decode(), len(b), c, r, sec, h] for s, b, c, r, sec, h in w.scan()]
w.connect('home', 'homepass1')
out['during'] = w.status()
time.sleep(0.6)
out['after'] = w.status()
out['isconnected'] = w.isconnected()
out['rssi'] = w.status('rssi')
out['ip'] = w.ifconfig()[0]
out['addr4'] = w.ipconfig('addr4')[0]
out['essid'] = w.config('essid')
network.hostname('board-1')
out['hostname'] = [network.hostname(), w.config('hostname')]
w.connect('home', 'wrongpass')
time.sleep(0.6)
out['wrong'] = w.status()
w.connect('nowhere', 'whatever1')
time.sleep(0.35)
out['missing'] = w.status()
w.disconnect()
out['idle'] = w.status()
ap = network.WLAN(network.AP_IF)
ap.active(True)
ap.config(essid='lws-test', authmode=network.AUTH_OPEN)
out['ap'] = [ap.active(), ap.config('essid'), ap.ifconfig()[0]]
out['mac'] = list(w.config('mac'))
out['consts'] = [network.STAT_IDLE, network.STAT_CONNECTING,
                 network.STAT_WRONG_PASSWORD, network.STAT_NO_AP_FOUND,
                 network.STAT_CONNECT_FAIL, network.STAT_GOT_IP]
print(json.dumps(out))
""")
    o = result(r)
    assert o["same"] and o["active0"] is False and o["scan_inactive"]
    assert o["scan"] == [["home", 6, 1, -70, 3, False],
                         ["", 6, 1, -55, 0, True]]
    assert o["during"] == 1001 and o["after"] == 1010 and o["isconnected"]
    assert o["rssi"] == -70 and o["ip"].startswith("192.168.")
    assert o["addr4"] == o["ip"] and o["essid"] == "home"
    assert o["hostname"] == ["board-1", "board-1"]
    assert o["wrong"] == 202 and o["missing"] == 201 and o["idle"] == 1000
    assert o["ap"] == [True, "lws-test", "192.168.4.1"]
    assert o["mac"] == [0x24, 0x0a, 0xc4, 0, 0xab, 0xcd]
    assert o["consts"] == [1000, 1001, 202, 201, 203, 1010]


def test_network_sim_flaky_is_seeded(tmp_path):
    air(tmp_path, [dict(CAFE, flaky=0.5, connect_delay=0)], seed=7)
    code = """
import network, time
w = network.WLAN(0)
w.active(True)
r = []
for i in range(12):
    w.connect('cafe', 'cafepass1')
    time.sleep_ms(1)
    r.append(w.status())
print(r)
"""
    a = mpy(tmp_path, code).stdout
    b = mpy(tmp_path, code).stdout
    assert a == b
    r = json.loads(a)
    assert 203 in r and 1010 in r


# -- slots ----------------------------------------------------------------

def test_slots_add_replace_full_remove(tmp_path):
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots(n=4)
out = []
out.append(s.add('a', 'password1'))
out.append(s.add('b', ''))
out.append(s.add('a', 'password2'))      # same SSID: same slot
out.append(s.add('c', 'password3', slot=3))
out.append(s.add('d', 'password4'))
for bad in (('e', 'password5'), ('', 'x'), ('f', 'short'), ('x' * 33, '')):
    try:
        s.add(*bad)
        out.append('no error')
    except ValueError as e:
        out.append(str(e))
out.append(s.remove('b'))
out.append(s.remove(3))
out.append(s.remove('zzz'))
out.append(s.add('e', 'password5'))
out.append(s.get(0))
out.append(s.list())
print(json.dumps(out))
""")
    o = result(r)
    assert o[:5] == [0, 1, 0, 3, 2]
    assert "all 4 slots are in use" in o[5]
    assert "SSID" in o[6] and "8..64" in o[7] and "SSID" in o[8]
    assert o[9:12] == [True, True, False]
    assert o[12] == 1
    assert o[13] == ["a", "password2"]
    assert [e["ssid"] for e in o[14]] == ["a", "e", "d"]


def test_list_never_leaks_passwords(tmp_path):
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots()
s.add('home', 'topsecret1')
s.add('open', '')
s.set_good(0)
print(json.dumps(s.list()))
""")
    o = result(r)
    assert "topsecret1" not in json.dumps(o)
    assert o == [{"slot": 0, "ssid": "home", "open": False,
                  "last_good": True},
                 {"slot": 1, "ssid": "open", "open": True,
                  "last_good": False}]
    assert "topsecret1" in (tmp_path / "wlan.json").read_text()


def test_persistence_across_restarts(tmp_path):
    air(tmp_path, [HOME, CAFE])
    r = mpy(tmp_path, manager(slots=[("home", "homepass1"),
                                     ("cafe", "cafepass1")]) +
            "print(json.dumps([m.connect(5), m.ssid]))")
    assert result(r) == [True, "cafe"]
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots()
print(json.dumps([s.list(), s.last_good, s.get(0)]))
""")
    lst, good, first = result(r)
    assert [e["ssid"] for e in lst] == ["home", "cafe"]
    assert good == 1 and first == ["home", "homepass1"]
    assert not (tmp_path / "wlan.json.tmp").exists()


@pytest.mark.parametrize("junk", [
    '{"version": 1, "last_good": 0, "slots": [{"ssid": "home", "pass',
    "\x00\x00\x00\x00",
    '["not", "a", "slot", "file"]',
    "",
])
def test_corrupt_slot_file_recovered(tmp_path, junk):
    (tmp_path / "wlan.json").write_text(junk)
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots()
a = s.list()
s.add('home', 'homepass1')
print(json.dumps([a, Slots().list()]))
""")
    before, after = result(r)
    assert before == [] and [e["ssid"] for e in after] == ["home"]
    assert "ERR: wlan: slot file wlan.json is corrupt" in r.stderr
    assert "kept as wlan.json.bad" in r.stderr
    assert (tmp_path / "wlan.json.bad").read_text() == junk


def test_bad_entries_skipped(tmp_path):
    (tmp_path / "wlan.json").write_text(json.dumps(
        {"last_good": 3, "slots": [{"ssid": "ok", "password": "password1"},
                                   {"ssid": 5}, "junk",
                                   {"ssid": "x" * 40}, None, None, None]}))
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots()
print(json.dumps([s.list(), s.last_good, len(s.slots)]))
""")
    lst, good, n = result(r)
    assert [e["ssid"] for e in lst] == ["ok"] and good is None and n == 4


def test_atomic_write_crash_before_rename(tmp_path):
    """Power lost after the temp file was written, before the rename: the
    old file is whole, the stray temp file is cleaned up at the next load."""
    r = mpy(tmp_path, """
import json, os
import lws.wlan as wlan
import lws.atomic as atomic
s = wlan.Slots()
s.add('home', 'homepass1')
class Crash:
    remove = os.remove
    def rename(self, a, b):
        raise KeyboardInterrupt   # the power goes here
atomic.os = Crash()   # the file's writes go through lws.atomic
try:
    s.add('cafe', 'cafepass1')
except KeyboardInterrupt:
    pass
print(json.dumps(sorted(os.listdir('.'))))
""")
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout.strip().splitlines()[-1])
    assert "wlan.json.tmp" in files
    old = json.loads((tmp_path / "wlan.json").read_text())
    assert [e and e["ssid"] for e in old["slots"]] == ["home", None, None,
                                                       None]
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
print(json.dumps([e['ssid'] for e in Slots().list()]))
""")
    assert result(r) == ["home"]
    assert "removed wlan.json.tmp left by an interrupted save" in r.stderr
    assert not (tmp_path / "wlan.json.tmp").exists()


def test_save_syncs_before_rename(tmp_path):
    """The temp file is flushed (os.sync, where the port has one) before
    the rename makes it the slot file; the load-time recovery is as
    before."""
    r = mpy(tmp_path, """
import json, os
import lws.wlan as wlan
import lws.atomic as atomic
calls = []
class Os:
    def __getattr__(self, k):
        return getattr(os, k)
    def sync(self):
        calls.append(['sync', sorted(os.listdir('.'))])
    def rename(self, a, b):
        calls.append(['rename', a, b])
        os.rename(a, b)
atomic.os = Os()
s = wlan.Slots()
s.add('home', 'homepass1')
s.remove('home')
print(json.dumps(calls))
""")
    step = [["sync", ["wlan.json.tmp"]],
            ["rename", "wlan.json.tmp", "wlan.json"],
            ["sync", ["wlan.json", "wlan.json.tmp"]],
            ["rename", "wlan.json.tmp", "wlan.json"]]
    assert result(r) == step


def test_half_written_temp_file_removed(tmp_path):
    (tmp_path / "wlan.json").write_text(json.dumps(
        {"slots": [{"ssid": "home", "password": "homepass1"}]}))
    (tmp_path / "wlan.json.tmp").write_text('{"slots": [{"ssid": "ca')
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
print(json.dumps([e['ssid'] for e in Slots().list()]))
""")
    assert result(r) == ["home"]
    assert "half written by an interrupted save" in r.stderr
    assert not (tmp_path / "wlan.json.tmp").exists()


def test_temp_file_recovered_when_main_file_gone(tmp_path):
    """File systems that cannot rename over a file remove the old one
    first: a crash between the two leaves only the (whole) temp file."""
    (tmp_path / "wlan.json.tmp").write_text(json.dumps(
        {"last_good": 0,
         "slots": [{"ssid": "home", "password": "homepass1"}]}))
    r = mpy(tmp_path, """
import json
from lws.wlan import Slots
s = Slots()
print(json.dumps([[e['ssid'] for e in s.list()], s.last_good]))
""")
    assert result(r) == [["home"], 0]
    assert "recovered the slots from wlan.json.tmp" in r.stderr
    assert (tmp_path / "wlan.json").exists()
    assert not (tmp_path / "wlan.json.tmp").exists()


# -- the manager ------------------------------------------------------------

def test_order_by_rssi_then_slot(tmp_path):
    aps = [dict(HOME, password="other"), dict(CAFE, password="other"),
           dict(SHOP, password="other2xx"),
           {"ssid": "far", "password": "other", "rssi": -90}]
    air(tmp_path, aps + [{"ssid": "twin", "password": "x", "rssi": -55}])
    r = mpy(tmp_path, manager(slots=[
        ("home", "homepass1"), ("far", "farpass12"), ("shop", ""),
        ("twin", "twinpass1")]) +
        "print(json.dumps([m.connect(8), tried(), m.attempts]))")
    ok, order, attempts = result(r)
    assert not ok
    # -55 ties: shop (slot 2) before twin (slot 3)
    assert order == ["shop", "twin", "home", "far"]
    assert attempts == 4  # wrong passwords are not retried


def test_last_good_first(tmp_path):
    air(tmp_path, [HOME, CAFE])
    (tmp_path / "wlan.json").write_text(json.dumps(
        {"last_good": 0, "slots": [
            {"ssid": "home", "password": "homepass1"},
            {"ssid": "cafe", "password": "cafepass1"}]}))
    r = mpy(tmp_path, manager() + "print(json.dumps([m.connect(5), tried(), m.status()]))")
    ok, order, st = result(r)
    assert ok and order == ["home"]
    assert st["state"] == "connected" and st["ssid"] == "home"
    assert st["rssi"] == -70 and st["ap"] is None


def test_hidden_network_tried_after_visible_ones(tmp_path):
    air(tmp_path, [dict(SHOP, hidden=True), dict(HOME, password="changed1")])
    r = mpy(tmp_path, manager(slots=[("shop", ""), ("home", "homepass1")]) +
            "print(json.dumps([m.connect(5), tried()]))")
    assert result(r) == [True, ["home", "shop"]]


def test_wrong_password_then_next(tmp_path):
    air(tmp_path, [HOME, CAFE])
    r = mpy(tmp_path, manager(slots=[("cafe", "badpass12"),
                                     ("home", "homepass1")]) +
            "print(json.dumps([m.connect(5), ev, m.slots.last_good]))")
    ok, ev, good = result(r)
    assert ok
    assert ["failed", "cafe", "wrong password"] in ev
    assert [e[1] for e in ev if e[0] == "connecting"] == ["cafe", "home"]
    assert good == 1


def test_ap_missing(tmp_path):
    """A saved network that is not in range is not tried; asked for
    explicitly (kick), it ends in 'network not found'."""
    air(tmp_path, [HOME], missing_delay=0.05)
    r = mpy(tmp_path, manager(slots=[("gone", "gonepass1")]) + """
ok = m.connect(5)
m.kick('gone')
end = time.ticks_add(time.ticks_ms(), 3000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not any(e[2] == 'network not found' for e in ev):
    m.step()
    time.sleep_ms(10)
print(json.dumps([ok, ev, m.error]))
""")
    ok, ev, err = result(r)
    assert not ok
    assert ev[1] == ["ap", None, None]
    assert ["waiting", None, "no saved network in range"] in ev
    assert ["failed", "gone", "network not found"] in ev


def test_flaky_ap_retried(tmp_path):
    # seed 2: the first connect fails, the second gets through
    air(tmp_path, [dict(CAFE, flaky=0.5)], seed=2)
    r = mpy(tmp_path, manager(slots=[("cafe", "cafepass1")]) +
            "print(json.dumps([m.connect(5), ev, m.attempts]))")
    ok, ev, attempts = result(r)
    assert ok and attempts == 2
    assert ev[2][0] == "failed" and ev[2][2].startswith("connect failed")
    assert ev[-1] == ["connected", "cafe", None]


def test_flaky_ap_retried_in_later_rounds(tmp_path):
    # seed 2: fails, then gets through; one try per round: the second
    # round, in the background after the AP opened, connects
    air(tmp_path, [dict(CAFE, flaky=0.5)], seed=2)
    r = mpy(tmp_path, manager("retries=1", slots=[("cafe", "cafepass1")]) +
            """
ok = m.connect(1)
end = time.ticks_add(time.ticks_ms(), 10000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not m.isconnected():
    m.step()
    time.sleep_ms(10)
print(json.dumps([ok, m.isconnected(), m.attempts, m.ap, tried()]))
""")
    ok, conn, attempts, ap, order = result(r)
    assert not ok and conn and attempts == 2 and ap is None
    assert order == ["cafe", "cafe"]


def test_all_failing_gives_ap_then_background_retry(tmp_path):
    air(tmp_path, [dict(HOME, password="changed1")], mac="24:0a:c4:00:ab:cd")
    r = mpy(tmp_path, manager(slots=[("home", "homepass1")]) + """
ok = m.connect(5)
ap = network.WLAN(network.AP_IF)
out = [ok, m.ap, ap.active(), ap.config('essid'), m.state]
# the AP comes back with the saved password: the manager finds it
f = open(__import__('os').getenv('LWS_FAKE_APS'), 'w')
f.write(json.dumps({'mac': '24:0a:c4:00:ab:cd', 'aps': [
    {'ssid': 'home', 'password': 'homepass1', 'connect_delay': 0.05}]}))
f.close()
end = time.ticks_add(time.ticks_ms(), 5000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not m.isconnected():
    m.step()
    time.sleep_ms(10)
out += [m.isconnected(), m.ap, ap.active()]
print(json.dumps(out))
""")
    o = result(r)
    assert o[:5] == [False, "lws-ABCD", True, "lws-ABCD", "waiting"]
    assert o[5:] == [True, None, False]


def test_ap_with_password_and_name(tmp_path):
    air(tmp_path, [])
    r = mpy(tmp_path, PRELUDE + """
m = Manager(Slots(), ap_ssid='my-board', ap_password='apsecret1', hostname='lws-h')
ok = m.connect(2)
ap = network.WLAN(network.AP_IF)
print(json.dumps([ok, ap.config('essid'), ap.config('authmode'), network.hostname()]))
""")
    assert result(r) == [False, "my-board", 3, "lws-h"]
    assert ap_state(tmp_path)["password"] == "apsecret1"
    # a configured password: the board makes none of its own
    assert not (tmp_path / "wlan.json").exists()


# the board's own AP password: no 0/o, 1/l, to be read off a console
AP_ALPHABET = set("abcdefghijkmnpqrstuvwxyz23456789")

AP_UP = PRELUDE + """
m = Manager(Slots(), timeout=1, backoff=0.2%s)
ok = m.connect(2)
ap = network.WLAN(network.AP_IF)
print(json.dumps([ok, m.ap, ap.active(), ap.config('authmode')]))
"""


def test_ap_is_wpa2_with_a_stable_board_password(tmp_path):
    """No ap_password: the access point is WPA2 all the same, with a
    password made once for this board, kept, and printed."""
    boards = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        air(d, [])
        r = mpy(d, AP_UP % "")
        assert result(r) == [False, "lws-3456", True, 3]
        st = ap_state(d)
        pw = st["password"]
        assert st["active"] and st["essid"] == "lws-3456"
        assert st["authmode"] == 3
        assert len(pw) >= 8 and set(pw) <= AP_ALPHABET
        assert "wlan: access point lws-3456: WPA2, password %s" % pw \
            in r.stderr
        assert saved_ap_password(d) == pw
        # the next boot: the same password
        r = mpy(d, AP_UP % "")
        assert result(r)[3] == 3 and ap_state(d)["password"] == pw
        assert "password %s" % pw in r.stderr
        # never among the saved networks
        r = mpy(d, "from lws.wlan import Slots\nprint(Slots().list())")
        assert pw not in r.stdout
        boards.append(pw)
    # another board, another password
    assert boards[0] != boards[1]


def test_ap_open_only_when_asked(tmp_path):
    air(tmp_path, [])
    r = mpy(tmp_path, AP_UP % ", ap_open=True")
    assert result(r) == [False, "lws-3456", True, 0]
    st = ap_state(tmp_path)
    assert st["authmode"] == 0 and st["password"] == ""
    assert "WARN: wlan: access point lws-3456 is open (ap_open)" in r.stderr
    # a configured password wins over ap_open
    r = mpy(tmp_path, AP_UP % ", ap_open=True, ap_password='apsecret1'")
    assert result(r)[3] == 3 and ap_state(tmp_path)["password"] == \
        "apsecret1"


def test_link_lost_reconnects(tmp_path):
    air(tmp_path, [HOME, CAFE])
    r = mpy(tmp_path, manager(slots=[("home", "homepass1"),
                                     ("cafe", "cafepass1")]) + """
ok = m.connect(5)
first = m.ssid
f = open(__import__('os').getenv('LWS_FAKE_APS'), 'w')
f.write(json.dumps({'aps': [%s]}))
f.close()
end = time.ticks_add(time.ticks_ms(), 5000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not (m.isconnected() and m.ssid == 'home'):
    m.step()
    time.sleep_ms(10)
print(json.dumps([ok, first, m.ssid, [e[0] for e in ev if e[0] == 'lost']]))
""" % json.dumps(HOME))
    assert result(r) == [True, "cafe", "home", ["lost"]]


def test_hostname_set_before_the_radio_comes_up(tmp_path):
    """ESP32 gives the hostname to DHCP at connect() and to its mDNS
    responder (HOSTNAME.local) at the first address, once a boot: the
    manager sets it before either. Set later, the board keeps the old
    name, and the simulated radio tells."""
    air(tmp_path, [HOME])
    r = mpy(tmp_path, manager("hostname='lws-kitchen'",
                              slots=[("home", "homepass1")]) + """
print(json.dumps([m.connect(5), network.hostname()]))
""")
    assert result(r) == [True, "lws-kitchen"]
    st = ap_state(tmp_path)
    assert st["dhcp_hostname"] == st["mdns_hostname"] == "lws-kitchen"
    r = mpy(tmp_path, """
import network, time
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect('home', 'homepass1')
time.sleep(0.2)
print(w.isconnected())
network.hostname('too-late')
""")
    assert r.stdout.split() == ["True"], r.stderr
    st = ap_state(tmp_path)
    assert st["dhcp_hostname"] == st["mdns_hostname"] == "mpy-unix"


def test_hostname_without_network_hostname(tmp_path):
    """Ports older than MicroPython 1.20 have no network.hostname(): the
    name goes to config(dhcp_hostname=...); a name no port takes is a
    warning, and the board comes up with its own."""
    air(tmp_path, [HOME])
    r = mpy(tmp_path, "import network\ndel network.hostname\n" +
            manager("hostname='lws-old'", slots=[("home", "homepass1")]) +
            "print(json.dumps(m.connect(5)))\n")
    assert result(r) is True
    assert ap_state(tmp_path)["mdns_hostname"] == "lws-old"
    d = tmp_path / "bad"
    d.mkdir()
    air(d, [HOME])
    r = mpy(d, manager("hostname='x' * 40", slots=[("home", "homepass1")]) +
            "print(json.dumps(m.connect(5)))\n")
    assert result(r) is True
    assert "WARN: wlan: cannot set the hostname " + "x" * 40 in r.stderr
    assert ap_state(d)["mdns_hostname"] == "mpy-unix"


# -- the set-up page over HTTP -----------------------------------------------

def board(tmp_path, cfg, aps, heap=None, path=PATH):
    air(tmp_path, aps, mac="24:0a:c4:00:12:ef")
    port = free_port()
    cfg.setdefault("server", {})["port"] = port
    (tmp_path / "lws.json").write_text(json.dumps(cfg))
    return start(tmp_path, script="-c", args=["import boot, main"],
                 env=env(tmp_path, path), heap=heap, port=port)


def wait_for(fn, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out")


def basic(user, password):
    """The Authorization header of HTTP Basic authentication."""
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def status(srv, auth=None):
    st, _, body = srv.get("/setup/status.json", auth)
    assert st == 200
    return json.loads(body)


def page_token(srv, auth=None):
    """The CSRF token in the set-up page's forms."""
    st, _, page = srv.get("/setup", auth)
    assert st == 200
    toks = set(re.findall(rb"<input type=hidden name=token value=(\w+)>",
                          page))
    assert len(toks) == 1, page
    return toks.pop().decode()


PAGE = object()  # post(): take the token from the page


def post_full(srv, path, fields, token=PAGE, headers=None, auth=None):
    """A form POST as a browser sends it from the set-up page: with the
    page's token (token=None: without one), same-origin."""
    fields = dict(fields)
    if token is PAGE:
        token = page_token(srv, auth)
    if token is not None:
        fields["token"] = token
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(auth or {})
    h.update(headers or {})
    c = srv.conn()
    try:
        c.request("POST", path, body=urllib.parse.urlencode(fields),
                  headers=h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def post(srv, path, fields, **kw):
    st, _, body = post_full(srv, path, fields, **kw)
    return st, body


@pytest.fixture
def boards():
    started = []
    yield started
    for s in started:
        s.stop()


def test_setup_page_adds_a_slot_and_board_connects(tmp_path, boards):
    aps = [dict(HOME, password="homepass1")]
    srv = board(tmp_path, {"wlan": {"wait": 3, "options": {"backoff": 5}},
                           "server": {"docroot": ""}}, aps)
    boards.append(srv)
    st = status(srv)
    assert st["ap"] == "lws-12EF" and st["state"] == "waiting"
    assert st["slots"] == []
    code, _, page = srv.get("/setup")
    assert code == 200
    assert b"<form method=post action='/setup/add'>" in page
    assert b"lws-12EF" in page
    code, _, body = srv.get("/setup/scan.json")
    assert code == 200 and json.loads(body)[0]["ssid"] == "home"
    code, body = post(srv, "/setup/add", {"ssid": "home",
                                          "password": "homepass1"})
    assert code == 200 and b"slot 0" in body
    # connected, the access point closes and with it the set-up page
    # ("setup": "ap")
    wait_for(lambda: srv.get("/setup/status.json")[0] == 404, 10)
    log = srv.log()
    assert "wlan: connected" in log and "ssid=home" in log
    assert "wlan: access point lws-12EF closed" in log
    assert "homepass1" not in log
    saved = json.loads((tmp_path / "wlan.json").read_text())
    assert saved["slots"][0] == {"ssid": "home", "password": "homepass1"}
    assert saved["last_good"] == 0


ADMIN = basic("admin", "adminpass1")


def test_setup_always_shows_connected_state(tmp_path, boards):
    srv = board(tmp_path, {"wlan": {"wait": 3, "setup": "always",
                                    "setup_password": "adminpass1",
                                    "options": {"backoff": 5}},
                           "server": {"docroot": ""}}, [CAFE])
    boards.append(srv)
    assert post(srv, "/setup/add", {"ssid": "cafe", "password": "cafepass1"},
                auth=ADMIN)[0] == 200
    st = wait_for(lambda: (lambda s: s["state"] == "connected" and s)(
        status(srv, ADMIN)), 10)
    assert st["ssid"] == "cafe" and st["ap"] is None and st["rssi"] == -40
    assert st["slots"] == [{"slot": 0, "ssid": "cafe", "open": False,
                            "last_good": True}]
    assert "cafepass1" not in json.dumps(st)
    code, _, page = srv.get("/setup", ADMIN)
    assert code == 200 and b"connected to cafe" in page
    assert b"cafepass1" not in page
    # on the station network now: still only with the credentials
    assert srv.get("/setup/status.json")[0] == 401
    # setup_password is the password, not the access point's
    ap_pw = saved_ap_password(tmp_path)
    assert srv.get("/setup", basic("admin", ap_pw))[0] == 401


def test_setup_page_errors_and_remove(tmp_path, boards):
    srv = board(tmp_path, {"wlan": {"wait": 2, "setup": "always",
                                    "setup_password": "adminpass1"},
                           "server": {"docroot": ""}}, [])
    boards.append(srv)
    tok = page_token(srv, ADMIN)

    def add(fields):
        return post(srv, "/setup/add", fields, token=tok, auth=ADMIN)[0]
    assert add({"ssid": "x", "password": "short"}) == 400
    assert add({"password": "password1"}) == 400
    assert add({"ssid": "a" * 300}) in (400, 413)
    assert add({"ssid": "<b>&", "password": ""}) == 200
    _, _, page = srv.get("/setup", ADMIN)
    assert b"&lt;b&gt;&amp;" in page and b"<b>&" not in page
    assert post(srv, "/setup/remove", {"slot": "0"}, auth=ADMIN)[0] == 200
    assert status(srv, ADMIN)["slots"] == []
    assert post(srv, "/setup/remove", {"slot": "0"}, auth=ADMIN)[0] == 404
    assert srv.get("/setup/nothing", ADMIN)[0] == 404
    assert srv.proc.poll() is None


HOME_FORM = {"ssid": "home", "password": "homepass1"}


def saved_ssids(tmp_path):
    f = tmp_path / "wlan.json"
    if not f.exists():
        return []
    return [e["ssid"] for e in json.loads(f.read_text())["slots"] if e]


def test_setup_changes_need_the_page_token(tmp_path, boards):
    """A POST without the token of this boot's page (a form on another
    site, a script on the network) is refused and changes nothing."""
    srv = board(tmp_path, {"wlan": {"wait": 2}, "server": {"docroot": ""}},
                [])
    boards.append(srv)
    st, h, page = srv.get("/setup")
    assert st == 200 and h["Cache-Control"] == "no-store"
    tok = page_token(srv)
    assert len(tok) >= 32
    for bad in (None, "", "0" * len(tok), tok[:-1], tok + "0"):
        st, h, _ = post_full(srv, "/setup/add", HOME_FORM, token=bad)
        assert st == 403, bad
        assert h["Cache-Control"] == "no-store"
    assert status(srv)["slots"] == [] and saved_ssids(tmp_path) == []
    st, h, body = post_full(srv, "/setup/add", HOME_FORM, token=tok)
    assert st == 200 and b"slot 0" in body
    assert h["Cache-Control"] == "no-store"
    assert saved_ssids(tmp_path) == ["home"]
    # every form on the page carries the token: add and forget
    _, _, page = srv.get("/setup")
    assert page.count(b"<form") == 2
    assert page.count(b"name=token value=%s>" % tok.encode()) == 2
    # remove likewise
    for bad in (None, "0" * len(tok)):
        assert post(srv, "/setup/remove", {"slot": "0"}, token=bad)[0] == 403
    assert saved_ssids(tmp_path) == ["home"]
    st, h, _ = post_full(srv, "/setup/remove", {"slot": "0"}, token=tok)
    assert st == 200 and h["Cache-Control"] == "no-store"
    assert saved_ssids(tmp_path) == []


def test_setup_token_is_new_each_boot(tmp_path):
    air(tmp_path, [])
    r = mpy(tmp_path, """
from lws.wlan import Slots, Manager
from lws.plugins.wlan_setup import WlanSetup
m = Manager(Slots())
print(WlanSetup(m).token, WlanSetup(m).token)
""")
    a, b = r.stdout.split()
    assert a != b and len(a) >= 32


def test_setup_changes_refused_from_another_origin(tmp_path, boards):
    srv = board(tmp_path, {"wlan": {"wait": 2}, "server": {"docroot": ""}},
                [])
    boards.append(srv)
    tok = page_token(srv)
    host = "127.0.0.1:%d" % srv.port
    for h in ({"Origin": "http://evil.example"}, {"Origin": "null"},
              {"Origin": "http://127.0.0.1:%d" % (srv.port + 1)},
              {"Origin": "https://" + host},
              {"Referer": "http://evil.example/setup"},
              {"Origin": "http://evil.example",
               "Referer": "http://%s/setup" % host}):
        for path, form in (("/setup/add", HOME_FORM),
                           ("/setup/remove", {"ssid": "home"})):
            st, hd, _ = post_full(srv, path, form, token=tok, headers=h)
            assert st == 403, (path, h)
            assert hd["Cache-Control"] == "no-store"
        assert saved_ssids(tmp_path) == []
    # the board's own page: Origin or Referer name its host, or neither
    # is sent (a tool, an old browser)
    for h in ({"Origin": "http://" + host},
              {"Referer": "http://%s/setup?scan=1" % host}, {}):
        assert post(srv, "/setup/add", HOME_FORM, token=tok,
                    headers=h)[0] == 200
        assert saved_ssids(tmp_path) == ["home"]
        assert post(srv, "/setup/remove", {"ssid": "home"}, token=tok,
                    headers=h)[0] == 200
        assert saved_ssids(tmp_path) == []


def test_setup_always_needs_admin_credentials(tmp_path, boards):
    """"setup": "always" offers the page on the station network too: only
    to admin with setup_password, else with the access point's password."""
    srv = board(tmp_path, {"wlan": {"wait": 2, "setup": "always"},
                           "server": {"docroot": ""}}, [])
    boards.append(srv)
    pw = saved_ap_password(tmp_path)
    assert pw and ap_state(tmp_path)["password"] == pw
    good = basic("admin", pw)
    for path in ("/setup", "/setup/status.json", "/setup/scan.json",
                 "/setup?scan=1"):
        for auth in (None, basic("admin", "wrongpass1"), basic("root", pw),
                     basic("admin", pw[:-1]), basic("admin", ""),
                     {"Authorization": "Basic !!!"},
                     {"Authorization": "Bearer " + pw}):
            st, h, body = srv.get(path, auth)
            assert st == 401, (path, auth)
            assert h["WWW-Authenticate"] == 'Basic realm="lws-wlan-setup"'
            assert b"lws-12EF" not in body
        st, h, _ = srv.get(path, good)
        assert st == 200 and h["Cache-Control"] == "no-store"
    tok = page_token(srv, good)
    # a change without the credentials: refused, even with the token
    st, h, _ = post_full(srv, "/setup/add", HOME_FORM, token=tok)
    assert st == 401 and "WWW-Authenticate" in h
    assert post(srv, "/setup/add", HOME_FORM, token=tok,
                auth=basic("admin", "wrongpass1"))[0] == 401
    assert saved_ssids(tmp_path) == []
    # with them, and the token
    assert post(srv, "/setup/add", HOME_FORM, token=None,
                auth=good)[0] == 403
    assert post(srv, "/setup/add", HOME_FORM, token=tok, auth=good)[0] == 200
    assert saved_ssids(tmp_path) == ["home"]
    assert "set-up page at /setup, user admin, password %s" % pw \
        in srv.log()
    # curl's own Basic: the same
    def curl(*args):
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
             "%{http_code}", *args, srv.url + "/setup/status.json"],
            capture_output=True, text=True, timeout=20).stdout
    assert curl("-u", "admin:" + pw) == "200"
    assert curl("-u", "admin:" + pw + "x") == "401"
    assert curl() == "401"


def test_setup_ap_mode_asks_credentials_once_connected(tmp_path, boards):
    """"ap" mode with keep_ap: once a station is up the page is reachable
    from its network too, so it asks for admin's password."""
    srv = board(tmp_path, {"wlan": {"wait": 2, "options": {
        "backoff": 5, "keep_ap": True}}, "server": {"docroot": ""}}, [CAFE])
    boards.append(srv)
    assert status(srv)["ap"] == "lws-12EF"  # an access point only: open
    assert post(srv, "/setup/add", {"ssid": "cafe",
                                    "password": "cafepass1"})[0] == 200
    good = basic("admin", saved_ap_password(tmp_path))
    wait_for(lambda: srv.get("/setup/status.json")[0] == 401, 10)
    st = status(srv, good)
    assert st["state"] == "connected" and st["ap"] == "lws-12EF"
    assert srv.get("/setup", basic("admin", "cafepass1"))[0] == 401


# -- memory: the esp8266 budget is tested on the board-faithful 32-bit
# build, at the profile's own figure: tests/test_board_budget.py


def test_radio_errors_back_off_not_crash(tmp_path):
    air(tmp_path, [HOME])
    r = mpy(tmp_path, manager(slots=[("home", "homepass1")]) + """
class Broken:
    def __init__(self, sta):
        self.sta = sta
        self.errs = {'connect': 1, 'status': 1, 'scan': 1}
    def __getattr__(self, k):
        return getattr(self.sta, k)
    def _may_fail(self, k):
        if self.errs[k]:
            self.errs[k] -= 1
            raise OSError('Wifi Internal Error in ' + k)
    def connect(self, *a, **k):
        self._may_fail('connect')
        return self.sta.connect(*a, **k)
    def status(self, *a):
        self._may_fail('status')
        return self.sta.status(*a)
    def scan(self):
        self._may_fail('scan')
        return self.sta.scan()
m._network()
m.sta = Broken(m.sta)
end = time.ticks_add(time.ticks_ms(), 8000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not m.isconnected():
    m.step()
    time.sleep_ms(10)
print(json.dumps([m.isconnected(), m.sta.errs, [e for e in ev if e[0] in ('failed', 'waiting')]]))
""")
    ok, errs, failed = result(r)
    assert ok and errs == {"connect": 0, "status": 0, "scan": 0}
    assert ["failed", "home", "Wifi Internal Error in connect"] in failed
    assert ["waiting", None, "radio: Wifi Internal Error in status"] in failed
    assert "Traceback" not in r.stderr


def test_slot_forgotten_while_tried(tmp_path):
    air(tmp_path, [dict(HOME, rssi=-30, flaky=1.0, connect_delay=0.2),
                   CAFE])
    r = mpy(tmp_path, manager(slots=[("home", "homepass1"),
                                     ("cafe", "cafepass1")]) + """
m.step()
first = m.ssid
m.slots.remove('home')
end = time.ticks_add(time.ticks_ms(), 5000)
while time.ticks_diff(end, time.ticks_ms()) > 0 and not m.isconnected():
    m.step()
    time.sleep_ms(10)
print(json.dumps([first, m.ssid, tried(), m.slots.last_good]))
""")
    assert result(r) == ["home", "cafe", ["home", "cafe"], 1]
