"""Bringing a board up from lws.json (what main.py runs): the WLAN
through the saved slots (lws.wlan), then the server with the set-up page
at /setup and the captive portal while the access point is up.

It lives in the package, not in main.py, so that a board with lws frozen
keeps its code in flash: main.py is compiled at every boot and its code
would sit in the heap.

lws.json: every key optional; a key it does not set takes its value from
DEFAULTS (what the README shows), key by key within "wlan" and "server",
so a board with an empty lws.json serves the test page with all its
protocols. Other keys:
  "wlan": {"slots": "wlan.json", "ap_ssid": null,
           "ap_open": false,        # true: an open access point
           "timeout": 10,
           "setup_password": null,  # "setup": "ap" while the AP is up;
                                    # "always" (user admin, password
                                    # setup_password, else the AP's);
                                    # "never"
           "captive_portal": true,  # default: true for "setup": "ap";
                                    # or {"dns_port": 53, ...}
           "options": {}}
  "server": {"log_level": 7, "options": {"timeout_secs": 20}}
"wlan": false (or null) leaves the radio alone.
"""
import gc
from . import log

# What a board gets when lws.json says nothing (the README shows the same):
# the test page and its protocols. Protocols a board's profile did not
# deploy are left out quietly, with the mounts that name them.
DEFAULTS = {
    "wlan": {"hostname": "lws", "ap_password": None, "wait": 30,
             "setup": "ap"},
    "server": {"port": 80, "docroot": "www",
               "mounts": [["/echo", "callback://echo"],
                          ["/status.json", "callback://lws-status"]],
               "protocols": ["lws.plugins.dumb_increment.DumbIncrement",
                             "lws.plugins.mirror.Mirror",
                             "lws.plugins.echo.Echo",
                             "lws.plugins.status.Status"]}}


def load_config(path="lws.json", strict=False):
    """lws.json over DEFAULTS, key by key within "wlan" and "server".
    strict: a file that is not a JSON object raises ConfigError (else:
    the defaults)."""
    import json
    if strict:
        from .config import read
        return merge(read(path), path)
    cfg = {}
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        pass
    except ValueError as e:
        log.notice("main: %s is not valid JSON (%s): using the defaults", path, e)
    if not isinstance(cfg, dict):
        log.notice("main: %s is not a JSON object: using the defaults", path)
        cfg = {}
    return merge(cfg, path)


def merge(cfg, path="lws.json"):
    """cfg over DEFAULTS (see load_config)."""
    if "server" not in cfg and [k for k in DEFAULTS["server"] if k in cfg]:
        # the flat form {"port": .., "docroot": ..}
        cfg = {"wlan": cfg["wlan"], "server": cfg} if "wlan" in cfg \
            else {"server": cfg}
    for k in ("wlan", "server"):
        v = cfg.get(k, {})
        if k == "wlan" and (v is False or v is None):
            continue  # leave the radio alone
        d = dict(DEFAULTS[k])
        if isinstance(v, dict):
            d.update(v)
        else:
            log.notice("main: %s in %s is not an object: using the defaults", k,
                 path)
        cfg[k] = d
    return cfg


def start_wlan(w):
    """The WLAN manager, connected or with its access point up; None when
    there is no radio."""
    from lws.wlan import Slots, Manager
    try:
        import network  # noqa: F401
    except ImportError:
        log.notice("main: no network module: WLAN left alone")
        return None
    opts = dict(w.get("options", {}))
    if "ap_open" in w:
        opts["ap_open"] = bool(w["ap_open"])
    m = Manager(Slots(w.get("slots", "wlan.json")), w.get("hostname"),
                w.get("ap_ssid"), w.get("ap_password"), w.get("timeout", 10),
                **opts)
    if m.connect(w.get("wait", 30)):
        log.notice("main: WLAN connected to %s, address %s", m.ssid, m.ip)
        import sys
        if m.hostname and sys.platform == "esp32":
            # its mDNS responder answers for the hostname (lws.wlan)
            log.notice("main: and by name: %s.local", m.hostname)
    else:
        log.notice("main: no saved network answered: access point %s is up, "
             "set-up page at /setup", m.ap)
    return m


def unload(*names):
    """Forget modules that are done with, so that the heap gets their
    room back (imported again, they load anew)."""
    import sys
    for n in names:
        if sys.modules.pop(n, None) is not None:
            pkg, _, leaf = n.rpartition(".")
            p = sys.modules.get(pkg)
            if p is not None and leaf in dir(p):
                delattr(p, leaf)


def load_protocol(spec):
    """'lws.plugins.echo.Echo' -> an Echo()."""
    mod, _, cls = spec.rpartition(".")
    obj = __import__(mod)
    for part in mod.split(".")[1:] + [cls]:
        obj = getattr(obj, part)
    return obj()


