"""A bare WebSocket client on a socket, to send what real clients never do."""
import base64
import os
import socket
import struct


def handshake(port, path="/echo", protocol=None, extra=b"", timeout=5,
              rcvbuf=None):
    s = socket.socket()
    s.settimeout(timeout)
    if rcvbuf:  # before connecting, so the window stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16))
    req = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           b"Sec-WebSocket-Version: 13\r\n" % (path.encode(), key))
    if protocol:
        req += b"Sec-WebSocket-Protocol: %s\r\n" % protocol.encode()
    s.sendall(req + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed during handshake: %r" % head)
        head += d
    return s, head


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload) if length is None else length
    mb = 0x80 if mask else 0
    if n < 126:
        h = struct.pack("!BB", b0, mb | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, mb | 126, n)
    else:
        h = struct.pack("!BBQ", b0, mb | 127, n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def read_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise ConnectionError("closed")
        out += d
    return out


def read_frame(s):
    """(fin, opcode, payload) of the next server frame; None at EOF."""
    try:
        b0, b1 = read_exact(s, 2)
    except ConnectionError:
        return None
    assert not b1 & 0x80, "server frames must not be masked"
    n = b1 & 127
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    return bool(b0 & 0x80), b0 & 15, read_exact(s, n)


def expect_close(s, code):
    """Read until a close frame; assert its code; the server then hangs up."""
    while True:
        f = read_frame(s)
        assert f is not None, "connection ended without a close frame"
        if f[1] == 8:
            got = struct.unpack("!H", f[2][:2])[0] if len(f[2]) >= 2 else 1005
            assert got == code, "close code %d, wanted %d (%r)" % (got, code, f[2])
            break
    s.settimeout(3)
    try:
        s.sendall(frame(8, struct.pack("!H", code)))
    except OSError:
        pass
    try:
        assert s.recv(100) == b""  # and the TCP connection ends
    except ConnectionResetError:
        pass  # the server had already hung up when our close arrived
    return f[2][2:]
