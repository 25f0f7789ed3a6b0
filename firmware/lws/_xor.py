"""The viper unmasker (see mask.py); needs the port's native emitter."""
import micropython


@micropython.viper
def unmask(buf, start: int, n: int, key, koff: int, phase: int):
    p = ptr8(buf)
    m = ptr8(key)
    i = start
    end = start + n
    while i < end and (i & 3):
        p[i] ^= m[koff + ((phase + i - start) & 3)]
        i += 1
    if end - i >= 4:
        j = phase + i - start
        k = (m[koff + (j & 3)] | (m[koff + ((j + 1) & 3)] << 8)
             | (m[koff + ((j + 2) & 3)] << 16)
             | (m[koff + ((j + 3) & 3)] << 24))
        w = ptr32(buf)
        while end - i >= 4:
            w[i >> 2] ^= k
            i += 4
    while i < end:
        p[i] ^= m[koff + ((phase + i - start) & 3)]
        i += 1
