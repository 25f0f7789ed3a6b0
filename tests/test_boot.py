"""boot.py -> main.py on the unix port: lws.json, WLAN through the slots
(simulated network), the server, and safe mode."""
import json
import socket
import subprocess
import time

from conftest import FIRMWARE, free_port, start, unixport
from test_wlan import (HOME, PATH, air, ap_state, boards,  # noqa: F401
                       env, saved_ap_password, status)

BOOT = "import boot, main"


def setup_board(tmp_path, cfg, aps=(HOME,), www=True):
    air(tmp_path, list(aps), mac="24:0a:c4:00:12:ef")
    if www:
        (tmp_path / "www").mkdir(exist_ok=True)
        (tmp_path / "www" / "index.html").write_text("<h1>board</h1>\n")
    (tmp_path / "lws.json").write_text(
        cfg if isinstance(cfg, str) else json.dumps(cfg))


def boot_once(tmp_path, path=PATH, timeout=30):
    """A boot that ends by itself (failure or safe mode)."""
    return subprocess.run([unixport.micropython(), "-c", BOOT],
                          env=env(tmp_path, path), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def serve(tmp_path, port):
    return start(tmp_path, script="-c", args=[BOOT], env=env(tmp_path),
                 port=port)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def boot_count(tmp_path):
    f = tmp_path / "boot_count"
    return int(f.read_text()) if f.exists() else None


def test_boot_main_serves_with_wlan(tmp_path, boards):
    port = free_port()
    setup_board(tmp_path, {
        "wlan": {"hostname": "lws-test", "wait": 5},
        "server": {"port": port, "docroot": "www",
                   "mounts": [["/status.json", "callback://lws-status"]],
                   "protocols": ["lws.plugins.status.Status",
                                 "lws.plugins.echo.Echo"]}})
    (tmp_path / "wlan.json").write_text(json.dumps(
        {"slots": [{"ssid": "home", "password": "homepass1"}]}))
    srv = serve(tmp_path, port)
    boards.append(srv)
    st, _, body = srv.get("/")
    assert st == 200 and body == b"<h1>board</h1>\n"
    st, _, body = srv.get("/status.json")
    s = json.loads(body)
    assert st == 200 and "heap" in s
    # an application's Status: counts, no peer addresses or ports
    assert "connections" not in s and b"127.0.0.1" not in body
    assert s["count"] >= 1 and s["roles"]["http"] >= 1
    log = srv.log()
    assert "main: WLAN connected to home" in log
    assert "main: serving on port %d" % port in log
    # the server is up: this boot counted as good
    assert boot_count(tmp_path) is None
    # connected, "setup": "ap" (the default): no set-up page, no portal
    assert srv.get("/setup")[0] == 404
    assert srv.get("/generate_204", {"Host": "clients3.google.com"})[0] \
        == 404
    assert "captive" not in srv.log()
    # lws.json's hostname, set before the radio came up: what DHCP and
    # (on ESP32) the mDNS responder announce
    ap = ap_state(tmp_path)
    assert ap["dhcp_hostname"] == ap["mdns_hostname"] == "lws-test"


def test_boot_without_network_goes_ap_with_setup(tmp_path, boards):
    port = free_port()
    # the old flat form of lws.json still works
    setup_board(tmp_path, {"port": port, "docroot": "www"}, aps=[])
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert srv.get("/")[0] == 200
    st = status(srv)
    assert st["ap"] == "lws-12EF" and st["state"] == "waiting"
    log = srv.log()
    assert "access point lws-12EF is up" in log
    # WPA2 with the board's own password, shown on the console
    ap = ap_state(tmp_path)
    pw = ap["password"]
    assert ap["essid"] == "lws-12EF" and ap["authmode"] == 3
    assert len(pw) >= 8 and saved_ap_password(tmp_path) == pw
    assert "access point lws-12EF: WPA2, password %s" % pw in log
    # the next boot: the same password
    srv.stop()
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert status(srv)["ap"] == "lws-12EF"
    assert ap_state(tmp_path)["password"] == pw
    assert "password %s" % pw in srv.log()


def test_ap_open_only_with_ap_open(tmp_path, boards):
    port = free_port()
    setup_board(tmp_path, {"wlan": {"ap_open": True}, "port": port,
                           "docroot": "www"}, aps=[])
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert status(srv)["ap"] == "lws-12EF"
    ap = ap_state(tmp_path)
    assert ap["authmode"] == 0 and ap["password"] == ""
    assert "WARN: wlan: access point lws-12EF is open (ap_open)" in srv.log()


def test_status_peers_only_when_asked(server_factory):
    """The test server shows its connections (Status(peers=True))."""
    srv = server_factory()
    st, _, body = srv.get("/status.json")
    s = json.loads(body)
    assert st == 200 and s["count"] >= 1
    assert any(c["peer"].startswith("127.0.0.1:") and c["role"] == "http"
               for c in s["connections"])


def test_flat_config_with_wlan_section(tmp_path, boards):
    port = free_port()
    setup_board(tmp_path, {"port": port, "docroot": "www",
                           "wlan": {"ap_ssid": "flat-ap",
                                    "ap_password": "flatpass1"}}, aps=[])
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert srv.get("/")[0] == 200
    assert status(srv)["ap"] == "flat-ap"
    ap = ap_state(tmp_path)
    assert ap["authmode"] == 3 and ap["password"] == "flatpass1"
    # a configured password: the board keeps none of its own
    assert not (tmp_path / "wlan.json").exists()


def test_bad_pieces_are_logged_not_fatal(tmp_path, boards):
    port = free_port()
    setup_board(tmp_path, {
        "wlan": False,
        "server": {"port": port, "docroot": "www",
                   "protocols": ["lws.plugins.nope.Nope",
                                 "lws.plugins.echo.Echo"]}})
    (tmp_path / "wlan.json").write_text("{half a file")
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert srv.get("/")[0] == 200
    assert "protocol lws.plugins.nope.Nope not loaded" in srv.log()
    assert srv.get("/setup")[0] == 404  # "wlan": false: radio left alone


def test_invalid_json_config_logged(tmp_path):
    setup_board(tmp_path, "{not json", www=False)
    # safe mode keeps main() from starting (the defaults want port 80);
    # its load_config() is then tried alone
    (tmp_path / "safe_mode").write_text("")
    r = subprocess.run(
        [unixport.micropython(), "-c", "import main\n"
         "from lws import board\nprint(board.load_config())"],
        env=env(tmp_path),
        cwd=str(tmp_path), capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    # what a board gets with no lws.json at all: lws.board.DEFAULTS
    cfg = r.stdout.strip().splitlines()[-1]
    assert "'port': 80" in cfg and "lws.plugins.status.Status" in cfg
    assert "lws.json is not valid JSON" in r.stdout + r.stderr


def test_safe_mode_after_three_failed_boots(tmp_path):
    port = free_port()
    # a bad option: the server never comes up
    setup_board(tmp_path, {"wlan": False,
                           "server": {"port": port, "docroot": "www",
                                      "options": {"no_such_option": 1}}})
    for n in (1, 2, 3):
        t = time.monotonic()
        r = boot_once(tmp_path)
        # main.py never crashes: its error is printed, the REPL would stay
        assert r.returncode == 0, r.stderr
        # through lws.config: the wrong key is named
        assert "main: failed: ConfigError('server.options.no_such_option" \
            in r.stdout or "global.no_such_option: unknown option" \
            in r.stdout
        assert boot_count(tmp_path) == n
        assert time.monotonic() - t < 10
    r = boot_once(tmp_path)
    assert r.returncode == 0
    out = r.stdout + r.stderr
    assert "SAFE MODE, nothing started: 3 boots in a row did not get the " \
        "server up" in out
    assert "main: failed" not in out
    assert boot_count(tmp_path) == 4
    assert not listening(port)
    # fixed config, count cleared: the next boot serves again
    setup_board(tmp_path, {"wlan": False,
                           "server": {"port": port, "docroot": "www"}})
    (tmp_path / "boot_count").unlink()
    srv = serve(tmp_path, port)
    try:
        assert srv.get("/")[0] == 200
        assert boot_count(tmp_path) is None
    finally:
        srv.stop()


def test_safe_mode_file(tmp_path):
    port = free_port()
    setup_board(tmp_path, {"wlan": False,
                           "server": {"port": port, "docroot": "www"}})
    (tmp_path / "safe_mode").write_text("")
    r = boot_once(tmp_path, timeout=10)
    assert r.returncode == 0
    assert "SAFE MODE, nothing started: the file safe_mode exists" in \
        r.stdout + r.stderr
    assert not listening(port)
    assert boot_count(tmp_path) == 1  # not cleared: nothing started


def test_broken_deploy_never_crashes_main(tmp_path):
    """A half-deployed lws that cannot be imported: main.py reports it and
    returns to the REPL, and the boots count towards safe mode."""
    bad = tmp_path / "deploy" / "lws"
    bad.mkdir(parents=True)
    (bad / "__init__.py").write_text("raise ImportError('broken deploy')\n")
    setup_board(tmp_path, {"server": {"port": free_port()}})
    path = ".frozen:%s:%s" % (tmp_path / "deploy", PATH.split(":", 1)[1])
    for n in (1, 2, 3):
        r = boot_once(tmp_path, path=path)
        assert r.returncode == 0, r.stderr
        assert "main: no lws on this board (broken deploy): run lwstool " \
            "deploy" in r.stdout
    r = boot_once(tmp_path, path=path)
    assert r.returncode == 0
    # safe mode is reported even without lws (plain print)
    assert "SAFE MODE" in r.stdout + r.stderr
    assert boot_count(tmp_path) == 4


def test_main_without_boot(tmp_path, boards):
    """main.py alone (no boot.py run): no count, it just serves."""
    port = free_port()
    setup_board(tmp_path, {"wlan": False,
                           "server": {"port": port, "docroot": "www"}})
    srv = start(tmp_path, script=FIRMWARE / "main.py", env=env(tmp_path),
                port=port)
    boards.append(srv)
    assert srv.get("/")[0] == 200


# -- board profiles and manifests ---------------------------------------------

BOARDS = FIRMWARE.parent / "boards"
CHIPS = {"esp32": ("0x1000", "xtensawin"), "esp32s3": ("0x0", "xtensawin"),
         "esp32c3": ("0x0", "rv32imc"), "esp8266": ("0x0", "xtensa")}


def deployed(profile):
    """The firmware files a profile's deploy globs select."""
    import fnmatch
    d = profile["deploy"]
    out = set()
    for f in FIRMWARE.rglob("*"):
        rel = f.relative_to(FIRMWARE).as_posix()
        if f.is_dir() or "__pycache__" in rel:
            continue
        if any(fnmatch.fnmatch(rel, g) for g in d["include"]) and \
                not any(fnmatch.fnmatch(rel, g) for g in d["exclude"]):
            out.add(rel)
    return out


def manifest_files(path):
    """Run a MicroPython manifest (and those it includes) with stand-ins:
    the files it freezes (paths relative to each manifest, as the
    manifest tool resolves them)."""
    got = []
    here = [path]

    def package(name, files=None, base_path=".", opt=None):
        root = (here[-1].parent / base_path / name).resolve()
        assert root.is_dir(), root
        if files is None:
            files = [p.relative_to(root).as_posix()
                     for p in root.rglob("*.py")]
        for f in files:
            assert (root / f).is_file(), root / f
            got.append("%s/%s" % (name, f))

    def module(name, base_path=".", opt=None):
        assert (here[-1].parent / base_path / name).is_file()
        got.append(name)

    def include(p):
        if p.startswith("$(PORT_DIR)") or p.startswith("$(MPY_DIR)"):
            return  # the port's own
        sub = (here[-1].parent / p).resolve()
        assert sub.is_file(), sub
        here.append(sub)
        run(sub)
        here.pop()

    def run(f):
        exec(f.read_text(), {"package": package, "module": module,
                             "include": include, "freeze": None,
                             "require": lambda *a, **k: None})
    run(path)
    return set(got)


def test_board_profiles_and_manifests():
    for name, (offset, march) in CHIPS.items():
        p = json.loads((BOARDS / name / "profile.json").read_text())
        assert p["name"] == name and p["chip"] == name
        assert p["image_offset"] == offset and p["march"] == march
        for k in ("baud", "flash_mode", "flash_size", "heap_budget"):
            assert p[k]
        files = deployed(p)
        assert {"boot.py", "main.py", "lws/__init__.py", "lws/wlan.py",
                "lws/plugins/wlan_setup.py"} <= files
        frozen = manifest_files(BOARDS / name / "manifest.py")
        assert "lws/wlan.py" in frozen
        if name == "esp8266":
            assert "lws/tls.py" not in files and "lws/tls.py" not in frozen
            assert not any(f.startswith("lws/ext/") for f in files | frozen)
            # the frozen list and the deploy list say the same
            assert frozen == {f for f in files if f.startswith("lws/")
                              and f.endswith(".py")}
        else:
            assert "lws/tls.py" in files and "lws/tls.py" in frozen
    unix = json.loads((BOARDS / "unix" / "profile.json").read_text())
    assert unix["heap_budget"] and (BOARDS / "unix" / "network.py").exists()


def test_soft_reset_not_counted(tmp_path):
    """A soft reset (where the port reports one) runs boot.py but, from
    the raw REPL, not main.py: it must not count towards safe mode."""
    fake = tmp_path / "port"
    fake.mkdir()
    path = ".frozen:%s:%s" % (fake, PATH.split(":", 1)[1])
    code = "import boot\n"
    for cause, counted in ((5, None), (1, 1), (5, 1), (3, 2)):
        (fake / "machine.py").write_text(
            "SOFT_RESET = 5\ndef reset_cause():\n    return %d\n" % cause)
        r = subprocess.run([unixport.micropython(), "-c", code],
                           env=env(tmp_path, path), cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        assert boot_count(tmp_path) == counted
