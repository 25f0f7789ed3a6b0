"""The ceiling: a minimal poll() loop that answers every request head with
one prebuilt response (the same file as the others serve), keep-alive
unless the request says Connection: close. GET /heap answers the heap.

GET /echo with an upgrade becomes a WebSocket echo (RFC 6455, what the
bench needs of it): each frame read is unmasked in place (viper, 4 bytes
at a time), its header rewritten in place in front of the payload, and the
whole frame sent back with one send. A frame longer than one read goes
back as one frame too: the header first, then each piece as it arrives.

usage: micropython raw_loop.py PORT FILE
"""
import binascii
import gc
import hashlib
import micropython
import select
import socket
import sys

_RX = const(4096)


def response(body, close):
    return b"".join((b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     b"Content-Length: %d\r\n" % len(body),
                     b"Connection: close\r\n" if close else b"",
                     b"\r\n", body))


def answer(s, head, ok, ok_close):
    close = b"connection: close" in head.lower()
    if head.startswith(b"GET /heap "):
        gc.collect()
        body = b"%d %d\n" % (gc.mem_alloc(), gc.mem_free())
        s.sendall(response(body, close))
    else:
        s.sendall(ok_close if close else ok)
    return close


def handshake(s, head):
    """Answer an upgrade request head; True if s is now a WebSocket."""
    h = head.lower()
    i = h.find(b"\r\nsec-websocket-key:")
    if i < 0:
        s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        return False
    j = head.find(b"\r\n", i + 2)
    key = head[i + 20:j if j > 0 else len(head)].strip()
    accept = binascii.b2a_base64(hashlib.sha1(
        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())[:-1]
    s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
              + b"\r\n\r\n")
    return True


@micropython.viper
def unmask(buf, start: int, n: int, key: int) -> int:
    """XOR buf[start:start+n] with key (the 4 mask bytes as a little-endian
    int, rotated to the phase of buf[start]); returns the key rotated to
    the phase of the byte after."""
    p = ptr8(buf)
    i = start
    end = start + n
    while i < end and (i & 3):
        p[i] ^= key
        key = (key >> 8) | ((key & 255) << 24)
        i += 1
    w = ptr32(buf)
    while end - i >= 4:
        w[i >> 2] ^= key
        i += 4
    while i < end:
        p[i] ^= key
        key = (key >> 8) | ((key & 255) << 24)
        i += 1
    return key


@micropython.viper
def key32(buf, i: int) -> int:
    p = ptr8(buf)
    return p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24)


def send(s, mv):
    """All of mv on a non-blocking socket (blocking for what it does not
    take at once)."""
    n = s.write(mv) or 0
    if n < len(mv):
        s.setblocking(True)
        s.write(mv[n:])
        s.setblocking(False)


def ws_rx(s, st, buf, mv):
    """Read what s has and echo it. st: [payload bytes of the current frame
    still to come, its key, header bytes carried over]. False: close s."""
    carry = st[2]
    k = len(carry)
    if k:
        buf[:k] = carry
        st[2] = b""
        n = s.readinto(mv[k:])
    else:
        n = s.readinto(mv)
    if n is None:
        n = 0
    elif not n:
        return False
    n += k
    pos = 0
    while pos < n:
        left = st[0]
        if left:  # the rest of a long frame: unmask, send on
            m = left if left < n - pos else n - pos
            st[1] = unmask(buf, pos, m, st[1])
            st[0] = left - m
            send(s, mv[pos:pos + m])
            pos += m
            continue
        if n - pos < 2:
            st[2] = bytes(buf[pos:n])
            return True
        b0 = buf[pos]
        ln = buf[pos + 1] & 127
        hl = 2 if ln < 126 else 4 if ln == 126 else 10
        if n - pos < hl + 4:
            st[2] = bytes(buf[pos:n])
            return True
        if ln == 126:
            ln = buf[pos + 2] << 8 | buf[pos + 3]
        elif ln == 127:
            ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
        key = key32(buf, pos + hl)
        # our header goes where the client's ended (over its key): b0,
        # the length without the mask bit, the extended length
        if hl == 10:
            buf[pos + 6:pos + 14] = buf[pos + 2:pos + 10]
        elif hl == 4:
            buf[pos + 7] = buf[pos + 3]
            buf[pos + 6] = buf[pos + 2]
        buf[pos + 5] = buf[pos + 1] & 127
        buf[pos + 4] = b0
        start = pos + 4
        pos += hl + 4
        m = ln if ln < n - pos else n - pos
        st[1] = unmask(buf, pos, m, key)
        st[0] = ln - m
        pos += m
        send(s, mv[start:pos])
        if b0 & 15 == 8:  # close: echoed, now hang up
            return False
    return True


def main(port, path):
    with open(path, "rb") as f:
        body = f.read()
    ok, ok_close = response(body, False), response(body, True)
    buf = bytearray(_RX)
    mv = memoryview(buf)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    ls.listen(64)
    ls.setblocking(False)
    poll = select.poll()
    poll.register(ls, select.POLLIN)
    pending = {}  # HTTP connections: bytes of a request head so far
    wss = {}      # WebSocket connections: their framing state
    while True:
        for s, ev in poll.ipoll(1000):
            if s is ls:
                try:
                    c, _ = ls.accept()
                except OSError:
                    continue
                c.setsockopt(6, 1, 1)  # TCP_NODELAY
                pending[c] = b""
                poll.register(c, select.POLLIN)
                continue
            st = wss.get(s)
            if st is not None:
                try:
                    close = not (ev & select.POLLIN and ws_rx(s, st, buf, mv))
                except OSError:
                    close = True
                if close:
                    poll.unregister(s)
                    del wss[s]
                    s.close()
                continue
            try:
                data = s.recv(2048) if ev & select.POLLIN else b""
                buf_ = pending[s] + data
                close = not data
                while not close:
                    i = buf_.find(b"\r\n\r\n")
                    if i < 0:
                        break
                    if buf_.startswith(b"GET /echo "):
                        if handshake(s, buf_[:i]):
                            s.setblocking(False)  # readinto: what is there
                            wss[s] = [0, 0, buf_[i + 4:]]
                            del pending[s]
                            break
                        close = True
                        break
                    close = answer(s, buf_[:i], ok, ok_close)
                    buf_ = buf_[i + 4:]
            except OSError:  # reset by the peer
                close = True
            if s in wss:
                continue
            if close:
                poll.unregister(s)
                del pending[s]
                s.close()
            else:
                pending[s] = buf_


main(int(sys.argv[1]), sys.argv[2])
