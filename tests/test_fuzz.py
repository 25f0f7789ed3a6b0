"""A bounded, deterministic fuzz run against one test server on the unix
port: mutated HTTP requests and WebSocket frame sequences over many
connections, checking that every answer is well formed, that the server
never logs a traceback, and that it keeps serving a plain GET.

FUZZ_SEED (default 7681) picks the cases, FUZZ_CASES (default 3000) how
many of each kind; FUZZ_CASE=i runs case i alone (with the seed of the
failed run); FUZZ_HEAP=128K caps the server's heap (a MemoryError then
closes a connection: counted, not a failure); FUZZ_KEEPGOING=1 runs on
after a failure, keeping one case of each kind. `make fuzz` runs 20 times
as many cases with a seed from the clock.

Below the fuzz run: regression cases, one per hole found.
"""
import collections
import email.utils
import json
import os
import random
import re
import socket
import struct

import pytest

import fuzzlib as fz
from conftest import FIRMWARE, start

SEED = os.environ.get("FUZZ_SEED") or "7681"
CASES = int(os.environ.get("FUZZ_CASES") or 3000)
ONLY = os.environ.get("FUZZ_CASE")
HEAP = os.environ.get("FUZZ_HEAP") or None
BATCH = 100


def _validators():
    st = os.stat(FIRMWARE / "www" / "index.html")
    etag = ('"%x-%x"' % (int(st.st_mtime), st.st_size)).encode()
    return etag, email.utils.formatdate(int(st.st_mtime), usegmt=True).encode()


CORPUS = fz.http_corpus(*_validators())


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    s = start(tmp_path_factory.mktemp("fuzz"), args=["--timeout", "2"],
              heap=HEAP)
    yield s
    s.stop()


class Log:
    """The server log, read as it grows."""

    def __init__(self, srv):
        self.srv = srv
        self.pos = 0
        self.odd = {}  # lines other than NOTICE and tracebacks: count
        self.new()
        self.odd.clear()

    def new(self):
        with open(self.srv.logpath, "rb") as f:
            f.seek(self.pos)
            d = f.read()
        self.pos += len(d)
        text = d.decode("utf-8", "replace")
        for line in text.splitlines():
            if " NOTICE: " in line or line.startswith(("Traceback", "  ")):
                continue
            line = re.sub(r"^\[[^]]*\] ", "", line)
            line = re.sub(r"<conn [^>]*>", "<conn>", line)
            self.odd[line] = self.odd.get(line, 0) + 1
        return text


def plain_get(srv):
    """The server answers a plain GET correctly."""
    assert srv.proc.poll() is None, "server died"
    st, _, body = srv.get("/t/info?alive=1")
    assert st == 200, st
    info = json.loads(body)
    assert info["path"] == "/t/info" and info["query"] == "alive=1", info


def heap_in_use(srv):
    """The server's heap in use after a collection (lws-http-test)."""
    st, _, body = srv.get("/t/heap")
    assert st == 200, st
    return int(body.split()[0])


class Failures:
    """Failed cases: the first one fails the test, or with FUZZ_KEEPGOING
    set, every kind of failure is kept (the first case of each) and the
    run goes on."""

    def __init__(self, kind):
        self.kind = kind
        self.seen = {}
        self.keepgoing = bool(os.environ.get("FUZZ_KEEPGOING"))

    def add(self, sig, i, why, case, res, log):
        msg = ["fuzz %s case %d (FUZZ_SEED=%s): %s" % (
                   self.kind, i, SEED, why),
               "  this case alone: FUZZ_SEED=%s FUZZ_CASE=%d .venv/bin/python"
               " -m pytest -q tests/test_fuzz.py -k %s" % (SEED, i, self.kind),
               "  the whole run:   FUZZ_SEED=%s FUZZ_CASES=%d" % (SEED, CASES),
               "  case: %s" % fz.describe(case),
               "  got: %r" % (res,)]
        if log:
            msg.append("  server log:\n" + log[-4000:])
        msg = "\n".join(msg)
        if not self.keepgoing:
            pytest.fail(msg, pytrace=False)
        if sig not in self.seen:
            self.seen[sig] = [msg, 0]
            print("\n" + msg)
        self.seen[sig][1] += 1

    def check(self):
        if self.seen:
            pytest.fail("%d kinds of failure:\n\n" % len(self.seen) +
                        "\n\n".join("(%d cases) %s" % (n, m)
                                     for m, n in self.seen.values()),
                        pytrace=False)


