"""microlws: libwebsockets' server and client core for MicroPython.

    import lws
    ctx = lws.Context(port=7681, mounts=[lws.Mount("/", "file://www")])
    ctx.run()

The names below are imported when first used, so `from lws import wlan`
(or ring, log) does not load the server.
"""

__version__ = "0.1.0"

_WHERE = {"Context": "context", "Vhost": "context", "Mount": "mounts",
          "Protocol": "protocol", "App": "app"}


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        # `from lws import log` asks here before it looks for the module
        try:
            return __import__("lws." + name, None, None, ("x",))
        except ImportError:
            raise AttributeError(name)
    m = __import__("lws." + mod, None, None, (name,))
    return getattr(m, name)
