"""Forms and uploads (lws.spa, the test server's /formtest): the parser
run on MicroPython against split, byte-by-byte and malformed bodies, and
the test server against curl, http.client and raw sockets, the uploads
compared on disk."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import peer, recv_all, run_mpy, start

pytestmark = pytest.mark.timeout(120)

# -- the parser itself, on MicroPython -----------------------------------------

# a parser that records what it is told: [name, filename, type, hex, size]
# per field, "end" when the form ended, ["abort", name] when it failed
HARNESS = r"""
import json, binascii, gc
from lws.spa import Spa, Saver, safe_name, _params
from lws.httpmsg import HttpError

class Rec(Spa):
    def __init__(self, ct, **kw):
        self.out = []
        super().__init__(ct, **kw)
    def on_part(self, p):
        self.out.append([p.name, p.filename, p.content_type, b""])
    def on_data(self, p, d):
        self.out[-1][3] += bytes(d)
    def on_part_end(self, p):
        f = self.out[-1]
        f.append(p.size)
        f[3] = binascii.hexlify(f[3]).decode()
    def on_form_end(self):
        self.out.append("end")
    def on_abort(self, p):
        self.out.append(["abort", p and p.name])

def parse(ct, pieces, **kw):
    try:
        r = Rec(ct, **kw)
    except HttpError as e:
        return [e.args[0], []]
    try:
        for x in pieces:
            r.process(x)
        r.finalize()
    except HttpError as e:
        return [e.args[0], r.out]
    return r.out

def status(ct, body, **kw):
    r = parse(ct, [body], **kw)
    return r[0] if isinstance(r[0], int) else 200
"""


def mpy(code, timeout=60, heap=None):
    r = run_mpy(HARNESS + code, timeout=timeout, heap=heap)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


BOUNDARY = "xYz'()+_,-./:=?"
CT = 'multipart/form-data; boundary="%s"' % BOUNDARY
# file data full of near-delimiters: "--boundary" without the CRLF before
# it, CRLF and a prefix of the delimiter, a lone CR, CRLF at its end
TRICKY = (b"--" + BOUNDARY.encode() + b"\r\n-\r\n--" + BOUNDARY[:5].encode()
          + b"\r\r\n\r\n--" + BOUNDARY[:-1].encode() + b"X\r\x00\xff\r\n")


def multipart(fields, boundary=BOUNDARY, preamble=b"", epilogue=b""):
    """A multipart/form-data body: fields are (name, filename, type,
    data); filename None for a plain field."""
    d = b"--" + boundary.encode()
    out = [preamble + d]
    for name, filename, ctype, data in fields:
        h = b'\r\nContent-Disposition: form-data; name="%s"' % name.encode()
        if filename is not None:
            h += b'; filename="%s"' % filename.encode()
        if ctype:
            h += b"\r\nContent-Type: " + ctype.encode()
        out.append(h + b"\r\n\r\n" + data + b"\r\n" + d)
    return b"".join(out) + b"--\r\n" + epilogue


def expected(fields):
    return [[n, f, t or "text/plain", data.hex(), len(data)]
            for n, f, t, data in fields] + ["end"]


FIELDS = [("text", None, None, b"hello world"),
          ("empty", None, None, b""),
          ("file", "a.bin", "application/octet-stream", TRICKY),
          ("zero", "zero.txt", "text/plain", b""),
          ("crlf", None, None, b"\r\n")]


def test_boundary_split_at_every_offset_and_one_byte_reads():
    """Every split of a body into two pieces (and three: a small window
    refilled), and one byte at a time, give the same fields as the whole:
    near-delimiters inside file data stay data, the CRLF before each
    delimiter is the delimiter's, preamble and epilogue are dropped."""
    body = multipart(FIELDS, preamble=b"preamble\r\n--xYz not it\r\n",
                     epilogue=b"epilogue\r\n--" + BOUNDARY.encode())
    got = mpy("""
body = %r
ref = parse(%r, [body])
bad = []
for k in range(len(body) + 1):
    if parse(%r, [body[:k], body[k:]]) != ref:
        bad.append(k)
    j = (k * 7) %% (len(body) + 1)
    a, b = min(j, k), max(j, k)
    if parse(%r, [body[:a], memoryview(body)[a:b], body[b:]],
             window=256) != ref:
        bad.append(-k)
one = parse(%r, [body[i:i + 1] for i in range(len(body))])
print(json.dumps([ref, bad, one == ref]))
""" % (body, CT, CT, CT, CT))
    ref, bad, one = got
    assert ref == expected(FIELDS)
    assert bad == []
    assert one is True


