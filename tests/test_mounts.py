"""file:// mounts: index files, MIME types, streaming, ranges, caching,
and no way out of the mounted folder."""
import hashlib
import os
import socket
import subprocess

import pytest

from conftest import recv_all

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
    return root


@pytest.fixture(scope="module")
def docsrv(site, tmp_path_factory):
    from conftest import start
    # a small heap: a 3 MiB file can only be served by streaming it
    s = start(tmp_path_factory.mktemp("docsrv"), heap="256K",
              args=["--docroot", str(site / "site")])
    yield s
    s.stop()


def curl_status(url, *extra):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
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


TRAVERSALS = [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt",
    "/..%5csecret.txt", "/..\\secret.txt", "/%00../secret.txt",
    "/index.html%00.txt", "/.%2e/secret.txt", "/sub/..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt", "//../secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_never_outside_the_folder(docsrv, path):
    data = docsrv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                       "\r\n\r\n" % path).encode())
    assert SECRET not in data
    assert int(data[9:12]) in (400, 403, 404)
    assert docsrv.alive()


def test_curl_path_as_is(docsrv):
    for p in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt"):
        assert curl_status(docsrv.url + p) in (400, 403, 404)


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
    r = subprocess.run(["curl", "-sS", "-C", "-", "-o", str(out),
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
