"""Server-Sent Events for lws.app handlers (text/event-stream).

    from lws.sse import SSE

    @app.get("/events")
    def events(request):
        sse = SSE(request)
        clients.append(sse)
        return sse           # the stream stays open

    # later, from a timer or another protocol's callback:
    for s in clients[:]:
        if not s.send({"t": 1}, event="tick"):
            clients.remove(s)  # gone (or too slow: dropped)

An event goes out at once when the socket takes it; while the socket is
full, events wait in a bounded queue, and a client that falls max_queue
events behind is dropped rather than let the heap grow.
The stream has no idle timeout. A client that went away is found at the
next send (send() then returns False, and on_close is called), and a
stream with no event for `keepalive` ms gets a comment line, so that one
gone while nothing was sent is found too (its socket hangs up) rather
than holding its connection.
"""
import json
import time
from .app import Response

_CTYPE = "text/event-stream"
_PING = b":\n\n"  # a comment: EventSource ignores it
_TICK_MS = const(1000)

_open = []    # the streams a keepalive looks after
_timer = []   # (ctx, its timer) while there are any


def _tick():
    now = time.ticks_ms()
    for s in _open[:]:
        if s.closed or s.conn.closed:
            _unwatch(s)  # never started, or ended without close()
            continue
        k = s.keepalive
        if k and time.ticks_diff(now, s._last) >= k and s._started \
                and not s.q and not s.conn.tx:
            s._last = now
            s.conn.write(_PING)


def _watch(s):
    _open.append(s)
    if not _timer:
        ctx = s.conn.ctx
        _timer.append((ctx, ctx.every(_TICK_MS, _tick)))


def _unwatch(s):
    if s in _open:
        _open.remove(s)
        if not _open and _timer:
            ctx, t = _timer.pop()
            ctx.cancel(t)


class SSE(Response):
    #: events queued for a slow client; one more drops it
    max_queue = 8
    #: ms without an event before a comment line is sent (0: never)
    keepalive = 15000
    #: called with the SSE when the stream ends (the client went away,
    #: was dropped, or close() was called)
    on_close = None
    closed = False
    ctype = _CTYPE
    _started = False
    _ending = False

    def __init__(self, request):
        Response.__init__(self, self, 200, {"Cache-Control": "no-cache",
                                            "Content-Type": _CTYPE})
        self.conn = request.conn
        self.q = []
        self._last = time.ticks_ms()
        _watch(self)  # keepalive may be set after this

    def send(self, data, event=None, id=None):
        """Queue an event (str, bytes, or a dict/list sent as JSON);
        False if the stream is closed (or this one closed it)."""
        if self.closed or self._ending:
            return False
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        elif isinstance(data, (bytes, bytearray)):
            data = data.decode()
        p = []
        for k, v in (("event", event), ("id", id)):
            if v is not None:
                v = str(v)
                if "\n" in v or "\r" in v:
                    raise ValueError("line break in SSE " + k)
                p.append("%s: %s\n" % (k, v))
        for line in str(data).replace("\r\n", "\n").split("\n"):
            p.append("data: %s\n" % line)
        p.append("\n")
        ev = "".join(p).encode()
        c = self.conn
        self._last = time.ticks_ms()
        if self._started and not self.q and not c.tx:
            c.write(ev)  # the socket takes it: no queue
            return not c.closed
        if len(self.q) >= self.max_queue:
            from . import log
            log.notice("%r: SSE client %d events behind: dropped", c,
                       len(self.q))
            c.drop()
            return False
        self.q.append(ev)
        if self._started:
            c.callback_on_writable()
        return True

    def end(self):
        """End the stream once what is queued is sent."""
        if not self.closed and not self._ending:
            self._ending = True
            if self._started:
                self.conn.callback_on_writable()

    # -- the body of the response (lws.app) ---------------------------------

    def piece(self, c):
        self._started = True
        q = self.q
        if q:
            return q.pop(0)
        if self._ending:
            raise StopIteration
        c.deadline = None  # a stream waits for events as long as it takes
        return None

    def close(self):
        if not self.closed:
            self.closed = True
            self.q = []
            _unwatch(self)
            cb = self.on_close
            if cb is not None:
                cb(self)