def test_padding_unquoted_boundary_and_large_parts():
    """Transport padding after a delimiter, an unquoted boundary, and a
    file larger than the window, in pieces of 1000 bytes."""
    data = bytes(range(256)) * 40
    body = multipart([("f", "big", None, data), ("v", None, None, b"x")],
                     boundary="AaB03x").replace(b"AaB03x\r\n", b"AaB03x \t\r\n", 1)
    got = mpy("""
body = %r
print(json.dumps(parse("multipart/form-data; charset=utf-8; boundary=AaB03x",
                       [body[i:i + 1000] for i in range(0, len(body), 1000)])))
""" % body)
    assert got == expected([("f", "big", None, data), ("v", None, None, b"x")])


def test_file_data_streams_and_holds_back_only_a_delimiter():
    """A file's data reaches on_data as it comes: all but fewer than
    len(delimiter) bytes of what was fed so far, with no allocation per
    byte (what the parser allocates over 128 KiB in 1 KiB pieces stays
    under 200 bytes a piece)."""
    got = mpy("""
class Count(Spa):
    n = 0
    def on_data(self, p, d):
        self.n += len(d)
head = b'--bb\\r\\nContent-Disposition: form-data; name="f"; filename="x"\\r\\n\\r\\n'
s = Count("multipart/form-data; boundary=bb", max_file=1 << 20)
s.process(head)
piece = memoryview(bytearray(b"\\r\\n-" * 256))
behind = []
gc.collect()
gc.disable()
a = gc.mem_alloc()
for i in range(128):
    s.process(piece)
    behind.append((i + 1) * len(piece) - s.n)
b = gc.mem_alloc()
gc.enable()
print(json.dumps([max(behind), (b - a) // 128]))
""")
    held, per_piece = got
    assert held < len(b"\r\n--bb")
    assert per_piece < 200


def test_urlencoded():
    """+ and %XX decoded, fields without '=', empty names and values,
    split at every offset and one byte at a time; an empty body is an
    empty form."""
    body = b"a=1&b=x+y%21%2B&flag&&c=&%C3%A9t%C3%A9=%E2%82%AC&=novalue"
    ct = "application/x-www-form-urlencoded"
    got = mpy("""
body = %r
ref = parse(%r, [body])
bad = [k for k in range(len(body) + 1)
       if parse(%r, [body[:k], body[k:]]) != ref]
one = parse(%r, [body[i:i + 1] for i in range(len(body))])
print(json.dumps([ref, bad, one == ref, parse(%r, []), parse(%r, [b""])]))
""" % (body, ct, ct, ct, ct, ct))
    ref, bad, one, empty, empty2 = got
    f = [("a", b"1"), ("b", b"x y!+"), ("flag", b""), ("c", b""),
         ("\u00e9t\u00e9", "\u20ac".encode()), ("", b"novalue")]
    assert ref == [[n, None, None, v.hex(), len(v)] for n, v in f] + ["end"]
    assert bad == [] and one is True
    assert empty == ["end"] and empty2 == ["end"]


