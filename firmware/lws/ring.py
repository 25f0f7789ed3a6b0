"""lws_ring: a ring of fixed-size elements, one writer, any number of readers.

    ring = Ring(64, 8, destroy=None)   # 8 elements of 64 bytes, one bytearray
    t = ring.tail()                    # a reader: sees what comes from now
    ring.insert(msg)                   # len(msg) a multiple of 64
    mv = t.get()                       # the next element, in place
    t.consume()                        # done with it

All `count` elements are usable: positions run modulo 2 * count, so a full
ring (count waiting) and an empty one (0 waiting) are told apart without
keeping a slot free as lws does.

The ring keeps its tails and tracks the oldest one itself.  An element is
given to destroy(mv) once no tail needs it any longer (every tail consumed
it, the tails that had not were released, or it was dropped), and before its
slot is reused.  With no tails at all nobody can read an element, so it is
destroyed as soon as it is inserted.  destroy must not call back into the
ring.

Memory is fixed at creation: the bytearray, one memoryview per element (what
get(), insert_slot() and destroy hand out, so reading and writing in place
allocate nothing) and a list of tails.
"""


class Ring:
    def __init__(self, element_len, count, destroy=None):
        if element_len < 1 or count < 1:
            raise ValueError("ring size")
        self.element_len = element_len
        self.count = count
        self.destroy = destroy
        self._buf = bytearray(element_len * count)
        self._mv = memoryview(self._buf)
        self._el = tuple(self._mv[i * element_len:(i + 1) * element_len]
                         for i in range(count))
        self._wrap = 2 * count
        self._head = 0    # position the next element is written to
        self._oldest = 0  # position of the oldest element a tail still needs
        self._tails = []

    def _used(self):
        return (self._head - self._oldest) % self._wrap

    def free(self):
        """Elements that can be inserted now."""
        return self.count - self._used()

    def insert(self, data):
        """Copy whole elements from data in; returns how many fitted."""
        n = self.element_len
        if len(data) % n:
            raise ValueError("not whole elements")
        k = min(len(data) // n, self.free())
        if k == 0:
            return 0
        if k * n < len(data):
            data = memoryview(data)[:k * n]
        at = self._head % self.count
        first = min(k, self.count - at)  # up to the end of the buffer
        if first == k:
            self._mv[at * n:(at + k) * n] = data
        else:
            data = memoryview(data)
            self._mv[at * n:] = data[:first * n]
            self._mv[:(k - first) * n] = data[first * n:]
        self._advance_head(k)
        return k

    def insert_slot(self):
        """The next free element to write in place, or None if full."""
        if not self.free():
            return None
        return self._el[self._head % self.count]

    def bump_head(self):
        """Commit the element written through insert_slot()."""
        if not self.free():
            raise ValueError("ring full")
        self._advance_head(1)

    def _advance_head(self, k):
        self._head = (self._head + k) % self._wrap
        if not self._tails:
            self._release_to(self._head)

    def drop_oldest(self, n=1):
        """Force the oldest n elements out, read or not; returns how many.

        Tails that had not read them skip them and count them in tail.lost:
        a slow reader loses its oldest messages instead of blocking the
        writer and the other readers.
        """
        used = self._used()
        n = min(n, used)
        if n <= 0:
            return 0
        keep = used - n
        start = (self._head - keep) % self._wrap
        for t in self._tails:
            w = t.waiting()
            if w > keep:
                t.lost += w - keep
                t._pos = start
        self._release_to(start)
        return n

    def tail(self):
        """A new reader, at the head: it sees elements inserted from now."""
        t = Tail(self)
        self._tails.append(t)
        return t

    def release(self, t):
        """Forget a reader; what only it still needed is destroyed."""
        self._tails.remove(t)
        t._ring = None
        self._update_oldest()

    def _update_oldest(self):
        most = 0
        for t in self._tails:
            w = t.waiting()
            if w > most:
                most = w
        self._release_to((self._head - most) % self._wrap)

    def _release_to(self, pos):
        while self._oldest != pos:
            if self.destroy is not None:
                self.destroy(self._el[self._oldest % self.count])
            self._oldest = (self._oldest + 1) % self._wrap


class Tail:
    """One reader of a Ring (lws_ring's tail).  lost: elements dropped
    by drop_oldest() before this tail read them."""

    def __init__(self, ring):
        self._ring = ring
        self._pos = ring._head
        self.lost = 0

    def waiting(self):
        """Elements inserted and not yet consumed by this tail."""
        r = self._ring
        return (r._head - self._pos) % r._wrap

    def get(self):
        """The next element, in place and not consumed, or None."""
        r = self._ring
        if self._pos == r._head:
            return None
        return r._el[self._pos % r.count]

    def consume(self, dest=None, max_count=1):
        """Consume up to max_count elements, copied into dest if given
        (as many as dest holds whole); returns how many."""
        r = self._ring
        w = self.waiting()
        k = min(w, max_count)
        if dest is not None:
            n = r.element_len
            k = min(k, len(dest) // n)
            p = self._pos
            for i in range(k):
                dest[i * n:(i + 1) * n] = r._el[p % r.count]
                p += 1
        if k <= 0:
            return 0
        self._pos = (self._pos + k) % r._wrap
        if w == r._used():  # this tail was (one of) the oldest
            r._update_oldest()
        return k
