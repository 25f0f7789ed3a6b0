"""Protocol: the user's callbacks, the lws protocol-callback model.

Subclass it and override the callbacks you need; an instance belongs to a
vhost. Each callback gets the connection first; per-connection user data
lives in `conn.user` (made by new_user()). `data` is a memoryview, valid
only during the call (like lws's `in`).

Under asyncio (ctx.serve()) a callback may be `async def` (lws.aio; the
README lists which): it runs up to its first await at once, then as a
task while its connection's input waits. `data` (and the frame's state)
is valid only until that first await: copy it with bytes(data).

HTTP (callback:// mounts; LWS_CALLBACK_HTTP and friends):
  on_http(conn, req)                 a request head: answer with conn.respond()
  on_http_body(conn, data)           a piece of the request body
  on_http_body_completion(conn)      the whole body has arrived
  on_http_writeable(conn)            after conn.callback_on_writable()
  on_closed_http(conn)               closed during a transaction

WebSocket server (LWS_CALLBACK_ESTABLISHED and friends):
  on_filter_protocol_connection(conn, req)   return False to refuse (403)
  on_established(conn)               open; conn.req is the upgrade request
  on_receive(conn, data)             a message, or a piece of one
                                     (conn.is_final_fragment() ...)
  on_receive_pong(conn, data)
  on_server_writeable(conn)          after conn.callback_on_writable()
  on_peer_initiated_close(conn, code, reason)  return False: no echo
  on_closed(conn)

Client connections (LWS_CALLBACK_CLIENT_*; Context.connect()):
  on_client_connection_error(conn, reason)     DNS, refused, timeout, TLS...
  on_client_established(conn)        our WebSocket is open
  on_client_receive(conn, data)
  on_client_writeable(conn)          frames, or a request body piece
  on_client_http_response(conn, status, headers)
  on_client_http_body(conn, data)
  on_client_http_completed(conn)

Raw connections (LWS_CALLBACK_RAW_*):
  on_raw_adopt(conn), on_raw_rx(conn, data), on_raw_writeable(conn),
  on_raw_close(conn)
"""


def _nop(*args):
    """The default of every callback: nothing (one function for all of
    them keeps the class small on a board's heap)."""


class Protocol:
    #: the name clients ask for, and that callback:// mounts name
    name = "default"
    #: WebSocket messages up to this size arrive whole; longer ones in
    #: pieces of it (see conn.is_final_fragment())
    rx_buffer_size = 4096
    #: larger WebSocket messages close the connection with 1009 (0: any)
    max_message_size = 0
    #: permessage-deflate on this protocol's connections: None, as the
    #: vhost says (Vhost ws_deflate); False: never (a few bytes a message)
    ws_deflate = None

    def new_user(self, conn):
        """Per-connection user data (lws per_session_data)."""
        return None

    def on_http(self, conn, req):
        conn.send_error(404)

    def speaks_ws(self):
        """True if it takes WebSocket connections: it has a WebSocket
        callback of its own (an upgrade to an HTTP-only protocol would be
        a 101 and then silence)."""
        cls = type(self)
        return (cls.on_established is not _nop or cls.on_receive is not _nop
                or cls.on_server_writeable is not _nop)

    on_http_body = on_http_body_completion = on_http_writeable = _nop
    on_closed_http = _nop
    on_filter_protocol_connection = on_established = on_receive = _nop
    on_receive_pong = on_server_writeable = on_peer_initiated_close = _nop
    on_closed = _nop
    on_client_connection_error = on_client_established = _nop
    on_client_receive = on_client_writeable = on_client_http_response = _nop
    on_client_http_body = on_client_http_completed = _nop
    on_raw_adopt = on_raw_rx = on_raw_writeable = on_raw_close = _nop
