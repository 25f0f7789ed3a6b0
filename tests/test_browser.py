"""The test page (firmware/www) in a real browser: Debian's Chromium,
headless, driven over the DevTools protocol (tests/cdp.py), on the test
server over http and over https/wss (a certificate made here, which the
browser trusts by its key: --ignore-certificate-errors-spki-list).

Every tab is used as a person would (mouse clicks, typing, Enter) and
checked by what the page shows; a board with the echo protocol only
shows the echo tab alone. Each page is photographed when its test ends,
passed or failed: build/test-artifacts/browser/<test>.png (and in the
test's tmp folder).
"""
import base64
import contextlib
import hashlib
import json
import re
import shutil
import socket
import ssl
import time

import pytest

import cdp
from conftest import FIRMWARE, PEERS, REPO, free_port, start, wait_port
from lwstool.certs import make_cert

pytestmark = pytest.mark.timeout(90)

ARTIFACTS = REPO / "build" / "test-artifacts" / "browser"
TABS = ["dumb", "mirror", "echo", "status", "http"]
WS_PROTOCOLS = {"dumb-increment-protocol", "lws-mirror-protocol", "echo",
                "lws-status"}


# -- fixtures -----------------------------------------------------------------


def say(config, line):
    """A line on the terminal, past pytest's output capture."""
    pm = config.pluginmanager
    tr, cm = pm.getplugin("terminalreporter"), pm.getplugin("capturemanager")
    if tr is None:
        return
    with cm.global_and_fixture_disabled() if cm else contextlib.nullcontext():
        tr.write("\n")
        tr.write_line(line)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """cert.pem, key.pem and the base64 SHA-256 of the certificate's
    public key, as Chromium's SPKI allow list wants it."""
    from cryptography.hazmat.primitives import serialization as ser
    cp, kp, (c, _) = make_cert(tmp_path_factory.mktemp("tls"))
    spki = c.public_key().public_bytes(
        ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    return cp, kp, base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, cert, request):
    exe = cdp.chromium()
    if exe is None:
        pytest.skip("chromium is missing: install the Debian package %s "
                    "(make debs)" % PEERS["chromium"])
    b = cdp.Browser(exe, tmp_path_factory.mktemp("chromium"),
                    ["--ignore-certificate-errors-spki-list=" + cert[2]])
    shots = b.shots = []
    shutil.rmtree(ARTIFACTS, ignore_errors=True)   # this run's only
    b.keep.update(("Network.webSocketCreated",
                   "Network.webSocketWillSendHandshakeRequest",
                   "Network.webSocketHandshakeResponseReceived"))
    try:
        yield b
    finally:
        b.close()
        left = cdp.leftovers(b.folder)
        if shots:
            say(request.config, "browser screenshots: %s/*.png (%d)" % (
                ARTIFACTS.relative_to(REPO), len(shots)))
    assert not left, "Chromium processes left behind: %s" % left


@pytest.fixture(scope="module")
def site(tmp_path_factory, cert):
    """The test server, on http and https: the page's base URLs."""
    tls_port = free_port()
    srv = start(tmp_path_factory.mktemp("srv"), args=[
        "--tls-port", tls_port, "--cert", cert[0], "--key", cert[1]])
    try:
        wait_port(tls_port, srv.proc)
        yield srv, {"http": "http://127.0.0.1:%d/" % srv.port,
                    "https": "https://127.0.0.1:%d/" % tls_port}
    finally:
        srv.stop()


@pytest.fixture
def pages(browser, request, tmp_path):
    """open(url): a page in a browser context of its own, once every tab
    has been shown or given up; each is photographed and closed at the
    end of the test."""
    opened = []

    def open_page(url, network=False):
        p = browser.page()
        opened.append(p)
        if network:
            p.call("Network.enable")
        goto(p, url)
        return p

    yield open_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    for i, p in enumerate(opened):
        f = "%s%s.png" % (name, "-%d" % (i + 1) if i else "")
        try:
            p.screenshot(tmp_path / f)
            shutil.copy(tmp_path / f, ARTIFACTS / f)
            browser.shots.append(ARTIFACTS / f)
        except (cdp.CDPError, OSError) as e:
            print("no screenshot of %s: %s" % (f, e))
        p.close()


@pytest.fixture(params=["http", "https"])
def url(request, site):
    return site[1][request.param]


# -- what a person does and sees ----------------------------------------------


def js(v):
    return json.dumps(v)


