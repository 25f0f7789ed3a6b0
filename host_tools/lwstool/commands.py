"""The board commands of the lwstool CLI: each a (handler, parser builder,
help) entry for cli.COMMANDS. A handler takes the invocation's Session
(board.Session: the -p port, and the board connection the commands chained
with + share, opened on first use) and its parsed args, and calls the
Python API."""
import argparse
import json
import os
import sys

from .errors import LwsToolError


def device_option(p):
    """-p PORT after the command too (lwstool deploy -p /dev/ttyUSB0),
    where mpremote's and esptool's users put it; it wins over one given
    before the command."""
    p.add_argument("-p", "--device", metavar="PORT",
                   default=argparse.SUPPRESS,
                   help="the board's serial port, or auto")


def _devs(s, args):
    from .board import devs
    for row in devs():
        print(" ".join(row))


def _flash(s, args):
    from .flash import flash
    chip = flash(args.board, port=s.release(), firmware=args.firmware,
                 erase=args.erase, baud=args.baud, before=args.before,
                 after=args.after)
    print("flashed %s (%s)" % (args.board, chip))


def _flash_parser(p):
    device_option(p)
    p.add_argument("--board", default="esp32")
    p.add_argument("--firmware", "-f", help="the MicroPython .bin "
                   "(default: the profile's, or build/firmware/BOARD.bin)")
    p.add_argument("--erase", action="store_true",
                   help="erase the whole flash first")
    p.add_argument("-b", "--baud", type=int, help="write at this baud "
                   "rate, as esptool's -b (default: the profile's)")
    p.add_argument("--before", default="default-reset",
                   help="esptool's reset before (no-reset for a board "
                   "already in its bootloader)")
    p.add_argument("--after", default="hard-reset",
                   help="esptool's reset after (no-reset to stay in the "
                   "bootloader)")


def _deploy(s, args):
    from .deploy import deploy
    # a clean heap to write with
    deploy(args.board, source=args.source, dry_run=args.dry_run,
           conn=s.board(soft_reset=True), with_lws=args.with_lws,
           zip=args.zip)


def _deploy_parser(p):
    device_option(p)
    p.add_argument("--board", default="esp32")
    p.add_argument("--source", action="store_true",
                   help="copy the .py files instead of compiling them")
    p.add_argument("--dry-run", "-n", action="store_true",
                   help="only say what would be copied")
    p.add_argument("--with-lws", action="store_true",
                   help="send lws even where the board's image has it "
                   "frozen in (it is then imported from the filesystem)")
    p.add_argument("--zip", action="store_true",
                   help="send www/ packed into one archive, www.zip "
                   "(mount it: docroot www.zip)")


def _gzip(s, args):
    from . import pack
    done = pack.gzip_tree(args.folder, replace=args.replace)
    for p in done:
        print(p)


def _gzip_parser(p):
    p.add_argument("folder")
    p.add_argument("--replace", action="store_true",
                   help="remove each original (the board inflates x.gz "
                   "for clients that do not take gzip)")


def _zip(s, args):
    from . import pack
    n = pack.zip_dir(args.folder, args.out)
    print("%s: %d bytes" % (args.out, n))


def _zip_parser(p):
    p.add_argument("folder")
    p.add_argument("out", help="the archive to write (site.zip)")


def _password(args):
    """The password of wifi add: --password, --password-stdin (one line),
    else asked for; checked before the board is opened."""
    from . import configure as c
    if args.password is not None and args.password_stdin:
        raise LwsToolError("wifi add: --password or --password-stdin, "
                           "not both")
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise LwsToolError("wifi add --password-stdin: no line on stdin "
                               "(an empty line: an open network)")
        pw = line.rstrip("\r\n")
    elif args.password is not None:
        pw = args.password
    else:
        import getpass
        pw = getpass.getpass("password for %s (empty for an open "
                             "network): " % args.ssid)
    c.check_ssid(args.ssid)
    c.check_password(pw)
    return pw


