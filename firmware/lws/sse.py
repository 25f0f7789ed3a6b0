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

Events wait in a bounded queue while the socket is busy; a client that
falls max_queue events behind is dropped rather than let the heap grow.
The stream has no idle timeout: a client that went away is found at the
next send (send() then returns False, and on_close is called).
"""
import json
from .app import Response

_CTYPE = "text/event-stream"


class SSE(Response):
    #: events queued for a slow client; one more drops it
    max_queue = 8
    #: called with the SSE when the stream ends (the client went away,
    #: was dropped, or close() was called)
    on_close = None
    closed = False
    ctype = _CTYPE
    _started = False
    _ending = False

    def __init__(self, request):
        Response.__init__(self, None, 200, {"Cache-Control": "no-cache",
                                            "Content-Type": _CTYPE})
        self.body = self
        self.conn = request.conn
        self.q = []

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
        if len(self.q) >= self.max_queue:
            from . import log
            log.info("%r: SSE client %d events behind: dropped", self.conn,
                     len(self.q))
            self.conn.drop()
            return False
        self.q.append("".join(p).encode())
        if self._started:
            self.conn.callback_on_writable()
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
            cb = self.on_close
            if cb is not None:
                cb(self)
