"""make bench: microlws against Microdot 2.x and a raw socket loop, in one run.

Every server runs on the same MicroPython unix port, one at a time, and
serves the same file (firmware/www/index.html). Ours runs twice: firmware
imported from .py, and compiled with mpy-cross into build/mpy/.

    python bench/bench.py [--quick] [--only ours|microdot|raw]
                          [--client wrk|python] [--no-heap-search]

Prints a table with ratios to each peer and the targets, and writes a JSON
copy to bench/results/.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "host_tools"))
sys.path.insert(0, str(HERE))
from lwstool import mpy, unixport  # noqa: E402
import clients  # noqa: E402

BUILD = REPO / "build"
MPY = BUILD / "mpy"
LIB = BUILD / "bench" / "lib"
LIB_MPY = BUILD / "bench" / "lib-mpy"
LOGS = BUILD / "bench" / "logs"
RESULTS = HERE / "results"
STATIC = "/index.html"
STATIC_FILE = unixport.FIRMWARE / "www" / "index.html"

# name -> how to run it: ours via lwstool.unixport, peers as bench/peers/ apps
SERVERS = {
    "ours-py": {"group": "ours", "path": unixport.FIRMWARE,
                "script": HERE / "peers" / "lws_app.py", "heap_url": "/heap"},
    "ours-mpy": {"group": "ours", "path": MPY,
                 "script": HERE / "peers" / "lws_app.py", "heap_url": "/heap"},
    "microdot-py": {"group": "microdot", "path": LIB,
                    "script": HERE / "peers" / "microdot_app.py",
                    "heap_url": "/heap"},
    "microdot-mpy": {"group": "microdot", "path": LIB_MPY,
                     "script": HERE / "peers" / "microdot_app.py",
                     "heap_url": "/heap"},
    "raw": {"group": "raw", "script": HERE / "peers" / "raw_loop.py",
            "path": None, "heap_url": "/heap"},
}

TARGET_RATIO = 0.70
TARGET_IDLE_HEAP = 20 * 1024
TARGET_HEAPSIZE_K = 40


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# -- building ---------------------------------------------------------------

def build_mpy():
    """firmware/ -> build/mpy/: .py compiled with mpy-cross, www/ copied."""
    mpy.build(MPY)


def install_microdot():
    """The microdot package as pip installed it, into build/bench/lib/ as
    .py and into build/bench/lib-mpy/ compiled."""
    spec = importlib.util.find_spec("microdot")
    if spec is None or not spec.origin:
        raise SystemExit("bench: microdot is not installed (make setup)")
    for d in (LIB, LIB_MPY):
        shutil.rmtree(d / "microdot", ignore_errors=True)
        (d / "microdot").mkdir(parents=True)
    for f in Path(spec.origin).parent.glob("*.py"):
        shutil.copy(f, LIB / "microdot")
    mpy.build(LIB_MPY / "microdot", src=LIB / "microdot", only_changed=False)


def find_wrk():
    """wrk, installed from Debian when missing; None if it cannot be had."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get"):
        for cmd in (["apt-get", "install", "-y", "-qq", "wrk"],
                    ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "wrk"]):
            log("bench: " + " ".join(cmd))
            try:
                subprocess.run(cmd, timeout=300, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired):
                break
            if shutil.which("wrk"):
                return shutil.which("wrk")
    log("bench: no wrk; using the Python load client")
    return None


# -- running one server -----------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(name, port, heap, out):
    spec = SERVERS[name]
    argv = unixport.command(spec["script"], [port, STATIC_FILE], heap)
    env = unixport.environment()
    # .frozen holds the port's asyncio, which Microdot needs
    env["MICROPYPATH"] = ".frozen" + (":%s" % spec["path"] if spec["path"]
                                      else "")
    return subprocess.Popen(argv, env=env, stdout=out,
                            stderr=subprocess.STDOUT)


def wait_ready(p, port, timeout=15.0):
    """True once the server accepts a connection; False if it exits first."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if p.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(p):
    """SIGINT (a clean shutdown), then SIGKILL if it lingers."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(5)
            return
        except subprocess.TimeoutExpired:
            p.kill()
    p.wait(5)


