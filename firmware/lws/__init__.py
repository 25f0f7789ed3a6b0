"""microlws: libwebsockets' server core for MicroPython.

    import lws
    ctx = lws.Context(port=7681, mounts=[lws.Mount("/", "file://www")])
    ctx.run()
"""
from .context import Context, Vhost
from .mounts import Mount
from .protocol import Protocol

__version__ = "0.1.0"
