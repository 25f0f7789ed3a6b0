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

It is a filter of the vhost (Vhost.add_filter): requests meet it before
they are routed, and those it does not redirect go on as always. An
upgrade cannot be redirected: WebSockets are left alone. stop() closes
the DNS socket and takes the filter off the vhost.
"""
from lws import log

# the probe URLs: Android, ChromeOS (generate_204, gen_204), Apple
# (hotspot-detect.html, library/test/success.html), Windows (connecttest.txt,
# ncsi.txt, redirect), Firefox (canonical.html, success.txt)
PROBES = ("/generate_204", "/gen_204", "/hotspot-detect.html",
          "/library/test/success.html", "/connecttest.txt", "/ncsi.txt",
          "/redirect", "/canonical.html", "/success.txt")


class Portal:

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
        self._filter = self.filter  # one bound method, to take off again
        vh.add_filter(self._filter)
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
        self.vh.remove_filter(self._filter)
        self._filter = None
        log.notice("captive: portal stopped")

    # -- HTTP -------------------------------------------------------------

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

    def filter(self, conn, req):
        """The probe URLs and foreign hosts: a 302 to the set-up page."""
        if "upgrade" in req.h:
            return False
        if req.path in PROBES or not self.own_host(req.h.get("host")):
            log.info("captive: %s%s sent to the set-up page",
                     req.h.get("host", ""), req.path)
            u = self.url
            conn.respond(302, "Location: %s\r\nCache-Control: no-store\r\n"
                         % u, "<!doctype html><a href=\"%s\">WLAN set-up</a>"
                         % u)
            return True
        return False
