"""The microlws test server (like libwebsockets-test-server)."""
import sys

_USAGE = """usage: micropython test_server.py [-p PORT] [-i IFACE] [-d LOGLEVEL]
        [--docroot DIR] [--timeout SECS] [--pool N] [--header-data N]
        [--ping SECS] [--tls-port PORT --cert CERT --key KEY]
        [--auth-file FILE]      /private/ behind HTTP Basic (lwstool passwd)
        [--uploads DIR]         where /formtest saves uploaded files
        [--zip FILE]            the test page from this archive (lwstool zip)
        [-o OPTION=VALUE ...]   any Context option (lws.Context's names)
        [--config FILE]         serve this configuration (lws.config) instead;
                                it is reloaded when the file changes
        [--loop asyncio]        serve under asyncio (ctx.serve()), not ctx.run()"""


def _options(argv):
    o = {"port": 7681, "iface": None, "debug": None, "docroot": None,
         "timeout": None, "pool": None, "header-data": None, "ping": None,
         "tls-port": None, "cert": None, "key": None, "auth-file": None,
         "uploads": None, "zip": None, "config": None, "loop": None,
         "o": []}
    alias = {"-p": "port", "-i": "iface", "-d": "debug", "-o": "o"}
    i = 0
    while i < len(argv):
        a = argv[i]
        k = alias.get(a, a[2:] if a.startswith("--") else None)
        if k not in o or i + 1 >= len(argv) or \
                k == "o" and "=" not in argv[i + 1]:
            print(_USAGE)
            sys.exit(1 if a not in ("-h", "--help") else 0)
        if k == "o":
            o[k].append(argv[i + 1].split("=", 1))
        else:
            o[k] = argv[i + 1]
        i += 2
    return o


def _private():
    """/private/'s protocol: a page for whoever the credentials let in."""
    import lws

    class Private(lws.Protocol):
        name = "private"

        def on_http(self, conn, req):
            conn.respond(200, {"Cache-Control": "no-store"},
                         "<!doctype html><h1>private</h1><p>hello, %s</p>\n"
                         % req.auth_user)
    return Private()


def _run(ctx, loop):
    """The blocking loop, or asyncio's (--loop asyncio)."""
    if loop == "asyncio":
        import asyncio
        try:
            asyncio.run(ctx.serve())
        except KeyboardInterrupt:
            pass
    else:
        ctx.run()


def _here():
    f = __file__ if "__file__" in globals() else ""
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


def main(argv=None):
    import lws
    from lws import log
    from lws.plugins.http_test import HttpTest
    from lws.plugins.formtest import FormTest
    from lws.plugins.dumb_increment import DumbIncrement
    from lws.plugins.echo import Echo
    from lws.plugins.mirror import Mirror
    from lws.plugins.status import Status
    o = _options(sys.argv[1:] if argv is None else argv)
    if o["debug"] is not None:
        log.set_level(int(o["debug"]))
    if o["config"]:
        return _serve_config(o["config"], o["loop"])
    opts = {}
    if o["timeout"] is not None:
        opts["timeout_secs"] = float(o["timeout"])
    if o["pool"] is not None:
        opts["max_http_header_pool"] = int(o["pool"])
    if o["ping"] is not None:
        opts["ws_ping_pong_interval"] = float(o["ping"])
    if o["header-data"] is not None:
        opts["max_http_header_data"] = int(o["header-data"])
    for k, v in o["o"]:
        opts[k] = float(v) if "." in v else int(v)
    if o["docroot"]:
        mounts = [lws.Mount("/", "file://" + o["docroot"])]
        protocols = []
    else:
        www = "file://" + (o["zip"] or _here() + "/www")
        mounts = [lws.Mount("/", www),
                  lws.Mount("/t", "callback://lws-http-test"),
                  lws.Mount("/formtest", "callback://lws-formtest")]
        protocols = [HttpTest(), FormTest(o["uploads"])]
    # WebSocket protocols, on every vhost; /echo reaches echo with no
    # Sec-WebSocket-Protocol header, as lws's callback:// mounts do
    mounts.append(lws.Mount("/echo", "callback://echo"))
    mounts.append(lws.Mount("/status.json", "callback://lws-status"))
    if o["auth-file"]:
        mounts.append(lws.Mount("/private", "callback://private",
                                auth_file=o["auth-file"],
                                realm="microlws test server"))
        protocols.append(_private())
    # a test server: its status shows every connection's peer
    protocols += [DumbIncrement(), Mirror(), Echo(), Status(peers=True)]
    vhosts = [lws.Vhost("localhost", int(o["port"]), mounts, protocols,
                        iface=o["iface"], ws_default="dumb-increment-protocol")]
    if o["tls-port"]:
        # the same pages and protocols over https/wss
        vhosts.append(lws.Vhost("localhost-tls", int(o["tls-port"]), mounts,
                                protocols, iface=o["iface"],
                                ws_default="dumb-increment-protocol",
                                tls_cert=o["cert"], tls_key=o["key"],
                                redirect_http_to_https=int(o["tls-port"]),
                                sts=True))
    ctx = lws.Context(vhosts, **opts)
    log.notice("microlws test server on http://localhost:%s/", o["port"])
    if o["tls-port"]:
        log.notice("and on https://localhost:%s/", o["tls-port"])
    _run(ctx, o["loop"])


def _serve_config(path, loop=None):
    """Serve configuration file path; when the file changes, it is
    reloaded (a wrong one is logged and changes nothing)."""
    from lws import config, log
    try:
        ctx = config.context(path)
    except (ValueError, OSError) as e:
        print("test_server: %s" % e)
        sys.exit(1)
    config.watch(ctx, path)
    log.notice("microlws test server: configuration %s", path)
    _run(ctx, loop)


if __name__ == "__main__":
    main()
