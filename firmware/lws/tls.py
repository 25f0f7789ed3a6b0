"""TLS on MicroPython's tls module (mbedTLS), loaded by TLS vhosts and
https:// or wss:// clients only.

This port's mbedTLS parses DER only; PEM (and PKCS#8, as openssl 3
writes) is converted here, so whatever a user hands over loads, or fails
with a message that says how to convert it.
"""
import binascii
import time
from . import log
from .roles import Role
from .tls_slots import handshake_done, handshake_slot

_HANDSHAKE = const(0x16)  # the first byte of a TLS ClientHello record


def _pem_blocks(data):
    """[(label, DER bytes, encrypted)] of every PEM block in data."""
    out = []
    label = None
    for line in data.decode().splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            label, body, enc = line[11:-5], [], False
        elif line.startswith("-----END ") and label is not None:
            try:
                d = binascii.a2b_base64("".join(body))
            except ValueError:
                d = None
            out.append((label, d, enc or "ENCRYPTED" in label))
            label = None
        elif label is not None and line:
            if ":" in line:  # RFC 1421 headers: Proc-Type, DEK-Info
                enc = enc or "ENCRYPTED" in line
            else:
                body.append(line)
    return out


def ders(data, what="key"):
    """PEM or DER bytes (or a file name) -> the DER bytes of every block
    that holds what ("key": a private key, else certificates); a key file
    may start with EC PARAMETERS (openssl ecparam -genkey), a certificate
    file may hold a chain or a CA bundle."""
    if isinstance(data, str):
        with open(data, "rb") as f:
            data = f.read()
    data = bytes(data)
    if b"-----BEGIN " not in data:
        return [data]
    want = "PRIVATE KEY" if what == "key" else "CERTIFICATE"
    out = []
    for label, d, enc in _pem_blocks(data):
        if want not in label:
            continue
        if enc:
            raise ValueError(
                "encrypted %s: store it unencrypted, e.g. openssl pkey -in "
                "KEY -out plain.pem (or -outform DER)" % what)
        if d is None:
            raise ValueError("bad PEM %s: convert it with openssl x509/pkey "
                             "-outform DER" % what)
        out.append(d)
    if not out:
        raise ValueError("no %s in this PEM (a block named ...%s expected)"
                         % (what, want))
    return out


def der(data, what="key"):
    """PEM or DER bytes (or a file name) -> DER bytes (the first block
    that holds what)."""
    return ders(data, what)[0]


def _psk(ctx, attr, value):
    if not hasattr(ctx, attr):
        raise ValueError("this MicroPython's tls module has no TLS-PSK "
                         "(mbedTLS built without PSK key exchange)")
    setattr(ctx, attr, value)


def _pem(blocks):
    """DER certificates -> one PEM text, NUL-terminated as mbedTLS's PEM
    parser wants it."""
    out = []
    for d in blocks:
        b = binascii.b2a_base64(d).replace(b"\n", b"")
        out.append(b"-----BEGIN CERTIFICATE-----\n")
        for i in range(0, len(b), 64):
            out.append(b[i:i + 64] + b"\n")
        out.append(b"-----END CERTIFICATE-----\n")
    out.append(b"\0")
    return b"".join(out)


def _own_cert(cert, key, psk, client_ca):
    """A server SSLContext holding cert (DER, or a PEM chain) and key."""
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
    if psk:
        _psk(ctx, "server_psk_keys", psk)
    if client_ca is not None:
        # lws LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT: the
        # handshake fails without a certificate that client_ca signed
        ctx.verify_mode = tls.CERT_REQUIRED
        for d in ders(client_ca, "CA certificate"):
            ctx.load_verify_locations(d)
        ctx.verify_callback = _took
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def server_context(cert=None, key=None, psk=None, client_ca=None):
    """An SSLContext for a TLS vhost: a certificate and key (files or
    bytes, PEM or DER), and/or TLS-PSK keys {identity: key} (bytes).
    A certificate file holding a chain (the leaf, then intermediates) is
    sent whole where the port's mbedTLS parses PEM (boards, the 32-bit
    builds); elsewhere the leaf alone, with a warning. client_ca (a CA
    file or bytes): clients must present a certificate it signed."""
    if cert is None:
        return _own_cert(None, None, psk, client_ca)
    try:
        chain = ders(cert, "certificate")
        k = der(key, "key")
        if len(chain) > 1:
            try:
                return _own_cert(_pem(chain), k, psk, client_ca)
            except ValueError:
                log.warn("TLS: this port's mbedTLS reads no PEM: the "
                         "certificate's %d intermediates are not sent",
                         len(chain) - 1)
        return _own_cert(chain[0], k, psk, client_ca)
    except ValueError as e:
        raise ValueError(
            "TLS certificate or key not accepted (%s): give DER or PEM, an "
            "unencrypted EC (P-256) or RSA key; openssl pkey -in KEY "
            "-outform DER -out key.der converts one" % e)


def _took(cert, depth):
    """mbedTLS's verify callback: keeps the client's own certificate
    (depth 0) for the connection being read; 0 leaves the verdict to
    mbedTLS."""
    if depth == 0:
        from .tls_slots import LEAF
        LEAF[:] = [bytes(cert)]
    return 0


