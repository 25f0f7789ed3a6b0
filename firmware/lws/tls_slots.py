"""TLS handshakes in progress at once (Context.max_tls_handshakes): the
slots, and the read of an HTTP connection still shaking hands. A leaf of
tls, so that the HTTP role and Conn reach it without importing tls."""
import time

#: the certificate a client presented, put here by the verify callback of
#: a vhost with tls_client_ca (lws.tls) during the read of its handshake
LEAF = []


def handshake_slot(c):
    """True if c may start its TLS handshake now; else it waits and
    handshake_done() wakes it."""
    ctx = c.ctx
    if ctx.tls_handshakes < ctx.max_tls_handshakes:
        ctx.tls_handshakes += 1
        c.handshaking = True
        return True
    if c not in ctx._tls_wait:
        ctx._tls_wait.append(c)
        ctx.stats.tls_waits += 1
    return False


def handshake_done(c):
    """c's handshake is over (or c is gone): the next waiter's turn."""
    if c.handshaking:
        c.handshaking = False
        ctx = c.ctx
        ctx.tls_handshakes -= 1
        while ctx._tls_wait:
            w = ctx._tls_wait.pop(0)
            d = w.deadline
            if d is not None and time.ticks_diff(time.ticks_ms(), d) >= 0:
                # its time is up (the timer drops it): a slot now would
                # give it a handshake's time more, the next one's turn
                continue
            w.update()
            break


def shake(c):
    """An HTTP connection's TLS handshake goes on: read where no header
    buffer is held (a connection that only shakes hands, as a browser's
    spare ones do, holds none), and give the handshake slot back once
    the client's second flight is in: the handshake is over then (TLS
    1.2 and 1.3 alike). True when request bytes came too (kept in
    c.held)."""
    ctx = c.ctx
    buf = ctx.rx_buf()
    n = c.recv_into(memoryview(buf)[:ctx.max_http_header_data])
    if LEAF:  # verified in this read: this connection's
        c.peer_cert = LEAF.pop()
    if n is None:
        c.flights += 1
        if c.flights >= 2:
            handshake_done(c)
        return False
    if n == 0:
        c.drop()
        return False
    handshake_done(c)
    c.held = bytes(memoryview(buf)[:n])
    return True