def last_line(path):
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


@contextlib.contextmanager
def running(name, heap=None):
    """Start a server on a free port; yields the port, or None if it did
    not come up (its log tells why). Always stops it."""
    port = free_port()
    logfile = LOGS / ("%s-%s.log" % (name, heap or "default"))
    with open(logfile, "wb") as out:
        p = launch(name, port, heap, out)
        try:
            yield (port if wait_ready(p, port) else None), p
        finally:
            stop(p)


# -- measurements -----------------------------------------------------------

def parse_wrk(text):
    def num(pattern, default=0.0):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else default
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", text, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", text)
    return {"rps": num(r"^Requests/sec:\s+([\d.]+)"),
            "requests": int(num(r"^\s+(\d+) requests in")),
            "p99_ms": (float(p99.group(1)) * scale[p99.group(2)]
                       if p99 else None),
            "errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "non2xx": int(num(r"Non-2xx or 3xx responses:\s+(\d+)"))}


def load(opts, port, close):
    """Requests/s and p99 latency for the static file, keep-alive or not:
    the median of opts.repeat runs (by req/s), with every run's req/s."""
    runs = []
    for _ in range(opts.repeat):
        runs.append(load_once(opts, port, close))
        time.sleep(0.3)
    runs.sort(key=lambda m: m["rps"])
    r = dict(runs[len(runs) // 2])
    r["runs_rps"] = [round(m["rps"]) for m in runs]
    return r


def load_once(opts, port, close):
    if opts.wrk:
        cmd = [opts.wrk, "-t1", "-c%d" % opts.conns, "-d%gs" % opts.seconds,
               "--latency", "--timeout", "2s"]
        if close:
            cmd += ["-H", "Connection: close"]
        cmd.append("http://127.0.0.1:%d%s" % (port, STATIC))
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=opts.seconds + 30)
        return parse_wrk(r.stdout)
    return clients.load(port, STATIC, opts.seconds, opts.conns, close)


def measure(name, opts, expected):
    """One start of the server: heap idle, heap with 50 connections, load
    with and without keep-alive, heap after the load."""
    r = {}
    with running(name) as (port, _):
        if port is None:
            r["error"] = "did not start: " + last_line(
                LOGS / ("%s-default.log" % name))
            return r
        try:
            measure_on(r, port, SERVERS[name]["heap_url"], opts, expected)
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            r["error"] = "measuring failed: %r" % e
    return r


def measure_on(r, port, heap_url, opts, expected):
    """Fill r from the server on port (what is measured before an error
    stays in r)."""
    r["heap_idle"] = clients.heap(port, heap_url)
    status, body = clients.get(port, STATIC)
    r["static_ok"] = status == 200 and body == expected
    r["heap_conns"], r["conns_open"] = clients.heap_with_conns(
        port, STATIC, heap_url, opts.open_conns)
    time.sleep(0.2)
    r["keepalive"] = load(opts, port, close=False)
    time.sleep(0.5)
    r["close"] = load(opts, port, close=True)
    time.sleep(0.5)
    r["heap_after"] = clients.heap(port, heap_url)


def trial(name, k, opts, expected):
    """Does the server, with -X heapsize=kK, serve 10 concurrent clients?"""
    with running(name, "%dK" % k) as (port, p):
        if port is None:
            return False, "did not start: " + last_line(
                LOGS / ("%s-%dK.log" % (name, k)))
        good, detail = clients.serve_clients(
            port, STATIC, expected, opts.clients, opts.gets, opts.fresh,
            opts.deadline, alive=lambda: p.poll() is None)
        if p.poll() is not None:
            detail += "; server died: " + last_line(
                LOGS / ("%s-%dK.log" % (name, k)))
        return good, detail


def min_heap(name, opts, expected):
    """Bisect the smallest -X heapsize (K) that passes trial(); then confirm
    it passes again (heap fragmentation makes this not quite monotonic)."""
    sizes = list(range(opts.heap_lo, opts.heap_hi + 1, opts.heap_step))
    tried = {}

    def ok(i):
        k = sizes[i]
        good, detail = trial(name, k, opts, expected)
        tried.setdefault(k, []).append(good)
        log("  %-8s %4dK  %s  %s" % (name, k, "ok  " if good else "FAIL",
                                      detail))
        return good

    hi = len(sizes) - 1
    if not ok(hi):
        return {"min_k": None, "tried": tried}
    lo = -1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    while hi < len(sizes) - 1 and not ok(hi):
        hi += 1
    return {"min_k": sizes[hi], "tried": tried}


# -- the report ---------------------------------------------------------------

def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "K":
        return "%.1f" % (v / 1024)
    if unit == "ms":
        return "%.2f" % v
    return "%d" % round(v)


def load_field(key, field):
    return lambda r: (r.get(key) or {}).get(field)


def field(key):
    return lambda r: r.get(key)


ROWS = [  # label, getter, unit, higher is better (None: no ratio)
    ("keep-alive req/s", load_field("keepalive", "rps"), "", True),
    ("keep-alive p99 ms", load_field("keepalive", "p99_ms"), "ms", False),
    ("close req/s", load_field("close", "rps"), "", True),
    ("close p99 ms", load_field("close", "p99_ms"), "ms", False),
    ("heap idle KB", field("heap_idle"), "K", False),
    ("heap 50 conns KB", field("heap_conns"), "K", False),
    ("  of 50 still open", field("conns_open"), "", None),
    ("heap after load KB", field("heap_after"), "K", False),
    ("min heapsize K", load_field("min_heap", "min_k"), "", False),
]


# ratio columns: each build of ours against the like-built Microdot, and
# against the raw loop
PAIRS = [("ours-py", "microdot-py"), ("ours-mpy", "microdot-mpy"),
         ("ours-py", "raw"), ("ours-mpy", "raw")]


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def table(res):
    """The values, one column per server; then the ratios ours/peer."""
    names = [n for n in SERVERS if n in res]
    pairs = [(o, p) for o, p in PAIRS if o in res and p in res]
    head = "%-20s" % "" + "".join("%13s" % n for n in names)
    lines = [head, "-" * len(head)]
    for label, get, unit, _ in ROWS:
        lines.append("%-20s" % label + "".join(
            "%13s" % fmt(get(res[n]), unit) for n in names))
    if not pairs:
        return "\n".join(lines)
    head = "%-20s" % "ours/peer" + "".join(
        "%13s" % ("%s/%s" % (o[5:], p.replace("microdot", "md")))
        for o, p in pairs)
    lines += ["", head, "-" * len(head)]
    for label, get, unit, better in ROWS:
        if better is not None:
            lines.append("%-20s" % label + "".join(
                "%13s" % ratio(get(res[o]), get(res[p])) for o, p in pairs))
    return "\n".join(lines)


def targets(res):
    """(text, value, PASS/MISS) for each target we can judge from res."""
    out = []
    raw = res.get("raw", {})
    for o in ("ours-py", "ours-mpy"):
        if o not in res or not raw:
            continue
        for key, what in (("keepalive", "keep-alive"), ("close", "close")):
            a = res[o].get(key, {}).get("rps")
            b = raw.get(key, {}).get("rps")
            if a is not None and b:
                out.append(("%s %s req/s >= 70%% of raw" % (o, what),
                            "%.0f%%" % (100 * a / b),
                            a / b >= TARGET_RATIO))
    mpy = res.get("ours-mpy", {})
    if mpy.get("heap_idle") is not None:
        out.append(("ours-mpy idle heap <= 20 KB", fmt(mpy["heap_idle"], "K")
                    + " KB", mpy["heap_idle"] <= TARGET_IDLE_HEAP))
    if "at_40k" in mpy:
        out.append(("ours-mpy serves 10 clients at heapsize=40K",
                    mpy["at_40k"][1], mpy["at_40k"][0]))
    return out


def report(res, opts, took):
    print()
    print("microlws bench: %s, %d connections, median of %d x %gs per "
          "load, static %s (%d B), load average %s" % (
              "wrk" if opts.wrk else "python client", opts.conns, opts.repeat,
              opts.seconds, STATIC, STATIC_FILE.stat().st_size,
              " ".join("%.1f" % x for x in os.getloadavg())))
    print("ratios are ours/peer (req/s: higher is better; ms, KB, K: lower "
          "is better)")
    print()
    print(table(res))
    notes = []
    for n, r in res.items():
        if r.get("error"):
            notes.append("%s: %s" % (n, r["error"]))
        if r.get("static_ok") is False:
            notes.append("%s: static file answer differs" % n)
        for key in ("keepalive", "close"):
            m = r.get(key) or {}
            if m.get("errors") or m.get("non2xx"):
                notes.append("%s %s: %d socket errors, %d non-2xx" % (
                    n, key, m["errors"], m["non2xx"]))
        if r.get("min_heap") and r["min_heap"]["min_k"] is None:
            notes.append("%s: fails 10 clients even at %dK" % (
                n, opts.heap_hi))
    if notes:
        print()
        print("notes:")
        for t in notes:
            print("  " + t)
    tg = targets(res)
    if tg:
        print()
        print("targets:")
        for text, value, good in tg:
            value = value if len(value) <= 40 else value[:37] + "..."
            print("  %-46s %-40s %s" % (text, value,
                                        "PASS" if good else "MISS"))
    print()
    print("took %.0f s" % took, flush=True)


def save(res, opts, took):
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    mp = subprocess.run([unixport.micropython(), "-c",
                         "import sys; print(sys.version)"],
                        capture_output=True, text=True, timeout=30)
    doc = {"time": stamp, "commit": commit, "took_s": round(took, 1),
           "micropython": mp.stdout.strip(),
           "client": "wrk" if opts.wrk else "python",
           "options": {k: v for k, v in vars(opts).items() if k != "wrk"},
           "static": STATIC, "static_bytes": STATIC_FILE.stat().st_size,
           "results": res,
           "targets": [{"target": t, "value": v, "pass": g}
                       for t, v, g in targets(res)]}
    path = RESULTS / ("bench-%s.json" % stamp)
    path.write_text(json.dumps(doc, indent=1, default=str))
    shutil.copy(path, RESULTS / "latest.json")
    log("bench: wrote %s" % path.relative_to(REPO))


# -- main ------------------------------------------------------------------

def options(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short durations, coarse heap steps (a smoke run)")
    ap.add_argument("--only", choices=("ours", "microdot", "raw"),
                    action="append", help="measure only these (repeatable)")
    ap.add_argument("--client", choices=("wrk", "python"), default="wrk",
                    help="load generator (python when wrk cannot be had)")
    ap.add_argument("--no-heap-search", action="store_true",
                    help="skip the -X heapsize bisection")
    opts = ap.parse_args(argv)
    opts.conns = 10
    opts.open_conns = 50
    opts.seconds = 1.0 if opts.quick else 5.0
    opts.repeat = 1 if opts.quick else 3
    opts.clients, opts.gets, opts.fresh = 10, 20, 2
    opts.deadline = 5.0 if opts.quick else 10.0
    opts.heap_lo, opts.heap_hi = 8, 256
    opts.heap_step = 8 if opts.quick else 2
    return opts


def main(argv=None):
    opts = options(argv)
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    LOGS.mkdir(parents=True, exist_ok=True)
    names = [n for n in SERVERS
             if not opts.only or SERVERS[n]["group"] in opts.only]
    opts.wrk = find_wrk() if opts.client == "wrk" else None
    if "ours-mpy" in names:
        build_mpy()
    if "microdot-py" in names:
        install_microdot()
    expected = STATIC_FILE.read_bytes()
    res = {}
    for n in names:
        log("bench: %s: heap and load" % n)
        res[n] = measure(n, opts, expected)
    if not opts.no_heap_search:
        for n in names:
            log("bench: %s: smallest -X heapsize for %d clients" % (
                n, opts.clients))
            res[n]["min_heap"] = min_heap(n, opts, expected)
        if "ours-mpy" in names:
            good, detail = trial("ours-mpy", TARGET_HEAPSIZE_K, opts,
                                 expected)
            res["ours-mpy"]["at_40k"] = [good, detail]
    took = time.monotonic() - t0
    report(res, opts, took)
    save(res, opts, took)


if __name__ == "__main__":
    main()
