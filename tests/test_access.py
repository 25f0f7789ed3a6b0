"""Access control: basic-auth mounts (lwstool passwd files), per-address
peer limits (ip_limit_wsi, ip_limit_ah), and cookies, against curl,
http.client, websockets and raw sockets."""
import asyncio
import base64
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
import websockets

from conftest import REPO, free_port, peer, start, wait_port

pytestmark = pytest.mark.timeout(60)

APP = """
import json
import lws
from lws.plugins.echo import Echo

class Cookies(lws.Protocol):
    name = "cookies"

    def on_http(self, conn, req):
        try:
            if "bad" in req.query:
                conn.set_cookie("x", "a;b")
            conn.set_cookie("sid", "abc123", path="/", max_age=60,
                            http_only=True, same_site="Lax")
            conn.set_cookie("theme", "dark", secure=True, same_site="None")
        except ValueError as e:
            conn.respond(400, body=str(e) + "\\n", content_type="text/plain")
            return
        conn.respond(200, body=json.dumps(req.cookies),
                     content_type="application/json")

class Who(lws.Protocol):
    name = "who"

    def on_http(self, conn, req):
        conn.respond(200, body="user %s\\n" % req.auth_user,
                     content_type="text/plain")

AUTH = "{auth}"
mounts = [lws.Mount("/", "file://{www}"),
          lws.Mount("/private", "file://{private}", auth_file=AUTH,
                    realm="test realm"),
          lws.Mount("/who", "callback://who", auth_file=AUTH),
          lws.Mount("/ws", "callback://echo", auth_file=AUTH),
          lws.Mount("/cookies", "callback://cookies")]
lws.Context(port={port}, mounts=mounts,
            protocols=[Cookies(), Who(), Echo()]).run()
"""

SECRET = b"the private page\n"


def passwd(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "lwstool", "passwd", *args],
                          input=stdin, capture_output=True, timeout=30,
                          env=dict(os.environ,
                                   PYTHONPATH=str(REPO / "host_tools")))


@pytest.fixture
def app(tmp_path):
    # the protected folder inside the public one: only the mount's auth
    # stands between a stranger and it, however the path is spelled
    www = tmp_path / "www"
    private = www / "private"
    private.mkdir(parents=True)
    (www / "index.html").write_text("<h1>public</h1>\n")
    (private / "a.txt").write_bytes(SECRET)
    auth = tmp_path / "passwd"
    assert passwd(str(auth), "alice", "--password-stdin",
                  stdin=b"wonder land\n").returncode == 0
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text(APP.replace("{port}", str(port)).replace(
        "{www}", str(www)).replace("{private}", str(private)).replace(
        "{auth}", str(auth)))
    s = start(tmp_path, script=script, port=port)
    s.auth = auth
    yield s
    s.stop()


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()
                                       ).decode()


def get(port, path, auth=None, source="127.0.0.1", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                   source_address=(source, 0))
    h = dict(headers or {})
    if auth:
        h["Authorization"] = auth
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r, body


def curl(url, *args):
    p = subprocess.run([peer("curl"), "-s", "-o", "-", "-w", "\n%{http_code}",
                        *args, url], capture_output=True, timeout=20)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


# -- basic auth ----------------------------------------------------------


def test_auth_asks_then_lets_in(app):
    url = "http://127.0.0.1:%d/private/a.txt" % app.port
    code, body = curl(url)
    assert code == 401 and SECRET not in body
    st, r, _ = get(app.port, "/private/a.txt")
    assert st == 401
    assert r.getheader("WWW-Authenticate") == \
        'Basic realm="test realm", charset="UTF-8"'
    assert curl(url, "-u", "alice:wrong")[0] == 401
    assert curl(url, "-u", "bob:wonder land")[0] == 401
    assert curl(url, "-u", "alice:wonder land") == (200, SECRET)
    # the same header again is let in without the key derivation
    for _ in range(3):
        st, _, body = get(app.port, "/who", basic("alice", "wonder land"))
        assert (st, body) == (200, b"user alice\n")
    assert get(app.port, "/")[0] == 200  # other mounts need nothing


def test_credentials_file_holds_no_password(app):
    text = app.auth.read_text()
    assert "wonder" not in text
    assert text.startswith("alice:pbkdf2-sha256:1000:")
    assert stat.S_IMODE(os.stat(app.auth).st_mode) == 0o600


@pytest.mark.parametrize("path", ["/%70rivate/a.txt", "//private/a.txt",
                                  "/./private/a.txt", "/private/./a.txt",
                                  "/%2E/private/a.txt", "/private//a.txt"])
