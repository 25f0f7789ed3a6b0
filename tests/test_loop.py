"""The service loop driven three ways, signals, logging, and `make run`."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, free_port, peer, recv_all, start, wait_port

APP = """
import lws

class Count(lws.Protocol):
    name = "count"
    def on_http(self, conn, req):
        conn.respond(200, body=str(TICKS[0]), content_type="text/plain")

TICKS = [0]
vh = lws.Vhost("localhost", {port}, [lws.Mount("/count", "callback://count"),
               lws.Mount("/", "file://{www}")], [Count()])
ctx = lws.Context([vh])
"""

USER_LOOP = APP + """
# the application's own main loop calls service() (lws_service)
while True:
    ctx.service(20)
    TICKS[0] += 1
"""

ASYNCIO = APP + """
import asyncio

async def ticker():
    while True:
        TICKS[0] += 1
        await asyncio.sleep_ms(10)

async def main():
    asyncio.create_task(ticker())
    await ctx.serve()

asyncio.run(main())
"""


def run_app(tmp_path, code):
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text(code.format(port=port, www=REPO / "firmware" / "www"))
    return start(tmp_path, script=script, port=port), port


@pytest.mark.parametrize("code", [USER_LOOP, ASYNCIO], ids=["service", "asyncio"])
def test_loop_beside_user_code(tmp_path, code):
    srv, port = run_app(tmp_path, code)
    try:
        srv.port = port
        srv.has_t = False
        counts = []
        for _ in range(3):
            st, _, body = srv.get("/count")
            assert st == 200
            counts.append(int(body))
            time.sleep(0.2)
        # the user's code runs between requests, and requests are served
        assert counts[0] < counts[1] < counts[2]
        st, _, body = srv.get("/")
        assert st == 200 and b"microlws" in body
    finally:
        srv.stop()


def test_sigint_closes_cleanly(tmp_path):
    srv = start(tmp_path)
    s = __import__("socket").create_connection(("127.0.0.1", srv.port))
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(5) == 0
    assert recv_all(s) == b""  # open connections are closed
    assert "context closed" in srv.log()


def lwstool(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "lwstool", *args],
                            env=dict(os.environ, PYTHONPATH=str(REPO / "host_tools")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            **kw)


def test_sigterm_via_lwstool_serve_closes_cleanly(tmp_path):
    port = free_port()
    (tmp_path / "hello.txt").write_text("hello")
    p = lwstool("serve", "--port", str(port), "--docroot", str(tmp_path))
    try:
        wait_port(port, p)
        out = subprocess.run([peer("curl"), "-s", "http://127.0.0.1:%d/hello.txt" % port],
                             capture_output=True, timeout=10).stdout
        assert out == b"hello"
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        log = p.stdout.read().decode()
        assert "context closed" in log
    finally:
        if p.poll() is None:
            p.terminate()  # lwstool passes it on: no server left behind
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


LOG_LINE = re.compile(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d:\d{4}\] "
                      r"(ERR|WARN|NOTICE|INFO|DEBUG): ")


def test_log_format_and_levels(tmp_path):
    quiet = start(tmp_path)
    loud = start(tmp_path, args=["-d", "15"])
    try:
        for s in (quiet, loud):
            s.get("/t/info")
            s.raw(b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        quiet.stop()
        loud.stop()
    q, l = quiet.log(), loud.log()
    lines = [x for x in l.splitlines() if x.startswith("[")]
    assert lines and all(LOG_LINE.match(x) for x in lines), lines
    assert "NOTICE: " in q and "INFO: " not in q
    assert re.search(r"INFO: <conn 127\.0\.0\.1:\d+>: GET /t/info", l)
    assert re.search(r"INFO: <conn 127\.0\.0\.1:\d+>: 501 ", l)


def test_make_run_docroot_port_heap(tmp_path):
    port = free_port()
    (tmp_path / "index.html").write_text("<p>from DOCROOT</p>")
    tls_port = free_port()
    p = subprocess.Popen(["make", "-s", "run", "PORT=%d" % port,
                          "TLS_PORT=%d" % tls_port,
                          "DOCROOT=%s" % tmp_path, "HEAP=256K"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_port(port, p, timeout=60)
        out = subprocess.run([peer("curl"), "-s", "http://127.0.0.1:%d/" % port],
                             capture_output=True, timeout=10).stdout
        assert out == b"<p>from DOCROOT</p>"
        # and over TLS, with the certificate made on first use
        wait_port(tls_port, p, timeout=30)
        out = subprocess.run([peer("curl"), "-sk", "https://127.0.0.1:%d/" % tls_port],
                             capture_output=True, timeout=10).stdout
        assert out == b"<p>from DOCROOT</p>"
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    assert "listening on port %d" % port in p.stdout.read().decode()


def make_var(name):
    """A variable's default in the Makefile (`NAME ?= words`)."""
    m = re.search(r"^%s \?= (.*)$" % name, (REPO / "Makefile").read_text(),
                  re.M)
    assert m, name
    return m.group(1).split()


def test_make_debs_knows_every_peer():
    """make debs installs every program the tests use as a peer."""
    from conftest import PEERS
    assert set(make_var("PEER_TOOLS")) == set(PEERS)
    assert set(PEERS.values()) <= set(make_var("PEER_DEBS"))


def test_make_test_stops_when_a_peer_cannot_be_installed():
    def make(*args):
        return subprocess.run(["make", "-s", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    r = make("debs")  # everything is there: nothing to do, nothing said
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stderr
    for apt, why in (("false", "could not install the Debian packages"),
                     ("true", "still missing after installing")):
        r = make("test", "PEER_TOOLS=curl no-such-peer", "APT=" + apt,
                 "PYTEST_ARGS=--collect-only -q tests/test_package.py")
        assert r.returncode != 0, r.stdout + r.stderr
        assert why in r.stderr and "no-such-peer" in r.stderr, r.stderr
        assert "test_package" not in r.stdout  # pytest never ran
