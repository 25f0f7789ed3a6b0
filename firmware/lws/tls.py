"""TLS on MicroPython's tls module (mbedTLS), loaded by TLS vhosts and
https:// or wss:// clients only.

This port's mbedTLS parses DER only; PEM (and PKCS#8, as openssl 3
writes) is converted here, so whatever a user hands over loads, or fails
with a message that says how to convert it.
"""
import binascii
from . import log

_HANDSHAKE = const(0x16)  # the first byte of a TLS ClientHello record


def der(data, what="key"):
    """PEM or DER bytes (or a file name) -> DER bytes."""
    if isinstance(data, str):
        with open(data, "rb") as f:
            data = f.read()
    if not data.lstrip().startswith(b"-----BEGIN"):
        return data
    text = data.decode()
    if "ENCRYPTED" in text or "Proc-Type: 4,ENCRYPTED" in text:
        raise ValueError(
            "encrypted %s: store it unencrypted, e.g. openssl pkey -in KEY "
            "-out plain.pem (or -outform DER)" % what)
    body = []
    inside = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN"):
            inside = True
        elif line.startswith("-----END"):
            break
        elif inside and line and ":" not in line:
            body.append(line)
    try:
        return binascii.a2b_base64("".join(body))
    except ValueError:
        raise ValueError("bad PEM %s: convert it with openssl x509/pkey "
                         "-outform DER" % what)


def _psk(ctx, attr, value):
    if not hasattr(ctx, attr):
        raise ValueError("this MicroPython's tls module has no TLS-PSK "
                         "(mbedTLS built without PSK key exchange)")
    setattr(ctx, attr, value)


def server_context(cert=None, key=None, psk=None):
    """An SSLContext for a TLS vhost: a certificate and key (files or
    bytes, PEM or DER), and/or TLS-PSK keys {identity: key} (bytes)."""
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
    if psk:
        _psk(ctx, "server_psk_keys", psk)
    if cert is None:
        return ctx
    try:
        ctx.load_cert_chain(der(cert, "certificate"), der(key, "key"))
    except ValueError as e:
        raise ValueError(
            "TLS certificate or key not accepted (%s): give DER or PEM, an "
            "unencrypted EC (P-256) or RSA key; openssl pkey -in KEY "
            "-outform DER -out key.der converts one" % e)
    return ctx


def client_context(ca=None, insecure=False, psk=None):
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if psk:
        _psk(ctx, "psk_identity", psk[0])
        ctx.psk_key = psk[1]
        ctx.verify_mode = tls.CERT_NONE  # the key is the authentication
        return ctx
    if insecure:
        ctx.verify_mode = tls.CERT_NONE
    else:
        ctx.verify_mode = tls.CERT_REQUIRED
        if ca is not None:
            ctx.load_verify_locations(der(ca, "CA certificate"))
    return ctx


def psk_available():
    """True if this MicroPython's tls module does TLS-PSK."""
    import tls
    return hasattr(tls.SSLContext(tls.PROTOCOL_TLS_SERVER), "server_psk_keys")


class Sniff:
    """The role of a new connection on a TLS port until its first byte
    says what it speaks: a TLS handshake (wrap it), or plain HTTP (a 301
    to https when the vhost redirects, else a 400)."""

    name = "tls"

    def wants_rx(self, c):
        return c.ctx.tls_handshakes < c.ctx.max_tls_handshakes

    def rx(self, c):
        from .roles import http
        try:
            first = c.sock.recv(1, 2)  # MSG_PEEK
        except OSError:
            c.drop()
            return
        if not first:
            c.drop()
            return
        vh = c.vhosts[0]
        if first[0] != _HANDSHAKE:
            c.role = http.ROLE
            c.plain_on_tls = True
            log.info("%r: plain HTTP on a TLS port", c)
            http.ROLE.start(c)
            return
        try:
            s = vh.tls_ctx.wrap_socket(c.sock, server_side=True,
                                       do_handshake_on_connect=False)
        except MemoryError:
            import gc
            gc.collect()
            log.warn("heap full: TLS handshake waits")
            return
        except OSError as e:
            log.info("%r: TLS: %s", c, e)
            c.drop()
            return
        c.ctx.rekey(c, s)
        c.tls = True
        c.ctx.tls_handshakes += 1
        c.handshaking = True
        c.role = http.ROLE
        http.ROLE.start(c)

    def writable(self, c):
        pass

    def settle(self, c):
        pass

    def timeout(self, c):
        c.drop()

    def failed(self, c):
        c.drop()

    def close(self, c, code, reason):
        c.drop()

    def closed(self, c):
        pass


SNIFF = Sniff()