def test_spelling_does_not_get_past_auth(app, path):
    s = socket.create_connection(("127.0.0.1", app.port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
              % path.encode())
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    assert data.startswith(b"HTTP/1.1 401"), data
    assert SECRET not in data
    # and spelled so with credentials, the same file
    st, _, body = get(app.port, path, basic("alice", "wonder land"))
    assert (st, body) == (200, SECRET)


def test_dot_dot_towards_a_protected_mount_is_refused(app):
    st, _, body = get(app.port, "/x/../private/a.txt")
    assert st == 403 and SECRET not in body


def test_websocket_upgrade_behind_auth(app):
    async def go():
        url = "ws://127.0.0.1:%d/ws" % app.port
        with pytest.raises(websockets.InvalidStatus) as e:
            async with websockets.connect(url):
                pass
        assert e.value.response.status_code == 401
        async with websockets.connect(url, additional_headers={
                "Authorization": basic("alice", "wonder land")}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
    asyncio.run(asyncio.wait_for(go(), 20))


def test_wrong_tries_make_an_address_wait(app):
    good = basic("alice", "wonder land")
    for _ in range(5):
        assert get(app.port, "/who", basic("alice", "guess"))[0] == 401
    st, r, _ = get(app.port, "/who", good)
    assert st == 429  # even the right password waits now
    wait = int(r.getheader("Retry-After"))
    assert 1 <= wait <= 64
    # another address is not held up
    assert get(app.port, "/who", good, source="127.0.0.2")[0] == 200
    time.sleep(wait + 0.2)
    assert get(app.port, "/who", good)[0] == 200
    # a success forgave: wrong tries count from zero again
    assert get(app.port, "/who", basic("alice", "guess"))[0] == 401
    assert get(app.port, "/who", good)[0] == 200


def test_users_change_while_running(app):
    bob = basic("bob", "builder")
    alice = basic("alice", "wonder land")
    assert get(app.port, "/who", alice)[0] == 200
    assert get(app.port, "/who", bob)[0] == 401
    assert passwd(str(app.auth), "bob", "--password-stdin",
                  stdin=b"builder\n").returncode == 0
    assert passwd(str(app.auth), "alice", "--delete").returncode == 0
    time.sleep(1.2)  # the file is looked at once a second at most
    assert get(app.port, "/who", bob)[2] == b"user bob\n"
    assert get(app.port, "/who", alice)[0] == 401  # remembered no more


def test_lwstool_passwd(tmp_path):
    f = tmp_path / "users"
    assert passwd(str(f), "ann", "--password-stdin", stdin=b"one\n"
                  ).returncode == 0
    first = f.read_text()
    assert passwd(str(f), "ann", "--password-stdin", stdin=b"two\n"
                  ).returncode == 0
    assert f.read_text() != first and f.read_text().count("ann:") == 1
    p = passwd(str(f), "nobody", "--delete")
    assert p.returncode == 1 and b"no user nobody" in p.stderr
    p = passwd(str(f), "a:b", "--password-stdin", stdin=b"x\n")
    assert p.returncode == 1 and b"lwstool: passwd:" in p.stderr
    assert passwd(str(f), "ann", "-d").returncode == 0
    assert f.read_text() == ""
    assert not list(tmp_path.glob("*.tmp"))  # written, then renamed


def test_make_run_serves_private_with_printed_credentials(tmp_path):
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "lwstool", "serve",
                          "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         env=dict(os.environ,
                                  PYTHONPATH=str(REPO / "host_tools")))
    try:
        line = p.stdout.readline().decode()
        assert "/private/ asks for user admin, password " in line, line
        pw = line.split("password ")[1].split(" ")[0]
        wait_port(port, p)
        assert get(port, "/private/")[0] == 401
        st, _, body = get(port, "/private/", basic("admin", pw))
        assert st == 200 and b"hello, admin" in body
    finally:
        p.terminate()
        p.wait(10)


# -- cookies -------------------------------------------------------------


def test_cookies_parsed_and_set(app):
    st, r, body = get(app.port, "/cookies", headers={
        "Cookie": 'a=1; b="x y"; bad; =nothing; a=2; c=  3 '})
    assert st == 200
    assert json.loads(body) == {"a": "1", "b": "x y", "c": "3"}
    assert r.headers.get_all("Set-Cookie") == [
        "sid=abc123; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
        "theme=dark; Secure; SameSite=None"]
    st, _, body = get(app.port, "/cookies")
    assert (st, json.loads(body)) == (200, {})
    st, _, body = get(app.port, "/cookies?bad")
    assert st == 400 and b"bad cookie value" in body


def test_curl_keeps_and_sends_back_cookies(app, tmp_path):
    jar = tmp_path / "jar"
    url = "http://127.0.0.1:%d/cookies" % app.port
    assert curl(url, "-c", str(jar))[0] == 200
    jar_text = jar.read_text()
    assert "#HttpOnly_127.0.0.1" in jar_text and "\tsid\tabc123" in jar_text
    code, body = curl(url, "-b", str(jar))
    # (curl counts 127.0.0.1 as secure: the Secure one comes back too)
    assert code == 200 and json.loads(body) == {"sid": "abc123",
                                                "theme": "dark"}