def peer_cert(c):
    """The DER certificate c's client presented on a vhost with
    tls_client_ca (verified, or the handshake failed), or None."""
    return getattr(c, "peer_cert", None)


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
            for d in ders(ca, "CA certificate"):  # each adds to the chain
                ctx.load_verify_locations(d)
    return ctx


def psk_available():
    """True if this MicroPython's tls module does TLS-PSK."""
    import tls
    return hasattr(tls.SSLContext(tls.PROTOCOL_TLS_SERVER), "server_psk_keys")


def poll_room(ctx):
    """Grow the poll set before the first TLS socket joins it. On the
    unix port poll keeps an array of file descriptors; when it grows
    by moving, MicroPython (extmod/modselect.c, poll_set_add_fd) also
    "moves" the NULL pointer of every member without a descriptor,
    such as a TLS socket, and the next poll crashes the process:
    grown now, it never moves below that many. Boards poll without
    such an array: nothing to do there."""
    import sys
    if ctx._poll_room or sys.platform not in ("linux", "darwin"):
        return
    ctx._poll_room = True
    p = ctx.poll
    keys = range(1 << 20, (1 << 20) + ctx.max_connections +
                 len(ctx._listen) + 8)
    for k in keys:
        p.register(k, 0)
    for k in keys:
        p.unregister(k)


def wrap(c, sslctx, server_hostname=None):
    """Wrap c's socket in TLS (lws_ssl_...: one place for server and
    client): the server side, or with server_hostname a client checking
    that name. The handshake runs as the connection is read and written.
    Raises OSError or ValueError (mbedTLS's reason), MemoryError.

    Poll keeps watching the TCP socket (c.tcp): polling a TLS socket,
    which has no descriptor, costs a millisecond per wait on the unix
    port. After a failed handshake tls lets go of the TCP socket: drop()
    closes it."""
    poll_room(c.ctx)
    if server_hostname is None:
        s = sslctx.wrap_socket(c.sock, server_side=True,
                               do_handshake_on_connect=False)
    else:
        s = sslctx.wrap_socket(c.sock, server_hostname=server_hostname,
                               do_handshake_on_connect=False)
    c.tcp = c.sock
    c.sock = s
    c.tls = True


_PEEK = const(1024)      # of a ClientHello, needed before a handshake slot
_PEEK_WAIT = const(1)    # sniffing: waiting for more of the hello


class Sniff(Role):
    """The role of a new connection on a TLS port until its first bytes
    say what it speaks: a TLS ClientHello (wrap it, then HTTP), or plain
    HTTP (a 301 to https when the vhost redirects, else a 400). Anything
    else is closed at once, and a hello must have arrived (its first KB
    at least) before it takes one of the max_tls_handshakes slots, so
    half-sent hellos hold no slot."""

    name = "tls"

    def start(self, c):
        c.set_timeout(c.ctx.head_timeout)
        c.update()

    def wants_rx(self, c):
        return c.state != _PEEK_WAIT and c not in c.ctx._tls_wait

    def waiting_since(self, c):
        return c.since

    def timeout(self, c):
        if c.state == _PEEK_WAIT and time.ticks_diff(
                time.ticks_ms(), c.since) < c.ctx.head_timeout * 1000:
            c.state = 0  # look at what has come since
            c.update()
            c.set_timeout(c.ctx.head_timeout)
            return
        c.drop()

    def rx(self, c):
        from .roles import http
        try:
            head = c.sock.recv(_PEEK, 2)  # MSG_PEEK
        except OSError:
            c.drop()
            return
        if not head:
            c.drop()
            return
        ctx = c.ctx
        b0 = head[0]
        if b0 != _HANDSHAKE:
            if 65 <= b0 <= 90:  # A-Z: a method: plain HTTP
                c.plain_on_tls = True
                log.info("%r: plain HTTP on a TLS port", c)
                c.transition(http.ROLE)
            elif c.vhosts[0].raw_fallback:
                from .roles.raw import fallback
                fallback(c)
            else:
                log.info("%r: neither TLS nor HTTP: closed", c)
                c.drop()
            return
        n = len(head)
        if n >= 2 and head[1] != 3 or n >= 6 and head[5] != 1:
            # record version 3.x, handshake type 1 (ClientHello)
            log.info("%r: not a TLS ClientHello: closed", c)
            c.drop()
            return
        need = min(5 + (head[3] << 8 | head[4]), _PEEK) if n >= 5 else 6
        if n < need:
            # poll would wake us at once for the bytes already here: look
            # again at the next timer tick
            c.state = _PEEK_WAIT
            c.deadline = time.ticks_ms()
            return
        if not handshake_slot(c):
            return  # not reading until handshake_done() wakes us
        try:
            wrap(c, c.vhosts[0].tls_ctx)
        except MemoryError:
            handshake_done(c)
            import gc
            gc.collect()
            log.warn("heap full: TLS handshake waits")
            return
        except OSError as e:
            log.info("%r: TLS: %s", c, e)
            c.drop()
            return
        c.transition(http.ROLE)
        c.set_timeout(ctx.tls_handshake_timeout)


SNIFF = Sniff()
