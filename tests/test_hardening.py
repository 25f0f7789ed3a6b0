"""Holes an adversarial run found, each reproduced: malformed heads that
tracebacked or were served, and clients that could lock others out."""
import socket
import time

import pytest

from conftest import recv_all


def status_of(data):
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12])


@pytest.mark.parametrize("req", [
    b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",          # not UTF-8, not a token
    b"\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://host/ HTTP/1.1\r\n\r\n",             # RFC 7230 5.4
    b"GET http://host/t/info HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",           # bare CR first
    b"\r\n\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["non-utf8-method", "utf8-method", "absolute-no-host",
        "absolute-no-host-info", "bare-cr", "crlf-then-bare-cr"])
def test_malformed_head_is_400(server, req):
    data = server.raw(req)
    assert status_of(data) == 400
    assert b"Connection: close" in data.partition(b"\r\n\r\n")[0]
    assert "Traceback" not in server.log()
    assert server.alive()


def test_lf_only_empty_lines_still_ignored(server):
    data = server.raw(b"\n\r\nGET /t/info HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
    assert status_of(data) == 200