def tracebacks(text):
    """The tracebacks in a piece of log, each as one string."""
    out = []
    lines = text.splitlines()
    for j, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            k = j + 1
            while k < len(lines) and lines[k].startswith("  "):
                k += 1
            out.append("\n".join(lines[j:k + 1]))
    return out


def signature(tb):
    """Where a traceback ends and what it raised."""
    lines = tb.splitlines()
    frames = [x.strip() for x in lines if x.startswith("  File")]
    m = re.match(r'File "(?:.*/)?([^"]*)", line \d+, in (\S+)',
                 frames[-1] if frames else "")
    where = "%s %s" % m.groups() if m else "?"
    return "%s: %s" % (where, lines[-1].split(":")[0])


# Holes that have a regression test below and a fix on its way: the fuzz
# run counts them instead of failing. Take an entry out once it is fixed.
# (name, where the traceback ends and what it raised, the case's trait)
KNOWN = [
]


# Known outcomes that are wrong without a traceback: (name, test)
KNOWN_OUTCOMES = [
]


def _known_outcome(case, res):
    for name, test in KNOWN_OUTCOMES:
        if test(case, res):
            return name
    return None


def _known(case, tb):
    sig = signature(tb)
    for name, where, trait in KNOWN:
        if sig == where and (trait is None or trait(case)):
            return name
    return None


def _heap_full(tb):
    """Under FUZZ_HEAP, a full heap closes one connection, with its
    traceback logged (log.exc): counted by where it struck."""
    sig = signature(tb)
    if HEAP and sig.endswith(": MemoryError"):
        return "heap full (FUZZ_HEAP=%s) in %s" % (HEAP, sig[:-13])
    return None


def _run(kind, srv, make, execute, stats):
    log = Log(srv)
    known = collections.Counter()
    failures = Failures(kind)
    heap = []
    cases = [int(ONLY)] if ONLY else range(CASES)
    for n, i in enumerate(cases):
        case = make(i)
        res = None
        failed = None
        try:
            res = execute(case)
        except (AssertionError, OSError) as e:
            failed = "%s: %s" % (type(e).__name__, e)
            res = getattr(e, "res", None)
        dead = srv.proc.poll() is not None
        text = log.new()
        tbs = tracebacks(text)
        names = [_known(case, tb) or _heap_full(tb) for tb in tbs]
        for name in names:
            if name:
                known[name] += 1
        if dead:
            failures.add("died", i, (failed or "") + " (the server died)",
                         case, res, text)
            break
        if tbs and all(names):
            failed = None  # what a known hole does: counted above
        for tb, name in zip(tbs, names):
            if not name:
                failures.add(signature(tb), i, "a traceback in the server "
                             "log: " + signature(tb), case, res, text)
        if failed and not tbs:
            name = _known_outcome(case, res)
            if name:
                known[name] += 1
                failed = None
        if failed:
            sig = re.split(r"[\[(b'\"0-9]", failed, maxsplit=1)[0][:50]
            failures.add(sig, i, failed, case, res, text)
        stats[res.end if isinstance(res, fz.Result) else "failed"] += 1
        if n % BATCH == BATCH - 1 or n == len(cases) - 1:
            try:
                plain_get(srv)
                heap.append(heap_in_use(srv))
            except Exception as e:
                failures.add("plain GET", i, "plain GET after cases %d..%d "
                             "failed: %r" % (max(0, i + 1 - BATCH), i, e),
                             case, res, log.new())
                break
    print("\nfuzz %s: %d cases, seed %s: %s" % (kind, len(cases), SEED,
                                               dict(stats)))
    if heap:
        print("  heap in use after each %d cases: first %d, least %d, most "
              "%d, last %d" % (BATCH, heap[0], min(heap), max(heap), heap[-1]))
    for k, v in known.items():
        print("  known, %d times: %s" % (v, k))
    for line, k in list(log.odd.items())[:40]:
        print("  log (%d times): %s" % (k, line))
    failures.check()


