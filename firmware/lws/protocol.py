"""Protocol: the user's callbacks, the lws protocol-callback model.

Subclass it and override the callbacks you need; an instance belongs to a
vhost. Each callback gets the connection; per-connection user data lives
in `conn.user` (made by new_user()).
"""


class Protocol:
    #: the name clients ask for, and that callback:// mounts name
    name = "default"

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
