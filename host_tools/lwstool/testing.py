"""`lwstool test`: the integration suite (lwstool/boardtests) against a
board, or against a fleet of virtual boards in parallel.

    run("vboard")                      # one virtual board
    run("serial:/dev/ttyUSB0")         # a deployed board on a port
    run("net:192.168.1.50:80")         # only the network checks
    run("vboard", fleet=4)             # four virtual boards at once

The suite is plain pytest; the target reaches it as $LWSTOOL_TARGET and
the profile as $LWSTOOL_BOARD. With a fleet each board's run has its own
process, log and JUnit report, and a table of the results closes the run.
"""
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from .errors import LwsToolError

SUITE = Path(__file__).resolve().parent / "boardtests"


def _argv(extra=()):
    return [sys.executable, "-m", "pytest", str(SUITE), "-p",
            "no:cacheprovider", "-o", "timeout=90"] + list(extra)


def _env(target, board):
    env = dict(os.environ)
    env["LWSTOOL_TARGET"] = target
    env["LWSTOOL_BOARD"] = board
    host_tools = str(SUITE.parents[1])
    env["PYTHONPATH"] = host_tools + (":" + env["PYTHONPATH"]
                                      if env.get("PYTHONPATH") else "")
    return env


def check_target(target):
    kind = target.partition(":")[0]
    if kind not in ("vboard", "serial", "net") or \
            (kind != "vboard" and not target.partition(":")[2]):
        raise LwsToolError("--target: vboard | serial:PORT | "
                           "net:HOST[:PORT], not %r" % target)


def run(target="vboard", fleet=0, board="esp32", pytest_args=(),
        host=None):
    """Run the suite; returns pytest's exit status (0 all passed). host:
    where a serial board's server is reached (default: the address the
    board reports)."""
    check_target(target)
    if host:
        os.environ["LWSTOOL_HOST"] = host
    if fleet:
        if not target.startswith("vboard"):
            raise LwsToolError("--fleet starts virtual boards: it goes "
                               "with --target vboard")
        return run_fleet(fleet, board, pytest_args)
    return subprocess.call(_argv(["-q"] + list(pytest_args)),
                           env=_env(target, board))


def _summary(xml):
    """(tests, failures, errors, skipped, seconds) from a JUnit report."""
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    g = lambda k: int(suite.get(k, 0))  # noqa: E731
    return (g("tests"), g("failures"), g("errors"), g("skipped"),
            float(suite.get("time", 0)))


def run_fleet(n, board="esp32", pytest_args=(), out=print):
    """n virtual boards, each with its own run of the suite, in parallel;
    prints a per-board table. Returns 0 when every board passed."""
    work = Path(tempfile.mkdtemp(prefix="lwstool-fleet-"))
    runs = []
    for i in range(n):
        xml, log = work / ("board-%d.xml" % i), work / ("board-%d.log" % i)
        f = open(log, "wb")
        p = subprocess.Popen(_argv(["-q", "--junitxml", str(xml)] +
                                   list(pytest_args)),
                             env=_env("vboard", board), stdout=f,
                             stderr=subprocess.STDOUT)
        runs.append((i, p, xml, log, f, time.monotonic()))
    out("%d virtual %s boards under test (logs in %s)" % (n, board, work))
    rows, worst = [], 0
    for i, p, xml, log, f, t0 in runs:
        code = p.wait()
        f.close()
        s = _summary(xml)
        worst = max(worst, code)
        if s is None:
            rows.append(("board-%d" % i, "-", "-", "-", "-",
                         "%.1f" % (time.monotonic() - t0),
                         "ERROR (exit %d)" % code))
            continue
        tests, fails, errs, skips, secs = s
        passed = tests - fails - errs - skips
        rows.append(("board-%d" % i, passed, fails + errs, skips, tests,
                     "%.1f" % secs, "ok" if code == 0 else "FAILED"))
    head = ("board", "passed", "failed", "skipped", "tests", "secs",
            "result")
    widths = [max(len(str(r[k])) for r in rows + [head])
              for k in range(len(head))]
    line = lambda r: "  ".join(str(v).ljust(w)  # noqa: E731
                               for v, w in zip(r, widths)).rstrip()
    out(line(head))
    out(line(["-" * w for w in widths]))
    for r in rows:
        out(line(r))
    for (i, p, xml, log, f, t0), r in zip(runs, rows):
        if r[-1] != "ok":
            out("--- board-%d (%s) ---" % (i, log))
            out(log.read_text(errors="replace")[-3000:])
    return 0 if worst == 0 else 1