def test_corpus_is_served(fuzz_server):
    """The fuzz corpus starts from requests the server answers well."""
    log = Log(fuzz_server)
    for name, req, want in CORPUS:
        res = fz.run_http(fuzz_server.port, fz.case(req))
        assert res.end == "eof", (name, res)
        assert fz.check_http(req, res) == want, (name, res)
    text = log.new()
    assert "Traceback" not in text, text


_TIMEOUT = 120 + CASES * 0.12


@pytest.mark.timeout(_TIMEOUT)
def test_fuzz_http_requests(fuzz_server):
    stats = collections.Counter()
    silent = 0

    def check(part, res):
        nonlocal silent
        if res.end == "hang":
            raise AssertionError("no answer and no close for %.1fs after "
                                 "our FIN" % res.secs)
        with fz.attach(res):
            for st in fz.check_http(part.data, res):
                stats[st] += 1
            # after our FIN, an answer with Connection: close is followed
            # by the close at once, not at the timeout (2 s here)
            if res.closing and res.end == "eof":
                assert res.secs < 1.5, "the close announced came only " \
                    "after %.1fs" % res.secs
            if not res.data and res.end == "eof":
                assert not fz.expects_answer(part.data), \
                    "closed without an answer to a whole request head"
                silent += 1

    def execute(case):
        res = fz.run_http(fuzz_server.port, case)
        if isinstance(case, fz.MultiCase):
            for j, (part, r) in enumerate(zip(case.parts, res)):
                with fz.attach(res, "on connection %d" % j):
                    check(part, r)
            stats["multi"] += 1
            return res[0]
        check(case, res)
        return res

    _run("http_requests", fuzz_server,
         lambda i: fz.http_case(SEED, i, CORPUS), execute, stats)
    print("  closed without an answer (a head or body not all there): %d"
          % silent)


@pytest.mark.timeout(_TIMEOUT)
def test_fuzz_ws_frames(fuzz_server):
    stats = collections.Counter()

    def execute(case):
        _, res = fz.run_ws(fuzz_server.port, case)
        if res.end == "hang":
            raise AssertionError("no close for %.1fs after our FIN"
                                 % res.secs)
        with fz.attach(res):
            got = fz.check_frames(res.data, cut=res.end != "eof")
        for _, op, p in got:
            if op == 8:
                stats["close %s" % (struct.unpack("!H", p[:2])[0]
                                    if p else "empty")] += 1
        if not case.mutated:
            ex = fz.model(case.frames, fz.PROTOCOLS.get(case.proto, 0))
            with fz.attach(res, "model %r" % ex):
                fz.check_ws(ex, got, res.end, echo=case.proto is None)
        return res

    _run("ws_frames", fuzz_server, lambda i: fz.ws_case(SEED, i), execute,
         stats)


def test_model_is_sane():
    """The WebSocket model agrees with RFC 6455 on a few plain cases."""
    F = fz.F
    ex = fz.model([F(1, b"hi"), F(9, b"p"), F(8, b"\x03\xe8")])
    assert ex.msgs == [(1, b"hi")] and ex.pongs == [b"p"] and ex.close == 1000
    assert fz.model([F(1, b"\xff")]).close == 1007
    assert fz.model([F(2, b"x", rsv=4)]).close == 1002
    assert fz.model([F(8, b"\x03")]).close == 1002
    assert fz.model([F(8, b"\x03\xed")]).close == 1002  # 1005
    assert fz.model([F(1, b"a", fin=False), F(9, b""), F(0, b"b")]).msgs == \
        [(1, b"ab")]
    assert fz.model([F(9, b"", fin=False)]).close == 1002
    # invalid UTF-8 fails as soon as the text cannot be valid any more
    ex = fz.model([F(1, b"\xce\xba\xed\xa0", fin=False), F(9, b"")])
    assert ex.close == 1007 and ex.pongs == []
    ex = fz.model([F(1, b"\xce", fin=False), F(9, b""), F(0, b"\xba")])
    assert ex.msgs == [(1, "κ".encode())] and ex.pongs == [b""]
    # a protocol's max_message_size counts the whole message
    assert fz.model([F(2, b"x" * 300)], 256).close == 1009
    assert fz.model([F(2, b"x" * 200, fin=False), F(0, b"y" * 57)],
                    256).close == 1009
    assert fz.model([F(2, b"x" * 200, fin=False), F(0, b"y" * 56)],
                    256).close is None


# -- regressions: holes found by fuzzing, exact bytes ------------------------


