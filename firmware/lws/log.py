"""lwsl-style logging: levels as a bitmask, lws's timestamp prefix."""
import sys
import time

ERR = const(1)
WARN = const(2)
NOTICE = const(4)
INFO = const(8)
DEBUG = const(16)

#: the levels shown: errors, warnings and notices, as lws
level = 7


def set_level(mask):
    global level
    level = int(mask)


def timestamp():
    """'[2026/11/25 14:52:52:8386]': lws's format, 1/10000 s."""
    try:
        ns = time.time_ns()
        t = time.localtime(ns // 1000000000)
        frac = ns // 100000 % 10000
    except AttributeError:  # ports without time_ns
        t = time.localtime()
        frac = time.ticks_ms() % 1000 * 10
    return "[%04d/%02d/%02d %02d:%02d:%02d:%04d]" % (
        t[0], t[1], t[2], t[3], t[4], t[5], frac)


def log(lvl, msg, *args):
    if level & lvl:
        if args:
            msg = msg % args
        name = ("ERR", "WARN", "NOTICE", "INFO", "DEBUG")[
            (1, 2, 4, 8, 16).index(lvl)]
        sys.stderr.write("%s %s: %s\n" % (timestamp(), name, msg))


def err(msg, *args):
    log(ERR, msg, *args)


def warn(msg, *args):
    log(WARN, msg, *args)


def notice(msg, *args):
    log(NOTICE, msg, *args)


def info(msg, *args):
    if level & INFO:
        log(INFO, msg, *args)


def debug(msg, *args):
    if level & DEBUG:
        log(DEBUG, msg, *args)


def exc(e, msg, *args):
    """An error with its traceback (a crashed callback)."""
    if level & ERR:
        log(ERR, msg, *args)
        sys.print_exception(e, sys.stderr)
