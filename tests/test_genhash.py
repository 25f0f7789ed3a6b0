"""lws.genhash on MicroPython: HMAC against RFC 4231 (SHA-256) and RFC
2202 (SHA-1, MD5) test vectors, incremental updates, and the users of it
(WebSocket accept keys, basic-auth's PBKDF2) against CPython."""
import base64
import hashlib
import json

import pytest

from conftest import run_mpy

# RFC 4231 4.2-4.8 (case 5, a truncated output, is the same HMAC cut)
RFC4231 = [
    ("0b" * 20, b"Hi There".hex(),
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, "dd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    ("0102030405060708090a0b0c0d0e0f10111213141516171819", "cd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("0c" * 20, b"Test With Truncation".hex(),
     "a3b6167473100ee06e0c796c2955552b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"
     .hex(), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, (b"This is a test using a larger than block-size key and a "
                  b"larger than block-size data. The key needs to be hashed "
                  b"before being used by the HMAC algorithm.").hex(),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]
# RFC 2202: HMAC-SHA1 2.x and HMAC-MD5 1.x, a few of each
RFC2202 = [
    ("sha1", "0b" * 20, b"Hi There".hex(),
     "b617318655057264e28bc0b6fb378c8ef146be00"),
    ("sha1", b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ("sha1", "aa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key "
     b"First".hex(), "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
    ("md5", "0b" * 16, b"Hi There".hex(),
     "9294727a3638bb1c13f48ef8158bfc9d"),
    ("md5", b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "750c783e6ab0b503eaa86e310a5db738"),
]

PROGRAM = """
import binascii, json
from lws import genhash
cases = %s
out = []
for name, key, msg in cases:
    k, m = binascii.unhexlify(key), binascii.unhexlify(msg)
    whole = genhash.hmac(name, k, m)
    inc = genhash.Hmac(name, k)
    for i in range(0, len(m), 7):
        inc.update(m[i:i + 7])
    out.append([binascii.hexlify(whole).decode(),
                binascii.hexlify(inc.digest()).decode()])
print(json.dumps(out))
"""


def mpy_hmacs(cases):
    r = run_mpy(PROGRAM % json.dumps(cases))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hmac_sha256_rfc4231():
    got = mpy_hmacs([["sha256", k, m] for k, m, _ in RFC4231])
    for (k, m, want), (whole, inc) in zip(RFC4231, got):
        assert whole[:len(want)] == want and inc == whole


def test_hmac_sha1_md5_rfc2202():
    got = mpy_hmacs([[n, k, m] for n, k, m, _ in RFC2202])
    for (n, k, m, want), (whole, inc) in zip(RFC2202, got):
        assert whole == want and inc == whole


def test_hashes_incremental_and_names():
    r = run_mpy("""
from lws import genhash
import binascii
h = genhash.Hash("sha256")
for i in range(100):
    h.update(b"x" * i)
print(binascii.hexlify(h.digest()).decode())
print(binascii.hexlify(genhash.digest("sha1", b"abc")).decode())
print(",".join(genhash.names()))
try:
    genhash.Hash("sha3_256")
except ValueError as e:
    print("refused", e)
""")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == hashlib.sha256(b"".join(b"x" * i for i in range(100))
                                      ).hexdigest()
    assert lines[1] == hashlib.sha1(b"abc").hexdigest()
    assert {"md5", "sha1", "sha256"} <= set(lines[2].split(","))
    assert lines[3].startswith("refused no hash sha3_256 here")


@pytest.mark.parametrize("key", [b"dGhlIHNhbXBsZSBub25jZQ==", b"x" * 24])
def test_its_users_agree_with_cpython(key):
    r = run_mpy("""
from lws.roles.ws import accept_key
from lws.auth import pbkdf2_sha256
import binascii
print(accept_key(%r).decode())
print(binascii.hexlify(pbkdf2_sha256(b"pw", b"salt", 50)).decode())
""" % key)
    assert r.returncode == 0, r.stderr
    accept, pbkdf2 = r.stdout.split()
    assert accept == base64.b64encode(hashlib.sha1(
        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    assert pbkdf2 == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 50).hex()
    if key == b"dGhlIHNhbXBsZSBub25jZQ==":  # RFC 6455's own example
        assert accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
