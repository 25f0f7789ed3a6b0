"""Roles: the job a connection does on the wire (lws v3 roles)."""


class Role:
    """What every role does unless it says otherwise."""

    name = "role"

    def wants_rx(self, c):
        return True

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

    def waiting_since(self, c):
        """When c began waiting for a request head (ticks_ms), or None if
        it is not waiting: a full server cuts the longest waiter."""
        return None

    def event_error(self, c):
        """POLLERR/POLLHUP: True if the role dealt with it (a client's
        refused connect); else reading finds out what happened."""
        return False
