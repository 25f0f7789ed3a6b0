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


def lwstool(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "lwstool"] + list(argv),
                          capture_output=True, text=True, timeout=timeout,
                          env=ENV)


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
    proc, path = vboard.start("esp8266", root=root)
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
        wait_port(port, timeout=20)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        resp = c.getresponse()
        assert resp.status == 200
        assert b"<" in resp.read()
        c.close()
        # Ctrl-C (as SIGINT) stops main.py and the REPL answers again
        with Board(p) as b:
            assert b.eval("1+2") == 3
    finally:
        vboard.stop(proc)
    assert not link.exists()


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


def test_devs_and_auto():
    r = lwstool("devs")
    assert r.returncode == 0
    from serial.tools import list_ports
    if not [p for p in list_ports.comports() if p.vid is not None]:
        r = lwstool("-p", "auto", "wifi", "list")
        assert r.returncode == 1
        assert r.stderr == "lwstool: no board found (lwstool devs lists " \
            "serial ports; pass -p PORT)\n"


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
    assert len(rows) == 2 and all(row[-1] == "ok" for row in rows)
    assert all(row[2] == "0" for row in rows)          # none failed


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
        assert lwstool("-p", path, "deploy", "-b", "esp32").returncode == 0
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
    folder stays empty and / is the board's."""
    proc, path = vboard.start("unix", root=tmp_path / "flash",
                              with_firmware=True)
    try:
        with Board(path) as b:
            assert b.call("import lws", "lws.__version__")
            assert b.eval("__import__('os').listdir('/')") == ["host"]
            assert b.eval("__import__('os').getcwd()") == "/"
    finally:
        vboard.stop(proc)
    assert not list((tmp_path / "flash").iterdir())


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
