"""lwstool against boards that are not there: esptool's protocol answered
by esp32-mock-bootloader on a pty, and virtual boards (the unix port on a
pty, `lwstool emulate`) for deploy, wifi, config, mpremote and ampy."""
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, run_mpy, wait_port

from lwstool import cli, vboard
from lwstool.board import Board

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PYTHONPATH=str(REPO / "host_tools"))


@pytest.fixture(scope="module", autouse=True)
def run_dir(tmp_path_factory):
    """The virtual boards of this module register in a folder of their
    own (not the user's runtime folder, where other boards may run)."""
    d = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LWSTOOL_RUN_DIR", str(d))
        ENV["LWSTOOL_RUN_DIR"] = str(d)
        yield d


def lwstool(*argv, timeout=60, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "lwstool"] + list(argv),
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(ENV, **(env or {})), input=input)


# -- flashing, against the mock ROM bootloader ------------------------------

@pytest.fixture
def mock(tmp_path):
    procs = []

    def start(chip="esp32"):
        pf = tmp_path / ("mock-%d.path" % len(procs))
        p = subprocess.Popen([str(BIN / "esp32-mock-bootloader"), "run",
                              "--pty", "--port-file", str(pf), "--chip",
                              chip], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if pf.exists() and pf.read_text().strip():
                return p, pf.read_text().strip()
            assert p.poll() is None, "mock bootloader exited"
            time.sleep(0.05)
        raise RuntimeError("mock bootloader did not start")

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def image(tmp_path, size, name="fw.bin"):
    f = tmp_path / name
    f.write_bytes(b"\xe9" + os.urandom(size - 1))
    return f


NO_RESET = ["--before", "no-reset", "--after", "no-reset"]
ESP32_OFFSET = 0x1000       # boards/esp32/profile.json: image_offset
# The mock ends a client's session 3 s after a write ends (FLASH_END) and
# starts a new one: a client talking across that moment is lost. Whoever
# comes after a write waits it out.
MOCK_SESSION_END = 3.3


def esptool(port, *args):
    """esptool itself on the mock, as a second client beside lwstool."""
    return subprocess.run([str(BIN / "esptool"), "--chip", "esp32", "-p",
                           port, *NO_RESET, *args], capture_output=True,
                          text=True, timeout=60)


def read_flash(port, tmp_path, offset, length):
    """What the mock's flash holds at offset, read back with esptool."""
    out = tmp_path / ("read-%x-%x.bin" % (offset, length))
    for attempt in range(2):
        r = esptool(port, "read-flash", hex(offset), str(length), str(out))
        if r.returncode == 0:
            break
        # begun just as the mock ended the writer's session: once more
        time.sleep(MOCK_SESSION_END)
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.read_bytes()
    assert len(data) == length
    return data


def fill_flash(port, tmp_path, offset, data):
    """Write data at offset with esptool (something already on the board);
    returns when the next client may talk to the mock."""
    f = tmp_path / ("fill-%x.bin" % offset)
    f.write_bytes(data)
    r = esptool(port, "write-flash", hex(offset), str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(MOCK_SESSION_END)


def same_bytes(got, want, what):
    """Byte for byte, naming the first difference (not 200 KB of repr)."""
    if got != want:
        i = next(i for i in range(min(len(got), len(want)))
                 if got[i] != want[i])
        raise AssertionError("%s differs from byte %d (0x%x) of %d"
                             % (what, i, i, len(want)))


# a filesystem's place on the board: outside any image; flashing keeps
# it, flashing with --erase wipes it (0xFF, erased flash)
FS_OFFSET = 0x300000
FS_SIZE = 0x2000


@pytest.mark.timeout(90)
def test_flash_writes_and_verifies(mock, tmp_path):
    """The image lands at the profile's offset, whole, and nothing else
    is touched: read back with esptool, byte for byte."""
    _, port = mock("esp32")
    fs = os.urandom(FS_SIZE)
    fill_flash(port, tmp_path, FS_OFFSET, fs)
    fw = image(tmp_path, 200_000)
    r = lwstool("-p", port, "flash", "--board", "esp32", "--firmware",
                str(fw), *NO_RESET)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Hash of data verified" in r.stdout
    assert "flashed esp32 (ESP32)" in r.stdout
    assert "writing [" in r.stdout            # the progress bar
    want = fw.read_bytes()
    got = read_flash(port, tmp_path, 0, ESP32_OFFSET + len(want) + 4096)
    same_bytes(got[ESP32_OFFSET:ESP32_OFFSET + len(want)], want,
               "the flash at 0x%x" % ESP32_OFFSET)
    assert got[:ESP32_OFFSET] == b"\xff" * ESP32_OFFSET  # nothing before
    assert got[ESP32_OFFSET + len(want):] == b"\xff" * 4096  # nor after
    same_bytes(read_flash(port, tmp_path, FS_OFFSET, FS_SIZE), fs,
               "the data outside the image (no --erase)")


@pytest.mark.timeout(90)
def test_flash_erase_then_write(mock, tmp_path):
    """--erase wipes the whole flash first: what was outside the image
    reads back erased (0xFF), the image is there whole."""
    _, port = mock("esp32")
    fill_flash(port, tmp_path, FS_OFFSET, os.urandom(FS_SIZE))
    fw = image(tmp_path, 50_000)
    assert cli.main(["-p", port, "flash", "--board", "esp32", "--erase",
                     "--firmware", str(fw)] + NO_RESET) == 0
    same_bytes(read_flash(port, tmp_path, FS_OFFSET, FS_SIZE),
               b"\xff" * FS_SIZE, "the flash outside the image after --erase")
    want = fw.read_bytes()
    same_bytes(read_flash(port, tmp_path, ESP32_OFFSET, len(want)), want,
               "the flash at 0x%x" % ESP32_OFFSET)


@pytest.mark.timeout(60)
def test_flash_wrong_chip_names_it(mock, tmp_path):
    _, port = mock("esp32s3")
    fw = image(tmp_path, 50_000)
    r = lwstool("-p", port, "flash", "--board", "esp32", "--firmware",
                str(fw), *NO_RESET)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("lwstool: ")
    assert "ESP32-S3" in r.stderr and "esp32" in r.stderr


@pytest.mark.timeout(60)
def test_flash_interrupted_write(mock, tmp_path):
    proc, port = mock("esp32")
    fw = image(tmp_path, 3_500_000)
    p = subprocess.Popen([sys.executable, "-m", "lwstool", "-p", port,
                          "flash", "--board", "esp32", "--firmware", str(fw)]
                         + NO_RESET, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    # wait until the write has begun, then pull the plug
    end = time.monotonic() + 30
    line = ""
    while time.monotonic() < end and "Flash will be erased" not in line:
        line = p.stdout.readline()
        if not line and p.poll() is not None:
            break
    time.sleep(0.3)
    proc.kill()
    out, err = p.communicate(timeout=45)
    assert p.returncode == 1, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lwstool: ")
    assert "went away" in last or "failed" in last
    assert "Traceback" not in err


@pytest.mark.timeout(30)
def test_flash_no_board_answers(tmp_path):
    import pty
    m, s = pty.openpty()
    try:
        fw = image(tmp_path, 10_000)
        r = lwstool("-p", os.ttyname(s), "flash", "--board", "esp32",
                    "--firmware", str(fw), *NO_RESET)
        assert r.returncode == 1
        assert "no ESP bootloader answers" in r.stderr
    finally:
        os.close(m)
        os.close(s)


def test_flash_missing_and_oversized_image(tmp_path):
    r = lwstool("-p", "/dev/null", "flash", "--board", "esp32",
                "--firmware", str(tmp_path / "nope.bin"))
    assert r.returncode == 1 and "no firmware image" in r.stderr
    big = image(tmp_path, 4 * 1024 * 1024, "big.bin")
    r = lwstool("-p", "/dev/null", "flash", "--board", "esp32",
                "--firmware", str(big))
    assert r.returncode == 1 and "does not fit" in r.stderr
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 1000)
    r = lwstool("-p", "/dev/null", "flash", "--board", "esp32",
                "--firmware", str(bad))
    assert r.returncode == 1 and "not an ESP firmware image" in r.stderr


# -- virtual boards --------------------------------------------------------

@pytest.fixture(scope="module")
def vb(tmp_path_factory):
    """A virtual esp8266 with an empty flash, shared by the module."""
    root = tmp_path_factory.mktemp("flash")
    proc, path = vboard.start("esp8266", root=root, stock=True)
    yield path, root
    vboard.stop(proc)


def test_mpremote_exec(vb):
    path, _ = vb
    r = subprocess.run([str(BIN / "mpremote"), "connect", path, "exec",
                        "print(1+1)"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2"


def test_ampy(vb):
    path, root = vb
    (root / "hello.txt").write_text("hi from the flash\n")
    r = subprocess.run([str(BIN / "ampy"), "--port", path, "get",
                        "hello.txt"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "hi from the flash" in r.stdout
    r = subprocess.run([str(BIN / "ampy"), "--port", path, "ls"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # the board's / is its flash folder (the host's files under /host)
    assert "/hello.txt" in r.stdout.split()
    assert set(r.stdout.split()) <= {"/" + p.name for p in root.iterdir()} \
        | {"/host"}


def test_soft_reboot_and_ctrl_c(vb):
    path, _ = vb
    with Board(path) as b:
        t = b.transport
        t.exec_raw_no_follow("while True:\n pass")
        time.sleep(0.3)
        t.serial.write(b"\x03")             # becomes SIGINT
        out, err = t.follow(10)
        assert b"KeyboardInterrupt" in err
        assert b.eval("6*7") == 42
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=5)
        t.serial.write(b"\x04")             # soft reset at the friendly REPL
        data = t.read_until(1, b">>> ", timeout=10)
        assert b"MPY: soft reboot\r\n" in data
        t.enter_raw_repl(soft_reset=False)


def test_deploy_only_changed(vb, tmp_path):
    path, root = vb
    r = lwstool("-p", path, "deploy", "--board", "esp8266")
    assert r.returncode == 0, r.stderr
    assert (root / "lws" / "__init__.mpy").exists()
    assert (root / "main.py").exists() and (root / "boot.py").exists()
    assert not (root / "test_server.py").exists()
    assert not list(root.rglob("*.tmp"))
    r = lwstool("-p", path, "deploy", "--board", "esp8266")
    assert r.returncode == 0 and " 0 changed" in r.stdout, r.stdout
    # a file changed on the board is sent again, alone
    (root / "main.py").write_text("changed")
    r = lwstool("-p", path, "deploy", "--board", "esp8266")
    assert " 1 changed" in r.stdout, r.stdout
    assert "main.py" in r.stdout
    # the profile leaves these out of an esp8266
    assert not (root / "lws" / "tls.mpy").exists()
    # the board imports what was deployed (then a soft reset gives the
    # heap back: .mpy qstrs stay until one)
    with Board(path, soft_reset=True) as b:
        assert b.call("import lws", "lws.__version__")


def test_deploy_source_replaces_mpy(vb):
    path, root = vb
    r = lwstool("-p", path, "deploy", "--board", "esp8266", "--source")
    assert r.returncode == 0, r.stderr
    assert (root / "lws" / "conn.py").exists()
    assert not (root / "lws" / "conn.mpy").exists()
    r = lwstool("-p", path, "deploy", "--board", "esp8266")
    assert r.returncode == 0, r.stderr
    assert (root / "lws" / "conn.mpy").exists()
    assert not (root / "lws" / "conn.py").exists()


def test_deploy_refuses_mismatched_board(vb, monkeypatch):
    from lwstool import deploy
    from lwstool.errors import LwsToolError
    prof = {"name": "esp32", "march": "xtensawin"}
    # an ESP8266 (xtensa, .mpy v6) under an esp32 profile
    with pytest.raises(LwsToolError, match="xtensa but profile esp32"):
        deploy.choose_march(prof, "esp8266", 6 | 3 << 8 | 9 << 10)
    with pytest.raises(LwsToolError, match="takes .mpy v5"):
        deploy.choose_march(prof, "esp32", 5 | 10 << 10)


def test_wifi(vb):
    path, root = vb
    lwstool("-p", path, "deploy", "--board", "esp8266")
    r = lwstool("-p", path, "wifi", "add", "home", "--password",
                "secret123")
    assert r.returncode == 0, r.stderr
    r = lwstool("-p", path, "wifi", "add", "cafe", "--password", "")
    assert r.returncode == 0, r.stderr
    r = lwstool("-p", path, "wifi", "list")
    assert r.returncode == 0
    assert "home" in r.stdout and "cafe" in r.stdout
    assert "secret123" not in r.stdout + r.stderr
    assert "secret123" in (root / "wlan.json").read_text()
    r = lwstool("-p", path, "wifi", "rm", "cafe")
    assert r.returncode == 0
    assert "cafe" not in lwstool("-p", path, "wifi", "list").stdout
    r = lwstool("-p", path, "wifi", "rm", "nowhere")
    assert r.returncode == 1 and "no saved network" in r.stderr
    r = lwstool("-p", path, "wifi", "add", "x", "--password", "short1")
    assert r.returncode == 1 and r.stderr.startswith("lwstool: ")
    assert "short1" not in r.stderr
    r = lwstool("-p", path, "wifi", "status")
    assert r.returncode == 0 and "connected" in r.stdout


def test_wifi_ap(vb):
    """The set-up access point's name and password, as main.py brings it
    up: the board's own password (made once, on the board), a configured
    one, or open."""
    path, root = vb
    lwstool("-p", path, "deploy", "--board", "esp8266")
    cfg = root / "lws.json"
    before = cfg.read_bytes() if cfg.exists() else None
    try:
        cfg.write_text(json.dumps({"wlan": {"wait": 2}}))
        r = lwstool("-p", path, "wifi", "ap")
        assert r.returncode == 0, r.stderr
        pw = json.loads((root / "wlan.json").read_text())["ap_password"]
        assert len(pw) >= 8
        lines = r.stdout.splitlines()
        assert "ssid       lws-3456" in lines
        assert "security   WPA2" in lines
        assert "password   %s" % pw in lines
        # the same each time
        assert lwstool("-p", path, "wifi", "ap").stdout == r.stdout
        cfg.write_text(json.dumps({"wlan": {"ap_ssid": "my-board",
                                            "ap_password": "configured1",
                                            "setup": "always",
                                            "setup_password": "admin-pw-1"}}))
        r = lwstool("-p", path, "wifi", "ap")
        assert r.returncode == 0, r.stderr
        assert "ssid       my-board" in r.stdout
        assert "password   configured1" in r.stdout
        assert "admin-pw-1" not in r.stdout
        assert "setup_password" in r.stdout
        cfg.write_text(json.dumps({"wlan": {"ap_open": True}}))
        r = lwstool("-p", path, "wifi", "ap")
        assert r.returncode == 0, r.stderr
        assert "security   open (ap_open)" in r.stdout
        assert "password   %s" % pw not in r.stdout
        assert "admin" in r.stdout and pw in r.stdout  # the page's
    finally:
        if before is None:
            cfg.unlink()
        else:
            cfg.write_bytes(before)


def test_board_write_syncs_before_rename(tmp_path):
    """lws.json, the deployed files: written aside, synced (os.sync
    where the port has it), then renamed."""
    sent = []

    class Transport:
        in_raw_repl = True

        def exec_raw(self, code, timeout=None):
            sent.append(code)
            return b"", b""

        def exec(self, code):
            pass

        def exit_raw_repl(self):
            pass

        def close(self):
            pass

    b = Board("/dev/null")
    b._t = Transport()
    b.write("lws.json", b'{"server": {"port": 80}}', chunk=8)
    b.close()
    code = """
import os as _os, sys, json
calls = []
class Os:
    def __getattr__(self, k):
        return getattr(_os, k)
    def sync(self):
        calls.append(['sync', open('lws.json.tmp').read()])
    def rename(self, a, b):
        calls.append(['rename', a, b])
        _os.rename(a, b)
sys.modules['os'] = Os()
""" + "\n".join(sent) + "\nprint(json.dumps(calls))"
    r = run_mpy(code, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        ["sync", '{"server": {"port": 80}}'],
        ["rename", "lws.json.tmp", "lws.json"]]
    assert (tmp_path / "lws.json").read_text() == '{"server": {"port": 80}}'
    # a port without os.sync: the same file
    (tmp_path / "lws.json").unlink()
    r = run_mpy("\n".join(sent), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lws.json").read_text() == '{"server": {"port": 80}}'


def test_wifi_add_asks_for_the_password(vb):
    path, root = vb
    # no controlling terminal: getpass reads the answer from stdin
    r = subprocess.run([sys.executable, "-m", "lwstool", "-p", path, "wifi",
                        "add", "asked"], input="asked-pass-1\n",
                       capture_output=True, text=True, timeout=60, env=ENV,
                       start_new_session=True)
    assert r.returncode == 0, r.stderr
    assert "password for asked" in r.stdout + r.stderr
    assert "asked-pass-1" not in r.stdout + r.stderr
    assert "asked-pass-1" in (root / "wlan.json").read_text()
    assert lwstool("-p", path, "wifi", "rm", "asked").returncode == 0


def test_config(vb, tmp_path):
    path, root = vb
    f = tmp_path / "cfg.json"
    f.write_text(json.dumps({"port": 8080, "docroot": "www"}))
    assert lwstool("-p", path, "config", "push", str(f)).returncode == 0
    r = lwstool("-p", path, "config", "set", "port", "9090")
    assert r.returncode == 0, r.stderr
    r = lwstool("-p", path, "config", "set", "admin.password", "hunter22")
    assert r.returncode == 0 and "hunter22" not in r.stdout
    r = lwstool("-p", path, "config", "get", "port")
    assert r.stdout.strip() == "9090"
    r = lwstool("-p", path, "config", "get")
    assert "hunter22" not in r.stdout and '"***"' in r.stdout
    cfg = json.loads((root / "lws.json").read_text())
    assert cfg == {"port": 9090, "docroot": "www",
                   "admin": {"password": "hunter22"}}
    r = lwstool("-p", path, "config", "get", "nope")
    assert r.returncode == 1 and "no 'nope'" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    r = lwstool("-p", path, "config", "push", str(bad))
    assert r.returncode == 1 and "not JSON" in r.stderr


def served_page(port):
    """main.py's page on port, once it listens: (status, body)."""
    wait_port(port, timeout=20)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/")
        resp = c.getresponse()
        return resp.status, resp.read()
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_fresh_board_to_served_page(tmp_path):
    """The README's path: emulate, deploy, config, reset, fetch a page."""
    link = tmp_path / "board"
    proc, _ = vboard.start("esp32", root=tmp_path / "flash", link=link)
    try:
        port = free_port()
        p = str(link)
        assert lwstool("-p", p, "deploy", "--board", "esp32").returncode == 0
        assert lwstool("-p", p, "config", "set", "port",
                       str(port)).returncode == 0
        r = lwstool("-p", p, "reset")
        assert r.returncode == 0, r.stderr
        st, body = served_page(port)
        assert st == 200 and b"<" in body
        # Ctrl-C (as SIGINT) stops main.py and the REPL answers again
        with Board(p) as b:
            assert b.eval("1+2") == 3
    finally:
        vboard.stop(proc)
    assert not link.exists()


@pytest.mark.timeout(60)
def test_config_push_reload_over_serial_restarts_main(tmp_path):
    link = tmp_path / "board"
    proc, _ = vboard.start("esp32", root=tmp_path / "flash", link=link)
    try:
        port = free_port()
        p = str(link)
        assert lwstool("-p", p, "deploy", "--board", "esp32").returncode == 0
        f = tmp_path / "lws.json"
        f.write_text(json.dumps({"port": port}))
        r = lwstool("-p", p, "config", "push", str(f), "--reload")
        assert r.returncode == 0 and "reset" in r.stdout, r.stderr
        assert served_page(port)[0] == 200  # main.py serves the new file
    finally:
        vboard.stop(proc)


def test_run_file(vb, tmp_path):
    path, _ = vb
    f = tmp_path / "hello.py"
    f.write_text("import sys\nprint('hello from', sys.platform)\n")
    r = lwstool("-p", path, "run", str(f))
    assert r.returncode == 0, r.stderr
    assert "hello from linux" in r.stdout
    f.write_text("raise ValueError('on purpose')\n")
    r = lwstool("-p", path, "run", str(f))
    assert r.returncode == 1 and "ValueError: on purpose" in r.stderr


def test_devs_and_auto(tmp_path):
    r = lwstool("devs")
    assert r.returncode == 0
    from serial.tools import list_ports
    if not [p for p in list_ports.comports() if p.vid is not None]:
        # no virtual board runs either
        r = lwstool("-p", "auto", "wifi", "list",
                    env={"LWSTOOL_RUN_DIR": str(tmp_path)})
        assert r.returncode == 1
        assert r.stderr == "lwstool: no board found (lwstool devs lists " \
            "serial ports and virtual boards; pass -p PORT)\n"


def test_missing_port_is_one_line():
    r = lwstool("-p", "/dev/nonexistent-board", "config", "get")
    assert r.returncode == 1
    assert r.stderr.startswith("lwstool: cannot open /dev/nonexistent-board")
    assert len(r.stderr.splitlines()) == 1


# -- lwstool test ----------------------------------------------------------

@pytest.mark.timeout(90)
def test_lwstool_test_fleet():
    r = lwstool("test", "--fleet", "2", timeout=85)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split() for line in r.stdout.splitlines()
            if line.startswith("board-")]
    assert len(rows) == 2 and all(row[-1] == "ok" for row in rows), r.stdout
    assert all(row[2] == "0" for row in rows), r.stdout  # none failed


@pytest.mark.timeout(60)
def test_lwstool_test_net_target(server_factory):
    srv = server_factory()
    r = lwstool("test", "--target", "net:127.0.0.1:%d" % srv.port)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skipped" in r.stdout          # the serial checks


@pytest.mark.timeout(90)
def test_lwstool_test_serial_target(tmp_path):
    """A deployed board on a serial port (here a virtual one), its server
    reached at --host."""
    proc, path = vboard.start("esp32", root=tmp_path / "flash")
    try:
        assert lwstool("-p", path, "deploy", "--board",
                       "esp32").returncode == 0
        port = free_port()
        r = lwstool("-p", path, "config", "set", "server",
                    json.dumps({"port": port,
                                "mounts": [["/echo", "callback://echo"]],
                                "protocols": ["lws.plugins.echo.Echo"]}))
        assert r.returncode == 0, r.stderr
        r = lwstool("test", "--target", "serial:" + path, "--host",
                    "127.0.0.1", timeout=85)
        assert r.returncode == 0, r.stdout + r.stderr
        assert " passed" in r.stdout and "failed" not in r.stdout
    finally:
        vboard.stop(proc)


def test_lwstool_test_bad_target():
    r = lwstool("test", "--target", "usb")
    assert r.returncode == 1 and r.stderr.startswith("lwstool: ")


@pytest.mark.timeout(60)
def test_emulate_with_firmware_frozen_in(tmp_path):
    """--with-firmware: firmware/ on the path, as if frozen; the flash
    folder holds only the fake access points, and / is the board's."""
    proc, path = vboard.start("unix", root=tmp_path / "flash",
                              with_firmware=True)
    try:
        with Board(path) as b:
            assert b.call("import lws", "lws.__version__")
            assert sorted(b.eval("__import__('os').listdir('/')")) == \
                ["fake_aps.json", "host"]
            assert b.eval("__import__('os').getcwd()") == "/"
    finally:
        vboard.stop(proc)
    assert [f.name for f in (tmp_path / "flash").iterdir()] == \
        ["fake_aps.json"]


def test_reset_clears_the_board(vb):
    path, _ = vb
    with Board(path) as b:
        b.transport.exec("reset_marker = 1")
        assert b.eval("'reset_marker' in globals()") is True
    r = lwstool("-p", path, "reset")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "reset %s" % path
    with Board(path) as b:
        assert b.eval("'reset_marker' in globals()") is False


def test_repl_is_interactive(vb):
    """lwstool repl on a terminal: type a line, see its result, Ctrl-] out."""
    import pty
    import select as sel
    path, _ = vb
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "lwstool", "-p", path,
                          "repl"], stdin=slave, stdout=slave, stderr=slave,
                         env=ENV, close_fds=True)
    os.close(slave)
    seen = b""

    def read_until(token, timeout):
        nonlocal seen
        end = time.monotonic() + timeout
        while token not in seen and time.monotonic() < end:
            if sel.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return token in seen

    try:
        assert read_until(b"Connected to MicroPython", 20), seen
        time.sleep(0.3)
        os.write(master, b"\r")
        assert read_until(b">>> ", 10), seen
        os.write(master, b"print(6*7)\r")
        assert read_until(b"42", 10), seen
        os.write(master, b"\x1d")  # Ctrl-]: leave the REPL
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)


# -- a new user's path: virtual boards, chained commands, the console ----

def _no_usb_ports():
    from serial.tools import list_ports
    return not [p for p in list_ports.comports() if p.vid is not None]


@pytest.fixture
def fresh(tmp_path):
    """A virtual esp32 of its own, flashed with stock MicroPython and
    nothing deployed: (pty, root)."""
    root = tmp_path / "flash"
    proc, path = vboard.start("esp32", root=root, stock=True)
    yield path, root
    vboard.stop(proc)


# a main.py that runs until it is stopped, as the server does
TICKER = ("import time\nn = 0\nwhile True:\n    print('tick', n)\n"
          "    n += 1\n    time.sleep(0.2)\n")


@pytest.mark.timeout(90)
def test_readme_path_in_one_chain(tmp_path):
    """The README's steps as one chained command on a virtual board found
    by -p auto: deploy, save "home" with the password from stdin (the
    board's default access points have it), set the port, reset; the
    board joins "home" and serves, and wifi status says so by name."""
    run = tmp_path / "run"
    run.mkdir()
    env = {"LWSTOOL_RUN_DIR": str(run)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LWSTOOL_RUN_DIR", str(run))
        proc, path = vboard.start("esp32", root=tmp_path / "flash")
    try:
        aps = json.loads((tmp_path / "flash" / "fake_aps.json").read_text())
        assert {"ssid": "home", "password": "password"}.items() <= \
            aps["aps"][0].items()
        port = free_port()
        dev = "auto" if _no_usb_ports() else path
        r = lwstool("-p", dev, "deploy", "--board", "esp32", "+", "wifi",
                    "add", "home", "--password-stdin", "+", "config", "set",
                    "server.port", str(port), "+", "reset",
                    input="password\n", env=env, timeout=80)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "saved 'home' in slot 0" in r.stdout
        assert "reset " in r.stdout
        assert "password" not in r.stdout.replace("--password", "")
        # the chain ends with a reset: the server runs, nothing to say
        assert r.stderr == ""
        wait_port(port, timeout=20)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        assert c.getresponse().status == 200
        c.close()
        # main.py joined "home" (it is up once the server listens)
        r = lwstool("-p", dev, "wifi", "status", env=env)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert "state      got IP (STAT_GOT_IP, 1010)" in lines
        assert "ssid       home" in lines
        assert "connected  True" in lines
        # ... and stopped the server to ask: said on stderr, with the cure
        assert r.stderr == "lwstool: the board's server (main.py) was " \
            "stopped to run this; `lwstool reset` starts it again\n"
    finally:
        vboard.stop(proc)


def test_chain_shares_one_connection(fresh, monkeypatch, capsys):
    """Commands chained with + open the board once, when first needed."""
    from mpremote import transport_serial
    path, root = fresh
    opened = []
    init = transport_serial.SerialTransport.__init__

    def counting(self, *a, **kw):
        opened.append(a[0])
        init(self, *a, **kw)

    monkeypatch.setattr(transport_serial.SerialTransport, "__init__",
                        counting)
    assert cli.main(["-p", path, "config", "set", "chain.a", "1", "+",
                     "config", "get", "chain.a", "+", "wifi",
                     "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["chain.a = 1", "1"]
    assert "state      idle (STAT_IDLE, 1000)" in out
    assert opened == [path]
    assert json.loads((root / "lws.json").read_text()) == {"chain": {"a": 1}}
    # parsed all before any runs: a bad last command runs nothing
    assert cli.main(["-p", path, "config", "set", "chain.b", "2", "+",
                     "config", "bogus"]) == 1
    assert "config: argument config_cmd: invalid choice: 'bogus'" in \
        capsys.readouterr().err
    assert opened == [path]
    assert "b" not in json.loads((root / "lws.json").read_text())["chain"]


def test_chain_stops_at_the_first_failure(fresh):
    path, root = fresh
    r = lwstool("-p", path, "config", "set", "first", "1", "+", "config",
                "get", "nope", "+", "config", "set", "after", "1")
    assert r.returncode == 1
    assert r.stdout == "first = 1\n"
    assert r.stderr.splitlines()[-1] == "lwstool: no 'nope' in lws.json"
    assert json.loads((root / "lws.json").read_text()) == {"first": 1}


def test_port_after_the_command(fresh):
    """-p where mpremote's and esptool's users put it; after the command
    it wins over one given before."""
    path, _ = fresh
    r = lwstool("config", "set", "k", "v", "-p", path)
    assert r.returncode == 0, r.stderr
    r = lwstool("-p", "/dev/nonexistent-board", "config", "get", "k",
                "-p", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == '"v"\n'
    r = lwstool("wifi", "status", "-p", path)
    assert r.returncode == 0 and "STAT_IDLE" in r.stdout, r.stderr
    # in a chain, each command its own
    r = lwstool("config", "get", "k", "-p", path, "+", "config", "get",
                "k", "-p", "/dev/nonexistent-board")
    assert r.returncode == 1 and r.stdout == '"v"\n'
    assert r.stderr.startswith("lwstool: cannot open /dev/nonexistent-board")


def test_devs_lists_running_virtual_boards(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    env = {"LWSTOOL_RUN_DIR": str(run)}
    # a board that was killed left its entry: not listed, and removed
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = run / ("vboard-%d-99.json" % gone.pid)
    stale.write_text(json.dumps({"path": "/dev/null", "pid": gone.pid,
                                 "board": "esp32", "root": "/nowhere"}))
    root = tmp_path / "flash"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LWSTOOL_RUN_DIR", str(run))
        proc, path = vboard.start("esp8266", root=root,
                                  link=tmp_path / "board")
    try:
        r = lwstool("devs", env=env)
        assert r.returncode == 0, r.stderr
        line = [x for x in r.stdout.splitlines() if x.startswith(path)]
        assert line == ["%s None 0000:0000 microlws virtual board (unix "
                        "port, esp8266 profile), root %s, link %s"
                        % (path, root.resolve(), tmp_path / "board")]
        assert "/nowhere" not in r.stdout and not stale.exists()
        if _no_usb_ports():
            r = lwstool("-p", "auto", "config", "set", "found", "yes",
                        env=env)
            assert r.returncode == 0, r.stderr
            assert json.loads((root / "lws.json").read_text()) == \
                {"found": "yes"}
    finally:
        vboard.stop(proc)
    assert not list(run.iterdir())
    assert path not in lwstool("devs", env=env).stdout


def test_server_stopped_is_said(fresh):
    """A command that stops a running main.py says so, once, on stderr;
    nothing is said when nothing ran, or when the chain resets."""
    path, root = fresh
    stopped = "lwstool: the board's server (main.py) was stopped to run " \
        "this; `lwstool reset` starts it again\n"
    (root / "main.py").write_text(TICKER)
    assert lwstool("-p", path, "reset").returncode == 0
    time.sleep(0.5)
    r = lwstool("-p", path, "config", "get")
    assert r.returncode == 0, r.stderr
    assert r.stderr == stopped
    r = lwstool("-p", path, "config", "get")        # nothing ran now
    assert r.returncode == 0 and r.stderr == ""
    r = lwstool("-p", path, "reset")
    time.sleep(0.5)
    r = lwstool("-p", path, "config", "get", "+", "config", "get", "+",
                "reset")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    time.sleep(0.5)
    # a failing command still says it, before its error
    r = lwstool("-p", path, "config", "get", "nope")
    assert r.returncode == 1
    assert r.stderr == stopped + "lwstool: no 'nope' in lws.json\n"


@pytest.fixture
def booting(tmp_path):
    """A virtual esp32 whose main.py counts its runs in the file boots:
    (pty, root)."""
    root = tmp_path / "flash"
    root.mkdir()
    (root / "main.py").write_text("open('boots', 'a').write('x')\n")
    proc, path = vboard.start("esp32", root=root)
    yield path, root
    vboard.stop(proc)


def test_reset_hard(booting):
    """On a virtual board a hard reset starts the interpreter again, as a
    board that powers up (boot.py, then main.py, a fresh heap); a board
    without machine.reset() is an error, not a success."""
    path, root = booting
    boots = root / "boots"

    def booted(n):
        end = time.monotonic() + 10
        while time.monotonic() < end and \
                (not boots.exists() or boots.read_text() != "x" * n):
            time.sleep(0.1)
        return boots.read_text() if boots.exists() else None

    assert booted(1) == "x"
    with Board(path) as b:
        b.transport.exec("hard_marker = 1")
    r = lwstool("-p", path, "reset", "--hard")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "reset %s\n" % path
    assert booted(2) == "xx"
    with Board(path) as b:
        assert b.eval("'hard_marker' in globals()") is False
        # the board no longer says it is a virtual one: it has nothing
        # that would do a hard reset
        b.exec("import os\nos.unsetenv('LWS_VBOARD')")
    r = lwstool("-p", path, "reset", "--hard")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == "lwstool: %s has no machine.reset(): no hard reset " \
        "there (lwstool reset does a soft one)\n" % path
    assert boots.read_text() == "xx"
    # and leaves the board at its REPL, as it found it (not in the raw
    # REPL, which would look like a running program to the next command)
    r = lwstool("-p", path, "config", "get")
    assert (r.returncode, r.stderr) == (0, "")


def test_nothing_deployed_says_deploy_first(fresh):
    path, _ = fresh
    for cmd in (["wifi", "list"], ["wifi", "add", "home", "--password",
                                   "password"], ["wifi", "ap"]):
        r = lwstool("-p", path, *cmd)
        assert r.returncode == 1, cmd
        assert r.stderr == "lwstool: %s has no lws (ImportError: no module " \
            "named 'lws'): run lwstool deploy first\n" % path, cmd


def test_wifi_passwords_checked_before_the_board(tmp_path):
    """WPA2: 8..63 characters or 64 hex digits, else refused before any
    port is opened (-p names none that exists); never echoed."""
    nowhere = "/dev/nonexistent-board"
    for pw in ("short12", "x" * 64, "y" * 65, "é" * 32):
        r = lwstool("-p", nowhere, "wifi", "add", "home", "--password", pw)
        assert r.returncode == 1
        assert r.stderr.startswith("lwstool: a WPA2 password is 8..63 "
                                   "characters, or 64 hex digits"), pw
        assert "nothing was sent to the board" in r.stderr
        assert pw not in r.stderr
        r = lwstool("-p", nowhere, "wifi", "add", "home",
                    "--password-stdin", input=pw + "\n")
        assert r.returncode == 1 and "8..63" in r.stderr and \
            pw not in r.stderr
    # good ones get as far as the port
    for pw in ("8chars!!", "z" * 63, "0123456789abcdef" * 4, ""):
        r = lwstool("-p", nowhere, "wifi", "add", "home",
                    "--password-stdin", input=pw + "\n")
        assert r.returncode == 1
        assert r.stderr.startswith("lwstool: cannot open " + nowhere), pw
    r = lwstool("-p", nowhere, "wifi", "add", "home", "--password-stdin",
                input="")
    assert r.returncode == 1 and "no line on stdin" in r.stderr
    r = lwstool("-p", nowhere, "wifi", "add", "x" * 33, "--password", "")
    assert r.returncode == 1 and "an SSID is 1..32 bytes" in r.stderr


def test_wifi_status_names_the_state(fresh, tmp_path):
    """The network module's STAT_* name, in words, and the network
    connected or being tried."""
    path, root = fresh
    r = lwstool("-p", path, "wifi", "status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        "state      idle (STAT_IDLE, 1000)", "ssid       (none)"]
    f = tmp_path / "join.py"

    def join(password):
        f.write_text("import network\nw = network.WLAN(network.STA_IF)\n"
                     "w.active(True)\nw.connect('home', %r)\n" % password)
        assert lwstool("-p", path, "run", str(f)).returncode == 0

    def status():
        r = lwstool("-p", path, "wifi", "status")
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    aps = json.loads((root / "fake_aps.json").read_text())
    aps["aps"][0]["connect_delay"] = 2.5
    (root / "fake_aps.json").write_text(json.dumps(aps))
    join("not-the-password")
    assert status()[:2] == ["state      connecting (STAT_CONNECTING, 1001)",
                            "ssid       home (being tried)"]
    time.sleep(2.7)
    assert status()[0] == \
        "state      wrong password (STAT_WRONG_PASSWORD, 202)"
    join("password")
    time.sleep(2.7)
    lines = status()
    assert lines[:3] == ["state      got IP (STAT_GOT_IP, 1010)",
                         "ssid       home", "ip         192.168.1.186"]
    assert "rssi       -48 dBm" in lines


def test_usage_errors_are_one_line():
    for argv, msg in [
            (["deploy", "--bogus"], "deploy: unrecognized arguments: --bogus "
             "(lwstool deploy -h for help)"),
            (["wifi", "add"], "wifi add: the following arguments are "
             "required: ssid (lwstool wifi add -h for help)"),
            (["bogus"], "'bogus' is not a command (lwstool -h lists them)"),
            (["wifi", "add", "x", "--slot", "one"], "wifi add: argument "
             "--slot: invalid int value: 'one' (lwstool wifi add -h for "
             "help)"),
            # -b is esptool's baud rate, never the board
            (["deploy", "-b", "esp32"], "deploy: unrecognized arguments: "
             "-b esp32 (lwstool deploy -h for help)")]:
        r = lwstool(*argv)
        assert (r.returncode, r.stdout, r.stderr) == \
            (1, "", "lwstool: %s\n" % msg), argv


def test_flash_b_is_the_baud_rate():
    args = cli.parse(["flash", "-b", "460800", "--board", "esp32s3"])[0]
    assert (args.baud, args.board) == (460800, "esp32s3")
    r = lwstool("flash", "-h")
    assert "-b BAUD, --baud BAUD" in r.stdout


@pytest.mark.timeout(60)
def test_emulate_shows_the_console(tmp_path):
    """lwstool emulate in the foreground shows what the board prints
    (boot.py, main.py, soft reboots), not the raw REPL's traffic."""
    root = tmp_path / "flash"
    root.mkdir()
    (root / "main.py").write_text(TICKER)
    log = tmp_path / "console"
    with open(log, "wb") as out:
        proc, path = vboard.start("esp32", root=root, stdout=out)
    try:
        def seen(text, after="", timeout=10):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                got = log.read_text(errors="replace")
                if text in (got.partition(after)[2] if after else got):
                    return True
                time.sleep(0.1)
            return False

        assert seen("tick 2")
        head = log.read_text().splitlines()[:2]
        assert head[1] == "access points: home, cafe-free, neighbours " \
            "(%s)" % (root.resolve() / "fake_aps.json")
        r = lwstool("-p", path, "config", "set", "secret_key", "hunter22")
        assert r.returncode == 0, r.stderr
        r = lwstool("-p", path, "reset")
        assert r.returncode == 0, r.stderr
        # main.py again after the soft reboot
        assert seen("tick 1", after="MPY: soft reboot")
        text = log.read_text(errors="replace")
        assert "raw REPL" not in text and "hunter22" not in text
    finally:
        vboard.stop(proc)


@pytest.mark.timeout(60)
def test_monitor_shows_the_console_read_only(fresh):
    """lwstool monitor on a terminal: what the board prints, nothing typed
    reaches it, the port is its own meanwhile; Ctrl-] or Ctrl-C leaves."""
    import pty
    import select as sel
    path, root = fresh
    (root / "main.py").write_text(TICKER)
    for leave in (b"\x1d", b"\x03"):
        master, slave = pty.openpty()
        p = subprocess.Popen([sys.executable, "-m", "lwstool", "-p", path,
                              "reset", "+", "monitor"], stdin=slave,
                             stdout=slave, stderr=slave, env=ENV,
                             close_fds=True)
        os.close(slave)
        seen = b""

        def read_until(token, timeout):
            nonlocal seen
            end = time.monotonic() + timeout
            while token not in seen and time.monotonic() < end:
                if sel.select([master], [], [], 0.2)[0]:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:
                        break
            return token in seen

        try:
            assert read_until(b"Ctrl-] or Ctrl-C to leave", 20), seen
            assert read_until(b"tick 1", 10), seen
            os.write(master, b"print('typed' + 'in')\r")
            r = lwstool("-p", path, "config", "get")
            assert r.returncode == 1
            assert r.stderr.startswith("lwstool: cannot open %s" % path)
            assert "lwstool monitor" in r.stderr
            n = seen.count(b"tick")
            assert read_until(b"tick %d" % (n + 2), 10), seen
            os.write(master, leave)
            assert p.wait(10) == 0
            read_until(b"--- left", 2)
            assert b"typedin" not in seen
        finally:
            if p.poll() is None:
                p.kill()
            os.close(master)


def test_custom_image_gets_the_rest_only(tmp_path):
    """A virtual esp32 runs the board's custom image (make unix32: 32-bit,
    lws frozen in, the profile's heap): deploy sends boot.py, main.py and
    www/ only, and removes lws files an earlier deploy left, which would
    be imported instead of the image's."""
    from lwstool import unix32
    if unix32.missing():
        pytest.skip("no 32-bit build: " + unix32.missing())
    root = tmp_path / "flash"
    (root / "lws").mkdir(parents=True)
    (root / "lws" / "__init__.py").write_text("raise ImportError('stale')\n")
    proc, path = vboard.start("esp32", root=root)
    try:
        r = lwstool("-p", path, "deploy", "--board", "esp32")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "lws is frozen into this board's image: not deployed" in \
            r.stdout and "1 files of an earlier deploy removed" in r.stdout
        assert (root / "main.py").is_file() and (root / "www").is_dir()
        assert not (root / "lws" / "__init__.py").exists()
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", path,
                            "exec", "import sys, gc, lws.context; "
                            "print('@', sys.maxsize, gc.mem_free() + "
                            "gc.mem_alloc())"],
                           capture_output=True, text=True, timeout=60)
        assert "@" in r.stdout, r.stdout + r.stderr
        maxsize, heap = r.stdout[r.stdout.rindex("@"):].split()[1:3]
        assert int(maxsize) == 2 ** 31 - 1        # 32-bit, as the board
        assert int(heap) <= 110000                 # the esp32 profile's
    finally:
        vboard.stop(proc)
