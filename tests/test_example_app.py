"""The README's small app (firmware/examples/notes.py): lws.App routes,
a WebSocket protocol and logins together, with curl, http.client and
websockets as the peers."""
import asyncio
import http.client
import json
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
import websockets

from conftest import FIRMWARE, arun, peer, start

pytestmark = pytest.mark.timeout(60)
EXAMPLE = FIRMWARE / "examples" / "notes.py"
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    srv = start(tmp_path_factory.mktemp("notes"), script=EXAMPLE,
                args=["{port}"])
    yield srv
    srv.stop()


def call(srv, method, path, body=None, cookie=None, origin=True):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    h = {}
    if cookie:
        h["Cookie"] = cookie
    if origin:
        h["Origin"] = "http://127.0.0.1:%d" % srv.port
    if isinstance(body, dict):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    elif body is not None:
        h["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        c.request(method, path, body, h)
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        c.close()


def login(srv, name="admin", pw="a long password"):
    st, h, _ = call(srv, "POST", "/auth/login",
                    urlencode({"name": name, "password": pw}))
    assert st == 303, st
    return h["Set-Cookie"].split(";")[0]


def test_the_readme_shows_the_example_as_it_is():
    text = EXAMPLE.read_text()
    body = text[text.index("import json"):]
    assert body in README.read_text()


def test_routes_need_a_login(notes):
    st, h, _ = call(notes, "GET", "/api/notes")
    assert st == 401
    st, h, _ = call(notes, "POST", "/api/notes", {"text": "x"})
    assert st == 401
    st, _, _ = call(notes, "POST", "/auth/login",
                    urlencode({"name": "admin", "password": "wrong one!"}))
    assert st in (401, 403)


def test_notes_go_to_the_logged_in_websockets(notes):
    cookie = login(notes)
    url = "ws://127.0.0.1:%d/live" % notes.port

    async def go():
        with pytest.raises(websockets.InvalidStatus) as e:
            async with websockets.connect(url):
                pass
        assert e.value.response.status_code == 401
        async with websockets.connect(
                url, additional_headers={"Cookie": cookie}) as ws:
            loop = asyncio.get_running_loop()
            st = await loop.run_in_executor(None, lambda: call(
                notes, "POST", "/api/notes", {"text": "hello"}, cookie)[0])
            assert st == 201
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert m == {"by": "admin", "text": "hello"}
    arun(go())
    st, _, body = call(notes, "GET", "/api/notes", cookie=cookie)
    assert st == 200
    d = json.loads(body)
    assert d["user"] == "admin" and {"by": "admin", "text": "hello"} in d[
        "notes"]
    st, _, body = call(notes, "POST", "/api/notes", {"text": ""}, cookie)
    assert st == 400 and b"1 to 200" in body


def test_curl_logs_in_with_a_cookie_jar(notes, tmp_path):
    jar = tmp_path / "jar"
    u = "http://127.0.0.1:%d" % notes.port
    p = subprocess.run([peer("curl"), "-sS", "-c", jar, "-b", jar, "-H",
                        "Origin: " + u, "-d", "name=admin",
                        "-d", "password=a long password", u + "/auth/login"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([peer("curl"), "-sS", "-b", jar, "-H",
                        "Content-Type: application/json", "-d",
                        '{"text": "from curl"}', u + "/api/notes"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0 and b'"n"' in p.stdout, p
    p = subprocess.run([peer("curl"), "-sS", "-b", jar, u + "/api/notes"],
                       capture_output=True, timeout=20)
    assert b"from curl" in p.stdout
    # logged out, the cookie opens nothing (the server forgot it)
    old = [ln.split("\t") for ln in jar.read_text().splitlines()
           if "\tlws_sid\t" in ln][0]
    old = "lws_sid=" + old[6]
    assert call(notes, "GET", "/api/notes", cookie=old)[0] == 200
    p = subprocess.run([peer("curl"), "-sS", "-b", jar, "-c", jar, "-H",
                        "Origin: " + u, "-d", "", u + "/auth/logout"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0
    assert call(notes, "GET", "/api/notes", cookie=old)[0] == 401
