"""HTTP/1.1 server core against real clients: http.client, curl, sockets."""
import hashlib
import json
import socket
import subprocess

from conftest import FIRMWARE, recv_all


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def split_responses(data):
    """Split a byte stream of Content-Length responses."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get(b"content-length", b"0"))
        out.append((lines[0], hdrs, rest[:n]))
        data = rest[n:]
    return out


def test_index_page(server):
    st, h, body = server.get("/")
    assert st == 200
    assert h["Content-Type"] == "text/html"
    assert int(h["Content-Length"]) == len(body)
    assert body == (FIRMWARE / "www" / "index.html").read_bytes()
    assert "Date" in h and h["Date"].endswith(" GMT")


def test_curl_index_and_mime(server):
    out = curl("-i", server.url + "/test.css")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/css" in head
    assert body == (FIRMWARE / "www" / "test.css").read_bytes()


def test_head_has_length_no_body(server):
    data = server.raw(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    size = (FIRMWARE / "www" / "index.html").stat().st_size
    assert b"Content-Length: %d" % size in head
    assert body == b""


def test_keep_alive_reuses_connection(server):
    c = server.conn()
    for _ in range(5):
        c.request("GET", "/t/info")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Connection") is None
        json.loads(r.read())
    sock = c.sock
    c.request("GET", "/")
    r = c.getresponse()
    r.read()
    assert c.sock is sock  # never reconnected
    c.close()


def test_pipelining_answers_in_order(server):
    reqs = b"".join(b"GET /t/info?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                    for i in range(4))
    reqs += b"GET /t/info?n=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    resp = split_responses(server.raw(reqs))
    assert len(resp) == 5
    queries = [json.loads(b)["query"] for _, _, b in resp]
    assert queries == ["n=0", "n=1", "n=2", "n=3", "n=last"]
    assert resp[-1][1][b"connection"] == b"close"


def test_pipelined_with_bodies(server):
    body1, body2 = b"a" * 100, b"b" * 3000
    reqs = (b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            + body1 +
            b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n"
            b"Connection: close\r\n\r\n" + body2)
    resp = split_responses(server.raw(reqs))
    got = [json.loads(b) for _, _, b in resp]
    assert got == [
        {"length": 100, "sha256": hashlib.sha256(body1).hexdigest()},
        {"length": 3000, "sha256": hashlib.sha256(body2).hexdigest()}]


def test_http10_closes_without_keepalive(server):
    data = server.raw(b"GET /t/info HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in data


def test_http10_keepalive(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        for _ in range(2):
            s.sendall(b"GET /test.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert b"Connection: keep-alive" in head
            n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = b""
            while len(body) < n:
                body += s.recv(n - len(body))


def test_chunked_response_streamed(server):
    st, h, body = server.get("/t/stream?n=50&size=1000")
    assert st == 200
    assert h["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in h
    assert len(body) == 50000
    assert body[:12] == b"012345678901"


def test_chunked_response_http10_close_delimited(server):
    data = server.raw(b"GET /t/stream?n=3&size=4 HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"chunked" not in head and b"Connection: close" in head
    assert body == b"0123" * 3


def test_post_body_in_chunks_large(server):
    body = bytes(range(256)) * 4096  # 1 MiB, far more than any buffer
    st, _, out = server.get("/t/body", method="POST", body=body)
    assert st == 200
    assert json.loads(out) == {"length": len(body),
                               "sha256": hashlib.sha256(body).hexdigest()}


def test_post_chunked_request_body(server):
    chunks = [b"hello ", b"chunked ", b"world" * 500]
    data = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks)
    req = (b"POST /t/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + data + b"0\r\nTrailer: x\r\n\r\n")
    out = server.raw(req)
    body = out.partition(b"\r\n\r\n")[2]
    whole = b"".join(chunks)
    assert json.loads(body) == {"length": len(whole),
                                "sha256": hashlib.sha256(whole).hexdigest()}


def test_curl_expect_100_continue(server):
    body = b"x" * 5000
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-H",
                        "Expect: 100-continue", "--expect100-timeout", "5",
                        "--data-binary", "@-", server.url + "/t/body"],
                       input=body, capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["length"] == 5000


def test_absolute_form_target(server):
    data = server.raw(b"GET http://example.test/t/info?q=1 HTTP/1.1\r\n"
                      b"Host: other\r\nConnection: close\r\n\r\n")
    info = json.loads(data.partition(b"\r\n\r\n")[2])
    assert info["path"] == "/t/info" and info["query"] == "q=1"
    assert info["headers"]["host"] == "example.test"


def test_leading_empty_lines_ignored(server):
    data = server.raw(b"\r\n\r\nGET /t/info HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")


def test_callback_crash_gives_500_and_server_goes_on(server):
    st, h, body = server.get("/t/crash")
    assert st == 500
    assert h["Connection"] == "close"
    assert server.alive()
    assert "crash requested" in server.log()


def test_options_and_405_on_file_mount(server):
    st, h, _ = server.get("/", method="OPTIONS")
    assert st == 204 and "GET" in h["Allow"]
    st, h, _ = server.get("/index.html", method="DELETE")
    assert st == 405 and "GET" in h["Allow"]
    assert server.alive()


def test_many_clients_at_once(server):
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
             for _ in range(30)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"GET /t/info?i=%d HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n" % i)
        for i, s in enumerate(socks):
            body = recv_all(s).partition(b"\r\n\r\n")[2]
            assert json.loads(body)["query"] == "i=%d" % i
    finally:
        for s in socks:
            s.close()


def test_options_asterisk(server):
    data = server.raw(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = data.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 204") and b"Allow: GET" in head
    assert server.alive()
