"""file:// mounts serve regular files inside their folder and nothing else:
no symlink out of it, no dotfile, no fifo, unless a mount option says so."""
import os

import pytest

from conftest import free_port, start

SECRET = b"TOP-SECRET-OUTSIDE-DOCROOT"

APP = """
import lws
lws.Context(port={port}, mounts=[
    lws.Mount("/", "file://{root}/site"),
    lws.Mount("/open", "file://{root}/site", dotfiles=True,
              follow_symlinks=True),
]).run()
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("safe")
    (root / "outside.txt").write_bytes(SECRET)
    (root / "outdir").mkdir()
    (root / "outdir" / "index.html").write_bytes(SECRET)
    site = root / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"home")
    (site / "sub").mkdir()
    (site / "sub" / "page.html").write_bytes(b"sub page")
    (site / ".env").write_bytes(b"API_KEY=" + SECRET)
    (site / ".git").mkdir()
    (site / ".git" / "config").write_bytes(SECRET)
    (site / "sub" / ".hidden").write_bytes(SECRET)
    os.symlink("/etc", site / "etc")
    os.symlink("../outside.txt", site / "out.txt")
    os.symlink("../outdir", site / "outdir")
    os.symlink("sub", site / "inlink")
    os.symlink("sub/page.html", site / "filelink.html")
    os.mkfifo(site / "fifo")
    return root


@pytest.fixture(scope="module")
def srv(tree, tmp_path_factory):
    port = free_port()
    d = tmp_path_factory.mktemp("safesrv")
    script = d / "app.py"
    script.write_text(APP.format(port=port, root=tree))
    s = start(d, script=script, port=port)
    s.has_t = False  # alive() asks for /
    yield s
    s.stop()


@pytest.mark.parametrize("path", [
    "/etc/passwd",        # a symlink to a folder outside
    "/etc", "/etc/",
    "/out.txt",           # a symlink to a file outside
    "/outdir/", "/outdir/index.html",
    "/inlink/page.html",  # links are not followed at all by default
    "/filelink.html",
    "/fifo",              # not a regular file: never opened
    "/.env", "/.git/config", "/sub/.hidden", "/.git/",
])
def test_not_served_by_default(srv, path):
    st, _, body = srv.get(path)
    assert st == 404, (path, body)
    assert SECRET not in body and b"root:" not in body
    assert srv.alive()


def test_regular_files_still_served(srv):
    assert srv.get("/")[0] == 200
    st, _, body = srv.get("/sub/page.html")
    assert (st, body) == (200, b"sub page")


def test_dotfiles_when_the_mount_allows(srv):
    st, _, body = srv.get("/open/.env")
    assert st == 200 and body.startswith(b"API_KEY=")


def test_follow_symlinks_inside_only(srv):
    # a link to a folder inside the mount is followed when asked...
    st, _, body = srv.get("/open/inlink/page.html")
    assert (st, body) == (200, b"sub page")
    # ...but never one whose real path is outside it
    for p in ("/open/etc/passwd", "/open/outdir/index.html",
              "/open/out.txt"):
        st, _, body = srv.get(p)
        assert st == 404, p
        assert SECRET not in body and b"root:" not in body
