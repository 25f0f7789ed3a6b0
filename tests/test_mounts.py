"""file:// mounts: index files, MIME types, streaming, ranges, caching,
and no way out of the mounted folder."""
import hashlib
import os
import socket
import subprocess

import pytest

from conftest import peer, recv_all

SECRET = b"TOP-SECRET-OUTSIDE-DOCROOT"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnt")
    (root / "secret.txt").write_bytes(SECRET)
    d = root / "site"
    d.mkdir()
    (d / "index.html").write_bytes(b"<h1>home</h1>")
    (d / "sub").mkdir()
    (d / "sub" / "index.html").write_bytes(b"<h1>sub</h1>")
    (d / "empty").mkdir()
    (d / "a b.txt").write_bytes(b"space")
    for ext in ("css", "js", "json", "png", "svg", "jpg", "wasm", "zzz"):
        (d / ("f." + ext)).write_bytes(b"x")
    (d / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (d / "nums.txt").write_bytes(bytes(range(48, 58)) * 10)
    (d / "link.txt").symlink_to(root / "secret.txt")  # links out of it
    (d / "up").symlink_to(root)
    (d / ".git").mkdir()                                 # a dotfile
    (d / ".git" / "config").write_bytes(b"DOTFILE-CONFIG")
    return root


@pytest.fixture(scope="module")
def docsrv(site, tmp_path_factory):
    from conftest import start
    # a small heap: a 3 MiB file can only be served by streaming it
    s = start(tmp_path_factory.mktemp("docsrv"), heap="256K",
              args=["--docroot", str(site / "site")])
    yield s
    s.stop()


def curl_status(url, *extra, out="/dev/null"):
    r = subprocess.run([peer("curl"), "-s", "-o", str(out), "-w", "%{http_code}",
                        "--path-as-is", "--max-time", "10", *extra, url],
                       capture_output=True, timeout=20)
    return int(r.stdout)


def test_docroot_index(docsrv):
    st, h, body = docsrv.get("/")
    assert st == 200 and body == b"<h1>home</h1>"


def test_subfolder_redirect_and_index(docsrv):
    st, h, _ = docsrv.get("/sub?x=1")
    assert st == 301 and h["Location"] == "/sub/?x=1"
    st, _, body = docsrv.get("/sub/")
    assert st == 200 and body == b"<h1>sub</h1>"
    st, _, _ = docsrv.get("/empty/")
    assert st == 404


def test_missing_is_404(docsrv):
    assert docsrv.get("/nope.html")[0] == 404
    assert docsrv.get("/sub/nope/")[0] == 404


def test_escaped_name(docsrv):
    st, _, body = docsrv.get("/a%20b.txt")
    assert st == 200 and body == b"space"


@pytest.mark.parametrize("ext,mime", [
    ("css", "text/css"), ("js", "application/javascript"),
    ("json", "application/json"), ("png", "image/png"),
    ("svg", "image/svg+xml"), ("jpg", "image/jpeg"),
    ("wasm", "application/wasm"), ("zzz", "application/octet-stream")])
def test_mime_types(docsrv, ext, mime):
    st, h, _ = docsrv.get("/f." + ext)
    assert st == 200 and h["Content-Type"] == mime


# (path, the status files.safe_relpath gives, the reason on the error page)
# The secret is one folder above the docroot, where every ".." here points.
TRAVERSALS = [
    ("/../secret.txt", 403, b"path outside the mount"),
    ("/sub/../../secret.txt", 403, b"path outside the mount"),
    ("/%2e%2e/secret.txt", 403, b"path outside the mount"),
    ("/%2E%2E/secret.txt", 403, b"path outside the mount"),
    ("/sub/%2e%2e/%2e%2e/secret.txt", 403, b"path outside the mount"),
    ("/.%2e/secret.txt", 403, b"path outside the mount"),
    ("//../secret.txt", 403, b"path outside the mount"),
    ("/..", 403, b"path outside the mount"),
    ("/%2e%2e", 403, b"path outside the mount"),
    # any ".." segment is refused, even one that would stay inside
    ("/sub/../index.html", 403, b"path outside the mount"),
    ("/..%2fsecret.txt", 400, b"encoded slash"),
    ("/..%2Fsecret.txt", 400, b"encoded slash"),
    ("/%2e%2e%2fsecret.txt", 400, b"encoded slash"),
    ("/sub/..%2f..%2fsecret.txt", 400, b"encoded slash"),
    ("/..%5csecret.txt", 400, b"encoded slash"),
    ("/..%5Csecret.txt", 400, b"encoded slash"),
    ("/..\\secret.txt", 400, b"encoded slash"),
    ("/%00../secret.txt", 400, b"NUL in path"),
    ("/index.html%00.txt", 400, b"NUL in path"),
    ("/..%00/secret.txt", 400, b"NUL in path"),
    ("/%zz/secret.txt", 400, b"bad escape"),
    ("/%2", 400, b"bad escape"),
    ("/%ff", 400, b"bad escape"),
    # decoded once only: "%2e%2e" is a name, and there is no such file
    ("/%252e%252e/secret.txt", 404, b""),
]


def error_page(data):
    """(status, reason text, body) of a whole response; the body must be
    the error page that its Content-Length announces."""
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head[9:12])
    cl = [ln for ln in head.split(b"\r\n")
          if ln.lower().startswith(b"content-length:")]
    assert cl and int(cl[0].split(b":")[1]) == len(body), data
    return status, body


