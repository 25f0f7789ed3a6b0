"""Accounts on flash (the user table of lws's generic-sessions plugin):
name, salted PBKDF2-HMAC-SHA256 of the password, its iterations, admin
and confirmed flags, an email address and, while a registration waits
for its mail to be answered, the SHA-256 of the confirmation token.

One JSON file, rewritten whole through lws.atomic at every change, so a
power cut at any moment leaves the accounts as they were before or after
the change (never a torn file); passwords never in clear."""
import binascii
import json
import os
from . import log

_ADMIN = const(1)
_CONFIRMED = const(2)
_SALT = const(16)
_TOKEN = const(16)        # confirmation token bytes (os.urandom)
_MAX_NAME = const(32)
_MIN_PASSWORD = const(8)
_MAX_PASSWORD = const(128)
_MAX_EMAIL = const(254)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-@"
# what an address may hold: no space, quote, angle bracket or line break
# (it goes into a mail header and into pages)
_EMAIL_CHARS = _NAME_CHARS + "+%"

# an account in memory: [salt hex, hash hex, iterations, flags, email,
# sha256 hex of the pending confirmation token (or None)]
_S = const(0)
_H = const(1)
_I = const(2)
_F = const(3)
_E = const(4)
_T = const(5)


def _check_file(f):
    d = json.load(f)
    if not isinstance(d, dict) or not isinstance(d.get("accounts"), dict):
        raise ValueError("no account table")
    return d


def _ok_chars(s, chars):
    for c in s.lower():
        if c not in chars:
            return False
    return True


def _hash(password, salt, iterations):
    from .auth import pbkdf2_sha256
    if isinstance(password, str):
        password = password.encode()
    return pbkdf2_sha256(password, salt, iterations)


def _token_hash(token):
    from .genhash import digest
    return binascii.hexlify(digest("sha256", token.encode())).decode()


class Accounts:
    #: PBKDF2-SHA256 rounds for passwords set from now on (an ESP32 takes
    #: some 0.2 s a login at 1000; each account keeps its own count)
    iterations = 1000
    #: at most this many accounts, those waiting for confirmation included
    max_accounts = 32

    def __init__(self, path="accounts.json", **options):
        for k in options:
            if not hasattr(Accounts, k) or k[0] == "_":
                raise ValueError("unknown option " + k)
            setattr(self, k, options[k])
        self.path = path
        self.a = {}
        self.load()

    # -- the file ---------------------------------------------------------

    def load(self):
        from . import atomic
        d = atomic.load(self.path, _check_file, "accounts", "account")
        a = {}
        if d is not None:
            for name, e in d["accounts"].items():
                if isinstance(e, list) and len(e) == 6:
                    a[name] = e
                else:
                    log.warn("accounts: bad entry for %s skipped", name)
        self.a = a

    def save(self):
        from . import atomic
        atomic.save(self.path, lambda f: json.dump(
            {"version": 1, "accounts": self.a}, f))

    # -- changes ----------------------------------------------------------

    def add(self, name, password, admin=False, email=None, confirmed=True):
        """A new account, saved. Unconfirmed: returns the token its
        confirmation link must carry (kept only as its hash). ValueError
        for a bad name, password or address, a name taken, a full table."""
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME \
                or not _ok_chars(name, _NAME_CHARS):
            raise ValueError("name: 1..32 of a-z A-Z 0-9 . _ - @")
        if name in self.a:
            raise ValueError("that name is taken")
        if len(self.a) >= self.max_accounts:
            raise ValueError("no room for more accounts")
        if email is not None and (not 2 < len(email) <= _MAX_EMAIL or
                                  email.count("@") != 1 or
                                  not _ok_chars(email, _EMAIL_CHARS)):
            raise ValueError("not an email address")
        e = [None, None, 0, (_ADMIN if admin else 0) |
             (_CONFIRMED if confirmed else 0), email, None]
        self._password(e, password)
        token = None
        if not confirmed:
            token = binascii.hexlify(os.urandom(_TOKEN)).decode()
            e[_T] = _token_hash(token)
        self.a[name] = e
        self.save()
        log.notice("accounts: %s added%s", name, " (admin)" if admin else "")
        return token

    def _password(self, e, password):
        if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
            raise ValueError("password: 8..128 characters")
        salt = os.urandom(_SALT)
        e[_S] = binascii.hexlify(salt).decode()
        e[_H] = binascii.hexlify(_hash(password, salt,
                                       self.iterations)).decode()
        e[_I] = self.iterations

    def set_password(self, name, password):
        self._password(self.a[name], password)
        self.save()

    def set_admin(self, name, admin=True):
        e = self.a[name]
        e[_F] = e[_F] | _ADMIN if admin else e[_F] & ~_ADMIN
        self.save()

    def remove(self, name):
        """Forget an account; False when there is none of that name."""
        if self.a.pop(name, None) is None:
            return False
        self.save()
        log.notice("accounts: %s removed", name)
        return True

    def confirm(self, name, token):
        """The confirmation link's token: True (and the account
        confirmed) when it is the one sent to this account."""
        from .auth import same
        e = self.a.get(name)
        if e is None or e[_T] is None or not isinstance(token, str):
            return False
        if not same(_token_hash(token).encode(), e[_T].encode()):
            return False
        e[_F] |= _CONFIRMED
        e[_T] = None
        self.save()
        log.notice("accounts: %s confirmed", name)
        return True

    # -- questions --------------------------------------------------------

    def check(self, name, password):
        """True when the password is this account's. An unknown name
        costs as long as a known one (no telling who exists)."""
        from .auth import same
        e = self.a.get(name)
        if e is None:
            _hash(password, b"\x00" * _SALT, self.iterations)
            return False
        return same(_hash(password, binascii.unhexlify(e[_S]), e[_I]),
                    binascii.unhexlify(e[_H]))

    def exists(self, name):
        return name in self.a

    def is_admin(self, name):
        e = self.a.get(name)
        return e is not None and bool(e[_F] & _ADMIN)

    def confirmed(self, name):
        e = self.a.get(name)
        return e is not None and bool(e[_F] & _CONFIRMED)

    def pending(self):
        """How many accounts wait for their confirmation."""
        return sum(1 for e in self.a.values() if not e[_F] & _CONFIRMED)

    def admins(self):
        return sum(1 for e in self.a.values() if e[_F] & _ADMIN)

    def list(self):
        """Every account, never a hash: [{name, admin, confirmed, email}]."""
        return [{"name": n, "admin": bool(e[_F] & _ADMIN),
                 "confirmed": bool(e[_F] & _CONFIRMED), "email": e[_E]}
                for n, e in sorted(self.a.items())]