def _wifi(s, args):
    from . import configure as c
    if args.wifi_cmd == "add":
        pw = _password(args)
        slot = c.wifi_add(args.ssid, pw, slot=args.slot, conn=s.board())
        print("saved %r in slot %d" % (args.ssid, slot))
    elif args.wifi_cmd == "list":
        rows = c.wifi_list(conn=s.board())
        if not rows:
            print("no networks saved")
        for r in rows:
            print("%d  %-32s %s%s" % (r.get("slot", -1), r.get("ssid"),
                                      "open" if r.get("open") else "secured",
                                      "  (last good)" if r.get("last_good")
                                      else ""))
    elif args.wifi_cmd == "rm":
        which = int(args.ssid) if args.slot_number else args.ssid
        if not c.wifi_remove(which, conn=s.board()):
            raise LwsToolError("no saved network %r" % (which,))
        print("removed %r" % (which,))
    elif args.wifi_cmd == "status":
        d = c.wifi_status(conn=s.board())
        for line in status_lines(d):
            print(line)
    elif args.wifi_cmd == "ap":
        d = c.wifi_ap(conn=s.board())
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


def status_lines(d):
    """wifi status as lines: the state by name, the network, the address."""
    state = d.get("state") or "unknown"
    detail = ", ".join(str(x) for x in (d.get("stat"), d.get("status"))
                       if x is not None)
    out = ["%-10s %s%s" % ("state", state,
                           " (%s)" % detail if detail else "")]
    ssid = d.get("ssid")
    if ssid:
        out.append("%-10s %s%s" % ("ssid", ssid, "" if d.get("connected")
                                   else " (being tried)"))
    else:
        out.append("%-10s %s" % ("ssid", "(none)"))
    if d.get("connected"):
        out.append("%-10s %s" % ("ip", d.get("ip")))
        if "rssi" in d:
            out.append("%-10s %s dBm" % ("rssi", d["rssi"]))
    out.append("%-10s %s" % ("active", d.get("active")))
    out.append("%-10s %s" % ("connected", d.get("connected")))
    return out


def _wifi_parser(p):
    device_option(p)
    sub = p.add_subparsers(dest="wifi_cmd")
    a = sub.add_parser("add", help="save a network in a slot")
    a.add_argument("ssid")
    a.add_argument("--password", help="(asked for when left out)")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin (one line)")
    a.add_argument("--slot", type=int, help="this slot (default: the "
                   "SSID's own, else the first free one)")
    device_option(a)
    device_option(sub.add_parser("list", help="the saved networks (no "
                                 "passwords)"))
    r = sub.add_parser("rm", help="forget a network")
    r.add_argument("ssid")
    r.add_argument("--slot", dest="slot_number", action="store_true",
                   help="SSID is a slot number")
    device_option(r)
    device_option(sub.add_parser("status", help="the station interface's "
                                 "state, network and address"))
    device_option(sub.add_parser(
        "ap", help="the set-up access point: its name and password (the "
        "board's own is made when it has none)"))


def _config(s, args):
    from . import configure as c
    if args.config_cmd == "get":
        v = c.config_get(args.key, conn=s.board())
        print(json.dumps(c.masked(v, args.key or ""), indent=2
                         if isinstance(v, (dict, list)) else None))
    elif args.config_cmd == "set":
        c.config_set(args.key, c.parse_value(args.value), conn=s.board())
        print("%s = %s" % (args.key, "***" if c.is_secret(args.key)
                           else json.dumps(c.parse_value(args.value))))
    elif args.config_cmd == "push" and args.url:
        if not args.reload:
            raise LwsToolError("config push --url: say --reload (the board "
                               "reloads what its lws-config mount takes)")
        pw = os.environ.get("LWSTOOL_PASSWORD")
        if pw is None:
            import getpass
            pw = getpass.getpass("password for %s: " % args.user)
        print(c.config_upload(args.file, args.url, args.user, pw,
                              args.cafile))
    elif args.config_cmd == "push":
        cfg = c.config_push(args.file, conn=s.board())
        print("pushed %s (%d keys)" % (args.file, len(cfg)))
        if args.reload:
            print("reset %s: main.py starts on it" % s.reset())
    else:
        raise LwsToolError("config: say get, set or push")


