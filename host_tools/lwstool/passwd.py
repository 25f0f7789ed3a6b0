"""Credentials files for basic-auth mounts (lws.Mount(..., auth_file=)):
one user a line, `user:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX`, as
the board's lws.auth reads them. Written to a temporary file, then
renamed: a crash never leaves half a file."""
import hashlib
import os
import secrets
from pathlib import Path

from .errors import LwsToolError

#: key-derivation rounds: a board pays them once per client (then the
#: header is remembered), some 0.2 s on an ESP32 at 1000
ITERATIONS = 1000


def check_user(user):
    if not user or ":" in user or any(ord(c) < 33 for c in user):
        raise LwsToolError("passwd: a user name has no ':' nor spaces")


def entry(user, password, iterations=ITERATIONS, salt=None):
    """The file's line for user (without its newline)."""
    check_user(user)
    salt = salt or secrets.token_bytes(16)
    h = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "%s:pbkdf2-sha256:%d:%s:%s" % (user, iterations, salt.hex(),
                                           h.hex())


def _lines(path):
    p = Path(path)
    return p.read_text().splitlines() if p.exists() else []


def _write(path, lines):
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(x + "\n" for x in lines))
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)


def users(path):
    return [x.split(":", 1)[0] for x in _lines(path)
            if x and not x.startswith("#")]


def set_user(path, user, password, iterations=ITERATIONS):
    """Add user, or give them a new password."""
    if not password:
        raise LwsToolError("passwd: an empty password")
    line = entry(user, password, iterations)
    rest = [x for x in _lines(path) if x.split(":", 1)[0] != user]
    _write(path, rest + [line])


def remove_user(path, user):
    lines = _lines(path)
    rest = [x for x in lines if x.split(":", 1)[0] != user]
    if len(rest) == len(lines):
        raise LwsToolError("passwd: no user %s in %s" % (user, path))
    _write(path, rest)


def ensure(path, user="admin"):
    """A credentials file with one user and a fresh password, made on
    first use beside its password (`<path>.password`, for make run to
    print, as make run's certificate is made): (user, password)."""
    p = Path(path)
    pw_file = p.with_name(p.name + ".password")
    if p.exists() and pw_file.exists():
        return user, pw_file.read_text().strip()
    p.parent.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_urlsafe(12)
    set_user(p, user, pw)
    pw_file.write_text(pw + "\n")
    os.chmod(pw_file, 0o600)
    return user, pw
