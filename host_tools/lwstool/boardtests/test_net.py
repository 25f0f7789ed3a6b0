"""Over the network: the board's HTTP server and WebSockets."""
import concurrent.futures
import http.client
import os

import pytest


def get(net, path, method="GET", conn=None):
    c = conn or http.client.HTTPConnection(*net, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


def test_index_page(net):
    st, h, body = get(net, "/")
    assert st == 200
    assert h.get("content-type", "").startswith("text/html")
    assert int(h["content-length"]) == len(body) > 0


def test_missing_is_404(net):
    st, _, _ = get(net, "/no/such/file.html")
    assert st == 404


def test_head_has_no_body(net):
    st, h, body = get(net, "/", method="HEAD")
    assert st == 200 and body == b""


def test_keep_alive(net):
    c = http.client.HTTPConnection(*net, timeout=10)
    try:
        for _ in range(3):
            st, _, _ = get(net, "/", conn=c)
            assert st == 200
    finally:
        c.close()


def test_parallel_clients(net):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: get(net, "/")[0], range(8)))
    assert results == [200] * 8


def _ws(net):
    from websockets.sync.client import connect
    from websockets.exceptions import InvalidStatus
    try:
        return connect("ws://%s:%d/echo" % net, open_timeout=10,
                       close_timeout=5)
    except InvalidStatus as e:
        pytest.skip("no WebSocket echo at /echo on this board (%s)" % e)


def test_websocket_echo(net):
    with _ws(net) as ws:
        ws.send("hello board")
        assert ws.recv(timeout=10) == "hello board"
        data = os.urandom(300)
        ws.send(data)
        assert ws.recv(timeout=10) == data


def test_websocket_close_code(net):
    with _ws(net) as ws:
        ws.send("bye")
        assert ws.recv(timeout=10) == "bye"
        ws.close(1000, "done")
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 1000
