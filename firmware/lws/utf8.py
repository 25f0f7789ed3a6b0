"""Incremental UTF-8 validation (RFC 3629) for WebSocket text messages.

bytes.decode() checks the structure at C speed; what it lets through
(overlong forms, surrogates, code points above U+10FFFF) is caught by
looking at the few lead bytes that can start them.
"""

# lead byte -> (lowest, highest) allowed second byte, where it is narrower
_SECOND = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF),
           0xF4: (0x80, 0x8F)}


def _lead_len(b):
    if b < 0x80:
        return 1
    if 0xC2 <= b <= 0xDF:
        return 2
    if 0xE0 <= b <= 0xEF:
        return 3
    if 0xF0 <= b <= 0xF4:
        return 4
    return 0


def _check(data):
    """True if data (bytes) is complete, valid UTF-8."""
    if not data or max(data) < 0x80:
        return True
    for b in (0xC0, 0xC1, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC,
              0xFD, 0xFE, 0xFF):
        if b in data:
            return False
    try:
        data.decode()
    except UnicodeError:
        return False
    for lead in _SECOND:
        i = data.find(bytes((lead,)))
        lo, hi = _SECOND[lead]
        while i >= 0:
            if not lo <= data[i + 1] <= hi:
                return False
            i = data.find(bytes((lead,)), i + 1)
    return True


def _prefix_ok(t):
    """True if t (1..3 bytes) can still begin a valid sequence."""
    n = _lead_len(t[0])
    if n < 2 or len(t) >= n:
        return False
    if len(t) > 1:
        lo, hi = _SECOND.get(t[0], (0x80, 0xBF))
        if not lo <= t[1] <= hi:
            return False
        for c in t[2:]:
            if not 0x80 <= c <= 0xBF:
                return False
    return True


_STEP = const(512)  # checked at once: small blocks, whatever the piece


class Utf8:
    """Validates a message piece by piece; a bad byte fails at once.
    A piece is checked a few hundred bytes at a time, so that a long one
    needs no block of its size (a fragmented heap may have none)."""

    def __init__(self):
        self.carry = b""

    def feed(self, piece, final):
        """Check the next piece; False as soon as the text is invalid.
        With final, the message must also end on a whole character."""
        n = len(piece)
        if not self.carry and (not n or max(piece) < 0x80):
            return True  # ASCII: nothing to copy, nothing held back
        for i in range(0, n, _STEP):
            if not self._step(piece[i:i + _STEP]):
                return False
        if final:
            tail = self.carry
            self.carry = b""
            return not tail
        return True

    def _step(self, piece):
        data = self.carry + bytes(piece) if self.carry else bytes(piece)
        # hold back an unfinished sequence at the end
        cut = len(data)
        for back in (1, 2, 3):
            if back > len(data):
                break
            b = data[-back]
            if b >= 0xC0:
                if _lead_len(b) > back:
                    cut = len(data) - back
                break
            if b < 0x80:
                break
        tail = data[cut:]
        if tail and not _prefix_ok(tail):
            return False
        if not _check(data[:cut] if cut < len(data) else data):
            return False
        self.carry = tail
        return True


def valid(data):
    """True if data is a whole, valid UTF-8 text."""
    return Utf8().feed(data, True)
