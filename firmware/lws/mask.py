"""XOR-ing WebSocket payloads with their 4-byte masking key, in place.

A viper function does 4 bytes at a time where the port has the native
emitter; elsewhere a pure-Python fallback does it with big-int XOR (still
C speed, at the cost of temporary copies).
"""
import sys


def _unmask_py(buf, start, n, key, phase):
    """XOR buf[start:start+n] with key (4 bytes); byte 0 uses key[phase]."""
    if n <= 0:
        return
    k = bytes(key[(phase + i) & 3] for i in range(4))
    mv = memoryview(buf)[start:start + n]
    m = (k * ((n >> 2) + 1))[:n]
    mv[:] = (int.from_bytes(mv, "little") ^ int.from_bytes(m, "little")
             ).to_bytes(n, "little")


unmask = _unmask_py

if sys.byteorder == "little":
    try:
        import micropython

        @micropython.viper
        def _unmask_viper(buf, start: int, n: int, key, phase: int):
            p = ptr8(buf)
            m = ptr8(key)
            i = start
            end = start + n
            while i < end and (i & 3):
                p[i] ^= m[(phase + i - start) & 3]
                i += 1
            if end - i >= 4:
                j = phase + i - start
                k = (m[j & 3] | (m[(j + 1) & 3] << 8) | (m[(j + 2) & 3] << 16)
                     | (m[(j + 3) & 3] << 24))
                w = ptr32(buf)
                while end - i >= 4:
                    w[i >> 2] ^= k
                    i += 4
            while i < end:
                p[i] ^= m[(phase + i - start) & 3]
                i += 1

        unmask = _unmask_viper
    except (ImportError, SyntaxError, NameError, AttributeError):
        pass
