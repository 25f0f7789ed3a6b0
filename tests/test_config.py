"""Configuration files (lws.config, lwsws's shape) and the graceful
reload, on the MicroPython unix port, with http.client and websockets
as the peers."""
import asyncio
import http.client
import json
import socket
import subprocess
import time

import pytest

from conftest import FIRMWARE, arun, free_port, run_mpy, start, unixport


def get(port, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def site(tmp_path, name, text):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "index.html").write_text(text)
    return d


def vhost(name, port, folder, **kw):
    v = {"name": name, "port": port,
         "mounts": [{"mountpoint": "/", "origin": "file://%s" % folder,
                     "cache-max-age": 0},
                    {"mountpoint": "/echo", "origin": "callback://echo"},
                    ["/status.json", "callback://lws-status"]],
         "ws-protocols": [{"echo": {"default": True}}, "lws-status"]}
    v.update(kw)
    return v


def write(path, conf):
    path.write_text(json.dumps(conf))


def test_two_vhosts_on_two_ports(tmp_path):
    a, b = free_port(), free_port()
    conf = tmp_path / "lws.json"
    write(conf, {"global": {"timeout_secs": 5},
                 "vhosts": [vhost("one", a, site(tmp_path, "a", "site A")),
                            vhost("two", b, site(tmp_path, "b", "site B"),
                                  options={"sts": False})]})
    srv = start(tmp_path, args=["--config", conf], port=a)
    try:
        assert get(a) == (200, b"site A")
        assert get(b) == (200, b"site B")
        st, body = get(b, "/status.json")
        assert st == 200 and b'"protocols"' in body
    finally:
        srv.stop()


BAD = [
    ({"vhosts": [{"port": "{a}"}, {"port": "{b}", "mounts": [
        {"mountpoint": "/", "origin": "file://no-such-folder"}]}]},
     "vhosts[1].mounts[0].origin: no file or folder"),
    ({"global": {"timeout_sec": 3}, "vhosts": [{"port": "{a}"}]},
     "global.timeout_sec: unknown option"),
    ({"global": {"timeout_secs": "soon"}, "vhosts": [{"port": "{a}"}]},
     "global.timeout_secs: a number"),
    ({"vhosts": [{"port": "{a}", "ws-protocols": ["no-such-protocol"]}]},
     "vhosts[0].ws-protocols[0]: no protocol plugin named"),
    ({"vhosts": [{"port": "{a}", "ws-protocols": [
        {"lws-status": {"colour": 1}}]}]},
     "vhosts[0].ws-protocols[0].lws-status: bad options"),
    ({"vhosts": [{"port": "{a}", "mounts": [["/x", "callback://nobody"]]}]},
     "vhosts[0].mounts[0].origin: no protocol nobody"),
    ({"vhosts": [{"port": "{a}"}, {"port": 70000}]},
     "vhosts[1].port: a port number"),
    ({"vhosts": [{"port": "{a}", "options": {"no_such_option": 1}}]},
     "vhosts[0].options.no_such_option: unknown vhost option"),
    ({"vhosts": [{"port": "{a}", "mounts": [{"mountpoint": "/",
                                             "orign": "file://."}]}]},
     "vhosts[0].mounts[0].orign: unknown mount option"),
    ({"vhosts": [{"port": "{a}", "host-ssl-cert": "missing.pem",
                  "host-ssl-key": "missing.key"}]},
     "vhosts[0].tls_cert:"),
    ({"vhost": []}, "vhost: unknown key"),
    # the second port is taken: the first one is not left bound
    ({"vhosts": [{"port": "{a}"}, {"port": "{busy}"}]}, "EADDRINUSE"),
]