def goto(p, url):
    """Load the page, and wait until every tab has answered or been
    given up (tabs appearing move the others)."""
    p.goto(url)
    p.wait("!document.querySelector('nav').classList.contains('busy')",
           20, "every tab answered or given up")


def visible_tabs(p):
    return p.eval("[...document.querySelectorAll('nav button')]"
                  ".filter((b) => b.offsetParent !== null)"
                  ".map((b) => b.dataset.tab)")


def selected_tab(p):
    return p.eval("(document.querySelector('nav button.on') || {})"
                  ".dataset?.tab || null")


def click(p, selector):
    """A mouse click in the middle of a visible element."""
    r = p.wait("(() => { const e = document.querySelector(%s);"
               " if (!e || e.offsetParent === null) return null;"
               " e.scrollIntoView({block: 'center'});"
               " const r = e.getBoundingClientRect();"
               " const x = r.x + r.width / 2, y = r.y + r.height / 2;"
               " return e.contains(document.elementFromPoint(x, y)) &&"
               " [x, y]; })()" % js(selector), 5, "%s visible" % selector)
    for t in ("mousePressed", "mouseReleased"):
        p.call("Input.dispatchMouseEvent", {
            "type": t, "x": r[0], "y": r[1], "button": "left",
            "clickCount": 1})


def tab(p, name):
    click(p, "nav button[data-tab=%s]" % js(name))
    p.wait("document.getElementById(%s).offsetParent !== null" % js(name),
           5, "the %s tab shown" % name)


def type_line(p, selector, text):
    """Click into an input, type text and press Enter."""
    click(p, selector)
    p.call("Input.insertText", {"text": text})
    for t in ("keyDown", "keyUp"):
        p.call("Input.dispatchKeyEvent", {
            "type": t, "key": "Enter", "code": "Enter",
            "windowsVirtualKeyCode": 13,
            "text": "\r" if t == "keyDown" else ""})


def text(p, selector):
    return p.eval("document.querySelector(%s).textContent" % js(selector))


def wait_open(p, name):
    p.wait("document.getElementById(%s).textContent === 'open'"
           % js(name + "-state"), 10, "%s says open" % name)


def log_lines(p, name):
    return p.eval("[...document.querySelectorAll(%s)].map((l) => "
                  "l.textContent)" % js("#%s-log li" % name))


# -- the tabs -----------------------------------------------------------------


def test_every_tab_shown(pages, url):
    p = pages(url)
    assert visible_tabs(p) == TABS
    assert selected_tab(p) == "dumb"
    assert p.eval("document.getElementById('dumb').offsetParent !== null")
    assert p.eval("document.getElementById('none').hidden")


def test_dumb_increment(pages, url):
    p = pages(url)
    tab(p, "dumb")
    wait_open(p, "dumb")
    n0 = int(p.wait("/^\\d+$/.test(document.getElementById('dumb-n')"
                    ".textContent) && document.getElementById('dumb-n')"
                    ".textContent", 5, "a count shown"))
    # 20 a second: it rises, then the reset brings it back near 0
    high = int(p.wait("(() => { const n = +document.getElementById('dumb-n')"
                      ".textContent; return n >= %d && n; })()"
                      % max(n0 + 10, 30), 10, "the counter rising"))
    # every number shown from now on, however slow the polling here
    p.eval("window.seen = []; new MutationObserver(() => window.seen.push("
           "+document.getElementById('dumb-n').textContent)).observe("
           "document.getElementById('dumb-n'), {childList: true}); 1")
    click(p, "#dumb-reset")
    p.wait("window.seen.some((n) => n < 5)", 5,
           "the counter back near 0 after reset (it was %d)" % high)
    assert text(p, "#dumb-state") == "open"


def test_mirror(pages, url):
    a, b = pages(url), pages(url)
    for p in (a, b):
        tab(p, "mirror")
        wait_open(p, "mirror")
    scheme = url.split(":")[0]
    type_line(a, "#mirror-in", "hello from a over " + scheme)
    for p in (b, a):
        p.wait("[...document.querySelectorAll('#mirror-log li')].some((l) =>"
               " l.textContent === %s)" % js("hello from a over " + scheme),
               5, "a's line in the mirror log")
    type_line(b, "#mirror-in", "and back from b")
    a.wait("document.querySelector('#mirror-log li').textContent === "
           "'and back from b'", 5, "b's line first in a's mirror log")
    assert text(a, "#mirror-in") == ""