def _config_parser(p):
    device_option(p)
    sub = p.add_subparsers(dest="config_cmd")
    g = sub.add_parser("get", help="print lws.json, or one key")
    g.add_argument("key", nargs="?", help="a key; a.b for nested ones")
    device_option(g)
    s = sub.add_parser("set", help="set one key (VALUE as JSON, else text)")
    s.add_argument("key")
    s.add_argument("value")
    device_option(s)
    u = sub.add_parser("push", help="replace lws.json with a local file")
    u.add_argument("file")
    u.add_argument("--reload", action="store_true",
                   help="serve it now: with --url, reloaded by the board "
                   "without dropping anyone; over serial, main.py restarts "
                   "(a soft reset)")
    u.add_argument("--url", help="the board's lws-config mount, e.g. "
                   "http://192.168.4.1/lws-config (HTTP Basic as --user; "
                   "the password from LWSTOOL_PASSWORD or asked)")
    u.add_argument("--user", default="admin",
                   help="the mount's auth_file user (default admin)")
    u.add_argument("--cafile", help="the board's certificate, for https://")
    device_option(u)


def _repl(s, args):
    import subprocess
    return subprocess.call([sys.executable, "-m", "mpremote", "connect",
                            s.release(), "repl"])


def _monitor(s, args):
    from .board import monitor
    port = s.release()
    print("--- lwstool monitor on %s (read-only): Ctrl-] or Ctrl-C to "
          "leave ---" % port, file=sys.stderr, flush=True)
    monitor(port, baud=args.baud, timeout=args.time)
    print("\r\n--- left %s ---" % port, file=sys.stderr)


def _monitor_parser(p):
    device_option(p)
    p.add_argument("--baud", type=int, default=115200,
                   help="the console's baud rate (default 115200)")
    p.add_argument("--time", type=float, help="leave after this many "
                   "seconds")


def _run(s, args):
    try:
        code = open(args.file, "rb").read()
    except OSError as e:
        raise LwsToolError("cannot read %s: %s" % (args.file, e.strerror))
    b = s.board()
    t = b.transport
    from mpremote.transport import TransportError
    try:
        t.exec_raw_no_follow(code)
        if args.no_follow:
            # it runs on: say nothing more to the board
            s.detach()
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
    device_option(p)
    p.add_argument("file", help="a local .py file to run on the board")
    p.add_argument("--no-follow", action="store_true",
                   help="start it and leave it running")


def _reset(s, args):
    print("reset %s" % s.reset(hard=args.hard))


def _reset_parser(p):
    device_option(p)
    p.add_argument("--hard", action="store_true",
                   help="machine.reset() instead of a soft reset (a virtual "
                   "board starts its interpreter again)")


