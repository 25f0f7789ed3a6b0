"""Configuration in lwsws's shape (lws v2.0/v2.2): one JSON object,

    {"global": {"timeout_secs": 20, "log_level": 7},   # Context options
     "vhosts": [
       {"name": "localhost", "port": 7681, "interface": null,
        "host-ssl-cert": "cert.pem", "host-ssl-key": "key.pem",
        "mounts": [{"mountpoint": "/", "origin": "file://www",
                    "default": "index.html", "cache-max-age": 60},
                   {"mountpoint": "/echo", "origin": "callback://echo"},
                   {"mountpoint": "/old", "origin": ">https://example.com/"}],
        "ws-protocols": [{"dumb-increment-protocol": {"default": true}},
                         "echo", {"lws-status": {"peers": true}}],
        "options": {"sts": true}}]}     # Vhost options (or beside "name")

Keys are spelt with "-" (as lwsws) or "_". build() checks and builds it
all (every vhost, mount, protocol, TLS file) before anything is bound:
a wrong file raises ConfigError naming the key, e.g.
"vhosts[1].mounts[0].origin: no folder www", and nothing is applied.
Context(config=...) and Context.reload() take what it returns.

Protocols are named as lws's plugins (PLUGINS below), imported only when
named; an application adds its own with register(name, factory), or
names a class by its dotted path ("myapp.proto.Chat").
"""
from . import log

PLUGINS = {
    "dumb-increment-protocol": "lws.plugins.dumb_increment.DumbIncrement",
    "lws-mirror-protocol": "lws.plugins.mirror.Mirror",
    "echo": "lws.plugins.echo.Echo",
    "lws-status": "lws.plugins.status.Status",
    "lws-formtest": "lws.plugins.formtest.FormTest",
    "lws-http-test": "lws.plugins.http_test.HttpTest",
    "lws-serial-bridge": "lws.plugins.serial_bridge.SerialBridge",
    "lws-config": "lws.plugins.config_push.ConfigPush",
}

# vhost keys that are not Vhost options, and lwsws's names for options
_VH_ALIAS = {"interface": "iface", "host_ssl_cert": "tls_cert",
             "host_ssl_key": "tls_key", "host_ssl_ca": "tls_client_ca",
             "ws_protocols": "protocols"}
_MOUNT_KEYS = ("mountpoint", "origin", "default", "cache_max_age",
               "extra_mimetypes", "dotfiles", "follow_symlinks", "auth_file",
               "realm")


class ConfigError(ValueError):
    pass


def register(name, factory):
    """Make a protocol nameable in configurations: factory(**options)
    gives its instance (a Protocol subclass will do)."""
    PLUGINS[name] = factory


def _key(k):
    return k.replace("-", "_")


def _fail(where, msg):
    raise ConfigError("%s: %s" % (where, msg))


def _factory(name, where):
    f = PLUGINS.get(name, name)
    if not isinstance(f, str):
        return f
    if "." not in f:
        _fail(where, "no protocol plugin named %s" % name)
    mod, _, cls = f.rpartition(".")
    try:
        obj = __import__(mod, None, None, (cls,))
        return getattr(obj, cls)
    except (ImportError, AttributeError) as e:
        _fail(where, "protocol %s cannot be loaded (%s)" % (name, e))


def read(path):
    """The JSON object in file path (ConfigError if it is none)."""
    import json
    try:
        with open(path) as f:
            conf = json.load(f)
    except OSError as e:
        _fail(path, "cannot be read (%s)" % e)
    except ValueError as e:
        _fail(path, "not JSON (%s)" % e)
    if not isinstance(conf, dict):
        _fail(path, "not a JSON object")
    return conf


def _protocols(spec, where):
    """[(name, options)] from a list of names / {name: options}, or a
    {name: options} object."""
    out = []
    if isinstance(spec, dict):
        spec = [{k: spec[k]} for k in spec]
    if not isinstance(spec, list):
        _fail(where, "a list of protocols")
    for i, p in enumerate(spec):
        w = "%s[%d]" % (where, i)
        if isinstance(p, str):
            out.append((p, {}, w))
        elif isinstance(p, dict) and len(p) == 1:
            for name in p:
                o = p[name]
                if o is None:
                    o = {}
                if not isinstance(o, dict):
                    _fail(w + "." + name, "its options are an object")
                out.append((name, o, w + "." + name))
        else:
            _fail(w, "a protocol's name, or {name: {options}}")
    return out


