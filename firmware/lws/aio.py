"""The service loop under MicroPython's asyncio (lws's foreign event loops).

While ctx.serve() runs, asyncio's stream queue (asyncio.core._io_queue) is
one whose poller is the context's poll object: one ipoll waits for
asyncio's streams and the context's sockets alike. An event on a socket
asyncio does not know goes to the context's connection, as in the
blocking loop; asyncio's wait is cut short by the context's timers, its
timeout tick and input poll cannot see (TLS). No added latency, no
polling.

A protocol callback defined `async def` returns a coroutine (Conn.later):
it runs at once up to its first await, then as a task, and its
connection's input waits until it returns."""
import gc
import time
from asyncio import core
from . import log

_TICK_MS = const(250)  # the context's timeout tick (context._TIMER_MS)
_POLLIN = const(1)
_POLLOUT = const(4)

#: the queue installed while a context is served (one at a time)
_queue = None


def _move(src, dst):
    """What tasks wait for on src's poller goes on dst's."""
    for k in src.map:
        sm = src.map[k]
        s = sm[2]
        if s is getattr(src, "ctx", None):
            continue  # serve()'s own wait, not a stream
        src.poller.unregister(s)
        dst.poller.register(s, (_POLLIN if sm[0] is not None else 0) |
                            (_POLLOUT if sm[1] is not None else 0))
        dst.map[k] = sm
        for t in sm[:2]:
            if t is not None:
                t.data = dst  # where cancel() finds it
    src.map.clear()


def _wait_ms(ctx):
    """How long the context lets the loop wait: until its next timer or
    timeout tick; 0 with input pending."""
    if ctx._pending:
        return 0
    now = time.ticks_ms()
    ms = time.ticks_diff(ctx._timer, now) + _TICK_MS
    for t in ctx._timers:
        ms = min(ms, time.ticks_diff(t[0], now))
    return max(0, ms)


class Queue(core.IOQueue):
    """asyncio's IOQueue on the context's poll object."""

    def __init__(self, ctx):
        self.poller = ctx.poll
        self.map = {}
        self.ctx = ctx

    def _dequeue(self, s):
        del self.map[id(s)]
        if s is not self.ctx:
            self.poller.unregister(s)

    def park(self):
        """serve()'s task waits here for ctx.stop() (the entry also keeps
        asyncio's loop from returning while only the context has work)."""
        self.map[id(self.ctx)] = [core.cur_task, None, self.ctx]
        core.cur_task.data = self  # cancel() finds it here
        yield

    def wait_io_event(self, dt):
        """One round of the loop; asyncio's dt < 0 (nothing to run but on
        an event) waits, round after round, until a task is queued."""
        ctx = self.ctx
        while not ctx._stop:
            try:
                ms = _wait_ms(ctx)
                self._round(ctx, ms if dt < 0 or dt > ms else dt)
            except MemoryError:
                gc.collect()
                log.warn("heap full in the loop")
            except KeyboardInterrupt:
                log.notice("interrupted")
                _done(self)
                raise
            if dt >= 0 or core._task_queue.peek():
                break
        if ctx._stop:
            sm = self.map.pop(id(ctx), None)
            if sm is not None:
                core._task_queue.push(sm[0])  # serve() returns

    def _round(self, ctx, ms):
        conns = ctx.conns
        for e in self.poller.ipoll(ms):
            s = e[0]
            c = conns.get(s)
            if c is not None:
                c.event(e[1])
            elif s in ctx._listen:
                ctx._accept(s)
            else:
                self._stream(s, e[1])
        ctx._after()

    def _stream(self, s, ev):
        """An event on one of asyncio's streams: as asyncio's own."""
        sm = self.map.get(id(s))
        if sm is None:
            return  # no longer anyone's (closed during this round)
        if ev & ~_POLLOUT and sm[0] is not None:
            core._task_queue.push(sm[0])
            sm[0] = None
        if ev & ~_POLLIN and sm[1] is not None:
            core._task_queue.push(sm[1])
            sm[1] = None
        if sm[0] is None and sm[1] is None:
            self._dequeue(s)
        else:
            self.poller.modify(s, _POLLOUT if sm[0] is None else _POLLIN)


def _done(q):
    """Close q's context; asyncio gets a queue of its own back."""
    global _queue
    if _queue is q:
        _queue = None
    if core._io_queue is q:
        mine = core.IOQueue()
        _move(q, mine)
        core._io_queue = mine
    q.ctx.close()


async def serve(ctx):
    """Serve ctx under asyncio until ctx.stop() (or the task is
    cancelled), then close it. Installed when the task starts, so that
    asyncio.new_event_loop() before it does not undo it."""
    global _queue
    if _queue is not None:
        raise ValueError("asyncio serves one context at a time")
    q = _queue = Queue(ctx)
    _move(core._io_queue, q)
    core._io_queue = q
    log.notice("service loop running under asyncio")
    try:
        if not ctx._stop:
            await q.park()
    finally:
        _done(q)


def task(c, coro):
    """coro, what an async callback of c returned, runs at once up to its
    first await, as a plain callback would (what it raises there fails c
    the same way); from there on as an asyncio task, while c's input
    waits (its callbacks stay in order, its body or next message is not
    read meanwhile)."""
    q = _queue
    if q is None or q.ctx is not c.ctx:
        raise ValueError("an async callback needs ctx.serve() under asyncio")
    t = core.Task(coro)
    cur = core.cur_task
    core.cur_task = t  # where its first await puts it
    try:
        coro.send(None)
    except StopIteration:
        return  # it never awaited
    finally:
        core.cur_task = cur
    t.state = lambda t, er: _ended(c, er)
    if not c.closed and not c.awaiting:
        if c.rx_paused:
            c.awaiting = 2  # paused by its protocol, which resumes it
        else:
            c.awaiting = True
            c.rx_paused = True
            c.update()


def _ended(c, er):
    """The task of an async callback of c ended, with er (StopIteration
    when it returned): c's input goes on. Runs inside asyncio's loop:
    it never raises."""
    try:
        if not isinstance(er, (StopIteration, core.CancelledError)):
            # as Conn.event: the error fails this connection alone
            if isinstance(er, MemoryError):
                gc.collect()
                log.warn("%r: heap full: closing", c)
            else:
                log.exc(er, "%r: async callback", c)
            if not c.closed:
                c.role.callback_failed(c)
        if c.closed:
            return
        w = c.awaiting
        if w:  # (the first of several at once resumes its input)
            c.awaiting = False
            if w is True:
                c.rx_paused = False
            c.role.resume(c)
        if not c.closed:
            c.role.after_event(c)  # e.g. a transaction it completed
            c.update()
    except Exception as e:
        try:
            log.exc(e, "%r: closing after error", c)
        finally:
            c.drop()
