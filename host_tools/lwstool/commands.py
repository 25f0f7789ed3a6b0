"""The board commands of the lwstool CLI: each a (handler, parser builder,
help) entry for cli.COMMANDS; handlers take the parsed args (args.device
is the global -p PORT) and call the Python API."""
import json
import sys

from .errors import LwsToolError


def _devs(args):
    from .board import devs
    for row in devs():
        print(" ".join(row))


def _flash(args):
    from .flash import flash
    chip = flash(args.board, port=args.device, firmware=args.firmware,
                 erase=args.erase, baud=args.baud, before=args.before,
                 after=args.after)
    print("flashed %s (%s)" % (args.board, chip))


def _flash_parser(p):
    p.add_argument("--board", "-b", default="esp32")
    p.add_argument("--firmware", "-f", help="the MicroPython .bin "
                   "(default: the profile's, or build/firmware/BOARD.bin)")
    p.add_argument("--erase", action="store_true",
                   help="erase the whole flash first")
    p.add_argument("--baud", type=int, help="write at this baud rate "
                   "(default: the profile's)")
    p.add_argument("--before", default="default-reset",
                   help="esptool's reset before (no-reset for a board "
                   "already in its bootloader)")
    p.add_argument("--after", default="hard-reset",
                   help="esptool's reset after (no-reset to stay in the "
                   "bootloader)")


def _deploy(args):
    from .deploy import deploy
    deploy(args.board, port=args.device, source=args.source,
           dry_run=args.dry_run)


def _deploy_parser(p):
    p.add_argument("--board", "-b", default="esp32")
    p.add_argument("--source", action="store_true",
                   help="copy the .py files instead of compiling them")
    p.add_argument("--dry-run", "-n", action="store_true",
                   help="only say what would be copied")


def _wifi(args):
    from . import configure as c
    if args.wifi_cmd == "add":
        pw = args.password
        if pw is None:
            import getpass
            pw = getpass.getpass("password for %s (empty for an open "
                                 "network): " % args.ssid)
        slot = c.wifi_add(args.ssid, pw, slot=args.slot, port=args.device)
        print("saved %r in slot %d" % (args.ssid, slot))
    elif args.wifi_cmd == "list":
        rows = c.wifi_list(port=args.device)
        if not rows:
            print("no networks saved")
        for r in rows:
            print("%d  %-32s %s%s" % (r.get("slot", -1), r.get("ssid"),
                                      "open" if r.get("open") else "secured",
                                      "  (last good)" if r.get("last_good")
                                      else ""))
    elif args.wifi_cmd == "rm":
        which = int(args.ssid) if args.slot_number else args.ssid
        if not c.wifi_remove(which, port=args.device):
            raise LwsToolError("no saved network %r" % (which,))
        print("removed %r" % (which,))
    elif args.wifi_cmd == "status":
        for k, v in c.wifi_status(port=args.device).items():
            print("%-10s %s" % (k, v))
    elif args.wifi_cmd == "ap":
        d = c.wifi_ap(port=args.device)
        print("%-10s %s" % ("ssid", d["ssid"] or "(from the MAC)"))
        if d["open"]:
            print("%-10s %s" % ("security", "open (ap_open)"))
        else:
            print("%-10s %s" % ("security", "WPA2"))
            print("%-10s %s" % ("password", d["password"]))
        print("%-10s user admin, password %s" % (
            "setup", d["admin"] or "from setup_password in lws.json"))
    else:
        raise LwsToolError("wifi: say add, list, rm, status or ap")


def _wifi_parser(p):
    sub = p.add_subparsers(dest="wifi_cmd")
    a = sub.add_parser("add", help="save a network in a slot")
    a.add_argument("ssid")
    a.add_argument("--password", help="(asked for when left out)")
    a.add_argument("--slot", type=int, help="this slot (default: the "
                   "SSID's own, else the first free one)")
    sub.add_parser("list", help="the saved networks (no passwords)")
    r = sub.add_parser("rm", help="forget a network")
    r.add_argument("ssid")
    r.add_argument("--slot", dest="slot_number", action="store_true",
                   help="SSID is a slot number")
    sub.add_parser("status", help="the station interface's state")
    sub.add_parser("ap", help="the set-up access point: its name and "
                   "password (the board's own is made when it has none)")


def _config(args):
    from . import configure as c
    if args.config_cmd == "get":
        v = c.config_get(args.key, port=args.device)
        print(json.dumps(c.masked(v, args.key or ""), indent=2
                         if isinstance(v, (dict, list)) else None))
    elif args.config_cmd == "set":
        c.config_set(args.key, c.parse_value(args.value), port=args.device)
        print("%s = %s" % (args.key, "***" if c.is_secret(args.key)
                           else json.dumps(c.parse_value(args.value))))
    elif args.config_cmd == "push":
        cfg = c.config_push(args.file, port=args.device)
        print("pushed %s (%d keys)" % (args.file, len(cfg)))
    else:
        raise LwsToolError("config: say get, set or push")


