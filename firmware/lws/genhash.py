"""lws_genhash and lws_genhmac: one small API over hashlib, for every
hash the firmware takes (WebSocket accept keys, basic-auth's PBKDF2, the
uploads' digests), with incremental updates and HMAC (RFC 2104).

    h = genhash.Hash("sha256"); h.update(b"..."); h.digest()
    genhash.hmac("sha256", key, msg)           # RFC 4231's vectors hold
    m = genhash.Hmac("sha1", key); m.update(a); m.update(b); m.digest()

The types are those this port's hashlib has (names(): md5, sha1 and
sha256 on MicroPython's ports; more where a build adds them). A leaf: it
imports nothing of lws."""
import hashlib

# block sizes (bytes) of the types HMAC knows
_BLOCK = {"md5": 64, "sha1": 64, "sha224": 64, "sha256": 64,
          "sha384": 128, "sha512": 128}


def names():
    """The hash types this interpreter has."""
    return [n for n in _BLOCK if hasattr(hashlib, n)]


def _ctor(name):
    f = getattr(hashlib, name, None)
    if f is None or name not in _BLOCK:
        raise ValueError("no hash %s here (have: %s)"
                         % (name, ", ".join(names())))
    return f


class Hash:
    """An incremental hash (lws_genhash_init/update/destroy)."""

    def __init__(self, name, data=b""):
        self.name = name
        self._h = _ctor(name)(data)

    def update(self, data):
        self._h.update(data)

    def digest(self):
        """The digest; the object is spent (MicroPython's hashlib cannot
        go on after one)."""
        return self._h.digest()


def digest(name, data):
    """The digest of data in one call."""
    return _ctor(name)(data).digest()


def _pads(name, key):
    f = _ctor(name)
    n = _BLOCK[name]
    if len(key) > n:
        key = f(key).digest()
    key = bytes(key) + bytes(n - len(key))
    return f, bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5c for b in key)


class Hmac:
    """An incremental HMAC (lws_genhmac)."""

    def __init__(self, name, key):
        f, inner, self._outer = _pads(name, key)
        self._f = f
        self._h = f(inner)

    def update(self, data):
        self._h.update(data)

    def digest(self):
        o = self._f(self._outer)
        o.update(self._h.digest())
        return o.digest()


def hmac(name, key, data):
    """HMAC of data in one call."""
    m = Hmac(name, key)
    m.update(data)
    return m.digest()


def hmac_fn(name, key):
    """mac(msg) -> HMAC(key, msg), with the key's pads made once: for
    many messages under one key (PBKDF2's rounds)."""
    f, inner, outer = _pads(name, key)

    def mac(m):
        h = f(inner)
        h.update(m)
        o = f(outer)
        o.update(h.digest())
        return o.digest()
    return mac
