"""Mounts map URL space to a folder (file://), a protocol (callback://),
an origin server behind a reverse proxy (http://) or a redirect
('>https://...'), like lws_http_mount."""
from . import log
from .httpmsg import HttpError
from .protocol import Protocol


class Mount:
    """mountpoint + origin: 'file://folder', 'file://site.zip' (the
    archive's entries served as a folder), 'callback://protocol-name',
    'http://host[:port]/path' to proxy requests to that origin (lws
    LWSMPRO_HTTP; lws.proxy), or '>http(s)://...' for a 301 redirect
    (lws LWSMPRO_REDIR_HTTP(S), spelled as in lws's configuration).
    proxy_timeout: seconds a proxied origin has to answer before a 504
    (None: the context's timeout_secs).

    file:// mounts serve regular files inside the folder only: names
    starting with a dot are hidden unless dotfiles=True; symlinks are
    not followed unless follow_symlinks=True, and then only to folders
    whose real path lies inside the mount's folder.
    """

    _files = None  # the file server, imported at first use
    _users = None  # auth_file's users (lws.auth), read at first use
    real_root = None
    #: the archive of a file:// mount whose origin is a .zip (lws.zipfs)
    zip = None

    def __init__(self, mountpoint, origin, default="index.html",
                 cache_max_age=0, extra_mimetypes=None, dotfiles=False,
                 follow_symlinks=False, auth_file=None, realm="microlws",
                 proxy_timeout=None):
        if not mountpoint.startswith("/"):
            raise ValueError("mountpoint must start with /")
        if '"' in realm or "\\" in realm or min(realm) < " ":
            raise ValueError("realm: printable, without quotes")
        #: a credentials file (lwstool passwd): HTTP Basic for everything
        #: under the mountpoint, WebSocket upgrades too
        self.auth_file = auth_file
        self.realm = realm
        self.mountpoint = mountpoint.rstrip("/")
        self.origin = origin
        self.default = default
        self.cache_max_age = cache_max_age
        self.extra_mimetypes = extra_mimetypes
        self.dotfiles = dotfiles
        self.follow_symlinks = follow_symlinks
        self.proxy_timeout = proxy_timeout
        if origin[:1] == ">":
            if not (origin.startswith(">http://") or
                    origin.startswith(">https://")):
                raise ValueError("a redirect goes to http:// or https://")
            self.target = origin[1:]
            self.kind = "redirect"
            return
        scheme, _, rest = origin.partition("://")
        if scheme == "file":
            self.target = rest.rstrip("/") or "/"
            if self.target[-4:].lower() == ".zip":
                from .zipfs import ZipDir
                self.zip = ZipDir(self.target)  # read here: errors here
        elif scheme == "callback":
            self.target = rest
        elif scheme == "http":
            from .uri import parse_uri
            parse_uri(origin)  # ValueError here for a bad one
            from .proxy import Proxy  # ImportError here where there is none
            self.target = Proxy(origin, proxy_timeout)
        elif scheme == "https":
            raise ValueError("https:// origins are not proxied: "
                             "'>" + origin + "' is a redirect")
        else:
            raise ValueError("unknown mount origin " + origin)
        self.kind = scheme

    def __repr__(self):
        return "<mount %s -> %s>" % (self.mountpoint or "/", self.origin)

    def matches(self, path):
        mp = self.mountpoint
        return (path.startswith(mp)
                and (len(path) == len(mp) or path[len(mp)] == "/"))

    def subpath(self, path):
        return path[len(self.mountpoint):] or "/"

    def handler(self, vh):
        """The protocol that serves a request on this mount of vhost vh."""
        k = self.kind
        if k == "file":
            h = self._files
            if h is None:
                from .files import FILES
                h = Mount._files = FILES
            return h
        if k == "callback":
            p = vh.protocol(self.target)
            if p is None:
                log.warn("mount %s: no protocol '%s'", self.mountpoint,
                         self.target)
                raise HttpError(404, "no such protocol")
            return p
        if k == "http":
            return self.target  # the mount's Proxy
        return Redirect(self.target)


class Redirect(Protocol):
    """Answers every request on a mount with a 301 to another origin."""

    def __init__(self, to):
        self.to = to

    def on_http(self, c, req):
        c.respond(301, {"Location": self.to + req.subpath.lstrip("/")}, "")


def to_https(c, req, vh, to):
    """lws redirect_http_to_https: plain HTTP gets a 301 to https on
    the same host (to: True, or the TLS port)."""
    if not to:
        raise HttpError(400, "this port speaks TLS (https://)")
    host = req.h.get("host", vh.name)
    if host.startswith("["):
        host = host[:host.find("]") + 1]
    else:
        host = host.partition(":")[0]
    if to is not True and int(to) != 443:
        host = "%s:%d" % (host, int(to))
    req.keepalive = False
    c.respond(301, {"Location": "https://" + host + req.target}, "")
