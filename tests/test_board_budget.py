"""A board's heap budget, on a board-faithful interpreter: the unix port
built 32-bit (objects the size of an ESP32's or ESP8266's) with lws frozen
in by the board's own manifest selection (make unix32), run at the
profile's heap_budget itself. The rest of the suite runs on the 64-bit
unix port from PyPI."""
import json
import shutil
import ssl
import time

import pytest

from conftest import FIRMWARE, REPO, free_port, start, wait_port
from test_wlan import (BOARD, HOME, boards, env, post,  # noqa: F401
                       saved_ssids, status, wait_for)
from wsraw import frame, handshake, read_frame


def interpreter(board):
    """The board's 32-bit interpreter (built if need be), or a skip that
    says why it cannot be made here."""
    from lwstool import unix32
    from lwstool.errors import LwsToolError
    why = unix32.missing()
    if why:
        pytest.skip("no 32-bit build: " + why)
    try:
        return unix32.build(board, quiet=True)
    except LwsToolError as e:
        pytest.fail(str(e))


def budget(board):
    return json.loads((REPO / "boards" / board /
                       "profile.json").read_text())["heap_budget"]


def frozen_board(tmp_path, cfg, aps):
    """A board's filesystem: boot.py, main.py, lws.json, a page; lws
    itself is frozen into the interpreter, as in a custom image."""
    from test_wlan import air
    air(tmp_path, aps, mac="24:0a:c4:00:12:ef")
    for f in ("boot.py", "main.py"):
        shutil.copy(FIRMWARE / f, tmp_path / f)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("<h1>board</h1>\n")
    port = free_port()
    cfg.setdefault("server", {})["port"] = port
    (tmp_path / "lws.json").write_text(json.dumps(cfg))
    return port


# the README's options for an esp8266 (Boards): one header buffer of 1 KB,
# WebSocket reads of 1 KB (longer messages arrive in pieces)
ESP8266_OPTIONS = {"max_http_header_pool": 1, "max_http_header_data": 1024,
                   "rx_buffer_size": 1024}


def test_esp8266_selection_serves_within_its_budget(tmp_path, boards):
    """HTTP, a WebSocket and the WLAN set-up page on the esp8266
    selection, under -X heapsize=<the esp8266 profile's heap_budget>."""
    exe = interpreter("esp8266")
    heap = budget("esp8266")
    port = frozen_board(tmp_path, {
        "wlan": {"wait": 3, "options": {"backoff": 5}},
        "server": {"options": ESP8266_OPTIONS}}, [])
    srv = start(tmp_path, script="-c", args=["import boot, main"],
                env=env(tmp_path, ".frozen"), heap=heap,
                port=port, exe=exe)
    boards.append(srv)
    srv.has_t = False
    # no station in range: the access point and its set-up page
    assert status(srv)["ap"] == "lws-12EF"
    assert srv.get("/")[0] == 200
    st, _, body = srv.get("/status.json")
    assert st == 200 and json.loads(body)["heap"]["free"] > 0
    for _ in range(2):
        s, head = handshake(port, "/echo")
        assert head.startswith(b"HTTP/1.1 101")
        for i in range(20):
            s.sendall(frame(1, b"message %d" % i))
            assert read_frame(s)[2] == b"message %d" % i
        s.close()
    assert srv.get("/setup")[0] == 200
    st, body = post(srv, "/setup/add", {"ssid": "home",
                                        "password": "homepass1"})
    assert st == 200, body
    assert saved_ssids(tmp_path) == ["home"]
    log = srv.log()
    assert "MemoryError" not in log and "heap full" not in log, log
    assert srv.proc.poll() is None


def test_esp32_selection_serves_tls_within_its_budget(tmp_path):
    """The test server with its TLS port on the esp32 selection, under
    -X heapsize=<the esp32 profile's heap_budget>: https and wss."""
    import asyncio
    import websockets
    from lwstool.certs import make_cert
    from test_tls import https_get
    exe = interpreter("esp32")
    heap = budget("esp32")
    cert, key, _ = make_cert(tmp_path / "pki")
    www = tmp_path / "app"
    www.mkdir()
    shutil.copy(FIRMWARE / "test_server.py", www / "test_server.py")
    shutil.copytree(FIRMWARE / "www", www / "www")
    port, tls_port = free_port(), free_port()
    srv = start(tmp_path, script=www / "test_server.py",
                args=["-p", port, "--tls-port", tls_port, "--cert", cert,
                      "--key", key], heap=heap, port=port, exe=exe,
                env={"MICROPYPATH": ".frozen"})
    try:
        wait_port(tls_port, srv.proc)
        for _ in range(3):
            st, _, body = https_get(tls_port, "/", cert)
            assert st == 200 and b"microlws" in body
        ctx = ssl.create_default_context(cafile=str(cert))

        async def wss():
            async with websockets.connect(
                    "wss://localhost:%d/echo" % tls_port, ssl=ctx,
                    compression=None) as ws:
                for i in range(10):
                    await ws.send("over tls %d" % i)
                    assert await ws.recv() == "over tls %d" % i
        from conftest import arun
        arun(wss(), 30)
        log = srv.log()
        assert "MemoryError" not in log and "heap full" not in log, log
    finally:
        srv.stop()


def test_frozen_lws_is_the_boards_selection():
    """What the esp8266 build froze is what its manifest names: no TLS,
    no client role, the WLAN manager and set-up page."""
    import subprocess
    exe = interpreter("esp8266")
    r = subprocess.run([str(exe), "-c", """
import sys
for m in ("lws.context", "lws.wlan", "lws.plugins.wlan_setup",
          "lws.tls", "lws.roles.client"):
    try:
        __import__(m)
        print(m, "frozen")
    except ImportError:
        print(m, "absent")
print(sys.maxsize)
"""], env={"MICROPYPATH": ".frozen"}, capture_output=True, text=True,
        timeout=20)
    assert r.stdout.split("\n")[:6] == [
        "lws.context frozen", "lws.wlan frozen",
        "lws.plugins.wlan_setup frozen", "lws.tls absent",
        "lws.roles.client absent", str(2 ** 31 - 1)], r


def test_a_manifest_naming_a_missing_file_fails_the_build(tmp_path,
                                                          monkeypatch):
    """The board's selection is what gets frozen: a file it names that is
    not there fails the build, as it would for the board."""
    from lwstool import unix32
    from lwstool.errors import LwsToolError
    interpreter("esp8266")  # built (and skipped here without the compiler)
    sel = (REPO / "boards" / "esp8266" / "lws_manifest.py").read_text()
    bad = tmp_path / "lws_manifest.py"
    bad.write_text(sel.replace('"../../firmware"', repr(str(FIRMWARE)))
                   .replace('"wlan.py",', '"wlan.py",\n        "nope.py",'))
    monkeypatch.setitem(unix32.BOARDS, "esp8266", bad)
    with pytest.raises(LwsToolError) as e:
        unix32.build("esp8266", quiet=True)
    assert "nope.py" in str(e.value)
    monkeypatch.undo()
    assert unix32.build("esp8266", quiet=True).is_file()  # and back