def _answer(srv, req):
    """Send req, half-close, read the answer to the end."""
    res = fz.run_http(srv.port, fz.case(req))
    assert res.end == "eof", res
    return res.data


@pytest.mark.parametrize("req", [
    b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\xc3\xa9 / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["0xff", "utf-8"])
def test_non_ascii_method_is_400(server, req):
    log = Log(server)
    data = _answer(server, req)
    assert data.startswith(b"HTTP/1.1 400 "), data[:80]
    text = log.new()
    assert "Traceback" not in text, text
    plain_get(server)


def test_absolute_form_without_host_is_400(server):
    """RFC 7230 5.4: an HTTP/1.1 request without Host is a 400, whatever
    its target's form."""
    data = _answer(server, b"GET http://host/ HTTP/1.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 "), data[:80]
    # with Host, the absolute form is served
    data = _answer(server, b"GET http://host/t/info HTTP/1.1\r\n"
                   b"Host: 127.0.0.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 "), data[:80]


def test_bare_cr_before_request_line_is_400(server):
    data = _answer(server, b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 "), data[:80]


@pytest.mark.parametrize("lead", [b"\r\n", b"\n", b"\r\n\r\n"])
def test_empty_lines_before_request_line_are_ignored(server, lead):
    """RFC 7230 3.5: CRLF before the request line is skipped."""
    data = _answer(server, lead + b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 "), data[:80]




def _ws_frame(op, payload):
    return fz.F(op, payload).encode(random.Random(0))


def test_pipelined_upgrade(server):
    """An upgrade right behind a keep-alive request, in one send: the 101
    goes out, then Http.settle() goes on with the WebSocket connection
    (c.req is None: AttributeError) and the socket is closed with 1011."""
    req = b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n" + fz.ws_request()
    log = Log(server)
    res = fz.Result()
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        s.sendall(req)
        while res.data.count(b"\r\n\r\n") < 2:
            d = s.recv(4096)
            assert d, res
            res.data += d
        s.sendall(_ws_frame(1, b"hi"))
        fz.collect(s, res, open_=True, idle=0.5)
    text = log.new()
    assert "Traceback" not in text, text
    assert fz.check_http(req, res) == [200, 101]
    frames = fz.check_frames(res.data.split(b"\r\n\r\n", 2)[2], cut=True)
    assert [f[1:] for f in frames] == [(1, b"hi")], res


def test_post_to_info_keeps_connection(server):
    """POST /t/info: lws-http-test answers, then its
    on_http_body_completion reads conn.head_sent (Conn has none:
    AttributeError) and the keep-alive connection is dropped, so the
    request pipelined behind it is never answered."""
    req = (b"POST /t/info HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /t/info HTTP/1.1\r\nHost: x\r\n\r\n")
    log = Log(server)
    res = fz.run_http(server.port, fz.case(req))
    text = log.new()
    assert "Traceback" not in text, text
    assert fz.check_http(req, res) == [200, 200]


@pytest.mark.parametrize("frame,want", [
    ((1, b"hello"), [(1, b"hello")]),
    ((8, b"\x03\xe8"), [(8, b"\x03\xe8")]),
], ids=["text", "close"])
def test_frames_behind_upgrade_then_fin(server, frame, want):
    """Frames sent in the same segment as the upgrade request, then our
    FIN: the role keeps them as carry, but its first read sees the end of
    stream and hangs up before parsing them (no echo, no close answer)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        # corked, the FIN leaves in the segment with the data: the server
        # has it all at its first read, whatever the timing
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        s.sendall(fz.ws_request() + _ws_frame(*frame))
        s.shutdown(socket.SHUT_WR)
        res = fz.collect(s, fz.Result())
    head, _, rest = res.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), res
    assert [f[1:] for f in fz.check_frames(rest)] == want, res


def test_close_follows_500_of_failed_callback(server):
    """A callback that raises gets a 500 with Connection: close (Http.failed)
    but the connection is then left as it is (no settle() after the error
    path): it closes only at timeout_secs (3 s here, 20 s by default), even
    after the client's FIN. /t/crash raises on purpose."""
    log = Log(server)
    res = fz.run_http(server.port, fz.case(
        b"GET /t/crash HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert fz.check_http(b"GET", res) == [500]
    assert "crash requested" in log.new()
    assert res.closing and res.secs < 1, res
