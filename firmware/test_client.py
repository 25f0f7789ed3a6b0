"""The microlws test client (like libwebsockets-test-client).

    micropython test_client.py ws://localhost:7681/ --protocol dumb-increment-protocol
    micropython test_client.py ws://localhost:7681/echo --send hello --count 1
    micropython test_client.py "ws://127.0.0.1:9001/runCase?case=1&agent=microlws" --echo
    micropython test_client.py http://localhost:7681/

Without --echo every message received is printed on a line of its own
(text as text, binary as '<binary N bytes>'). With --echo every message
goes back to the server unchanged, piece by piece with the pieces'
first/final structure, so no size limit applies: the echo client a
conformance run (the Autobahn testsuite's fuzzingserver) drives.

Exit status: 0 when the connection ends (after the close handshake, after
--count messages, or when an HTTP response is complete); 1 with
'test_client: <reason>' on stderr when the connection fails.
"""
import sys

_USAGE = """usage: micropython test_client.py URL [--protocol NAME] [--echo]
        [--deflate] [-d LOGLEVEL] [--count N] [--send TEXT]"""


def _usage(code):
    (sys.stdout if code == 0 else sys.stderr).write(_USAGE + "\n")
    sys.exit(code)


def _options(argv):
    o = {"url": None, "protocol": None, "echo": False, "debug": None,
         "count": None, "send": None, "deflate": False}
    alias = {"-d": "debug"}
    flags = ("echo", "deflate")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            _usage(0)
        k = alias.get(a, a[2:] if a.startswith("--") else None)
        if k is None and not a.startswith("-") and o["url"] is None:
            o["url"] = a
            i += 1
            continue
        if k in flags:
            o[k] = True
            i += 1
            continue
        if k not in o or k == "url" or i + 1 >= len(argv):
            _usage(1)
        o[k] = argv[i + 1]
        i += 2
    if o["url"] is None:
        _usage(1)
    return o


def _out(data):
    """Bytes to stdout as they are."""
    out = getattr(sys.stdout, "buffer", sys.stdout)
    out.write(data)


def _client_protocol():
    import lws

    class TestClient(lws.Protocol):
        name = "lws-test-client"

        def __init__(self, o):
            self.echo = o["echo"]
            self.send = o["send"]
            self.count = None if o["count"] is None else int(o["count"])
            self.received = 0
            self.msg = None        # a message arriving in pieces
            self.established = False
            self.done = False
            self.status = 1

        def finish(self, status, why=None):
            if self.done:
                return
            self.done = True
            self.status = status
            if why is not None:
                sys.stderr.write("test_client: %s\n" % why)

        # -- connection outcome ---------------------------------------

        def on_client_connection_error(self, conn, reason):
            self.finish(1, reason)

        def on_client_established(self, conn):
            self.established = True
            lws_log().notice("connected (protocol %s)", conn.subprotocol)
            if self.send is not None:
                conn.send_text(self.send)
            if self.count == 0:
                conn.close(1000)

        def on_closed(self, conn):
            # the close handshake (or the peer) ended an open WebSocket
            self.finish(0)

        # -- WebSocket messages ----------------------------------------

        def on_client_receive(self, conn, data):
            if self.echo:
                self.echo_piece(conn, data)
                return
            first = conn.is_first_fragment()
            final = conn.is_final_fragment()
            if first and final:
                msg = data
            else:
                if first or self.msg is None:
                    self.msg = bytearray()
                self.msg.extend(data)
                if not final:
                    return
                msg = self.msg
                self.msg = None
            self.message(conn, msg, conn.frame_is_binary())

        def echo_piece(self, conn, data):
            if conn.is_first_fragment():
                op = 2 if conn.frame_is_binary() else 1
            else:
                op = 0  # OP_CONT
            conn.send_frame(op, data, conn.is_final_fragment())
            if conn.tx:
                # the socket is full: read no more until it drains, so a
                # long message streams through instead of piling up here
                conn.rx_flow_control(False)
                conn.callback_on_writable()

        def on_client_writeable(self, conn):
            if conn.rx_paused:
                conn.rx_flow_control(True)

        def message(self, conn, msg, binary):
            if binary:
                _out(b"<binary %d bytes>\n" % len(msg))
            else:
                _out(bytes(msg) + b"\n")
            self.received += 1
            if self.count is not None and self.received >= self.count:
                conn.close(1000)

        # -- HTTP ----------------------------------------------------------

        def on_client_http_response(self, conn, status, headers):
            from lws.roles.http import reason
            _out(b"HTTP %d %s\n" % (status, reason(status).encode()))

        def on_client_http_body(self, conn, data):
            _out(data)

        def on_client_http_completed(self, conn):
            self.finish(0)

    return TestClient


def lws_log():
    from lws import log
    return log


def main(argv=None):
    import lws
    log = lws_log()
    o = _options(sys.argv[1:] if argv is None else argv)
    # errors and warnings only unless asked: stderr stays for the reason
    log.set_level(3 if o["debug"] is None else int(o["debug"]))
    proto = _client_protocol()(o)
    ctx = lws.Context([])
    subprotocols = [o["protocol"]] if o["protocol"] else []
    try:
        ctx.connect(o["url"], proto, subprotocols=subprotocols,
                    keepalive=False, deflate=o["deflate"])
    except ValueError as e:
        sys.stderr.write("test_client: %s\n" % e)
        return 1
    try:
        while not proto.done:
            ctx.service(250)
    except KeyboardInterrupt:
        proto.finish(1, "interrupted")
    finally:
        ctx.close()
    return proto.status


if __name__ == "__main__":
    try:
        status = main()
    except Exception as e:  # a bug, or a heap too small: not on stdout
        sys.print_exception(e, sys.stderr)
        status = 1
    sys.exit(status)
