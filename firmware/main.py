# main.py: bring the board up from lws.json (lws.board does it: with lws
# frozen into the board's image its code stays in flash, while this file
# is compiled into the heap at every boot, so it stays small).
#
# Safe mode: boot.py counts boots in boot_count and this file clears it
# once the server listens. After 3 boots that never got there, or while a
# file named safe_mode exists, nothing is started and the REPL stays free:
# fix lws.json or the deploy, then os.remove("boot_count").
import os

_MAX_FAILED_BOOTS = 3


def safe_mode():
    """Why nothing may start, or None."""
    try:
        os.stat("safe_mode")
        return "the file safe_mode exists (os.remove('safe_mode') to leave)"
    except OSError:
        pass
    try:
        with open("boot_count") as f:
            n = int(f.read().strip() or 0)
    except (OSError, ValueError):
        n = 0
    if n > _MAX_FAILED_BOOTS:
        return ("%d boots in a row did not get the server up: fix lws.json "
                "or the deploy, then os.remove('boot_count')" % (n - 1))
    return None


def booted():
    """The server is up: this boot counts as good."""
    try:
        os.remove("boot_count")
    except OSError:
        pass


def main():
    reason = safe_mode()
    if reason:
        print("main: SAFE MODE, nothing started: %s" % reason)
        return None
    try:
        from lws import board
    except ImportError as e:
        print("main: no lws on this board (%s): run lwstool deploy" % e)
        return None
    return board.run(booted)


try:
    main()
except Exception as e:  # never crash into a boot loop: the REPL stays
    try:
        import sys
        print("main: failed:", repr(e))
        sys.print_exception(e)
    except Exception:
        pass