@pytest.mark.parametrize("conf,error", BAD, ids=[e for _, e in BAD])
def test_a_wrong_file_names_its_key_and_binds_nothing(tmp_path, conf, error):
    a, b = free_port(), free_port()
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    text = json.dumps(conf)
    for k, v in (("a", a), ("b", b), ("busy", busy.getsockname()[1])):
        text = text.replace('"{%s}"' % k, str(v))
    (tmp_path / "bad.json").write_text(text)
    # built in the firmware, then its ports tried from the same process:
    # a half-applied configuration would hold them
    code = (
        "import socket\nfrom lws import config\n"
        "try:\n config.context('bad.json')\n print('BUILT')\n"
        "except (ValueError, OSError) as e:\n print('ERROR', e)\n"
        "for p in (%d, %d):\n s = socket.socket()\n"
        " s.bind(socket.getaddrinfo('0.0.0.0', p)[0][-1])\n s.close()\n"
        "print('FREE')\n" % (a, b))
    r = run_mpy(code, cwd=str(tmp_path))
    busy.close()
    assert "ERROR" in r.stdout and error in r.stdout, r.stdout + r.stderr
    assert "FREE" in r.stdout, r.stdout + r.stderr
    if "EADDRINUSE" in error:
        return  # its port is free again now
    # the test server says the same, and stops
    p = subprocess.run(unixport.command(FIRMWARE / "test_server.py",
                                        ["--config", "bad.json"]),
                       env=unixport.environment(), cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and error in p.stdout, p.stdout + p.stderr


class Talkers:
    """WebSocket clients that each send a message and wait for its echo,
    over and over, until stopped: every message must come back, in
    bounded time."""

    def __init__(self):
        self.sent = 0
        self.echoed = 0
        self.worst = 0.0
        self.errors = []
        self.stop = False
        self.per = {}

    async def talk(self, url, tag):
        import websockets
        async with websockets.connect(url, subprotocols=["echo"],
                                      open_timeout=5) as ws:
            self.per[tag] = 0
            i = 0
            while not self.stop:
                msg = "%s %d" % (tag, i)
                t = time.monotonic()
                await ws.send(msg)
                self.sent += 1
                got = await asyncio.wait_for(ws.recv(), 5)
                self.worst = max(self.worst, time.monotonic() - t)
                if got != msg:
                    self.errors.append((tag, msg, got))
                self.echoed += 1
                self.per[tag] += 1
                i += 1
                await asyncio.sleep(0.02)

    async def run(self, urls, during):
        tasks = [asyncio.create_task(self.talk(u, "c%d" % i))
                 for i, u in enumerate(urls)]
        try:
            await asyncio.sleep(0.5)
            await asyncio.get_running_loop().run_in_executor(None, during)
        finally:
            self.stop = True
            done = await asyncio.gather(*tasks, return_exceptions=True)
        self.errors += [d for d in done if isinstance(d, BaseException)]


def until(cond, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_reload_drops_nobody(tmp_path):
    a, b, c = free_port(), free_port(), free_port()
    one = site(tmp_path, "one", "version one")
    two = site(tmp_path, "two", "version two")
    conf = tmp_path / "lws.json"
    write(conf, {"vhosts": [vhost("a", a, one), vhost("b", b, one)]})
    srv = start(tmp_path, args=["--config", conf], port=a)
    wait_b = until(lambda: not refused(b))
    assert wait_b
    urls = ["ws://127.0.0.1:%d/echo" % p for p in (a, a, a, b, b, b)]
    t = Talkers()
    seen = {}

    def during():
        time.sleep(1.0)
        assert get(a) == (200, b"version one")
        before = dict(t.per)
        # port b goes, port c comes, a's mount moves to another folder
        write(conf, {"global": {"timeout_secs": 15},
                     "vhosts": [vhost("a", a, two), vhost("c", c, two)]})
        seen["c up"] = until(lambda: not refused(c))
        seen["b gone"] = until(lambda: refused(b))
        seen["a new"] = get(a)
        seen["c new"] = get(c)
        time.sleep(1.5)
        # a wrong one changes nothing
        write(conf, {"vhosts": [vhost("a", a, two), vhost("d", free_port(),
                                                           tmp_path / "x")]})
        seen["logged"] = until(lambda: "not reloaded" in srv.log())
        seen["a after bad"] = get(a)
        seen["c after bad"] = not refused(c)
        time.sleep(1.0)
        seen["progress"] = {k: t.per[k] - before.get(k, 0) for k in t.per}

    try:
        arun(t.run(urls, during), timeout=60)
        log = srv.log()
        assert srv.proc.poll() is None, log
    finally:
        srv.stop()
    assert not t.errors, (t.errors, log)
    assert seen["c up"] and seen["b gone"], (seen, log)
    assert seen["a new"] == (200, b"version two"), seen
    assert seen["c new"] == (200, b"version two"), seen
    assert seen["logged"] and seen["c after bad"], (seen, log)
    assert seen["a after bad"] == (200, b"version two"), seen
    # every client, on the closed port too, kept talking to the end
    assert len(seen["progress"]) == 6 and \
        min(seen["progress"].values()) > 20, seen
    assert t.echoed == t.sent and t.sent > 200, (t.sent, t.echoed)
    assert t.worst < 1.0, t.worst
    assert "reloaded" in log and "port %d closed" % b in log, log


def test_ctx_reload_from_code_keeps_same_port_socket(tmp_path):
    """ctx.reload() from code: a kept port keeps its socket; a wrong
    configuration raises and changes nothing."""
    a, b = free_port(), free_port()
    site(tmp_path, "www", "x")
    code = (
        "from lws import config\n"
        "v=lambda p:{'port':p,'mounts':[['/','file://www']]}\n"
        "ctx=config.context({'vhosts':[v(%d)]})\n"
        "s0=list(ctx._listen)[0]\nvh0=ctx.vhosts\n"
        "ctx.reload({'vhosts':[v(%d),v(%d)]})\n"
        "print('KEPT', s0 in ctx._listen, len(ctx._listen), "
        "ctx.vhosts is not vh0)\n"
        "before=dict(ctx._listen)\n"
        "try:\n ctx.reload({'vhosts':[v(%d),{'port':0}]})\n"
        "except ValueError as e:\n print('ERR', e)\n"
        "print('SAME', before == ctx._listen)\n"
        "try:\n ctx.reload({'global':{'rx_buffer_size':99},'vhosts':[v(%d)]})\n"
        "except ValueError as e:\n print('ERR', e)\n"
        "print('SAME', before == ctx._listen)\n"
        % (a, a, b, a, a))
    r = run_mpy(code, cwd=str(tmp_path))
    out = r.stdout
    assert "KEPT True 2 True" in out, out + r.stderr
    assert "ERR vhosts[1].port: a port number" in out, out
    assert "ERR global.rx_buffer_size: takes a restart" in out, out
    assert out.count("SAME True") == 2, out


def test_board_reloads_lws_json_when_it_changes(tmp_path):
    """The board's trigger (lws.board.watch): lws.json in the old
    "server" form, then replaced by one in the vhosts form while a
    WebSocket client stays connected."""
    p, q = free_port(), free_port()
    site(tmp_path, "www", "board one")
    site(tmp_path, "www2", "board two")
    write(tmp_path / "lws.json", {"wlan": False, "server": {"port": p}})
    proc = subprocess.Popen(
        [unixport.micropython(), "-c", "from lws import board; board.run()"],
        env=unixport.environment(), cwd=str(tmp_path),
        stdout=open(tmp_path / "board.log", "wb"), stderr=subprocess.STDOUT)
    seen = {}
    try:
        assert until(lambda: not refused(p)), (tmp_path / "board.log").read_text()
        assert get(p) == (200, b"board one")
        t = Talkers()

        def during():
            time.sleep(0.5)
            write(tmp_path / "lws.json", {"wlan": False, "vhosts": [
                vhost("lws", q, tmp_path / "www2")]})
            seen["q up"] = until(lambda: not refused(q))
            seen["p gone"] = until(lambda: refused(p))
            seen["q"] = get(q)
            n = dict(t.per)
            time.sleep(1.0)
            seen["progress"] = t.per["c0"] - n["c0"]

        arun(t.run(["ws://127.0.0.1:%d/echo" % p], during), timeout=40)
        log = (tmp_path / "board.log").read_text()
        assert proc.poll() is None, log
    finally:
        proc.send_signal(2)
        proc.wait(5)
    assert not t.errors and t.echoed == t.sent, (t.errors, log)
    assert seen["q up"] and seen["p gone"], (seen, log)
    assert seen["q"] == (200, b"board two"), seen
    assert seen["progress"] > 10, seen


# -- lwstool config push --reload --url: the lws-config plugin ---------------


def pushing_vhost(name, port, folder, passwd, conf):
    v = vhost(name, port, folder)
    v["mounts"].append({"mountpoint": "/lws-config",
                        "origin": "callback://lws-config",
                        "auth-file": str(passwd)})
    v["ws-protocols"].append({"lws-config": {"path": str(conf)}})
    return v


def lwstool_push(conf, url, password="board secret", *more):
    import os
    import sys
    from pathlib import Path
    env = dict(os.environ, LWSTOOL_PASSWORD=password)
    exe = Path(sys.executable).with_name("lwstool")
    return subprocess.run([str(exe), "config", "push", str(conf), "--reload",
                           "--url", url, *more], env=env, capture_output=True,
                          text=True, timeout=60)


def test_config_push_reload_over_http_drops_nobody(tmp_path):
    from lwstool import passwd
    a, c = free_port(), free_port()
    one = site(tmp_path, "one", "version one")
    two = site(tmp_path, "two", "version two")
    pw = tmp_path / "passwd"
    passwd.set_user(pw, "admin", "board secret", 1000)
    conf = tmp_path / "lws.json"
    write(conf, {"vhosts": [pushing_vhost("a", a, one, pw, conf)]})
    srv = start(tmp_path, args=["--config", conf], port=a)
    url = "http://127.0.0.1:%d/lws-config" % a
    new = tmp_path / "new.json"
    write(new, {"vhosts": [pushing_vhost("a", a, two, pw, conf),
                           vhost("c", c, two)]})
    bad = tmp_path / "bad.json"
    write(bad, {"vhosts": [pushing_vhost("a", a, two, pw, conf),
                           vhost("d", free_port(), tmp_path / "nowhere")]})
    t = Talkers()
    seen = {}

    def during():
        time.sleep(0.8)
        before = dict(t.per)
        seen["stranger"] = lwstool_push(new, url, "guess")
        seen["file after stranger"] = json.loads(conf.read_text())
        seen["bad"] = lwstool_push(bad, url)
        seen["file after bad"] = json.loads(conf.read_text())
        seen["a after bad"] = get(a)
        seen["good"] = lwstool_push(new, url)
        seen["a new"] = get(a)
        seen["c new"] = get(c)
        time.sleep(1.5)  # a watch that reloaded again would log it
        seen["progress"] = {k: t.per[k] - before.get(k, 0) for k in t.per}

    try:
        arun(t.run(["ws://127.0.0.1:%d/echo" % a] * 3, during), timeout=90)
        log = srv.log()
        assert srv.proc.poll() is None, log
    finally:
        srv.stop()
    assert not t.errors, (t.errors, log)
    s = seen["stranger"]
    assert s.returncode != 0 and "(401)" in s.stderr, s
    assert seen["file after stranger"]["vhosts"][0]["mounts"][0][
        "origin"].endswith("one")
    b = seen["bad"]
    assert b.returncode != 0 and "(400)" in b.stderr and \
        "vhosts[1].mounts[0].origin" in b.stderr, b
    assert seen["file after bad"] == seen["file after stranger"]
    assert seen["a after bad"] == (200, b"version one")
    g = seen["good"]
    assert g.returncode == 0 and "reloaded: 2 vhosts" in g.stdout, g
    assert seen["a new"] == (200, b"version two") == seen["c new"]
    assert json.loads(conf.read_text()) == json.loads(new.read_text())
    assert not (tmp_path / "lws.json.new").exists()
    assert log.count("configuration reloaded") == 1, log
    assert min(seen["progress"].values()) > 20, seen
    assert t.echoed == t.sent


def test_config_push_needs_the_mounts_auth_file(tmp_path):
    a = free_port()
    conf = tmp_path / "lws.json"
    v = vhost("a", a, site(tmp_path, "one", "one"))
    v["mounts"].append(["/lws-config", "callback://lws-config"])
    v["ws-protocols"].append({"lws-config": {"path": str(conf)}})
    write(conf, {"vhosts": [v]})
    before = conf.read_text()
    srv = start(tmp_path, args=["--config", conf], port=a)
    try:
        p = lwstool_push(conf, "http://127.0.0.1:%d/lws-config" % a)
        assert p.returncode != 0 and "(403)" in p.stderr, p
        assert "auth_file" in p.stderr
        assert conf.read_text() == before
        assert get(a, "/lws-config")[0] == 403
    finally:
        srv.stop()
