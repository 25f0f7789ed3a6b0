"""The ceiling: a minimal poll() loop that answers every request head with
one prebuilt response (the same file as the others serve), keep-alive
unless the request says Connection: close. GET /heap answers the heap.

usage: micropython raw_loop.py PORT FILE
"""
import gc
import select
import socket
import sys


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


def main(port, path):
    with open(path, "rb") as f:
        body = f.read()
    ok, ok_close = response(body, False), response(body, True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    ls.listen(64)
    ls.setblocking(False)
    poll = select.poll()
    poll.register(ls, select.POLLIN)
    pending = {}
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
            try:
                data = s.recv(2048) if ev & select.POLLIN else b""
                buf = pending[s] + data
                close = not data
                while not close:
                    i = buf.find(b"\r\n\r\n")
                    if i < 0:
                        break
                    close = answer(s, buf[:i], ok, ok_close)
                    buf = buf[i + 4:]
            except OSError:  # reset by the peer
                close = True
            if close:
                poll.unregister(s)
                del pending[s]
                s.close()
            else:
                pending[s] = buf


main(int(sys.argv[1]), sys.argv[2])