def to_vhosts(cfg):
    """The configuration lws.config builds (lwsws's shape): cfg itself
    when it has "vhosts", else the one vhost that its "server" key
    describes (port, docroot, mounts [[mountpoint, origin]], protocols
    by class path or plugin name, options: Context options)."""
    if "vhosts" in cfg:
        return {"global": cfg.get("global", {}), "vhosts": cfg["vhosts"]}
    from . import config
    srv = cfg["server"]
    dflt = srv["protocols"] is DEFAULTS["server"]["protocols"]
    protocols = []
    for spec in srv["protocols"]:
        try:
            config._factory(spec, "server.protocols")
            protocols.append(spec)
        except ValueError as e:
            if not dflt:  # a default the profile did not deploy: quietly
                log.notice("main: protocol %s not loaded (%s)", spec, e)
    names = []
    for spec in protocols:
        f = config._factory(spec, "")
        names.append(getattr(f, "name", spec))
    mounts = []
    if srv["docroot"]:
        mounts.append(["/", "file://" + srv["docroot"]])
    for mp, origin in srv["mounts"]:
        if srv["mounts"] is DEFAULTS["server"]["mounts"] and \
                origin.startswith("callback://") and origin[11:] not in names:
            continue
        mounts.append([mp, origin])
    g = dict(srv.get("options", {}))
    if "log_level" in srv:
        g["log_level"] = srv["log_level"]
    return {"global": g, "vhosts": [{"name": "lws", "port": srv["port"],
                                     "mounts": mounts,
                                     "protocols": protocols}]}


def run(booted=None, path="lws.json"):
    """Bring the board up from lws.json and serve until the loop ends;
    booted() is called once the server listens (main.py's boot count).
    lws.json is looked at every second: when it changes, the server
    reloads it without dropping anyone (Context.reload); a wrong one is
    logged and changes nothing."""
    import lws
    from . import config
    cfg = load_config(path)
    conf = to_vhosts(cfg)
    g = conf["global"]
    if "log_level" in g:
        log.set_level(g["log_level"])
    # wrong: it raises, nothing is started (main.py's safe mode counts it)
    opts, vhosts = config.build(conf)
    w = cfg.get("wlan")
    m = None
    if w:
        try:
            m = start_wlan(w)
        except Exception as e:
            log.exc(e, "main: WLAN set-up failed; serving without it")
    gc.collect()
    vh = vhosts[0]
    cp = None  # the captive portal's options, when it is wanted
    if m is not None:
        when = w.get("setup", "ap")
        cp = w.get("captive_portal", when == "ap")
        if cp and when == "never":
            log.warn("main: no captive portal without a set-up page "
                     "(\"setup\": \"never\")")
            cp = None
        elif cp:
            cp = cp if isinstance(cp, dict) else {}
        else:
            cp = None
        page = []  # the set-up page's mount, imported when first needed

        def show(on):
            if on and not page:
                from lws.plugins.wlan_setup import WlanSetup
                # "always": on the station network too, so behind the
                # admin password; "ap": that too once a station is up
                vh.protocols.append(WlanSetup(
                    m, w.get("setup_password"), True if when == "always"
                    else None))
                page.append(lws.Mount("/setup", "callback://lws-wlan-setup"))
            if page and on != (page[0] in vh.mounts):
                if on:
                    vh.mount(page[0])
                else:
                    vh.mounts.remove(page[0])

        portal = []  # the captive portal, imported when first needed

        def captive(on):
            # while the access point is up: its DNS answers every name
            # with the board, and the OS opens the set-up page
            if on and not portal:
                from lws.plugins.captive import Portal
                portal.append(Portal(vh, m.hostname, **cp))
            if on:
                portal[0].start(ctx, m.ap_ip)
            elif portal:
                portal.pop().stop()
                # set up: its code and objects give their heap back
                unload("lws.plugins.captive", "lws.roles.dns")

        def changed(state, info):
            # "ap": the page is there while the access point is
            if when == "ap" and (state == "ap" or (state == "connected"
                                                   and m.ap is None)):
                show(state == "ap")
            # the portal until a station connects (keep_ap or not)
            if cp is not None and state in ("ap", "connected"):
                captive(state == "ap")

        if when == "always":
            show(True)
            log.notice("main: set-up page at /setup, user admin, password %s",
                 "from setup_password" if w.get("setup_password")
                 else m.ap_key())
        elif when == "ap" and m.ap:
            show(True)
        if when == "ap" or cp is not None:
            m.on_change = changed
    ctx = lws.Context(vhosts, **opts)
    if m is not None:
        m.attach(ctx)
        if cp is not None and m.ap:
            captive(True)

    def reloaded(new):
        # the set-up page and the portal go on with the first vhost
        nonlocal vh
        old, vh = vh, new[0]
        if page and page[0] in old.mounts:
            vh.protocols.append(old.protocol("lws-wlan-setup"))
            vh.mount(page[0])
        if portal:
            old.remove_filter(portal[0]._filter)
            portal[0].vh = vh
            vh.add_filter(portal[0]._filter)
    watch(ctx, path, reloaded if m is not None else None)
    if booted:
        booted()
    gc.collect()
    log.notice("main: serving on port %d", vh.port)
    ctx.run()
    return ctx


def watch(ctx, path="lws.json", then=None, ms=1000):
    """lws.config.watch for lws.json: read through to_vhosts, so the
    "server" form too; then(new vhosts) after each reload."""
    from . import config
    return config.watch(ctx, path, lambda p: config.build(
        to_vhosts(load_config(p, True))), then, ms)
