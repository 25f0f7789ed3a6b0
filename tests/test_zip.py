"""Serving a site from flash: x.gz beside x (Accept-Encoding), a ZIP
archive as a file:// mount, multipart byte ranges, and lwstool's
reproducible packing. The firmware runs on the unix port; the clients are
curl, http.client and raw sockets; every body is compared byte for byte
with the source file."""
import email.parser
import gzip
import hashlib
import io
import os
import struct
import subprocess
import zipfile
import zlib

import pytest

from conftest import REPO, peer, run_mpy, start
from lwstool import pack

PAGE = (REPO / "README.md").read_bytes()[:20000]
RAND = os.urandom(3000)
BIG = (REPO / "README.md").read_bytes() * 3     # streamed, > file_buf


def _site(d):
    d.mkdir()
    (d / "index.html").write_bytes(b"<h1>home</h1>" * 50)
    (d / "page.html").write_bytes(PAGE)
    (d / "big.txt").write_bytes(BIG)
    (d / "sub").mkdir()
    (d / "sub" / "index.html").write_bytes(b"<p>sub</p>" * 40)
    (d / "sub" / "rand.bin").write_bytes(RAND)
    (d / "nums.txt").write_bytes(bytes(range(48, 58)) * 10)
    return d


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A folder with x.gz beside x (and only.js.gz without only.js)."""
    d = _site(tmp_path_factory.mktemp("gz") / "www")
    (d / "only.js").write_bytes(BIG)
    (d / "plain.txt").write_bytes(b"no sibling here\n" * 20)
    pack.gzip_tree(d)
    (d / "only.js").unlink()
    (d / "plain.txt.gz").unlink()
    (d / "foreign.css").write_bytes(BIG)          # zlib's 32 KiB window
    (d / "foreign.css.gz").write_bytes(gzip.compress(BIG, mtime=0))
    return d


@pytest.fixture(scope="module")
def gzsrv(tree, tmp_path_factory):
    s = start(tmp_path_factory.mktemp("gzsrv"), heap="256K",
              args=["--docroot", str(tree)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("zip")
    src = _site(d / "www")
    z = d / "site.zip"
    pack.zip_dir(src, z)
    return src, z


@pytest.fixture(scope="module")
def zipsrv(archive, tmp_path_factory):
    s = start(tmp_path_factory.mktemp("zipsrv"), heap="256K",
              args=["--docroot", str(archive[1])])
    yield s
    s.stop()


def curl(url, *extra):
    r = subprocess.run([peer("curl"), "-sS", "--max-time", "10", "-D", "-",
                        *extra, url], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    h = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode().partition(":")
        h[k.strip().lower()] = v.strip()
    return int(head.split()[1]), h, body


def raw_get(srv, path, *lines):
    req = "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (
        path, "".join(x + "\r\n" for x in lines))
    out = srv.raw(req.encode())
    head, _, body = out.partition(b"\r\n\r\n")
    h = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode().partition(":")
        h[k.strip().lower()] = v.strip()
    return int(head.split()[1]), h, body


# -- 1 precompressed siblings ------------------------------------------------


def test_gz_sibling_to_gzip_clients(gzsrv, tree):
    st, h, body = curl(gzsrv.url + "/page.html", "--compressed")
    assert st == 200 and body == PAGE
    assert h["content-encoding"] == "gzip" and h["vary"] == "Accept-Encoding"
    st, h2, body = curl(gzsrv.url + "/page.html")
    assert st == 200 and body == PAGE and "content-encoding" not in h2
    assert h2["vary"] == "Accept-Encoding"
    assert h["etag"] != h2["etag"]
    # what went out compressed is the .gz file, byte for byte
    st, h, body = gzsrv.get("/page.html", {"Accept-Encoding": "gzip"})
    assert body == (tree / "page.html.gz").read_bytes()
    assert int(h["Content-Length"]) == len(body)


def test_gz_sibling_streamed_and_conditional(gzsrv, tree):
    st, h, body = gzsrv.get("/big.txt", {"Accept-Encoding": "gzip"})
    assert st == 200 and gzip.decompress(body) == BIG
    st, _, _ = gzsrv.get("/big.txt", {"Accept-Encoding": "gzip",
                                      "If-None-Match": h["ETag"]})
    assert st == 304
    # the gzip ETag does not match the identity representation
    st, _, body = gzsrv.get("/big.txt", {"If-None-Match": h["ETag"]})
    assert st == 200 and body == BIG


@pytest.mark.parametrize("ae,gz", [
    ("gzip", True), ("GZIP", True), ("x-gzip", True), ("*", True),
    ("deflate, gzip;q=1.0", True), ("gzip;q=0.001", False),
    ("gzip;q=0.001, identity;q=0", True),
    ("gzip ; q=0.5 , identity;q=0.4", True),
    ("gzip;q=0", False), ("gzip;q=0.000", False), ("identity", False),
    ("", False), ("br", False), ("*;q=0", False),
    ("gzip;q=0.5, identity", False), ("*;q=0.5, identity;q=1", False),
    ("gzip;q=2", False), ("gzip;q=1.5", False), ("gzip;q=", False),
    ("gzip;q=abc", False), ("gzip;q=0.1234", False), ("gzip;level=1", False),
    (",,,", False), (";;;", False), ("gzip;q=0;q=1", True), (";q=1", False),
    ("identity;q=0", False), ("identity;q=0, *;q=0", False),
    ("gzip" + ", x" * 500, True), ("\tgzip\t", True),
])
def test_accept_encoding_raw(gzsrv, ae, gz):
    st, h, body = raw_get(gzsrv, "/page.html", "Accept-Encoding: " + ae)
    assert st == 200
    assert (h.get("content-encoding") == "gzip") == gz
    assert (gzip.decompress(body) if gz else body) == PAGE
    assert gzsrv.alive()


def test_accept_encoding_fast_path_is_per_head(gzsrv):
    """Kept whole answers are keyed on the whole head: a client that does
    not take gzip never gets the gzip answer (and the other way round)."""
    for _ in range(3):
        for ae, gz in (("gzip", True), (None, False), ("identity", False)):
            st, h, body = gzsrv.get("/index.html",
                                    {"Accept-Encoding": ae} if ae else {})
            assert ("Content-Encoding" in h) == gz
            assert (gzip.decompress(body) if gz else body) == \
                b"<h1>home</h1>" * 50


def test_gz_only_inflated_for_identity_clients(gzsrv):
    st, h, body = gzsrv.get("/only.js")
    assert st == 200 and body == BIG and "Content-Encoding" not in h
    assert h["Vary"] == "Accept-Encoding"
    assert int(h["Content-Length"]) == len(BIG)  # from ISIZE
    st, h2, body = gzsrv.get("/only.js", {"Accept-Encoding": "gzip"})
    assert h2["Content-Encoding"] == "gzip" and gzip.decompress(body) == BIG
    assert h2["ETag"] != h["ETag"]
    st, _, _ = gzsrv.get("/only.js", {"If-None-Match": h["ETag"]})
    assert st == 304
    # a Range on an inflated body: ignored, the whole of it
    st, _, body = gzsrv.get("/only.js", {"Range": "bytes=0-9"})
    assert st == 200 and body == BIG
    st, _, body = curl(gzsrv.url + "/only.js")
    assert body == BIG


def test_range_of_the_gzip_representation(gzsrv, tree):
    g = (tree / "page.html.gz").read_bytes()
    st, h, body = gzsrv.get("/page.html", {"Accept-Encoding": "gzip",
                                           "Range": "bytes=5-104"})
    assert st == 206 and body == g[5:105]
    assert h["Content-Range"] == "bytes 5-104/%d" % len(g)


def test_no_sibling_no_vary(gzsrv):
    st, h, body = gzsrv.get("/plain.txt", {"Accept-Encoding": "gzip"})
    assert st == 200 and "Vary" not in h and "Content-Encoding" not in h


def test_foreign_gzip_big_window(gzsrv):
    """A .gz of zlib's 32 KiB window: sent as it is to gzip clients,
    inflated (a 32 KiB block) for the others when the heap has room."""
    st, h, body = gzsrv.get("/foreign.css", {"Accept-Encoding": "gzip"})
    assert gzip.decompress(body) == BIG
    os.unlink(str(gzsrv_tree_path(gzsrv, "foreign.css")))
    try:
        st, h, body = gzsrv.get("/foreign.css")
        assert (st, body) == (200, BIG) or st == 503   # no room: said so
        st, h, body = gzsrv.get("/foreign.css", {"Accept-Encoding": "gzip"})
        assert st == 200 and gzip.decompress(body) == BIG
    finally:
        gzsrv_tree_path(gzsrv, "foreign.css").write_bytes(BIG)


def gzsrv_tree_path(srv, name):
    args = srv.proc.args
    return __import__("pathlib").Path(args[args.index("--docroot") + 1]) / name


# -- 2 zip mounts -------------------------------------------------------------


def test_zip_entries_byte_exact(zipsrv, archive):
    src, _ = archive
    for name in ("page.html", "big.txt", "sub/rand.bin", "nums.txt"):
        want = (src / name).read_bytes()
        st, h, body = zipsrv.get("/" + name)
        assert st == 200 and body == want, name
        assert "Content-Encoding" not in h
        st, h, body = curl(zipsrv.url + "/" + name, "--compressed")
        assert st == 200 and body == want, name
        st, h, body = curl(zipsrv.url + "/" + name)
        assert st == 200 and body == want, name


def test_zip_deflated_sent_as_gzip(zipsrv, archive):
    src, z = archive
    st, h, body = zipsrv.get("/page.html", {"Accept-Encoding": "gzip"})
    assert h["Content-Encoding"] == "gzip" and h["Vary"] == "Accept-Encoding"
    assert body[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert gzip.decompress(body) == PAGE
    # the deflate data in the middle is the archive's, untouched
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("page.html")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        raw = z.read_bytes()
        off = info.header_offset + 30 + len(info.filename) + \
            struct.unpack("<H", raw[info.header_offset + 28:
                                    info.header_offset + 30])[0]
        assert body[10:-8] == raw[off:off + info.compress_size]
    # stored entries: no encoding, no Vary
    st, h, body = zipsrv.get("/sub/rand.bin", {"Accept-Encoding": "gzip"})
    assert body == RAND and "Content-Encoding" not in h and "Vary" not in h


def test_zip_index_redirect_404(zipsrv, archive):
    st, h, body = zipsrv.get("/")
    assert st == 200 and body == b"<h1>home</h1>" * 50
    st, h, _ = zipsrv.get("/sub?a=1")
    assert st == 301 and h["Location"] == "/sub/?a=1"
    st, h, body = zipsrv.get("/sub/")
    assert st == 200 and body == b"<p>sub</p>" * 40
    for p in ("/nope", "/sub/nope.html", "/../site.zip", "/%2e%2e/x",
              "/.hidden", "/sub/rand.bin/x"):
        st, _, _ = zipsrv.get(p)
        assert st in (400, 403, 404), p
    st, h, _ = zipsrv.get("/page.html", method="HEAD")
    assert st == 200 and int(h["Content-Length"]) == len(PAGE)
    st, h, _ = zipsrv.get("/page.html", {"Accept-Encoding": "gzip"},
                          method="HEAD")
    assert h["Content-Encoding"] == "gzip"


def test_zip_conditional(zipsrv):
    for ae in ({}, {"Accept-Encoding": "gzip"}):
        st, h, _ = zipsrv.get("/page.html", ae)
        st, _, _ = zipsrv.get("/page.html", dict(ae, **{
            "If-None-Match": h["ETag"]}))
        assert st == 304
        st, _, _ = zipsrv.get("/page.html", dict(ae, **{
            "If-Modified-Since": h["Last-Modified"]}))
        assert st == 304
    st, h1, _ = zipsrv.get("/page.html")
    st, h2, _ = zipsrv.get("/page.html", {"Accept-Encoding": "gzip"})
    assert h1["ETag"] != h2["ETag"]


def test_zip_range_of_what_is_sent(zipsrv, archive):
    st, h, body = zipsrv.get("/sub/rand.bin", {"Range": "bytes=100-199"})
    assert st == 206 and body == RAND[100:200]
    st, h, g = zipsrv.get("/page.html", {"Accept-Encoding": "gzip"})
    st, h, body = zipsrv.get("/page.html", {"Accept-Encoding": "gzip",
                                            "Range": "bytes=0-3,-8"})
    assert st == 206
    parts = _parts(h, body)
    assert [p[1] for p in parts] == [g[:4], g[-8:]]
    st, h, body = zipsrv.get("/page.html", {"Range": "bytes=0-9"})
    assert st == 200 and body == PAGE   # inflated: sent whole


def _mkzip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)


def test_zip_evil_names_never_served(tmp_path, server_factory):
    z = tmp_path / "evil.zip"
    _mkzip(z, [("ok.txt", b"fine"), ("../up.txt", b"EVIL1"),
               ("/abs.txt", b"EVIL2"), ("a/../../b.txt", b"EVIL3"),
               ("c:/win.txt", b"EVIL4"), ("x\\y.txt", b"EVIL5"),
               ("./dot.txt", b"EVIL6"), ("a//b.txt", b"EVIL7")])
    s = server_factory(args=["--docroot", str(z)])
    st, _, body = s.get("/ok.txt")
    assert st == 200 and body == b"fine"    # zipfile's 32 KiB window
    for p in ("/../up.txt", "/%2e%2e/up.txt", "/up.txt", "//abs.txt",
              "/abs.txt", "/b.txt", "/a/../../b.txt", "/c:/win.txt",
              "/win.txt", "/x%5cy.txt", "/x/y.txt", "/dot.txt", "/a/b.txt",
              "/a//b.txt"):
        st, _, body = s.get(p)
        assert st != 200 and b"EVIL" not in body, p
        out = s.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                     "\r\n\r\n" % p).encode())
        assert b"EVIL" not in out, p


def test_zip_corrupt_at_mount_time(tmp_path):
    good = pack.zip_bytes([("a.txt", b"a" * 1000), ("b.html", PAGE)])
    cases = {"empty": b"", "short": b"PK\x05\x06", "junk": os.urandom(500),
             "truncated": good[:len(good) // 2],
             "cd-cut": good[:-30] + good[-22:]}
    for name, data in cases.items():
        (tmp_path / (name + ".zip")).write_bytes(data)
    code = ("import lws\nfor n in %r:\n    try:\n"
            "        lws.Mount('/', 'file://' + n + '.zip')\n"
            "        print(n, 'mounted')\n"
            "    except ValueError as e:\n        print(n, 'ValueError', e)\n"
            % list(cases))
    r = run_mpy(code, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(cases), r.stdout
    for line in lines:
        assert "ValueError" in line and ".zip:" in line, line


def test_zip_corrupt_entry_is_500(tmp_path, server_factory):
    data = bytearray(pack.zip_bytes([("ok.txt", b"fine " * 100),
                                     ("bad.html", PAGE),
                                     ("lhdr.html", PAGE)]))
    zi = zipfile.ZipFile(io.BytesIO(bytes(data)))
    bad = zi.getinfo("bad.html")
    off = bad.header_offset + 30 + len("bad.html") + 6
    data[off + 20:off + 400] = os.urandom(380)  # its deflate data
    lh = zi.getinfo("lhdr.html").header_offset
    data[lh:lh + 4] = b"XXXX"                   # its local header
    (tmp_path / "c.zip").write_bytes(bytes(data))
    s = server_factory(args=["--docroot", str(tmp_path / "c.zip")])
    st, _, _ = s.get("/lhdr.html")
    assert st == 500
    r = subprocess.run([peer("curl"), "-s", "-o", "/dev/null", "-w",
                        "%{http_code}", "--max-time", "10",
                        s.url + "/bad.html"], capture_output=True, timeout=20)
    assert r.stdout in (b"000", b"200", b"500")  # cut short, never hangs
    st, _, body = s.get("/ok.txt")
    assert st == 200 and body == b"fine " * 100
    assert s.proc.poll() is None


def test_zip_replaced_is_read_again(tmp_path, server_factory):
    z = tmp_path / "r.zip"
    z.write_bytes(pack.zip_bytes([("a.txt", b"one" * 100)]))
    s = server_factory(args=["--docroot", str(z)])
    assert s.get("/a.txt")[2] == b"one" * 100
    tmp = tmp_path / "r.tmp"
    tmp.write_bytes(pack.zip_bytes([("a.txt", b"two!" * 100)]))
    os.utime(tmp, (1, 1))
    os.replace(tmp, z)
    assert s.get("/a.txt")[2] == b"two!" * 100
    z.write_bytes(b"broken")
    assert s.get("/a.txt")[0] == 500
    assert s.proc.poll() is None


# -- 3 multipart/byteranges -------------------------------------------------


def _parts(h, body):
    ct = h.get("Content-Type") or h.get("content-type")
    assert ct.startswith("multipart/byteranges; boundary=")
    assert int(h.get("Content-Length") or h["content-length"]) == len(body)
    msg = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + ct.encode() + b"\r\n\r\n" + body)
    return [(p["Content-Range"], p.get_payload(decode=True))
            for p in msg.get_payload()]


@pytest.mark.parametrize("which", ["gz", "zip"])
def test_curl_multi_range(which, gzsrv, zipsrv):
    srv = gzsrv if which == "gz" else zipsrv
    st, h, body = curl(srv.url + "/sub/rand.bin", "-r", "0-9,20-29,-5")
    assert st == 206
    parts = _parts(h, body)
    assert parts == [("bytes 0-9/3000", RAND[:10]),
                     ("bytes 20-29/3000", RAND[20:30]),
                     ("bytes 2995-2999/3000", RAND[-5:])]


def test_multi_range_http_client(gzsrv):
    nums = bytes(range(48, 58)) * 10
    st, h, body = gzsrv.get("/nums.txt", {"Range": "bytes=90-,0-1"})
    assert st == 206
    assert _parts(h, body) == [("bytes 0-1/100", nums[:2]),
                               ("bytes 90-99/100", nums[90:])]
    # overlapping and adjacent ranges coalesce; one left: a plain 206
    st, h, body = gzsrv.get("/nums.txt", {"Range": "bytes=0-9,5-20,21-29"})
    assert st == 206 and body == nums[:30]
    assert h["Content-Range"] == "bytes 0-29/100"
    # unsatisfiable parts are dropped; all of them: 416
    st, h, body = gzsrv.get("/nums.txt", {"Range": "bytes=200-,0-0"})
    assert st == 206 and body == nums[:1]
    st, h, _ = gzsrv.get("/nums.txt", {"Range": "bytes=200-,300-400"})
    assert st == 416 and h["Content-Range"] == "bytes */100"
    # many small ranges: the whole file
    many = ",".join("%d-%d" % (i * 3, i * 3) for i in range(30))
    st, h, body = gzsrv.get("/nums.txt", {"Range": "bytes=" + many})
    assert st == 200 and body == nums
    # If-Range: a stale validator gets the whole file
    st, h, _ = gzsrv.get("/nums.txt")
    st, _, body = gzsrv.get("/nums.txt", {"Range": "bytes=0-1,5-6",
                                          "If-Range": '"stale"'})
    assert st == 200 and body == nums
    st, hh, body = gzsrv.get("/nums.txt", {"Range": "bytes=0-1,5-6",
                                           "If-Range": h["ETag"]})
    assert st == 206 and len(_parts(hh, body)) == 2
    # Range is for GET only (RFC 7233 3.1)
    st, hh, body = gzsrv.get("/nums.txt", {"Range": "bytes=0-1,5-6"},
                             method="HEAD")
    assert st == 200 and body == b"" and hh["Content-Length"] == "100"


def test_multi_range_streamed(gzsrv):
    st, h, body = gzsrv.get("/big.txt", {
        "Range": "bytes=0-99,50000-99999,-10"})
    parts = _parts(h, body)
    assert [p[1] for p in parts] == [BIG[:100], BIG[50000:100000],
                                     BIG[-10:]]


@pytest.mark.parametrize("rng", [
    "bytes=", "bytes=,", "bytes=-", "bytes=a-b", "bytes=1-2,x", "bytes=5-1",
    "bytes=1-2,5-1", "bytes=--1", "bytes=1--2", "bytes 0-1", "bytes=0-1;2-3",
    "bytes=0-1,,2-3,", "bytes=" + "0-0," * 40, "bytes=0-1," + "9" * 60 + "-",
    "bytes=-" + "9" * 60, "bytes=\t0-1 ,\t3-4", "items=0-1,2-3",
    "bytes=0x1-2,3-4", "bytes=+1-2,3-4", "bytes=1-2,-0", "bytes=0-1,2-3" * 100,
])
def test_malformed_ranges_raw(gzsrv, rng):
    nums = bytes(range(48, 58)) * 10
    st, h, body = raw_get(gzsrv, "/nums.txt", "Range: " + rng)
    assert st in (200, 206, 416), rng
    if st == 200:
        assert body == nums
    elif st == 206 and "content-range" in h:
        a, b = h["content-range"][6:].split("/")[0].split("-")
        assert body == nums[int(a):int(b) + 1]
    assert gzsrv.alive()


# -- 4 host side --------------------------------------------------------------


def test_pack_reproducible(tmp_path, archive):
    src, _ = archive
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    pack.zip_dir(src, a)
    for p in src.rglob("*"):
        os.utime(p, (12345, 12345))  # other times, same bytes
    pack.zip_dir(src, b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.testzip() is None
        for n in zf.namelist():
            assert zf.read(n) == (src / n).read_bytes()
    g1 = pack.gzip_bytes(PAGE)
    assert g1 == pack.gzip_bytes(PAGE) and gzip.decompress(g1) == PAGE
    # a 1 KiB window: no distance beyond it (inflating with 1 KiB works)
    d = zlib.decompressobj(-10)
    assert d.decompress(pack.deflate_raw(BIG)) == BIG


def lwstool(*argv):
    from lwstool import cli
    return cli.main(list(argv))


def test_lwstool_gzip_and_zip(tmp_path):
    import shutil
    src = _site(tmp_path / "w")
    assert lwstool("gzip", str(src)) == 0
    assert gzip.decompress((src / "page.html.gz").read_bytes()) == PAGE
    assert not (src / "sub" / "rand.bin.gz").exists()
    one = (src / "page.html.gz").read_bytes()
    assert lwstool("gzip", str(src)) == 0
    assert (src / "page.html.gz").read_bytes() == one
    shutil.rmtree(src)
    src = _site(tmp_path / "w")
    for z in ("x.zip", "y.zip"):
        assert lwstool("zip", str(src), str(tmp_path / z)) == 0
    assert (tmp_path / "x.zip").read_bytes() == \
        (tmp_path / "y.zip").read_bytes()


def test_deploy_zip_plan(tmp_path):
    from lwstool import deploy
    files = deploy.plan({}, source=True)
    z = deploy.zip_www(files, build_dir=tmp_path)
    paths = [p for p, _ in z]
    assert "www.zip" in paths and not any(p.startswith("www/") for p in paths)
    with zipfile.ZipFile(dict(z)["www.zip"]) as zf:
        assert zf.read("index.html") == \
            (REPO / "firmware" / "www" / "index.html").read_bytes()
    again = deploy.zip_www(files, build_dir=tmp_path / "2")
    assert hashlib.sha256(dict(again)["www.zip"].read_bytes()).digest() == \
        hashlib.sha256(dict(z)["www.zip"].read_bytes()).digest()


# -- 5 the test server's page from an archive ---------------------------------


def test_test_server_zip(tmp_path, server_factory):
    z = tmp_path / "www.zip"
    pack.zip_dir(REPO / "firmware" / "www", z)
    s = server_factory(args=["--zip", str(z)])
    for name in ("index.html", "test.js", "test.css"):
        want = (REPO / "firmware" / "www" / name).read_bytes()
        st, h, body = curl(s.url + "/" + name, "--compressed")
        assert st == 200 and body == want
        assert h.get("content-encoding") == "gzip"
    st, _, _ = s.get("/t/info")
    assert st == 200


# -- heap: nothing loaded for plain files ------------------------------------


def test_plain_files_load_nothing_new(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"x" * 100)
    code = ("import sys, lws\nfrom lws.files import FILES\n"
            "print(sorted(m for m in sys.modules if m in "
            "('lws.gz', 'lws.ranges', 'lws.zipfs')))\n")
    r = run_mpy(code, cwd=str(tmp_path))
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