def test_echo(pages, url):
    """Echo, and the handshake seen from the browser: Chromium offers
    permessage-deflate, the server does not take it up."""
    p = pages(url, network=True)
    tab(p, "echo")
    wait_open(p, "echo")
    type_line(p, "#echo-in", "héllo, echo ✓")
    p.wait("document.querySelector('#echo-log li')?.textContent === %s"
           % js("echo: héllo, echo ✓"), 5, "the echo in the log")
    type_line(p, "#echo-in", "again")
    p.wait("document.querySelector('#echo-log li').textContent === "
           "'echo: again'", 5, "the second echo first in the log")
    assert log_lines(p, "echo") == ["echo: again", "echo: héllo, echo ✓"]

    created = {e["requestId"]: e["url"]
               for e in p.events("Network.webSocketCreated")}
    echo_ids = [i for i, u in created.items() if u.endswith("/echo")]
    assert echo_ids, created
    req = [e["request"]["headers"] for e in
           p.events("Network.webSocketWillSendHandshakeRequest")
           if e["requestId"] in echo_ids]
    resp = [e["response"] for e in
            p.events("Network.webSocketHandshakeResponseReceived")
            if e["requestId"] in echo_ids]
    assert req and resp, (req, resp)
    lower = {k.lower(): v for k, v in req[0].items()}
    assert "permessage-deflate" in lower["sec-websocket-extensions"]
    assert lower["sec-websocket-protocol"] == "echo"
    assert resp[0]["status"] == 101
    got = {k.lower(): v for k, v in resp[0]["headers"].items()}
    # the echo went through permessage-deflate (Chromium compresses what
    # it sends; our server inflated it)
    ext = got["sec-websocket-extensions"]
    assert ext.startswith("permessage-deflate") and \
        "client_no_context_takeover" in ext, got
    assert got["sec-websocket-protocol"] == "echo"


def test_status(pages, url):
    p = pages(url)
    tab(p, "status")
    wait_open(p, "status")
    heap = p.wait("(() => { const t = document.getElementById('heap')"
                  ".textContent; return /^\\d+ bytes in use, \\d+ free$/"
                  ".test(t) && t; })()", 5, "the heap line filled")
    assert int(heap.split()[0]) > 0
    # the table: this page's four WebSockets, by role and protocol
    rows = p.wait("(() => { const rows = [...document.querySelectorAll("
                  "'#conns tr')].map((r) => [...r.cells].map((c) => "
                  "c.textContent)); const ws = new Set(rows.filter((r) => "
                  "r[1] === 'ws').map((r) => r[2])); return %s.every((n) =>"
                  " ws.has(n)) && rows; })()" % js(sorted(WS_PROTOCOLS)),
                  5, "the page's WebSockets in the table")
    assert all(len(r) == 3 and r[0] for r in rows), rows
    assert {r[1] for r in rows} <= {"http", "ws", "tls"}, rows


def test_http_tab(pages, url):
    p = pages(url)
    tab(p, "http")
    links = p.eval("[...document.querySelectorAll('#http a')]"
                   ".map((a) => a.getAttribute('href'))")
    assert [h.split("?")[0] for h in links] == ["/t/info", "/t/stream",
                                                "/t/heap"]
    got = p.eval("Promise.all([...document.querySelectorAll('#http a')]"
                 ".map((a) => fetch(a.href).then(async (r) =>"
                 " [r.status, r.headers.get('content-type'),"
                 " await r.text()])))", 10)
    assert [g[0] for g in got] == [200, 200, 200], got
    info = json.loads(got[0][2])
    assert info["path"] == "/t/info" and info["query"] == "hello=world"
    assert got[1][2] == ("0123456789" * 7)[:64] * 20
    assert re.fullmatch(r"\d+ \d+\n", got[2][2]), got[2][2]
    # and a click follows the first link
    click(p, "#http a")
    p.wait("location.pathname === '/t/info'", 5, "the /t/info page")
    shown = p.eval("(document.querySelector('pre') || document.body)"
                   ".textContent")
    assert json.loads(shown)["query"] == "hello=world"
    goto(p, url)   # back, for the photograph
    tab(p, "http")


# -- a board that serves only some protocols -----------------------------------


def board(server_factory, tmp_path, protocols, mounts=()):
    """main.py as on a board, its lws.json serving the test page and
    only these protocols; its URL."""
    port = free_port()
    (tmp_path / "lws.json").write_text(json.dumps({
        "wlan": False,
        "server": {"port": port, "docroot": str(FIRMWARE / "www"),
                   "mounts": list(mounts), "protocols": list(protocols)}}))
    server_factory(script=FIRMWARE / "main.py", port=port)
    return "http://127.0.0.1:%d/" % port


