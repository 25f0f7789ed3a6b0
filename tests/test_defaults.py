"""A board serves what the README shows: with nothing in lws.json but what
the README's steps set, main.py brings up the test page's protocols, and
the README's lws.json example is exactly what a board gets by default."""
import json
import re
import shutil
import subprocess

from conftest import FIRMWARE, REPO, free_port, unixport
from test_boot import serve, setup_board
from test_wlan import BOARD, HOME, boards, env  # noqa: F401
from wsraw import frame, handshake, read_frame


def defaults(tmp_path):
    """lws.board.DEFAULTS, as the firmware holds it."""
    r = subprocess.run([unixport.micropython(), "-c", "import json\n"
                        "from lws import board\n"
                        "print(json.dumps(board.DEFAULTS))"],
                       env=env(tmp_path), cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_readme_example_is_the_default(tmp_path):
    readme = (REPO / "README.md").read_text()
    i = readme.index("configured\nby `lws.json`")
    block = re.search(r"```json\n(.*?)```", readme[i:], re.S).group(1)
    assert json.loads(block) == defaults(tmp_path)


def test_a_board_set_up_as_the_readme_says_serves_every_tab(tmp_path, boards):
    """`lwstool config set server.port N` and nothing else: the page and
    every protocol it has a tab for."""
    port = free_port()
    setup_board(tmp_path, {"server": {"port": port}}, aps=[HOME])
    (tmp_path / "wlan.json").write_text(json.dumps(
        {"slots": [{"ssid": "home", "password": "homepass1"}]}))
    srv = serve(tmp_path, port)
    boards.append(srv)
    assert srv.get("/")[0] == 200
    st, _, body = srv.get("/status.json")
    assert st == 200 and "heap" in json.loads(body)
    s, head = handshake(port, "/", "dumb-increment-protocol")
    assert head.startswith(b"HTTP/1.1 101")
    counts = [int(read_frame(s)[2]) for _ in range(3)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    s.close()
    s, head = handshake(port, "/", "lws-mirror-protocol")
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(frame(1, b"hi all"))
    assert read_frame(s)[2] == b"hi all"
    s.close()
    s, head = handshake(port, "/echo")
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(frame(1, b"echo me"))
    assert read_frame(s)[2] == b"echo me"
    s.close()
    s, head = handshake(port, "/", "lws-status")
    assert head.startswith(b"HTTP/1.1 101")
    assert "heap" in json.loads(read_frame(s)[2])
    s.close()
    assert "not loaded" not in srv.log() and "Traceback" not in srv.log()


def test_defaults_a_profile_left_out_are_skipped_quietly(tmp_path, boards):
    """A profile that deploys no dumb-increment and no status (as esp8266's
    leaves some out): the rest is served, their mounts are not made, and
    nothing is logged as an error."""
    fw = tmp_path / "fw"
    shutil.copytree(FIRMWARE, fw, ignore=shutil.ignore_patterns(
        "dumb_increment.py", "status.py", "__pycache__"))
    port = free_port()
    setup_board(tmp_path, {"wlan": False, "server": {"port": port}})
    from conftest import start
    srv = start(tmp_path, script="-c", args=["import boot, main"],
                env=env(tmp_path, ".frozen:%s:%s" % (fw, BOARD)), port=port)
    boards.append(srv)
    assert srv.get("/")[0] == 200
    assert srv.get("/status.json")[0] == 404
    s, head = handshake(port, "/echo")
    assert head.startswith(b"HTTP/1.1 101")
    s.close()
    s, head = handshake(port, "/", "dumb-increment-protocol")
    assert head.startswith(b"HTTP/1.1 400")  # not there: said so, no 101
    s.close()
    log = srv.log()
    assert "not loaded" not in log and "ERR" not in log, log