# -- peer limits -----------------------------------------------------------


@pytest.fixture
def limited(tmp_path):
    s = start(tmp_path, args=["-o", "ip_limit_wsi=3", "-o", "ip_limit_ah=2"])
    yield s
    s.stop()


def conn_from(port, source):
    return socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(source, 0))


def closed_with(s):
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    return data


def per_ip(srv, want=None):
    """status.json's per-address counts, asked from 127.0.0.2 (until
    127.0.0.1's are want)."""
    for _ in range(50):
        st, _, body = get(srv.port, "/status.json", source="127.0.0.2")
        d = json.loads(body)
        if d["per_ip"].get("127.0.0.1") == want:
            return d
        time.sleep(0.1)
    raise AssertionError(d)


def test_ip_limit_wsi(limited):
    per_ip(limited, None)  # the start-up probe's connection is gone
    held = [conn_from(limited.port, "127.0.0.1") for _ in range(3)]
    per_ip(limited, {"conns": 3, "ah": 0})
    extra = conn_from(limited.port, "127.0.0.1")
    data = closed_with(extra)  # refused at once
    assert data.startswith(b"HTTP/1.1 503"), data
    # another address is served as before, and status.json counts
    st, _, body = get(limited.port, "/status.json", source="127.0.0.2")
    d = json.loads(body)
    assert st == 200 and d["ip_limits"] == {"wsi": 3, "ah": 2}
    assert d["per_ip"]["127.0.0.1"]["conns"] == 3
    for s in held:
        s.close()
    time.sleep(0.3)
    assert get(limited.port, "/t/info")[0] == 200


def test_ip_limit_ah(limited):
    # two heads begun hold two header buffers; a third is over the limit
    per_ip(limited, None)
    held = []
    for _ in range(2):
        s = conn_from(limited.port, "127.0.0.1")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    per_ip(limited, {"conns": 2, "ah": 2})
    third = conn_from(limited.port, "127.0.0.1")
    third.sendall(b"GET / HTTP/1.1\r\n")
    assert closed_with(third).startswith(b"HTTP/1.1 503")
    st, _, body = get(limited.port, "/status.json", source="127.0.0.2")
    assert json.loads(body)["per_ip"]["127.0.0.1"] == {"conns": 2, "ah": 2}
    # the two held finish their requests and are answered
    for s in held:
        s.sendall(b"Connection: close\r\n\r\n")
        assert closed_with(s).startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    st, _, body = get(limited.port, "/status.json", source="127.0.0.2")
    assert "127.0.0.1" not in json.loads(body)["per_ip"]
    assert limited.alive()


# -- stats -----------------------------------------------------------------


def test_stats_count_what_happened(tmp_path):
    srv = start(tmp_path, args=["-o", "ip_limit_wsi=2"])
    try:
        def stats():
            return json.loads(get(srv.port, "/status.json",
                                  source="127.0.0.2")[2])["stats"]
        s0 = stats()
        assert get(srv.port, "/t/info")[0] == 200
        assert get(srv.port, "/nothing-here")[0] == 404
        # sent as the socket drains: writeable callbacks
        assert get(srv.port, "/t/stream?n=5&size=64")[0] == 200

        async def ws():
            async with websockets.connect(
                    "ws://127.0.0.1:%d/echo" % srv.port) as w:
                for i in range(5):
                    await w.send("m%d" % i)
                    assert await w.recv() == "m%d" % i
        asyncio.run(asyncio.wait_for(ws(), 20))
        held = [conn_from(srv.port, "127.0.0.1") for _ in range(2)]
        per_ip(srv, {"conns": 2, "ah": 0})
        extra = conn_from(srv.port, "127.0.0.1")
        assert closed_with(extra).startswith(b"HTTP/1.1 503")
        for s in held:
            s.close()
        s1 = stats()
        assert s1["accepted"] - s0["accepted"] >= 5
        assert s1["refused"] - s0["refused"] == 1
        assert s1["http"]["2xx"] - s0["http"]["2xx"] >= 2  # info, status
        assert s1["http"]["4xx"] - s0["http"]["4xx"] == 1
        assert s1["ws_messages"]["rx"] - s0["ws_messages"]["rx"] >= 5
        assert s1["ws_messages"]["tx"] - s0["ws_messages"]["tx"] >= 5
        assert s1["bytes_in"] > s0["bytes_in"] + 100
        assert s1["bytes_out"] > s0["bytes_out"] + 500
        w = s1["writeable_ms"]
        assert w["n"] > 0 and 0 <= w["min"] <= w["mean"] <= w["max"] < 1000
    finally:
        srv.stop()