@pytest.mark.parametrize("path,status,reason", TRAVERSALS,
                         ids=[t[0] for t in TRAVERSALS])
def test_never_outside_the_folder(docsrv, path, status, reason):
    data = docsrv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                       "\r\n\r\n" % path).encode())
    assert SECRET not in data and b"<h1>home</h1>" not in data
    got, body = error_page(data)
    assert got == status, data
    assert body.startswith(b"<html><body><h1>%d " % status), body
    assert reason in body, body
    assert docsrv.alive()


def test_curl_path_as_is(docsrv, tmp_path):
    """curl sends the paths as they are (--path-as-is); it gets the error
    page, never the file."""
    for p, want in (("/../secret.txt", 403), ("/%2e%2e/secret.txt", 403),
                    ("/sub/../../secret.txt", 403), ("/..%2fsecret.txt", 400)):
        out = tmp_path / "body"
        assert curl_status(docsrv.url + p, out=out) == want, p
        assert SECRET not in out.read_bytes()


@pytest.mark.parametrize("path", ["/link.txt", "/up/secret.txt",
                                  "/.git/config"])
def test_no_links_out_and_no_dotfiles(docsrv, path):
    """Secure by default (DESIGN.md): real paths only, so a symlink in the
    folder does not lead out of it, and no dotfiles. Not found or
    forbidden, the status is not settled yet; never the file."""
    data = docsrv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                       "\r\n\r\n" % path).encode())
    assert SECRET not in data and b"DOTFILE-CONFIG" not in data, data
    assert error_page(data)[0] in (403, 404), data


def test_big_file_streamed_under_small_heap(docsrv, site):
    want = (site / "site" / "big.bin").read_bytes()
    with socket.create_connection(("127.0.0.1", docsrv.port), timeout=20) as s:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(want) in head
    assert hashlib.sha256(body).digest() == hashlib.sha256(want).digest()


def test_slow_reader_does_not_stall_others(docsrv):
    """A client that reads a big file slowly blocks nobody else."""
    slow = socket.create_connection(("127.0.0.1", docsrv.port), timeout=20)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    slow.recv(1000)
    for _ in range(5):
        st, _, body = docsrv.get("/")
        assert st == 200 and body == b"<h1>home</h1>"
    slow.close()
    assert docsrv.alive()


def test_range_requests(docsrv):
    st, h, body = docsrv.get("/nums.txt", {"Range": "bytes=2-5"})
    assert st == 206 and body == b"2345"
    assert h["Content-Range"] == "bytes 2-5/100"
    st, h, body = docsrv.get("/nums.txt", {"Range": "bytes=-3"})
    assert st == 206 and body == b"789"
    st, h, body = docsrv.get("/nums.txt", {"Range": "bytes=95-"})
    assert st == 206 and body == b"56789"
    st, h, body = docsrv.get("/nums.txt", {"Range": "bytes=90-200"})
    assert st == 206 and h["Content-Range"] == "bytes 90-99/100"
    st, h, _ = docsrv.get("/nums.txt", {"Range": "bytes=100-"})
    assert st == 416 and h["Content-Range"] == "bytes */100"
    st, _, body = docsrv.get("/nums.txt", {"Range": "bits=1-2"})
    assert st == 200 and len(body) == 100
    st, _, body = docsrv.get("/nums.txt", {"Range": "bytes=5-2"})
    assert st == 200 and len(body) == 100


def test_curl_resume_download(docsrv, site, tmp_path):
    want = (site / "site" / "big.bin").read_bytes()
    out = tmp_path / "part.bin"
    out.write_bytes(want[:1000000])
    r = subprocess.run([peer("curl"), "-sS", "-C", "-", "-o", str(out),
                        "--max-time", "20", docsrv.url + "/big.bin"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == want


def test_etag_and_304(docsrv):
    st, h, _ = docsrv.get("/index.html")
    etag = h["ETag"]
    st, h2, body = docsrv.get("/index.html", {"If-None-Match": etag})
    assert st == 304 and body == b"" and h2["ETag"] == etag
    st, _, _ = docsrv.get("/index.html",
                          {"If-Modified-Since": h["Last-Modified"]})
    assert st == 304
    st, _, _ = docsrv.get("/index.html", {"If-None-Match": '"other"'})
    assert st == 200
    st, _, body = docsrv.get("/nums.txt", {"Range": "bytes=0-1",
                                           "If-Range": '"stale"'})
    assert st == 200 and len(body) == 100
