"""lws.ring on the MicroPython unix port, in the default heap and in 32 KB.

ring.py imports nothing from the package, so the snippets load it from
firmware/lws directly: lws/__init__ brings in the whole server, which does
not fit a 32 KB heap when compiled from source.
"""
import textwrap

import pytest

from conftest import FIRMWARE, run_mpy

PRELUDE = """\
import sys
sys.path.insert(0, %r)
from ring import Ring
def out(*a):
    print(repr(a[0] if len(a) == 1 else a))
""" % str(FIRMWARE / "lws")

heaps = pytest.mark.parametrize("heap", [None, "32K"])


def mpy(code, heap):
    """Run code after the prelude; what it passed to out(), evaluated."""
    r = run_mpy(PRELUDE + textwrap.dedent(code), heap=heap)
    assert r.returncode == 0, r.stdout + r.stderr
    return [eval(line) for line in r.stdout.splitlines()]


@heaps
def test_order_with_wraparound(heap):
    # batches of 1..4 in, 1..3 out, on 5 slots: the head and the tail wrap
    # past the end of the buffer hundreds of times, in every phase
    out = mpy("""
        r = Ring(4, 5)
        t = r.tail()
        sent = got = 0
        dest = bytearray(4 * 3)
        for i in range(3000):
            k = min(i % 4 + 1, r.free())
            data = bytearray()
            for j in range(k):
                data += (sent + j).to_bytes(4, "little")
            assert r.insert(data) == k
            sent += k
            if i % 3:
                assert int.from_bytes(t.get(), "little") == got
                got += t.consume()
            else:
                n = t.consume(dest, max_count=3)
                for j in range(n):
                    v = int.from_bytes(dest[4 * j:4 * j + 4], "little")
                    assert v == got + j, (v, got + j)
                got += n
        while t.waiting():
            assert int.from_bytes(t.get(), "little") == got
            got += t.consume()
        out(sent, got, t.waiting(), t.get(), r.free())
    """, heap)
    sent, got, waiting, nxt, free = out[0]
    assert sent > 5000
    assert (got, waiting, nxt, free) == (sent, 0, None, 5)


@heaps
def test_free_accounting(heap):
    out = mpy("""
        gone = []
        r = Ring(2, 4, destroy=lambda mv: gone.append(bytes(mv)))
        out(r.free(), r.insert(b"n1n2"), r.free(), gone)  # no tail: dropped
        t = r.tail()
        out(r.free(), r.insert(b"a1"), r.free(), r.insert(b"b1c1"),
              r.free(), r.insert(b"d1e1"), r.free(), r.insert(b"f1"),
              r.insert_slot(), t.waiting())
        out(t.consume(max_count=2), r.free(), t.consume(max_count=9),
              r.free(), t.consume(), t.waiting())
        out(gone)
    """, heap)
    assert out[0] == (4, 2, 4, [b"n1", b"n2"])
    assert out[1] == (4, 1, 3, 2, 1, 1, 0, 0, None, 4)
    assert out[2] == (2, 2, 2, 4, 0, 0)
    assert out[3] == [b"n1", b"n2", b"a1", b"b1", b"c1", b"d1"]


@heaps
def test_tails_at_different_speeds(heap):
    # three readers at three speeds; the writer inserts whatever fits.
    # destroy checks, when it is called, that every tail has consumed the
    # element and that the slot still holds it
    out = mpy("""
        read = [0, 0, 0]
        gone = []
        def destroy(mv):
            seq = int.from_bytes(mv, "little")
            assert all(seq < n for n in read), (seq, read)
            gone.append(seq)
        r = Ring(4, 8, destroy)
        tails = [r.tail(), r.tail(), r.tail()]
        every = (1, 2, 5)
        sent = 0
        for step in range(2000):
            while r.free():
                r.insert(sent.to_bytes(4, "little"))
                sent += 1
            for i in range(3):
                if step % every[i] == 0 and tails[i].waiting():
                    mv = tails[i].get()
                    assert int.from_bytes(mv, "little") == read[i]
                    read[i] += 1
                    tails[i].consume()
        for i in range(3):
            read[i] += tails[i].waiting()
            tails[i].consume(max_count=8)
        out(sent, read, r.free())
        out(gone == list(range(sent)))
    """, heap)
    sent, read, free = out[0]
    assert sent == 2000 // 5 + 8 and read == [sent] * 3 and free == 8
    assert out[1] is True


@heaps
def test_release(heap):
    out = mpy("""
        gone = []
        r = Ring(1, 4, destroy=lambda mv: gone.append(bytes(mv)))
        fast, slow, mid = r.tail(), r.tail(), r.tail()
        r.insert(b"abcd")
        fast.consume(max_count=4)
        mid.consume(max_count=2)
        out(r.free(), gone)
        r.release(fast)                 # not the oldest: nothing freed
        out(r.free(), gone)
        r.release(slow)                 # a, b were only slow's
        out(r.free(), gone, mid.waiting())
        r.release(mid)
        out(r.free(), gone)
        try:
            mid.consume()
        except AttributeError:
            out("released")
    """, heap)
    assert out == [(0, []), (0, []), (2, [b"a", b"b"], 2),
                   (4, [b"a", b"b", b"c", b"d"]), "released"]