def _protocol(name, opts, where):
    f = _factory(name, where)
    kw = {}
    default = False
    for k in opts:
        v = opts[k]
        kk = _key(k)
        if kk == "status":  # lwsws: "ok"
            continue
        if kk == "default":
            default = bool(v)
            continue
        kw[kk] = v
    try:
        p = f(**kw)
    except (TypeError, ValueError) as e:
        _fail(where, "bad options (%s)" % e)
    return p, default


def _mount(m, i, where, names):
    from .mounts import Mount
    w = "%s.mounts[%d]" % (where, i)
    if isinstance(m, list) and len(m) == 2:  # the short form [mp, origin]
        m = {"mountpoint": m[0], "origin": m[1]}
    if not isinstance(m, dict):
        _fail(w, "a mount is an object")
    kw = {}
    for k in m:
        kk = _key(k)
        if kk not in _MOUNT_KEYS:
            _fail(w + "." + k, "unknown mount option")
        kw[kk] = m[k]
    for k in ("mountpoint", "origin"):
        if not isinstance(kw.get(k), str):
            _fail(w + "." + k, "missing, or not text")
    mp = kw.pop("mountpoint")
    origin = kw.pop("origin")
    scheme, _, rest = origin.lstrip(">").partition("://")
    if scheme == "file":
        import os
        try:
            os.stat(rest.rstrip("/") or "/")
        except OSError:
            _fail(w + ".origin", "no file or folder " + rest)
    elif scheme == "callback" and rest not in names:
        _fail(w + ".origin", "no protocol %s on this vhost" % rest)
    try:
        try:
            return Mount(mp, origin, **kw)
        except ValueError:
            if origin[0] != ">":
                raise
            # a Mount that knows redirects as plain http(s):// origins
            return Mount(mp, origin[1:], **kw)
    except (ValueError, OSError, TypeError) as e:
        _fail(w, str(e))


def _vhost(v, where):
    from lws import Vhost  # through lws: context imports this module
    if not isinstance(v, dict):
        _fail(where, "a vhost is an object")
    d = {}
    for k in v:
        kk = _key(k)
        kk = _VH_ALIAS.get(kk, kk)
        if kk == "options":
            if not isinstance(v[k], dict):
                _fail(where + "." + k, "an object")
            for o in v[k]:
                d[_key(o)] = (v[k][o], "%s.%s.%s" % (where, k, o))
        else:
            d[kk] = (v[k], where + "." + k)
    name = d.pop("name", ("default", ""))[0]
    port, pw = d.pop("port", (7681, where + ".port"))
    try:
        port = int(port)  # lwsws writes "7681"
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        _fail(pw, "a port number, 1..65535")
    iface = d.pop("iface", (None, ""))[0]
    protos = []
    default = None
    spec, w = d.pop("protocols", ([], ""))
    for pname, popts, pw in _protocols(spec, w):
        p, dflt = _protocol(pname, popts, pw)
        protos.append(p)
        if dflt:
            default = p.name
    names = [p.name for p in protos]
    mounts, mw = d.pop("mounts", ([], ""))
    if not isinstance(mounts, list):
        _fail(mw, "a list of mounts")
    mounts = [_mount(m, i, where, names) for i, m in enumerate(mounts)]
    opts = {}
    for k in d:
        val, w = d[k]
        if k[0] == "_" or not hasattr(Vhost, k) or callable(getattr(Vhost, k)):
            _fail(w, "unknown vhost option")
        opts[k] = val
    if default and "ws_default" not in opts:
        opts["ws_default"] = default
    try:
        return Vhost(name, port, mounts, protos, iface=iface, **opts)
    except (ValueError, OSError, TypeError) as e:
        k = str(e)
        for o in opts:
            if o in k:
                _fail(d[o][1], k)
        if "tls" in k.lower() or "cert" in k.lower() or isinstance(e, OSError):
            _fail(where + ".tls_cert", k)
        _fail(where, k)


def _global(g):
    from lws import Context
    if not isinstance(g, dict):
        _fail("global", "an object")
    opts = {}
    for k in g:
        kk = _key(k)
        v = g[k]
        w = "global." + k
        if kk != "log_level" and (kk[0] == "_" or not hasattr(Context, kk)
                                  or callable(getattr(Context, kk))):
            _fail(w, "unknown option")
        if kk != "log_level":
            d = getattr(Context, kk)
            if isinstance(d, (int, float)) and not isinstance(v, (int, float)):
                _fail(w, "a number")
        opts[kk] = v
    return opts


