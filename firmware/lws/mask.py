"""XOR-ing WebSocket payloads with their 4-byte masking key, in place.

    unmask(buf, start, n, key, koff, phase)

XORs buf[start:start+n] with the key at key[koff:koff+4] (the key may sit
in the same buffer, just before the payload, as it arrives), byte 0 with
key byte phase. Where the port has the native emitter, a viper function
(in _xor.py) does 4 bytes at a time; elsewhere a pure-Python fallback
does it with big-int XOR (C speed still, at the cost of temporary copies).
"""
import sys


def _unmask_py(buf, start, n, key, koff, phase):
    if n <= 0:
        return
    k = bytes(key[koff + ((phase + i) & 3)] for i in range(4))
    mv = memoryview(buf)[start:start + n]
    m = (k * ((n >> 2) + 1))[:n]
    mv[:] = (int.from_bytes(mv, "little") ^ int.from_bytes(m, "little")
             ).to_bytes(n, "little")


unmask = _unmask_py
if sys.byteorder == "little":
    try:
        from ._xor import unmask
    except (ImportError, SyntaxError, ValueError):
        pass