MALFORMED = [
    # (what, content type, body, limits, status)
    ("no boundary", "multipart/form-data", b"--x--\r\n", {}, 400),
    ("empty boundary", 'multipart/form-data; boundary=""', b"", {}, 400),
    ("boundary too long", "multipart/form-data; boundary=" + "b" * 71,
     b"", {}, 400),
    ("not a form", "text/plain", b"a=1", {}, 400),
    ("no content type", None, b"a=1", {}, 400),
    ("empty multipart body", CT, b"", {}, 400),
    ("garbage", CT, b"just some bytes\r\n", {}, 400),
    ("truncated final boundary", CT,
     multipart([("a", None, None, b"1")])[:-5], {}, 400),
    ("no final boundary", CT, multipart([("a", None, None, b"1")])[:-4]
     + b"\r\n", {}, 400),
    ("cut in a value", CT, multipart([("a", None, None, b"12345")])[:-20],
     {}, 400),
    ("header without colon", CT, b"--" + BOUNDARY.encode() +
     b"\r\nContent-Disposition form-data\r\n\r\nx\r\n--" +
     BOUNDARY.encode() + b"--\r\n", {}, 400),
    ("no Content-Disposition", CT, b"--" + BOUNDARY.encode() +
     b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY.encode() +
     b"--\r\n", {}, 400),
    ("no name", CT, multipart([("a", None, None, b"1")]).replace(
        b'name="a"', b'filename="a"'), {}, 400),
    ("not form-data", CT, multipart([("a", None, None, b"1")]).replace(
        b"form-data", b"attachment"), {}, 400),
    ("unclosed quote", CT, multipart([("a", None, None, b"1")]).replace(
        b'name="a"', b'name="a'), {}, 400),
    ("no headers", CT, b"--" + BOUNDARY.encode() + b"\r\n\r\nx\r\n--" +
     BOUNDARY.encode() + b"--\r\n", {}, 400),
    ("control byte in a header", CT, multipart([("a", None, None, b"1")])
     .replace(b'name="a"', b'name="a\x01"'), {}, 400),
    ("junk after the delimiter", CT, multipart([("a", None, None, b"1")])
     .replace(BOUNDARY.encode() + b"\r\n", BOUNDARY.encode() + b"junk\r\n",
              1), {}, 400),
    ("bad %XX", "application/x-www-form-urlencoded", b"a=%zz", {}, 400),
    ("cut %X", "application/x-www-form-urlencoded", b"a=1&b=%4", {}, 400),
    ("value too long", CT, multipart([("a", None, None, b"v" * 101)]),
     {"max_value": 100}, 413),
    ("urlencoded value too long", "application/x-www-form-urlencoded",
     b"a=" + b"v" * 101, {"max_value": 100}, 413),
    ("urlencoded value too long, streamed", "application/x-www-form-urlencoded",
     b"a=" + b"v" * 5000, {"max_value": 100}, 413),
    ("name too long", CT, multipart([("n" * 65, None, None, b"1")]), {}, 413),
    ("urlencoded name too long", "application/x-www-form-urlencoded",
     b"n" * 5000, {}, 413),
    ("too many fields", CT, multipart([("f%d" % i, None, None, b"1")
                                       for i in range(5)]),
     {"max_fields": 4}, 413),
    ("too many urlencoded fields", "application/x-www-form-urlencoded",
     b"&".join(b"f%d=1" % i for i in range(5)), {"max_fields": 4}, 413),
    ("file too large", CT, multipart([("f", "x", None, b"d" * 1001)]),
     {"max_file": 1000}, 413),
    ("form too large", CT, multipart([("f", "x", None, b"d" * 1000)]),
     {"max_total": 1000}, 413),
    ("part headers too long", CT, multipart([("f", "x" * 300, None, b"d")]),
     {"window": 256}, 413),
]


def test_malformed_and_oversized_forms():
    """Each malformed form is a 400, each limit a 413; the open field is
    aborted; the values just inside the limits pass."""
    cases = [(ct, body, kw) for _, ct, body, kw, _ in MALFORMED]
    cases += [
        (CT, multipart([("a", None, None, b"v" * 100)]), {"max_value": 100}),
        (CT, multipart([("n" * 64, None, None, b"1")]), {}),
        (CT, multipart([("f%d" % i, None, None, b"1") for i in range(4)]),
         {"max_fields": 4}),
        (CT, multipart([("f", "x", None, b"d" * 1000)]), {"max_file": 1000}),
        ("application/x-www-form-urlencoded", b"a=%76" * 1, {"max_value": 1}),
    ]
    got = mpy("""
cases = %r
print(json.dumps([status(ct, body, **kw) for ct, body, kw in cases]))
""" % cases)
    want = [st for *_, st in MALFORMED] + [200] * 5
    assert dict(zip([m[0] for m in MALFORMED] + ["ok"] * 5, got)) == \
        dict(zip([m[0] for m in MALFORMED] + ["ok"] * 5, want))
    assert got == want


def test_abort_reports_the_open_field_and_then_ignores_input():
    body = multipart([("a", None, None, b"1"), ("f", "x", None, b"d" * 50)])
    got = mpy("""
r = Rec(%r, max_file=10)
try:
    r.process(%r)
except HttpError as e:
    st = e.args[0]
r.process(b"more")  # ignored now
r.finalize()
r2 = Rec(%r)
r2.process(%r)
r2.abort()
print(json.dumps([st, r.out, r2.out]))
""" % (CT, body, CT, body[:-30]))
    st, out, out2 = got
    assert st == 413
    assert out[0][:2] == ["a", None] and out[-1] == ["abort", "f"]
    assert "end" not in out
    assert out2[-1] == ["abort", "f"] and "end" not in out2