def _config_parser(p):
    sub = p.add_subparsers(dest="config_cmd")
    g = sub.add_parser("get", help="print lws.json, or one key")
    g.add_argument("key", nargs="?", help="a key; a.b for nested ones")
    s = sub.add_parser("set", help="set one key (VALUE as JSON, else text)")
    s.add_argument("key")
    s.add_argument("value")
    u = sub.add_parser("push", help="replace lws.json with a local file")
    u.add_argument("file")


def _repl(args):
    import subprocess
    from .board import find_port
    return subprocess.call([sys.executable, "-m", "mpremote", "connect",
                            find_port(args.device), "repl"])


def _run(args):
    from .board import Board
    try:
        code = open(args.file, "rb").read()
    except OSError as e:
        raise LwsToolError("cannot read %s: %s" % (args.file, e.strerror))
    with Board(args.device) as b:
        t = b.transport
        from mpremote.transport import TransportError
        try:
            t.exec_raw_no_follow(code)
            if args.no_follow:
                return 0
            out, err = t.follow(None, lambda d: (sys.stdout.buffer.write(d),
                                                 sys.stdout.flush()))
        except KeyboardInterrupt:
            t.serial.write(b"\x03")
            out, err = t.follow(5)
        except TransportError as e:
            raise LwsToolError(str(e))
        if err:
            sys.stderr.write(err.decode(errors="replace"))
            return 1


def _run_parser(p):
    p.add_argument("file", help="a local .py file to run on the board")
    p.add_argument("--no-follow", action="store_true",
                   help="start it and leave it running")


def _reset(args):
    from .board import Board
    b = Board(args.device, soft_reset=False)
    t = b.transport
    if args.hard:
        t.exec_raw_no_follow("import machine\nmachine.reset()")
        t.close()
        b._t = None
    else:
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        t.read_until(1, b"soft reboot\r\n", timeout=5)
        t.close()
        b._t = None
    print("reset %s" % b.port)


def _reset_parser(p):
    p.add_argument("--hard", action="store_true",
                   help="machine.reset() instead of a soft reset")


def _emulate(args):
    import signal
    from .vboard import VirtualBoard
    vb = VirtualBoard(args.board, root=args.root, link=args.link,
                      heap=args.heap, with_firmware=args.with_firmware,
                      aps=args.aps)

    def ready(path):
        print("virtual %s on %s%s (flash: %s, heap %s)" % (
            args.board, path, " -> " + str(vb.link) if vb.link else "",
            vb.root, vb.heap), flush=True)
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write(path + "\n")
            import os
            os.replace(args.port_file + ".tmp", args.port_file)

    def stop(signum, frame):
        vb._stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        vb.run(ready)
    except KeyboardInterrupt:
        pass
    finally:
        vb.close()


def _emulate_parser(p):
    p.add_argument("--board", "-b", default="esp32")
    p.add_argument("--root", help="the board's flash: a folder (default "
                   "build/vboard/BOARD)")
    p.add_argument("--link", help="make a symlink to the pty here")
    p.add_argument("--heap", help="heap size (default: twice the profile's "
                   "heap_budget, as the unix port is 64-bit)")
    p.add_argument("--with-firmware", action="store_true",
                   help="firmware/ on the module path, as if frozen in "
                   "(default: only what was deployed to the root)")
    p.add_argument("--aps", help="fake access points (JSON) for the "
                   "simulated network (default: ROOT/fake_aps.json)")
    p.add_argument("--port-file", help="write the pty's path here when "
                   "ready")


def _test(args):
    from .testing import run
    return run(args.target, fleet=args.fleet, board=args.board,
               pytest_args=args.pytest_args, host=args.host)


def _test_parser(p):
    p.add_argument("--target", "-t", default="vboard",
                   help="vboard | serial:PORT | net:HOST[:PORT]")
    p.add_argument("--board", "-b", default="esp32")
    p.add_argument("--host", help="with serial:PORT, reach the board's "
                   "server here (default: the address the board reports)")
    p.add_argument("--fleet", type=int, default=0,
                   help="start N virtual boards, test them in parallel")
    p.add_argument("pytest_args", nargs="*",
                   help="passed on to pytest (after --)")


COMMANDS = {
    "devs": (_devs, lambda p: None, "list serial ports"),
    "flash": (_flash, _flash_parser,
              "write MicroPython onto a board (esptool)"),
    "deploy": (_deploy, _deploy_parser,
               "copy the firmware to a board (only what changed)"),
    "wifi": (_wifi, _wifi_parser, "WLAN slots on the board: add, list, "
             "rm, status"),
    "config": (_config, _config_parser, "the board's lws.json: get, set, "
               "push"),
    "repl": (_repl, lambda p: None, "the board's REPL (mpremote)"),
    "run": (_run, _run_parser, "run a local file on the board"),
    "reset": (_reset, _reset_parser, "soft-reset the board (main.py runs)"),
    "emulate": (_emulate, _emulate_parser,
                "a virtual board: the unix port on a pty"),
    "test": (_test, _test_parser, "integration tests against a board"),
}