def handshakes(p):
    """How many WebSocket handshakes the page sent, per subprotocol."""
    p.eval("1")   # (events are collected while commands are answered)
    out = {}
    for e in p.events("Network.webSocketWillSendHandshakeRequest"):
        h = {k.lower(): v for k, v in e["request"]["headers"].items()}
        n = h.get("sec-websocket-protocol")
        out[n] = out.get(n, 0) + 1
    return out


# (server_factory before pages: a page is photographed before its server
# stops)

def test_echo_only_board(server_factory, pages, tmp_path):
    """A board whose lws.json names the echo protocol alone: the page
    shows the echo tab only, selected, and it works; the others (their
    upgrades refused, /t/ not served) never appear, and a refused
    protocol is tried three times, then no more."""
    url = board(server_factory, tmp_path, ["lws.plugins.echo.Echo"],
                [["/echo", "callback://echo"]])
    p = pages(url, network=True)
    assert visible_tabs(p) == ["echo"]
    assert selected_tab(p) == "echo"
    wait_open(p, "echo")
    assert p.eval("document.getElementById('none').hidden")
    type_line(p, "#echo-in", "only echo here")
    p.wait("document.querySelector('#echo-log li')?.textContent === "
           "'echo: only echo here'", 5, "the echo in the log")
    for name in ("dumb", "mirror", "status"):
        assert text(p, "#%s-state" % name) == "closed"
    time.sleep(2.5)   # longer than the page's last wait between tries
    assert handshakes(p) == {"dumb-increment-protocol": 3,
                             "lws-mirror-protocol": 3, "lws-status": 3,
                             "echo": 1}


def test_board_without_protocols(server_factory, pages, tmp_path):
    """Files only: no tab at all, and the page says so."""
    p = pages(board(server_factory, tmp_path, []))
    assert visible_tabs(p) == []
    assert selected_tab(p) is None
    assert p.eval("document.getElementById('none').offsetParent !== null")
    assert "none of the test page's protocols" in text(p, "#none")


# -- the README's walkthrough, ending in a browser ------------------------------


def test_readme_walkthrough_ends_with_every_tab(pages, tmp_path):
    """The README's steps on a virtual board (deploy, wifi add home,
    config set server.port, reset), then the page in the browser: every
    tab a board serves is there and works (the http tab is the test
    server's alone)."""
    import subprocess
    import sys
    from lwstool import vboard
    proc, path = vboard.start("esp32", root=tmp_path / "flash")
    try:
        port = free_port()
        r = subprocess.run(
            [sys.executable, "-m", "lwstool", "-p", path, "deploy",
             "--board", "esp32", "+", "wifi", "add", "home",
             "--password-stdin", "+", "config", "set", "server.port",
             str(port), "+", "reset"], input="password\n", text=True,
            capture_output=True, timeout=120, cwd=str(REPO))
        assert r.returncode == 0, r.stdout + r.stderr
        wait_port(port, timeout=30)
        p = pages("http://127.0.0.1:%d/" % port)
        assert visible_tabs(p) == ["dumb", "mirror", "echo", "status"]
        assert selected_tab(p) == "dumb"
        wait_open(p, "dumb")
        p.wait("+document.getElementById('dumb-n').textContent > 5", 10,
               "the counter rising")
        tab(p, "echo")
        wait_open(p, "echo")
        type_line(p, "#echo-in", "from the board")
        p.wait("document.querySelector('#echo-log li')?.textContent === "
               "'echo: from the board'", 5, "the echo in the log")
        tab(p, "mirror")
        wait_open(p, "mirror")
        type_line(p, "#mirror-in", "mirrored")
        p.wait("document.querySelector('#mirror-log li')?.textContent === "
               "'mirrored'", 5, "the line mirrored back")
        tab(p, "status")
        wait_open(p, "status")
        p.wait("/^\\d+ bytes in use/.test(document.getElementById('heap')"
               ".textContent)", 5, "the heap line filled")
        # a board's status gives counts, not peers: a row per role and
        # per protocol
        rows = p.wait("(() => { const r = [...document.querySelectorAll("
                      "'#conns tr')].map((r) => r.cells[2].textContent);"
                      " return r.includes('lws-status') && r; })()", 5,
                      "the status table filled")
        assert "dumb-increment-protocol" in rows
    finally:
        vboard.stop(proc)
