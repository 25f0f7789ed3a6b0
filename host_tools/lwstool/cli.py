"""lwstool command line: a thin layer over the lwstool Python API."""
import argparse
import sys

from .errors import LwsToolError


def _serve(args):
    from . import unixport
    return unixport.serve(heap=args.heap, port=args.port,
                          docroot=args.docroot, debug=args.debug,
                          timeout=args.timeout, iface=args.iface,
                          tls_port=args.tls_port or None,
                          source=args.source)


def _serve_parser(p):
    p.add_argument("--port", "-P", type=int, default=7681)
    p.add_argument("--docroot", help="serve this folder at / instead of "
                   "the test page")
    p.add_argument("--heap", help="run under -X heapsize=HEAP, e.g. 64K")
    p.add_argument("-d", "--debug", type=int,
                   help="log level bitmask (1 err, 2 warn, 4 notice, "
                   "8 info, 16 debug)")
    p.add_argument("--timeout", type=float, help="timeout_secs")
    p.add_argument("--iface", help="address to listen on")
    p.add_argument("--tls-port", type=int, default=0,
                   help="also serve https/wss on this port (a self-signed "
                   "certificate is made in build/tls on first use)")
    p.add_argument("--source", action="store_true",
                   help="run the firmware's .py files (default: compiled "
                   "to .mpy in build/mpy, as a board runs it)")


def _client(args):
    from . import unixport
    a = [args.url]
    if args.protocol:
        a += ["--protocol", args.protocol]
    if args.echo:
        a.append("--echo")
    if args.debug is not None:
        a += ["-d", args.debug]
    if args.count is not None:
        a += ["--count", args.count]
    if args.send is not None:
        a += ["--send", args.send]
    return _foreground(unixport.command(
        unixport.FIRMWARE / "test_client.py", a, args.heap),
        unixport.environment())


def _foreground(argv, env):
    """Run a unix-port child until it ends (see unixport.foreground)."""
    import subprocess
    from . import unixport
    return unixport.foreground(subprocess.Popen(argv, env=env))


def _client_parser(p):
    p.add_argument("url", help="ws://, http:// or raw:// URL to connect to")
    p.add_argument("--protocol", help="ask for this WebSocket subprotocol")
    p.add_argument("--echo", action="store_true",
                   help="send every message back as it came (a "
                   "conformance suite's echo client)")
    p.add_argument("--count", type=int,
                   help="close and exit after this many messages")
    p.add_argument("--send", help="send this text message once connected")
    p.add_argument("--heap", help="run under -X heapsize=HEAP, e.g. 64K")
    p.add_argument("-d", "--debug", type=int,
                   help="log level bitmask (1 err, 2 warn, 4 notice, "
                   "8 info, 16 debug)")


# name: (handler, parser builder, help)
COMMANDS = {
    "serve": (_serve, _serve_parser,
              "run the test server on the MicroPython unix port"),
    "client": (_client, _client_parser,
               "run the test client on the MicroPython unix port"),
}
# devs, flash, deploy, wifi, config, repl, run, reset, emulate, test
from .commands import COMMANDS as _BOARD_COMMANDS  # noqa: E402
COMMANDS.update(_BOARD_COMMANDS)


def parser():
    ap = argparse.ArgumentParser(prog="lwstool", description=__doc__)
    ap.add_argument("--version", action="store_true")
    ap.add_argument("-p", "--device", metavar="PORT",
                    help="the board's serial port, or auto (default: "
                    "$LWSTOOL_PORT, else auto)")
    sub = ap.add_subparsers(dest="cmd")
    for name, (_, build, helptext) in COMMANDS.items():
        build(sub.add_parser(name, help=helptext))
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    if args.version:
        from . import __version__
        print("lwstool", __version__)
        return 0
    if not args.cmd:
        ap.print_help()
        return 1
    try:
        return COMMANDS[args.cmd][0](args) or 0
    except LwsToolError as e:
        print("lwstool: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