def test_content_disposition_parameters():
    """Quoted values with ';' and escaped quotes, unquoted ones, a
    RFC 5987 filename* preferred to filename, case-insensitive names."""
    got = mpy(r"""
print(json.dumps([
    _params('form-data; name="a;b"; filename="x\\"y.txt"', True),
    _params('Form-Data; NAME=plain; filename=f.txt', True),
    _params("form-data; name=f; filename=x.txt; filename*=UTF-8''%E2%82%AC.txt", True),
    _params('form-data; name="C:\\dir\\f"', True),
    parse('multipart/form-data; boundary=b', [b"--b\r\ncontent-disposition: form-data; name=f; filename=x.txt; filename*=UTF-8''%E2%82%AC.txt\r\n\r\nz\r\n--b--"])]))
""")
    assert got[0] == ["form-data", {"name": "a;b", "filename": 'x"y.txt'}]
    assert got[1] == ["form-data", {"name": "plain", "filename": "f.txt"}]
    assert got[2][1]["filename*"] == "UTF-8''%E2%82%AC.txt"
    assert got[3][1]["name"] == "C:\\dir\\f"
    assert got[4] == [["f", "\u20ac.txt", "text/plain", "7a", 1], "end"]


def test_safe_name():
    names = ["../../etc/passwd", "..", ".", ".bashrc", "C:\\Users\\x\\a.txt",
             'a<b>:"|?*.txt', "x" * 100 + ".txt", "ok name.tar.gz", "",
             "dir/", " . ", "tab\there", "\u00e9t\u00e9.txt"]
    got = mpy("print(json.dumps([safe_name(n) for n in %r]))" % names)
    assert got == ["passwd", None, None, "bashrc", "a.txt", "a_b______.txt",
                   "x" * 64, "ok name.tar.gz", None, None, None, "tab_here",
                   "\u00e9t\u00e9.txt"]


def test_saver_renames_only_when_closed(tmp_path):
    """commit() puts the file in place (over one of that name), discard()
    leaves nothing, also after close(); the temporary name is a dot-file
    beside it."""
    (tmp_path / "old.bin").write_bytes(b"previous")
    got = mpy("""
s = Saver(%r + "/old.bin")
tmp = s.tmp
s.write(b"new ")
s.write(memoryview(b"content"))
import os
seen = sorted(os.listdir(%r))
s.close()
s.commit()
d = Saver(%r + "/gone.bin")
d.write(b"half")
d.close()
d.discard()
d.discard()
print(json.dumps([tmp, seen, sorted(os.listdir(%r))]))
""" % ((str(tmp_path),) * 4))
    tmp, seen, after = got
    name = tmp.rpartition("/")[2]
    assert name.startswith(".old.bin.") and name.endswith(".part")
    assert seen == sorted([name, "old.bin"])
    assert after == ["old.bin"]
    assert (tmp_path / "old.bin").read_bytes() == b"new content"


