"""lws-captive: a captive portal while the set-up access point is up, so
that a phone or laptop that joins it opens the set-up page by itself.

    p = Portal(vh, hostname="lws", dns_port=53)
    p.start(ctx, "192.168.4.1")   # the access point is up
    p.stop()                      # a station connected

While it runs:
- a DNS responder (roles/dns.py) on UDP dns_port answers every A query
  with the access point's address, so every name leads to the board;
- the probe URLs of phones and laptops (/generate_204, /hotspot-detect.html,
  /connecttest.txt, ...) get a 302 to http://<AP address>/setup, and so
  does every request whose Host is not the board's own (its address, or
  any address literal: one reaches the board only by its own; hostname,
  hostname.local, localhost, the names in hosts): the OS sees a portal
  and opens it.
  Requests for the board's own names are served as always.

It stands in front of the vhost's mount lookup: requests come to it first
and go on to the mount that would have served them. An upgrade cannot be
redirected: mounts whose protocol takes WebSockets are left alone.
stop() closes the DNS socket and takes the portal off the vhost.
"""
from lws import Mount, Protocol, log

# the probe URLs: Android, ChromeOS (generate_204, gen_204), Apple
# (hotspot-detect.html, library/test/success.html), Windows (connecttest.txt,
# ncsi.txt, redirect), Firefox (canonical.html, success.txt)
PROBES = ("/generate_204", "/gen_204", "/hotspot-detect.html",
          "/library/test/success.html", "/connecttest.txt", "/ncsi.txt",
          "/redirect", "/canonical.html", "/success.txt")


class Portal(Protocol):
    name = "lws-captive"
    rx_buffer_size = 64

    #: the DNS responder's UDP port; None: no DNS responder (the redirects
    #: alone). On the unix port, where 53 is the computer's own, none
    #: unless one is given
    dns_port = 53
    #: the address it listens on
    dns_bind = "0.0.0.0"
    #: seconds a client may keep an answer: short, since every answer is
    #: wrong once the board has left set-up
    dns_ttl = 10
    #: where clients are sent (the set-up page's mount)
    page = "/setup"
    #: more names that are the board's own, never redirected
    hosts = ()

    def __init__(self, vh, hostname=None, **options):
        for k in options:
            if k[0] == "_" or not hasattr(Portal, k) or \
                    callable(getattr(Portal, k)):
                raise ValueError("unknown captive portal option " + k)
            setattr(self, k, options[k])
        if "dns_port" not in options:
            import sys
            if sys.platform in ("linux", "darwin"):
                log.notice("captive: no DNS responder on the unix port "
                           "unless dns_port is set")
                self.dns_port = None
        self.vh = vh
        # localhost too: no client's DNS asks for it, so it is only
        # ever the board's (a virtual board on the unix port)
        own = ["localhost"] + [h.lower() for h in self.hosts]
        if hostname:
            own += [hostname.lower(), hostname.lower() + ".local"]
        self.own = own
        self.ip = None
        self.dns = None
        self.url = None

    def start(self, ctx, ip):
        """The access point is up at ip: redirect to its set-up page and
        answer DNS (again after a stop, or at a new address)."""
        if self.ip == ip:
            return
        self.stop()
        vh = self.vh
        port = vh.port
        self.ip = ip
        self.url = "http://%s%s%s" % (ip, "" if port == 80 else ":%d" % port,
                                      self.page)
        if self not in vh.protocols:
            vh.protocols.append(self)
        vh.find_mount = self._find
        p = self.dns_port
        if p is not None:
            try:
                from lws.roles import dns
                self.dns = dns.listen(ctx, ip, p, self.dns_bind, self.dns_ttl)
            except (OSError, ValueError) as e:
                log.err("captive: no DNS responder on UDP port %d: %s", p, e)
        log.notice("captive: portal up, every name leads to %s", self.url)

    def stop(self):
        """Close the DNS socket and serve the vhost as before."""
        if self.ip is None:
            return
        self.ip = None
        c = self.dns
        if c is not None:
            self.dns = None
            c.drop()
        vh = self.vh
        if "find_mount" in vh.__dict__:
            # the class's own again; None first: MicroPython keeps a
            # deleted attribute's value in the instance's dict, which
            # would keep this portal, and its module, from the heap
            vh.find_mount = None
            del vh.find_mount
        if self in vh.protocols:
            vh.protocols.remove(self)
        log.notice("captive: portal stopped")

    # -- HTTP -------------------------------------------------------------

    def _find(self, path):
        """The vhost's mount lookup while the portal runs: this portal
        for every path, but for mounts of a protocol that takes
        WebSockets (the role picks an upgrade's protocol by its mount)."""
        vh = self.vh
        m = type(vh).find_mount(vh, path)
        if m is not None and m.kind == "callback":
            p = vh.protocol(m.target)
            if p is not None and p.speaks_ws():
                return m
        return _MOUNT

    def own_host(self, host):
        """True if the Host header names the board itself."""
        if not host or host[0] == "[":
            return True  # HTTP/1.0 without Host, or an IPv6 address
        h = host.partition(":")[0].lower()
        if h[-1:] == ".":
            h = h[:-1]
        p = h.split(".")
        if len(p) == 4 and all(x.isdigit() for x in p):
            return True  # an address: one reaches the board by its own
        return h in self.own

    def on_http(self, conn, req):
        if req.path in PROBES or not self.own_host(req.headers.get("host")):
            log.info("captive: %s%s sent to the set-up page",
                     req.headers.get("host", ""), req.path)
            u = self.url
            conn.respond(302, "Location: %s\r\nCache-Control: no-store\r\n"
                         % u, "<!doctype html><a href=\"%s\">WLAN set-up</a>"
                         % u)
            return
        vh = self.vh
        m = type(vh).find_mount(vh, req.path)
        if m is None:
            conn.send_error(404)
            return
        # on to the mount, as the HTTP role would have gone
        req.mount = m
        req.subpath = m.subpath(req.path)
        h = req.handler = m.handler(vh)
        conn.proto = h
        conn.user = h.new_user(conn)
        h.on_http(conn, req)


_MOUNT = Mount("/", "callback://" + Portal.name)