def build(conf):
    """(Context options, [Vhost]) from a configuration: a dict, or the
    path of its JSON file. Raises ConfigError naming the wrong key."""
    if isinstance(conf, str):
        conf = read(conf)
    if not isinstance(conf, dict):
        _fail("config", "not a JSON object")
    for k in conf:
        if k not in ("global", "vhosts", "wlan"):
            _fail(k, "unknown key (global, vhosts)")
    opts = _global(conf.get("global", {}))
    vhs = conf.get("vhosts")
    if not isinstance(vhs, list) or not vhs:
        _fail("vhosts", "a list of one vhost or more")
    return opts, [_vhost(v, "vhosts[%d]" % i) for i, v in enumerate(vhs)]


def context(conf):
    """A Context serving configuration conf (a dict or a file's path);
    nothing is bound when it is wrong."""
    from lws import Context
    opts, vhosts = build(conf)
    return Context(vhosts, **opts)


def watch(ctx, path, load=None, then=None, ms=1000):
    """Every ms milliseconds, look at file path's size and mtime: when
    they change, reload ctx from load(path) (default: build(path)), then
    call then(new vhosts). A wrong or missing file is logged and changes
    nothing. Returns the timer (ctx.cancel() stops it).

    ctx.conf_apply(new) is the same step for a new file beside path (the
    lws-config plugin's upload): checked by the same loader, the reload
    done, and only then renamed over path; ValueError or OSError, and
    nothing changed, when it is wrong."""
    import os

    def stamp():
        try:
            st = os.stat(path)
            return (st[6], st[8])
        except OSError:
            return None
    last = [stamp()]

    def apply(src=path):
        built = (load or build)(src)
        reload(ctx, built)
        if src != path:
            try:
                os.rename(src, path)
            except OSError:  # FAT renames over no file
                os.remove(path)
                os.rename(src, path)
        last[0] = stamp()
        if then is not None:
            then(built[1])

    def check():
        now = stamp()
        if now == last[0]:
            return
        last[0] = now
        try:
            apply()
        except (ValueError, OSError) as e:
            log.warn("%s not reloaded: %s", path, e)
    ctx.conf_apply = apply
    return ctx.every(ms, check)


# options that size buffers made once: a reload cannot change them
_FIXED = ("file_chunk", "rx_buffer_size", "max_http_header_data")
_DERIVED = ("heap_reserve", "heap_reserve_ws", "file_cache", "head_timeout",
            "tls_handshake_timeout")


def reload(ctx, conf):
    """Context.reload(conf), loaded with the configuration code."""
    if isinstance(conf, tuple):
        opts, vhosts = conf
    else:
        opts, vhosts = build(conf)
    opts = dict(opts)
    level = opts.pop("log_level", None)
    for k in opts:
        if k[0] == "_" or not hasattr(ctx, k) or \
                callable(getattr(ctx, k)):
            raise ValueError("global.%s: unknown option" % k)
    for k in _FIXED:
        if k in opts and opts[k] != getattr(ctx, k):
            raise ValueError("global.%s: takes a restart" % k)
    keep = {}
    for s, vhs in ctx._listen.items():
        keep[(vhs[0].port, vhs[0].iface)] = s
    socks = ctx._bind_all(vhosts, keep)  # raises: nothing changed
    for s in ctx._listen:
        if s not in socks:
            ctx._close_listen(s)
            log.notice("port %d closed", ctx._listen[s][0].port)
    # new lists: open connections keep the ones they hold
    ctx._listen = socks
    ctx.vhosts = list(vhosts)
    for k in tuple(ctx._opts) + _DERIVED:
        if k not in opts and k not in _FIXED:
            try:
                delattr(ctx, k)  # back to the class's default
            except AttributeError:
                pass
    for k in opts:
        setattr(ctx, k, opts[k])
    ctx._opts = opts
    ctx._derive()
    if (ctx.ip_limit_wsi or ctx.ip_limit_ah) and ctx._ips is None:
        ctx._ips = {}
    ctx._answers = {}
    ctx._last = None
    if level is not None:
        log.set_level(level)
    log.notice("configuration reloaded: %d vhosts", len(ctx.vhosts))
