"""HTTP Basic authentication for mounts (lws basic_auth_login_file, RFC
7617), loaded by the first request to a mount that has an auth_file.

The file holds one user a line, as `lwstool passwd FILE USER` writes it:

    user:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX

the password never in clear: PBKDF2-HMAC-SHA256 of it with the user's
salt. A header that checked out is remembered (its SHA-256 only), so the
key derivation is paid once per client, not per request; the file is
looked at again when it changes. After a few wrong tries an address must
wait before it may try again, longer each time (429 until then)."""
import binascii
import os
import time
from . import log
from .genhash import digest

_FREE_TRIES = const(5)     # wrong tries before an address has to wait
_MAX_WAIT_S = const(64)
_ADDRESSES = const(16)     # addresses whose failures are kept
_KNOWN = const(8)          # headers remembered as good
_RECHECK_MS = const(1000)  # the file is stat()ed at most this often


def pbkdf2_sha256(password, salt, iterations):
    """PBKDF2-HMAC-SHA256, one 32-byte block (RFC 8018), as CPython's
    hashlib.pbkdf2_hmac("sha256", ...) computes it."""
    from .genhash import hmac_fn
    mac = hmac_fn("sha256", password)
    u = mac(salt + b"\x00\x00\x00\x01")
    t = int.from_bytes(u, "big")
    for _ in range(iterations - 1):
        u = mac(u)
        t ^= int.from_bytes(u, "big")
    return t.to_bytes(32, "big")


def same(a, b):
    """a == b (bytes of equal length), in a time that does not depend on
    where they differ."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


class Backoff:
    """Wrong tries per address: after a few, the address must wait before
    it may try again, twice as long each time (basic auth here, session
    logins in lws.sessions)."""

    def __init__(self):
        self.fails = {}  # address -> [wrong tries, ticks_ms it may retry]

    def wait(self, ip):
        """Seconds the address must wait before it may try again (0: it
        may)."""
        f = self.fails.get(ip)
        if f is None:
            return 0
        left = time.ticks_diff(f[1], time.ticks_ms())
        return (left + 999) // 1000 if left > 0 else 0

    def failed(self, ip):
        f = self.fails.get(ip)
        if f is None:
            if len(self.fails) >= _ADDRESSES:
                self.fails.clear()  # an attacker's many addresses: forget
            f = self.fails[ip] = [0, time.ticks_ms()]
        f[0] += 1
        if f[0] >= _FREE_TRIES:
            s = min(1 << (f[0] - _FREE_TRIES), _MAX_WAIT_S)
            f[1] = time.ticks_add(time.ticks_ms(), s * 1000)

    def passed(self, ip):
        self.fails.pop(ip, None)


class Users(Backoff):
    """A credentials file, read again when it changes."""

    def __init__(self, path):
        Backoff.__init__(self)
        self.path = path
        self.stamp = None
        self.users = {}
        self.known = {}  # sha256(Authorization value) -> user
        self.checked = None

    def _reload(self):
        now = time.ticks_ms()
        if self.checked is not None and \
                time.ticks_diff(now, self.checked) < _RECHECK_MS:
            return
        self.checked = now
        try:
            st = os.stat(self.path)
            stamp = (st[6], st[8])
        except OSError:
            stamp = None
        if stamp == self.stamp and self.stamp is not None:
            return
        self.stamp = stamp
        self.users = {}
        self.known = {}
        if stamp is None:
            log.warn("auth: no credentials file %s: nobody gets in",
                     self.path)
            return
        with open(self.path) as f:
            for line in f:
                p = line.strip().split(":")
                if len(p) != 5 or p[1] != "pbkdf2-sha256" or line[0] == "#":
                    continue
                try:
                    self.users[p[0]] = (int(p[2]), binascii.unhexlify(p[3]),
                                        binascii.unhexlify(p[4]))
                except ValueError:
                    log.warn("auth: bad line for %s in %s", p[0], self.path)

    def check(self, value):
        """The user an Authorization value lets in, or None."""
        self._reload()
        k = digest("sha256", value)
        u = self.known.get(k)
        if u is not None:
            return u
        if value[:6].lower() != b"basic ":
            return None
        try:
            user, _, pw = binascii.a2b_base64(value[6:].strip()).partition(
                b":")
            user = user.decode()
        except (ValueError, UnicodeError):
            return None
        e = self.users.get(user)
        if e is None:
            # as long as for a user who exists: no telling who does
            e = (1000, b"\x00" * 16, b"")
            user = None
        good = same(pbkdf2_sha256(pw, e[1], e[0]), e[2]) and user
        if not good:
            return None
        if len(self.known) >= _KNOWN:
            self.known.clear()
        self.known[k] = user
        return user

def allowed(c, req, m):
    """True if the request may go on to mount m; else it has been
    answered (401 with the realm to ask for, or 429 while its address
    must wait)."""
    u = m._users
    if u is None:
        u = m._users = Users(m.auth_file)
    from .conn import peer_ip
    ip = peer_ip(c.addr)
    w = u.wait(ip)
    if w:
        c.respond(429, "Retry-After: %d\r\n" % w, "try again later\n",
                  "text/plain")
        return False
    value = req.h.get("authorization")
    user = u.check(value.encode()) if value else None
    if user is None:
        if value:
            u.failed(ip)
            log.notice("%r: auth: wrong credentials for %s", c, req.path)
        c.respond(401, 'WWW-Authenticate: Basic realm="%s", charset="UTF-8"'
                  '\r\nCache-Control: no-store\r\n' % m.realm,
                  "credentials needed\n", "text/plain")
        return False
    u.passed(ip)
    req.auth_user = user
    return True