def _emulate(s, args):
    import signal
    from .vboard import VirtualBoard

    def console(data):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    vb = VirtualBoard(args.board, root=args.root, link=args.link,
                      heap=args.heap, with_firmware=args.with_firmware,
                      aps=args.aps, console=None if args.quiet else console,
                      stock=args.stock)

    def ready(path):
        if vb.note:
            print("lwstool: " + vb.note, file=sys.stderr, flush=True)
        print("virtual %s on %s%s (flash: %s, heap %s, %s)" % (
            args.board, path, " -> " + str(vb.link) if vb.link else "",
            vb.root, vb.heap, "its image: 32-bit, lws frozen in" if vb.exe
            else "stock MicroPython"), flush=True)
        print("access points: %s (%s)" % (
            ", ".join(vb.ap_names()) or "none", vb.aps_file()), flush=True)
        if not args.quiet:
            print("its console follows (lwstool emulate --quiet: not "
                  "shown); Ctrl-C stops the board", flush=True)
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
    p.add_argument("--board", default="esp32")
    p.add_argument("--root", help="the board's flash: a folder (default "
                   "build/vboard/BOARD)")
    p.add_argument("--link", help="make a symlink to the pty here")
    p.add_argument("--heap", help="heap size (default: the profile's "
                   "heap_budget for its image; twice that for --stock, "
                   "the unix port from PyPI being 64-bit)")
    p.add_argument("--stock", action="store_true",
                   help="stock MicroPython (the unix port from PyPI, no lws "
                   "in it: deploy it) instead of the board's custom image "
                   "(make unix32: 32-bit, lws frozen in), for esp8266 and "
                   "esp32")
    p.add_argument("--with-firmware", action="store_true",
                   help="with --stock: firmware/ on the module path, as if "
                   "frozen in (default: only what was deployed)")
    p.add_argument("--aps", help="fake access points (JSON) for the "
                   "simulated network (default: ROOT/fake_aps.json, made "
                   "with home, cafe-free and neighbours when missing)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="do not show the board's console")
    p.add_argument("--port-file", help="write the pty's path here when "
                   "ready")


def _test(s, args):
    from .testing import run
    return run(args.target, fleet=args.fleet, board=args.board,
               pytest_args=args.pytest_args, host=args.host)


def _test_parser(p):
    p.add_argument("--target", "-t", default="vboard",
                   help="vboard | serial:PORT | net:HOST[:PORT]")
    p.add_argument("--board", default="esp32")
    p.add_argument("--host", help="with serial:PORT, reach the board's "
                   "server here (default: the address the board reports)")
    p.add_argument("--fleet", type=int, default=0,
                   help="start N virtual boards, test them in parallel")
    p.add_argument("pytest_args", nargs="*",
                   help="passed on to pytest (after --)")


def _passwd(s, args):
    from . import passwd
    if args.delete:
        passwd.remove_user(args.file, args.user)
        print("%s: %s removed" % (args.file, args.user))
        return
    passwd.check_user(args.user)
    if args.password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass
        pw = getpass.getpass("password for %s: " % args.user)
        if getpass.getpass("again: ") != pw:
            raise LwsToolError("passwd: the two passwords differ")
    passwd.set_user(args.file, args.user, pw, args.iterations)
    print("%s: %s set" % (args.file, args.user))


def _passwd_parser(p):
    p.add_argument("file", help="the credentials file (a mount's "
                   "auth_file)")
    p.add_argument("user")
    p.add_argument("--delete", "-d", action="store_true",
                   help="remove the user")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin (one line)")
    p.add_argument("--iterations", type=int, default=1000,
                   help="PBKDF2 rounds (default 1000: some 0.2 s on an "
                   "ESP32, once per client)")


COMMANDS = {
    "devs": (_devs, lambda p: None, "list serial ports and running "
             "virtual boards"),
    "flash": (_flash, _flash_parser,
              "write MicroPython onto a board (esptool)"),
    "deploy": (_deploy, _deploy_parser,
               "copy the firmware to a board (only what changed)"),
    "wifi": (_wifi, _wifi_parser, "WLAN slots on the board: add, list, "
             "rm, status, ap"),
    "config": (_config, _config_parser, "the board's lws.json: get, set, "
               "push"),
    "repl": (_repl, device_option, "the board's REPL (mpremote)"),
    "monitor": (_monitor, _monitor_parser, "show the board's console "
                "(read-only; Ctrl-] or Ctrl-C to leave)"),
    "run": (_run, _run_parser, "run a local file on the board"),
    "reset": (_reset, _reset_parser, "soft-reset the board (main.py runs)"),
    "emulate": (_emulate, _emulate_parser,
                "a virtual board: the unix port on a pty"),
    "test": (_test, _test_parser, "integration tests against a board"),
    "passwd": (_passwd, _passwd_parser, "add, change or remove a user of "
               "a basic-auth mount's credentials file"),
    "gzip": (_gzip, _gzip_parser, "write x.gz beside each text file of a "
             "folder (precompressed serving; reproducible)"),
    "zip": (_zip, _zip_parser, "pack a folder into a ZIP archive to mount "
            "(reproducible)"),
}
