"""Roles: the job a connection does on the wire (lws v3 roles).

A connection (Conn) has one role at a time: http (a server connection
reading requests), ws (RFC 6455, as server or as client), client (an
outgoing connection until its response or handshake), raw, and tls's
sniffer (a new connection on a TLS port). It changes role in one place,
Conn.transition(), as lws's lws_role_transition(). Each role is one
object whose methods are the operations below; the loop calls them:

  start(c)            c has just taken this role (Conn.transition): arm
                      its state, deadline and poll events
  wants_rx(c)         should the loop poll c for input?
  rx(c)               input is there (or the peer hung up): read it
  writable(c)         the socket takes data and c asked for it
                      (callback_on_writable): the protocol's writeable
                      callback, or the role's own next piece
  after_event(c)      after every event on c, once its work is done:
                      finish what it completed (a transaction, a close)
  timeout(c)          c's deadline passed
  waiting_since(c)    ticks_ms since c began waiting for a request head,
                      or None: a full server cuts the longest waiter
  poll_error(c)       POLLERR/POLLHUP came: True if the role dealt with
                      it (a client's refused connect), else rx finds out
  callback_failed(c)  a protocol callback raised while serving c
  close(c, code, reason)   close politely (a WebSocket close frame)
  dropped(c)          c has been dropped: tell the protocol (on_closed,
                      on_raw_close, on_client_connection_error...)
  resume(c)           an async callback of c has returned (lws.aio): go
                      on with the input that waited for it

Where client and server differ (a WebSocket masks its frames as a client
and calls on_client_* callbacks), the role comes as a pair of objects,
the client one a subclass of the server one, as lws's role ops tables
hold [client, server] entries: no if/else on the side inside the role.

Conn.drop() hangs up at once (no goodbye on the wire) and calls dropped();
Conn.close() is the polite close, through the role's close().
"""


class Role:
    """What every role does unless it says otherwise."""

    name = "role"

    def start(self, c):
        c.update()

    def wants_rx(self, c):
        return True

    def writable(self, c):
        pass

    def after_event(self, c):
        pass

    def timeout(self, c):
        c.drop()

    def waiting_since(self, c):
        return None

    def poll_error(self, c):
        return False

    def callback_failed(self, c):
        c.drop()

    def close(self, c, code, reason):
        c.drop()

    def dropped(self, c):
        pass

    def resume(self, c):
        c.ctx.rx_pending(c)  # what was read ahead, or mbedTLS holds


#: the role of a connection that has none yet (a client whose connect
#: failed before it began)
NONE = Role()