def test_spa_is_not_loaded_by_the_core_or_the_test_server():
    r = run_mpy("import sys, lws, lws.context, lws.roles.http, "
                "lws.plugins.formtest\nprint('lws.spa' in sys.modules)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r


# -- the test server's /formtest ---------------------------------------------------


@pytest.fixture(scope="module")
def ft(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    up = d / "uploads"
    s = start(d, args=["--timeout", "3", "--uploads", str(up)])
    s.up = up
    yield s
    s.stop()


@pytest.fixture
def up(ft):
    """The uploads folder, emptied before each test."""
    for p in ft.up.iterdir():
        p.unlink()
    return ft.up


def curl(*args, ok=True):
    r = subprocess.run([peer("curl"), "-sS", "--max-time", "60", *args],
                       capture_output=True, timeout=90)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def leftovers(folder, wait=3.0):
    """The folder's files once no temporary file is left (or the wait
    is over)."""
    end = time.monotonic() + wait
    while True:
        names = sorted(p.name for p in folder.iterdir())
        if not any(n.endswith(".part") for n in names) or \
                time.monotonic() > end:
            return names
        time.sleep(0.05)


def post(srv, body, ctype, headers=None):
    c = srv.conn(timeout=30)
    try:
        h = {"Content-Type": ctype}
        h.update(headers or {})
        c.request("POST", "/formtest", body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_formtest_page(ft):
    st, h, body = ft.get("/formtest")
    assert st == 200 and h["Content-Type"] == "text/html"
    assert b'enctype="multipart/form-data"' in body
    assert b'type="file"' in body and body.count(b"<form") == 2


def test_curl_uploads_0_1_and_2mb(ft, up, tmp_path):
    """curl -F: text fields and files of 0 B, 1 B and 2 MB: each file's
    size and sha256 answered, and the bytes on disk are the bytes sent."""
    files = {"zero.bin": b"", "one.bin": b"\x00",
             "big.bin": os.urandom(2 * 1024 * 1024)}
    args = ["-F", "text=hello world", "-F", "number=42"]
    for i, (name, data) in enumerate(files.items()):
        (tmp_path / name).write_bytes(data)
        args += ["-F", "f%d=@%s" % (i, tmp_path / name)]
    got = json.loads(curl(*args, ft.url + "/formtest").stdout)
    assert got["fields"] == {"text": "hello world", "number": "42"}
    assert [(f["name"], f["filename"], f["size"], f["sha256"], f["saved"])
            for f in got["files"]] == [
        ("f%d" % i, n, len(d), hashlib.sha256(d).hexdigest(), n)
        for i, (n, d) in enumerate(files.items())]
    assert leftovers(up) == sorted(files)
    for name, data in files.items():
        assert (up / name).read_bytes() == data


def test_curl_slow_upload(ft, up, tmp_path):
    """--limit-rate: the body comes in many small reads over seconds."""
    data = os.urandom(300 * 1024)
    (tmp_path / "slow.bin").write_bytes(data)
    t = time.monotonic()
    got = json.loads(curl("--limit-rate", "150k", "-F", "v=slow", "-F",
                          "f=@%s" % (tmp_path / "slow.bin"),
                          ft.url + "/formtest").stdout)
    assert time.monotonic() - t > 1.0
    assert got["fields"] == {"v": "slow"}
    assert got["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (up / "slow.bin").read_bytes() == data
    assert leftovers(up) == ["slow.bin"]


def test_http_client_urlencoded_and_keepalive(ft):
    """A urlencoded form from http.client, twice on one connection."""
    c = ft.conn()
    for i in range(2):
        c.request("POST", "/formtest", body="text=a+b%%26c&n=%d&tick" % i,
                  headers={"Content-Type":
                           "application/x-www-form-urlencoded"})
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read()) == {
            "fields": {"text": "a b&c", "n": str(i), "tick": ""},
            "files": []}
    sock = c.sock
    c.request("GET", "/formtest")
    assert c.getresponse().read().startswith(b"<!DOCTYPE html>")
    assert c.sock is sock
    c.close()


def test_http_client_multipart_chunked_and_hostile_filename(ft, up):
    """A chunked multipart body (quoted boundary, a filename that tries
    to climb out of the folder): saved inside it under its last segment."""
    data = os.urandom(10000)
    body = multipart([("t", None, None, "\u00e9t\u00e9".encode()),
                      ("f", "../../escape.bin", "application/x-thing", data)])

    def pieces():
        for i in range(0, len(body), 777):
            yield body[i:i + 777]
    c = ft.conn()
    c.request("POST", "/formtest", body=pieces(),
              headers={"Content-Type": CT}, encode_chunked=True)
    r = c.getresponse()
    assert r.status == 200
    got = json.loads(r.read())
    c.close()
    assert got["fields"] == {"t": "\u00e9t\u00e9"}
    f = got["files"][0]
    assert (f["filename"], f["saved"], f["type"], f["size"]) == (
        "../../escape.bin", "escape.bin", "application/x-thing", len(data))
    assert (up / "escape.bin").read_bytes() == data
    assert leftovers(up) == ["escape.bin"]
    assert not (up.parent / "escape.bin").exists()
    assert not (up.parent.parent / "escape.bin").exists()


def raw_post(srv, body, ctype=CT, extra=b"", timeout=10):
    head = (b"POST /formtest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            % len(body))
    if ctype is not None:
        head += b"Content-Type: " + ctype.encode() + b"\r\n"
    return srv.raw(head + extra + b"\r\n" + body, timeout=timeout)


def status_of(resp):
    assert resp.startswith(b"HTTP/1.1 "), resp[:200]
    return int(resp[9:12])


SERVER_MALFORMED = [
    ("missing boundary", "multipart/form-data",
     multipart([("a", None, None, b"1")]), 400),
    ("truncated final boundary", CT,
     multipart([("a", None, None, b"1"), ("f", "t.bin", None, b"x" * 100)])
     [:-4], 400),
    ("oversized field", CT, multipart([("a", None, None, b"v" * 1025)]), 413),
    ("too many fields", CT, multipart([("f%d" % i, None, None, b"1")
                                       for i in range(17)]), 413),
    ("bad part header", CT, multipart([("f", "t.bin", None, b"x")]).replace(
        b"Content-Disposition:", b"Content-Disposition"), 400),
    ("garbage", CT, b"\x00\x01garbage" * 50, 400),
    ("not a form", "application/json", b'{"a": 1}', 400),
]


@pytest.mark.parametrize("what,ctype,body,status", SERVER_MALFORMED,
                         ids=[m[0] for m in SERVER_MALFORMED])
def test_malformed_form_over_a_socket(ft, up, what, ctype, body, status):
    """Each malformed form has its own status, closes its connection,
    leaves no file, and the server serves others after."""
    resp = raw_post(ft, body, ctype)
    assert status_of(resp) == status
    assert b"Connection: close" in resp.partition(b"\r\n\r\n")[0]
    assert leftovers(up) == []
    assert ft.alive()
    # and a good form right after
    st, got = post(ft, b"a=1", "application/x-www-form-urlencoded")
    assert st == 200 and json.loads(got)["fields"] == {"a": "1"}


def test_oversized_file_mid_upload_leaves_nothing(ft, up, tmp_path):
    """A file over the plugin's 4 MiB is answered 413 when it gets there,
    and its temporary file is gone."""
    data = os.urandom(4 * 1024 * 1024 + 10)
    (tmp_path / "huge.bin").write_bytes(data)
    r = curl("-o", "-", "-w", "\n%{http_code}", "-F", "f=@%s"
             % (tmp_path / "huge.bin"), ft.url + "/formtest", ok=False)
    assert r.stdout.rstrip().endswith(b"413"), (r.stdout[-300:], r.stderr)
    assert leftovers(up) == []
    assert ft.alive()


def test_content_length_over_the_limit_answered_at_once(ft, up):
    """A Content-Length over the form's max_total: 413 before the body."""
    with socket.create_connection(("127.0.0.1", ft.port), timeout=5) as s:
        s.sendall(b"POST /formtest HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  + CT.encode() + b"\r\nContent-Length: %d\r\n\r\n"
                  % (64 * 1024 * 1024))
        resp = s.recv(4096)
    assert status_of(resp) == 413
    assert ft.alive()


def test_one_byte_reads(ft, up):
    """The body sent a byte at a time, each in its own segment."""
    data = b"--" + BOUNDARY.encode() + b"\r\n\r--\r\n" + bytes(range(40))
    body = multipart([("a", None, None, b"xy"), ("f", "b.bin", None, data)])
    with socket.create_connection(("127.0.0.1", ft.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"POST /formtest HTTP/1.1\r\nHost: x\r\nConnection: close"
                  b"\r\nContent-Type: " + CT.encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):
            s.send(body[i:i + 1])
            time.sleep(0.002)
        resp = recv_all(s)
    assert status_of(resp) == 200
    got = json.loads(resp.partition(b"\r\n\r\n")[2])
    assert got["fields"] == {"a": "xy"}
    assert got["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (up / "b.bin").read_bytes() == data


def test_killed_mid_upload_leaves_no_file(ft, up):
    """The connection dropped in the middle of a file: neither the file
    nor its temporary copy stays, and the server goes on."""
    data = os.urandom(500000)
    body = multipart([("f", "cut.bin", None, data)])
    s = socket.create_connection(("127.0.0.1", ft.port), timeout=5)
    s.sendall(b"POST /formtest HTTP/1.1\r\nHost: x\r\nContent-Type: " +
              CT.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    s.sendall(body[:len(body) // 2])
    end = time.monotonic() + 5
    while not any(p.name.endswith(".part") for p in up.iterdir()):
        assert time.monotonic() < end, "no temporary file was made"
        time.sleep(0.02)
    assert not (up / "cut.bin").exists()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    s.close()  # a reset, mid-body
    assert leftovers(up) == []
    assert ft.alive()
    # and the same name uploads whole afterwards
    st, got = post(ft, body, CT)
    assert st == 200 and json.loads(got)["files"][0]["saved"] == "cut.bin"
    assert (up / "cut.bin").read_bytes() == data
    assert leftovers(up) == ["cut.bin"]


def test_timed_out_mid_upload_leaves_no_file(ft, up):
    """A client that stops sending mid-file is timed out (--timeout 3):
    nothing is left."""
    body = multipart([("f", "stall.bin", None, b"s" * 20000)])
    with socket.create_connection(("127.0.0.1", ft.port), timeout=10) as s:
        s.sendall(b"POST /formtest HTTP/1.1\r\nHost: x\r\nContent-Type: " +
                  CT.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        s.sendall(body[:10000])
        assert recv_all(s) == b""  # hung up on, no answer
    assert leftovers(up) == []
    assert ft.alive()


def test_readme_example(tmp_path):
    """The README's upload protocol, run as it is written (its port and
    folder changed), against curl."""
    from conftest import REPO, free_port, wait_port
    import re
    text = (REPO / "README.md").read_text()
    sec = text[text.index("### Forms and uploads"):]
    code = re.search(r"```python\n(.*?)```", sec, re.S).group(1)
    port = free_port()
    (tmp_path / "data").mkdir()
    code = code.replace("port=80", "port=%d" % port).replace(
        '"/data"', repr(str(tmp_path / "data")))
    (tmp_path / "app.py").write_text(code)
    srv = start(tmp_path, script=tmp_path / "app.py", port=port)
    try:
        wait_port(port)
        (tmp_path / "f.txt").write_bytes(b"uploaded\n")
        out = curl("-F", "note=hi", "-F", "f=@%s" % (tmp_path / "f.txt"),
                   "http://127.0.0.1:%d/up" % port).stdout
        assert out == ("note='hi' files=[('f.txt', 9, %r)]"
                       % str(tmp_path / "data" / "f.txt")).encode()
        assert (tmp_path / "data" / "f.txt").read_bytes() == b"uploaded\n"
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * (300 * 1024))
        r = curl("-o", "/dev/null", "-w", "%{http_code}", "-F",
                 "f=@%s" % big, "http://127.0.0.1:%d/up" % port, ok=False)
        assert r.stdout == b"413"
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == \
            ["f.txt"]
        assert b"<form" in curl("http://127.0.0.1:%d/up" % port).stdout
    finally:
        srv.stop()


def test_frozen_on_the_esp8266_build_in_a_small_heap():
    """On the esp8266's 32-bit build (lws.spa frozen, as on the board) the
    import takes under 3 KB of heap, and a 1 MiB file streams through the
    parser, hashed piece by piece, in a 16 KB heap."""
    from lwstool import unix32
    from lwstool.errors import LwsToolError
    why = unix32.missing()
    if why:
        pytest.skip("no 32-bit build: " + why)
    try:
        exe = unix32.build("esp8266", quiet=True)
    except LwsToolError as e:
        pytest.fail(str(e))
    code = r"""
import gc, hashlib, binascii
import lws.httpmsg, lws.util
gc.collect(); a = gc.mem_alloc()
from lws.spa import Spa
gc.collect(); cost = gc.mem_alloc() - a
class C(Spa):
    def on_part(self, p):
        self.h = hashlib.sha256()
    def on_data(self, p, d):
        self.h.update(d)
    def on_part_end(self, p):
        self.size = p.size
s = C("multipart/form-data; boundary=bb", max_file=1 << 21, max_total=1 << 21)
s.process(b'--bb\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n')
piece = bytearray(b"\r\n--b" * 200)
for i in range(1048576 // len(piece)):
    s.process(piece)
s.process(b'\r\n--bb--\r\n')
s.finalize()
print(cost, s.size, binascii.hexlify(s.h.digest()).decode())
"""
    r = subprocess.run([str(exe), "-X", "heapsize=16K", "-c", code],
                       env={"MICROPYPATH": ".frozen"}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    cost, size, digest = r.stdout.split()
    piece = b"\r\n--b" * 200
    n = 1048576 // len(piece)
    assert int(cost) < 3000
    assert int(size) == n * len(piece)
    assert digest == hashlib.sha256(piece * n).hexdigest()
