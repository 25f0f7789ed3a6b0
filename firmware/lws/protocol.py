"""Protocol: the user's callbacks, the lws protocol-callback model.

Subclass it and override the callbacks you need; an instance belongs to a
vhost. Each callback gets the connection; per-connection user data lives
in `conn.user` (made by new_user()).
"""


class Protocol:
    #: the name clients ask for, and that callback:// mounts name
    name = "default"
    #: WebSocket messages up to this size arrive whole; longer ones in
    #: pieces of it (see conn.is_final_fragment())
    rx_buffer_size = 4096
    #: larger WebSocket messages close the connection with 1009 (0: any)
    max_message_size = 0

    def new_user(self, conn):
        """Per-connection user data (lws per_session_data)."""
        return None

    def handler(self, conn):
        conn.user = self.new_user(conn)
        return self

    # -- HTTP (LWS_CALLBACK_HTTP and friends) --------------------------------

    def on_http(self, conn, req):
        """A request head arrived; answer with conn.respond()."""
        conn.send_error(404)

    def on_http_body(self, conn, data):
        """A piece of the request body (a memoryview, valid during the call)."""

    def on_http_body_completion(self, conn):
        """The whole request body has arrived."""

    def on_http_writeable(self, conn):
        """The socket can take more (after conn.callback_on_writable())."""

    def on_closed_http(self, conn):
        """The connection closed during an HTTP transaction."""

    # -- WebSocket (LWS_CALLBACK_ESTABLISHED and friends) ---------------------

    def on_filter_protocol_connection(self, conn, req):
        """An upgrade request for this protocol: return False to refuse it
        (403). Its headers (Origin, cookies...) are in req.headers."""

    def on_established(self, conn):
        """The WebSocket is open; conn.req is still the upgrade request."""

    def on_receive(self, conn, data):
        """A message, or a piece of one (conn.is_final_fragment()); data is
        a memoryview valid during the call."""

    def on_receive_pong(self, conn, data):
        """A PONG arrived."""

    def on_server_writeable(self, conn):
        """The socket can take more (after conn.callback_on_writable())."""

    def on_peer_initiated_close(self, conn, code, reason):
        """The peer sent a close frame; return False to answer it without
        echoing its code."""

    def on_closed(self, conn):
        """The WebSocket connection is gone."""

    # -- client connections (LWS_CALLBACK_CLIENT_* ) ---------------------------

    def on_client_connection_error(self, conn, reason):
        """The connection failed (DNS, refused, timeout, handshake...)."""

    def on_client_established(self, conn):
        """Our WebSocket is open (conn.subprotocol: the server's pick)."""

    def on_client_receive(self, conn, data):
        """A message, or a piece of one, from the server."""

    def on_client_writeable(self, conn):
        """The socket can take more: send frames, or a request body piece
        (conn.write(), then conn.complete())."""

    def on_client_http_response(self, conn, status, headers):
        """The response head of an HTTP client connection."""

    def on_client_http_body(self, conn, data):
        """A piece of the response body."""

    def on_client_http_completed(self, conn):
        """The whole response has arrived."""

    # -- raw connections (LWS_CALLBACK_RAW_*) ----------------------------------

    def on_raw_adopt(self, conn):
        """A raw connection is ready (conn.send() to write)."""

    def on_raw_rx(self, conn, data):
        """Bytes arrived."""

    def on_raw_writeable(self, conn):
        """The socket can take more (after conn.callback_on_writable())."""

    def on_raw_close(self, conn):
        """The raw connection is gone."""
