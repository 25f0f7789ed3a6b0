"""lwsl-style logging: levels as a bitmask, lws timestamp prefix."""
import sys
import time

ERR = const(1)
WARN = const(2)
NOTICE = const(4)
INFO = const(8)
DEBUG = const(16)
#: default like lws: errors, warnings and notices
DEFAULT = const(7)

_NAMES = ((ERR, "E", "ERR"), (WARN, "W", "WARN"), (NOTICE, "N", "NOTICE"),
          (INFO, "I", "INFO"), (DEBUG, "D", "DEBUG"))
level = DEFAULT


def set_level(mask):
    global level
    level = int(mask)


def timestamp():
    """Return lws's '[2026/11/25 14:52:52:8386]' (1/10000 s)."""
    try:
        ns = time.time_ns()
        t = time.localtime(ns // 1000000000)
        frac = (ns // 100000) % 10000
    except AttributeError:  # ports without time_ns
        t = time.localtime()
        frac = (time.ticks_ms() % 1000) * 10
    return "[%04d/%02d/%02d %02d:%02d:%02d:%04d]" % (t[0], t[1], t[2], t[3],
                                                     t[4], t[5], frac)


def _emit(lvl, msg, args):
    if args:
        msg = msg % args
    for bit, _, name in _NAMES:
        if bit == lvl:
            break
    sys.stderr.write("%s %s: %s\n" % (timestamp(), name, msg))


def err(msg, *args):
    if level & ERR:
        _emit(ERR, msg, args)


def warn(msg, *args):
    if level & WARN:
        _emit(WARN, msg, args)


def notice(msg, *args):
    if level & NOTICE:
        _emit(NOTICE, msg, args)


def info(msg, *args):
    if level & INFO:
        _emit(INFO, msg, args)


def debug(msg, *args):
    if level & DEBUG:
        _emit(DEBUG, msg, args)


def exc(e, msg, *args):
    """Log an error with its traceback (a crashed callback)."""
    if level & ERR:
        _emit(ERR, msg, args)
        sys.print_exception(e, sys.stderr)
