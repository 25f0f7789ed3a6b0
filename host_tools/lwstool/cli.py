"""lwstool command line: a thin layer over the lwstool Python API.

Commands chain with + as mpremote's do, each parsed by its own parser,
and share one board connection, opened when a command first needs it:

    lwstool -p auto deploy --board esp32 + wifi add home + reset

The first command that fails ends the chain with its error and its exit
status. Errors, usage errors too, are one line, `lwstool: <message>`,
with exit status 1.
"""
import argparse
import sys

from .errors import LwsToolError


class UsageError(LwsToolError):
    """A command line argparse could not make sense of."""


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in lwstool's one error form."""

    def error(self, message):
        cmd = self.prog.partition(" ")[2]      # "lwstool wifi add"
        if message.startswith("argument COMMAND: invalid choice: "):
            raise UsageError("%s is not a command (lwstool -h lists them)"
                             % message.split(": ")[2].split(" (")[0])
        raise UsageError("%s%s (lwstool %s-h for help)" % (
            cmd + ": " if cmd else "", message, cmd + " " if cmd else ""))


def _serve(s, args):
    from . import unixport
    kw = {}
    if args.zip:
        from . import pack
        z = unixport.REPO / "build" / "zip" / "test-www.zip"
        z.parent.mkdir(parents=True, exist_ok=True)
        pack.zip_dir(unixport.FIRMWARE / "www", z)
        kw["zip"] = z
    return unixport.serve(**kw, heap=args.heap, port=args.port,
                          docroot=args.docroot, debug=args.debug,
                          timeout=args.timeout, iface=args.iface,
                          tls_port=args.tls_port or None,
                          source=args.source, config=args.config)


def _serve_parser(p):
    p.add_argument("--port", "-P", type=int, default=7681)
    p.add_argument("--docroot", help="serve this folder at / instead of "
                   "the test page")
    p.add_argument("--heap", help="run under -X heapsize=HEAP, e.g. 64K")
    p.add_argument("--zip", action="store_true",
                   help="serve the test page from a ZIP archive of www/ "
                   "(packed into build/zip)")
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
    p.add_argument("--config", help="serve this configuration file "
                   "(lws.config's JSON; reloaded when it changes)")


def _client(s, args):
    from . import unixport
    a = [args.url]
    if args.protocol:
        a += ["--protocol", args.protocol]
    if args.echo:
        a.append("--echo")
    if args.deflate:
        a.append("--deflate")
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
    p.add_argument("--deflate", action="store_true",
                   help="offer permessage-deflate (RFC 7692)")
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
    ap = Parser(prog="lwstool", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="store_true")
    ap.add_argument("-p", "--device", metavar="PORT",
                    help="the board's serial port, a virtual board's pty, "
                    "or auto (default: $LWSTOOL_PORT, else auto); also "
                    "taken after the command")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    ap.command_parsers = {}
    for name, (_, build, helptext) in COMMANDS.items():
        p = ap.command_parsers[name] = sub.add_parser(
            name, help=helptext, description=helptext)
        build(p)
    return ap


def split_chain(argv):
    """The commands of a command line, split at each `+`."""
    chain, cur = [], []
    for a in argv:
        if a == "+":
            if cur:
                chain.append(cur)
            cur = []
        else:
            cur.append(a)
    if cur:
        chain.append(cur)
    return chain


def parse(argv):
    """[args] for each command of the chain, all parsed before any runs
    (a UsageError for the first one that does not parse)."""
    ap = parser()
    chain = []
    for seg in split_chain(argv) or [[]]:
        args, extra = ap.parse_known_args(seg)
        if extra:
            # said by the command's own parser, which names it
            ap.command_parsers.get(args.cmd, ap).error(
                "unrecognized arguments: %s" % " ".join(extra))
        chain.append(args)
    return chain


def run(chain, session=None):
    """Run parsed commands in order on one Session; returns the exit
    status of the first that fails (an LwsToolError propagates), else 0."""
    from .board import Session
    s = session or Session()
    for args in chain:
        s.use(getattr(args, "device", None))
        code = COMMANDS[args.cmd][0](s, args) or 0
        if code:
            return code
    return 0


def main(argv=None):
    from .board import SERVER_STOPPED, Session
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        chain = parse(argv)
    except UsageError as e:
        print("lwstool: %s" % e, file=sys.stderr)
        return 1
    if chain[0].version:
        from . import __version__
        print("lwstool", __version__)
        return 0
    if any(not args.cmd for args in chain):
        if len(chain) > 1:
            print("lwstool: a + with no command after it", file=sys.stderr)
        else:
            parser().print_help()
        return 1
    s = Session(chain[0].device)
    error = None
    try:
        code = run(chain, s)
    except LwsToolError as e:
        error, code = e, 1
    except KeyboardInterrupt:
        s.detach()
        error, code = "interrupted", 1
    finally:
        s.close()
    sys.stdout.flush()
    if s.stopped:
        print("lwstool: " + SERVER_STOPPED, file=sys.stderr)
    if error is not None:
        print("lwstool: %s" % error, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