@heaps
def test_drop_oldest_slow_reader(heap):
    # the mirror pattern: when full, drop the oldest; the writer is never
    # blocked, the fast reader loses nothing, the slow one loses the oldest
    out = mpy("""
        gone = []
        r = Ring(1, 4, destroy=lambda mv: gone.append(mv[0]))
        fast, slow = r.tail(), r.tail()
        fast_got, slow_got = [], []
        for i in range(20):
            if not r.free():
                r.drop_oldest()
            assert r.insert(bytes([i])) == 1
            fast_got.append(fast.get()[0])
            fast.consume()
            if i >= 10:
                while slow.waiting():
                    slow_got.append(slow.get()[0])
                    slow.consume()
        out(fast_got, fast.lost)
        out(slow_got, slow.lost)
        out(gone, r.free())
    """, heap)
    assert out[0] == (list(range(20)), 0)
    assert out[1] == (list(range(7, 20)), 7)
    assert out[2] == (list(range(20)), 4)


@heaps
def test_drop_oldest_counts_only_unread(heap):
    out = mpy("""
        gone = []
        r = Ring(1, 4, destroy=lambda mv: gone.append(bytes(mv)))
        a, b, c = r.tail(), r.tail(), r.tail()
        r.insert(b"wxyz")
        a.consume()                     # a has read w
        c.consume(max_count=4)          # c is up to date
        out(r.drop_oldest(2), a.lost, b.lost, c.lost, gone)
        out(bytes(a.get()), bytes(b.get()), c.get(), r.free())
        out(r.drop_oldest(10), a.lost, b.lost, a.waiting(), gone)
        out(r.drop_oldest(), r.free())
    """, heap)
    assert out[0] == (2, 1, 2, 0, [b"w", b"x"])
    assert out[1] == (b"y", b"y", None, 2)
    assert out[2] == (2, 3, 4, 0, [b"w", b"x", b"y", b"z"])
    assert out[3] == (0, 4)


@heaps
def test_zero_copy(heap):
    out = mpy("""
        r = Ring(8, 3)
        t = r.tail()
        s = r.insert_slot()
        s[:] = b"ABCDEFGH"
        out(t.waiting(), t.get())        # not there until bumped
        r.bump_head()
        v = t.get()
        out(t.waiting(), bytes(v))
        v[0] = ord("z")                  # the element itself, not a copy
        dest = bytearray(8)
        out(t.consume(dest), bytes(dest), t.get())
        for i in range(3):
            r.insert_slot()[:] = b"%08d" % i
            r.bump_head()
        out(r.insert_slot(), r.free())
        try:
            r.bump_head()
        except ValueError:
            out("full")
        out(bytes(t.get()))
    """, heap)
    assert out == [(0, None), (1, b"ABCDEFGH"), (1, b"zBCDEFGH", None),
                   (None, 0), "full", b"00000000"]


@heaps
def test_insert_some_of_many(heap):
    out = mpy("""
        r = Ring(2, 5)
        t = r.tail()
        r.insert(b"a0a1a2")
        t.consume(max_count=2)
        out(r.free(), r.insert(b"b0b1b2b3b4b5"), r.free(), r.insert(b"c0"))
        dest = bytearray(6)              # room for 3
        out(t.consume(dest, max_count=9), bytes(dest))
        out(t.consume(dest, max_count=9), bytes(dest[:4]), t.waiting())
        try:
            r.insert(b"xyz")
        except ValueError:
            out("partial element")
    """, heap)
    assert out == [(4, 4, 0, 0), (3, b"a2b0b1"), (2, b"b2b3", 0),
                   "partial element"]


@heaps
def test_memory_is_bounded(heap):
    # 10000 elements through two tails: the heap is where it started, and
    # once warm, insert / insert_slot / get / consume / destroy allocate
    # nothing at all (the heap is locked)
    out = mpy("""
        import gc, micropython
        n = [0]
        def destroy(mv):
            n[0] += 1
        r = Ring(16, 8, destroy)
        a, b = r.tail(), r.tail()
        msg = bytearray(16)
        dest = bytearray(16 * 4)
        def run(count):
            for i in range(count):
                if i & 1:
                    r.insert(msg)
                else:
                    s = r.insert_slot()
                    s[0] = i & 255
                    r.bump_head()
                a.get()
                a.consume(dest)
                if i % 4 == 3:
                    b.consume(dest, max_count=4)
        run(100)
        gc.collect()
        before = gc.mem_alloc()
        run(10000)
        gc.collect()
        after = gc.mem_alloc()
        locked = "allocated"
        micropython.heap_lock()
        try:
            run(1000)
            locked = "ok"
        except MemoryError:
            pass
        micropython.heap_unlock()
        out(after - before, locked, n[0], r.free())
    """, heap)
    grew, locked, destroyed, free = out[0]
    assert grew <= 64
    assert locked == "ok"
    assert destroyed == 11100 and free == 8
