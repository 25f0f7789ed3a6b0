"""make bench: microlws against Microdot 2.x and a raw socket loop, in one run.

Every server runs on the same MicroPython unix port, one at a time, serves
the same small file (build/bench/static/small.html, 512 bytes, written
here) and echoes WebSocket messages at /echo. Ours runs twice: firmware
imported from .py, and compiled with mpy-cross into build/mpy/.

HTTP: requests/s with and without keep-alive, heap idle and with 50
connections, the smallest -X heapsize serving 10 clients; a routed JSON
GET (/api/7: lws.app against a Microdot route), keep-alive. WebSocket:
32-byte echo round trips/s on 1 and on 10 connections, 64 KiB echo MiB/s,
heap per open WebSocket, the smallest -X heapsize serving HTTP and 10
WebSocket echo clients at once (searched for the .mpy builds and raw).

And on the board-faithful interpreter (make unix32: the unix port built
32-bit, objects the size of a board's, lws frozen in): heap idle, per HTTP
connection and per WebSocket, and the smallest -X heapsize serving HTTP +
10 WebSocket clients, for ours and for Microdot as .mpy; what a board with
lws frozen needs.

And the service loop under asyncio (bench/loop_bench.py): latency and CPU
per request of asyncio.run(ctx.serve()), and of the old service(0)+sleep
loop, beside ctx.run()'s.

    python bench/bench.py [--quick] [--only ours|microdot|raw|board32]
                          [--skip http|ws] [--client wrk|python]
                          [--no-heap-search] [--heap SIZE]

The WebSocket load client is bench/clients.py (raw sockets, prebuilt
masked frames); the table shows the CPU share of server and client during
each WebSocket load, so a client that limits would show.

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
STATIC = "/small.html"
STATIC_FILE = BUILD / "bench" / "static" / "small.html"
STATIC_BYTES = 512
# the routed JSON GET (lws.app at /api against a Microdot route)
ROUTED = "/api/7"
ROUTED_BODY = {"id": 7, "name": "item 7"}

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
    # the board-faithful interpreter (make unix32): 32-bit objects, lws
    # frozen in (the esp32 selection), Microdot as .mpy on the same one
    "ours-32": {"group": "board32", "path": None, "board32": "esp32",
                "script": HERE / "peers" / "lws_app.py", "heap_url": "/heap"},
    "microdot-32": {"group": "board32", "path": LIB_MPY, "board32": "esp32",
                    "script": HERE / "peers" / "microdot_app.py",
                    "heap_url": "/heap"},
}

# the server's budget (ours from .mpy): CPU per operation against the raw
# loop's in the same run, and heap
TARGET_CPU = (("keepalive", "keep-alive GET", 2.9),
              ("ws_echo10", "32 B WebSocket echo, 10 connections", 1.4),
              ("ws_bulk", "64 KiB WebSocket echo", 1.5))
TARGET_CLOSE_US = 35      # CPU per request, a new connection each
TARGET_IDLE_HEAP = 40 * 1024
TARGET_WS_CONN = 600      # heap bytes per open WebSocket
TARGET_WS_HEAPSIZE_K = 60

CLIENT_BUSY = 0.90
# ... and a server less busy than this under a load that keeps it busy
# (10 connections; alone on the machine each server is above 90%) was
# short of CPU
SERVER_IDLE = 0.80


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# -- building ---------------------------------------------------------------

def write_static():
    """The static file every server serves: STATIC_BYTES of fixed HTML."""
    head = (b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            b"<title>bench</title></head>\n<body>\n<p>")
    tail = b"</p>\n</body></html>\n"
    words = b"the quick brown fox jumps over the lazy dog "
    fill = STATIC_BYTES - len(head) - len(tail)
    body = head + (words * (fill // len(words) + 1))[:fill] + tail
    assert len(body) == STATIC_BYTES
    STATIC_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not STATIC_FILE.exists() or STATIC_FILE.read_bytes() != body:
        STATIC_FILE.write_bytes(body)
    return body


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
    exe = None
    if spec.get("board32"):
        from lwstool import unix32
        exe = unix32.find(spec["board32"])
    argv = unixport.command(spec["script"], [port, STATIC_FILE], heap,
                            exe=exe)
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


def cpu_median(r):
    """r from median_of, with the median of its runs' server CPU per
    operation."""
    cpus = sorted(m["cpu_us"] for m in r.pop("all", ()) if "cpu_us" in m)
    if cpus:
        r["cpu_us"] = cpus[len(cpus) // 2]
    return r


def median_of(opts, once, key):
    """The median of opts.repeat runs of once() (by key), with every run's
    key value."""
    runs = []
    for _ in range(opts.repeat):
        runs.append(once())
        time.sleep(0.3)
    runs.sort(key=lambda m: m[key])
    r = dict(runs[len(runs) // 2])
    r["runs"] = [round(m[key], 1) for m in runs]
    r["all"] = runs
    return r


def load(opts, port, close, pid=None, path=STATIC):
    """Requests/s and p99 latency for the static file (or path), keep-alive
    or not: the median of opts.repeat runs (by req/s); with pid, the
    server's CPU per request (the median of the runs': steadier than the
    rates)."""
    def once():
        c0 = cpu_seconds(pid) if pid else None
        m = load_once(opts, port, close, path)
        c1 = cpu_seconds(pid) if pid else None
        if c0 is not None and c1 is not None and m.get("requests"):
            m["cpu_us"] = (c1 - c0) * 1e6 / m["requests"]
        return m
    return cpu_median(median_of(opts, once, "rps"))


def load_once(opts, port, close, path=STATIC):
    if opts.wrk:
        cmd = [opts.wrk, "-t1", "-c%d" % opts.conns, "-d%gs" % opts.seconds,
               "--latency", "--timeout", "2s"]
        if close:
            cmd += ["-H", "Connection: close"]
        cmd.append("http://127.0.0.1:%d%s" % (port, path))
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=opts.seconds + 30)
        return parse_wrk(r.stdout)
    return clients.load(port, path, opts.seconds, opts.conns, close)


def measure(name, opts, expected):
    """One start of the server: HTTP (heap idle, heap with 50 connections,
    load with and without keep-alive, heap after the load), then WebSocket
    (heap per connection, echo round trips, 64 KiB echoes)."""
    r = {}
    with running(name, opts.heap) as (port, p):
        if port is None:
            r["error"] = "did not start: " + last_line(
                LOGS / ("%s-%s.log" % (name, opts.heap or "default")))
            return r
        heap_url = SERVERS[name]["heap_url"]
        if SERVERS[name]["group"] == "board32":
            # heap figures only: speed on this build says nothing new
            r["heap_idle"] = clients.heap(port, heap_url)
            r["heap_conns"], r["conns_open"] = clients.heap_with_conns(
                port, STATIC, heap_url, opts.open_conns)
            r["conn_heap"] = (r["heap_conns"] - r["heap_idle"]) / \
                r["conns_open"] if r["conns_open"] else None
            time.sleep(0.3)
            r["ws_heap0"], r["ws_heap"], r["ws_open"] = \
                clients.ws_heap_with_conns(port, heap_url, opts.open_conns)
            r["ws_conn_heap"] = (r["ws_heap"] - r["ws_heap0"]) / max(
                1, r["ws_open"])
            return r
        if "http" not in opts.skip:
            try:
                measure_http(r, port, heap_url, opts, expected, p.pid)
            except (OSError, ValueError, subprocess.SubprocessError) as e:
                r["error"] = "measuring HTTP failed: %r" % e
        if "ws" not in opts.skip:
            measure_ws(r, port, heap_url, opts, p.pid)
    return r


def measure_http(r, port, heap_url, opts, expected, pid=None):
    """Fill r from the server on port (what is measured before an error
    stays in r)."""
    r["heap_idle"] = clients.heap(port, heap_url)
    status, body = clients.get(port, STATIC)
    r["static_ok"] = status == 200 and body == expected
    r["heap_conns"], r["conns_open"] = clients.heap_with_conns(
        port, STATIC, heap_url, opts.open_conns)
    time.sleep(0.2)
    r["keepalive"] = load(opts, port, close=False, pid=pid)
    time.sleep(0.5)
    r["close"] = load(opts, port, close=True, pid=pid)
    time.sleep(0.5)
    measure_routed(r, port, opts, pid)
    r["heap_after"] = clients.heap(port, heap_url)


def measure_routed(r, port, opts, pid=None):
    """The routed JSON GET, keep-alive: lws.app against Microdot."""
    status, body = clients.get(port, ROUTED)
    try:
        r["routed_ok"] = status == 200 and json.loads(body) == ROUTED_BODY
    except ValueError:
        r["routed_ok"] = False
    r["routed"] = load(opts, port, close=False, pid=pid, path=ROUTED)
    time.sleep(0.5)


def cpu_seconds(pid):
    """CPU time (user + system) the process pid has used, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def with_server_cpu(pid, fn):
    """fn()'s result, with the share of the time the server was on a CPU
    (near 1: the server is what limits; well below: the client or the
    round trip is)."""
    c0 = cpu_seconds(pid)
    r = fn()
    c1 = cpu_seconds(pid)
    if c0 is not None and c1 is not None and r.get("seconds"):
        r["server_cpu"] = round((c1 - c0) / r["seconds"], 2)
        if r.get("count"):
            r["cpu_us"] = (c1 - c0) * 1e6 / r["count"]
    return r


def measure_ws(r, port, heap_url, opts, pid):
    """Fill r with the WebSocket measurements; each that fails leaves an
    error in r["ws_errors"] and the others still run."""
    errors = r.setdefault("ws_errors", [])
    secs = opts.ws_seconds

    def step(what, fn):
        try:
            fn()
        except (OSError, ValueError) as e:
            errors.append("%s: %r" % (what, e))
        time.sleep(0.3)

    def heap_step():
        r["ws_heap0"], r["ws_heap"], r["ws_open"] = \
            clients.ws_heap_with_conns(port, heap_url, opts.open_conns)
        r["ws_conn_heap"] = (r["ws_heap"] - r["ws_heap0"]) / opts.open_conns

    step("heap per WebSocket", heap_step)
    for n in (1, opts.conns):
        step("echo on %d" % n, lambda: r.__setitem__(
            "ws_echo%d" % n, cpu_median(median_of(opts, lambda:
                with_server_cpu(pid, lambda: clients.ws_echo_load(
                    port, secs, n, opts.ws_size)), "rate"))))
    step("64 KiB echo", lambda: r.__setitem__("ws_bulk", cpu_median(
        median_of(opts, lambda: with_server_cpu(pid, lambda: clients.ws_bulk(
            port, secs, opts.ws_bulk)), "mib_s"))))
    if not errors:
        del r["ws_errors"]


def http_trial(port, p, opts, expected):
    """10 HTTP clients at once (see clients.serve_clients)."""
    return clients.serve_clients(
        port, STATIC, expected, opts.clients, opts.gets, opts.fresh,
        opts.deadline, alive=lambda: p.poll() is None)


def ws_trial(port, p, opts, expected):
    """10 WebSocket echo clients open at once, and HTTP clients beside
    (see clients.serve_ws_clients)."""
    return clients.serve_ws_clients(
        port, STATIC, expected, opts.clients, opts.ws_echoes, opts.ws_big,
        opts.ws_http_clients, opts.gets, opts.fresh, opts.deadline,
        alive=lambda: p.poll() is None)


def trial(name, k, opts, expected, check=http_trial):
    """Does the server, with -X heapsize=kK, pass check?"""
    with running(name, "%dK" % k) as (port, p):
        if port is None:
            return False, "did not start: " + last_line(
                LOGS / ("%s-%dK.log" % (name, k)))
        good, detail = check(port, p, opts, expected)
        if p.poll() is not None:
            detail += "; server died: " + last_line(
                LOGS / ("%s-%dK.log" % (name, k)))
        return good, detail


def min_heap(name, opts, expected, check=http_trial):
    """Bisect the smallest -X heapsize (K) that passes trial(); then confirm
    it passes again (heap fragmentation makes this not quite monotonic)."""
    sizes = list(range(opts.heap_lo, opts.heap_hi + 1, opts.heap_step))
    tried = {}

    def ok(i):
        k = sizes[i]
        good, detail = trial(name, k, opts, expected, check)
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
    if unit == "K2":
        return "%.2f" % (v / 1024)
    if unit == "ms":
        return "%.2f" % v
    if unit == "f1":
        return "%.1f" % v
    if unit == "cpu":
        return "%s/%s" % tuple("-" if x is None else "%d" % round(100 * x)
                               for x in v)
    return "%d" % round(v)


def load_field(key, field):
    return lambda r: (r.get(key) or {}).get(field)


def field(key):
    return lambda r: r.get(key)


def cpu_field(key):
    """(server, client) CPU share during a WebSocket load, or None."""
    def get(r):
        m = r.get(key)
        return (m.get("server_cpu"), m.get("client_cpu")) if m else None
    return get


ROWS = [  # label, getter, unit, higher is better (None: no ratio)
    ("HTTP " + STATIC, None, None, None),
    ("keep-alive req/s", load_field("keepalive", "rps"), "", True),
    ("  server CPU us/req", load_field("keepalive", "cpu_us"), "f1", False),
    ("keep-alive p99 ms", load_field("keepalive", "p99_ms"), "ms", False),
    ("close req/s", load_field("close", "rps"), "", True),
    ("  server CPU us/req", load_field("close", "cpu_us"), "f1", False),
    ("close p99 ms", load_field("close", "p99_ms"), "ms", False),
    ("heap idle KB", field("heap_idle"), "K", False),
    ("heap 50 conns KB", field("heap_conns"), "K", False),
    ("heap per HTTP conn B", lambda r: (r["heap_conns"] - r["heap_idle"]) /
     r["conns_open"] if r.get("conns_open") and r.get("heap_idle") else None,
     "", False),
    ("  of 50 still open", field("conns_open"), "", None),
    ("heap after load KB", field("heap_after"), "K", False),
    ("min heapsize K", load_field("min_heap", "min_k"), "", False),
    ("routed JSON GET " + ROUTED, None, None, None),
    ("keep-alive req/s", load_field("routed", "rps"), "", True),
    ("  server CPU us/req", load_field("routed", "cpu_us"), "f1", False),
    ("keep-alive p99 ms", load_field("routed", "p99_ms"), "ms", False),
    ("WebSocket /echo", None, None, None),
    ("32 B echo 1 conn/s", load_field("ws_echo1", "rate"), "", True),
    ("  CPU% server/client", cpu_field("ws_echo1"), "cpu", None),
    ("32 B echo 10 conns/s", load_field("ws_echo10", "rate"), "", True),
    ("  server CPU us/echo", load_field("ws_echo10", "cpu_us"), "f1", False),
    ("  CPU% server/client", cpu_field("ws_echo10"), "cpu", None),
    ("64 KiB echo MiB/s", load_field("ws_bulk", "mib_s"), "f1", True),
    ("  server CPU us/msg", load_field("ws_bulk", "cpu_us"), "", False),
    ("  CPU% server/client", cpu_field("ws_bulk"), "cpu", None),
    ("heap 0 ws KB", field("ws_heap0"), "K", False),
    ("heap 50 ws KB", field("ws_heap"), "K", False),
    ("  of 50 ws open", field("ws_open"), "", None),
    ("heap per ws KB", field("ws_conn_heap"), "K2", False),
    ("min heapsize ws K", load_field("ws_min_heap", "min_k"), "", False),
]


# ratio columns: each build of ours against the like-built Microdot, and
# against the raw loop
PAIRS = [("ours-py", "microdot-py"), ("ours-mpy", "microdot-mpy"),
         ("ours-py", "raw"), ("ours-mpy", "raw")]


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


BOARD32_ROWS = [
    ("heap idle KB", field("heap_idle"), "K", False),
    ("heap per HTTP conn KB", field("conn_heap"), "K2", False),
    ("  of 50 still open", field("conns_open"), "", None),
    ("heap per ws KB", field("ws_conn_heap"), "K2", False),
    ("  of 50 ws open", field("ws_open"), "", None),
    ("min heapsize ws K", load_field("ws_min_heap", "min_k"), "", False),
]


# what importing each module costs, in the order a server loads them
MODULES = ("lws", "lws.log", "lws.httpmsg", "lws.roles", "lws.conn",
           "lws.roles.http", "lws.context", "lws.protocol", "lws.mounts",
           "lws.files", "lws.util", "lws.roles.ws", "lws.mask", "lws.utf8",
           "lws.roles.chunked", "lws.roles.raw", "lws.roles.client",
           "lws.uri", "lws.tls", "lws.ring", "lws.wlan", "lws.board",
           "lws.app")
_IMPORTS = """
import gc, sys
gc.collect()
a = gc.mem_alloc()
for m in %r:
    try:
        __import__(m)
    except ImportError:
        print(m, -1)
        continue
    gc.collect()
    b = gc.mem_alloc()
    print(m, b - a)
    a = b
"""


def import_costs(exe=None, path=None):
    """{module: heap bytes its import adds} (-1: not there)."""
    env = unixport.environment()
    env["MICROPYPATH"] = ".frozen" + (":%s" % path if path else "")
    r = subprocess.run([str(exe or unixport.micropython()), "-c",
                        _IMPORTS % (MODULES,)], env=env,
                       capture_output=True, text=True, timeout=60)
    out = {}
    for line in r.stdout.splitlines():
        m, _, v = line.rpartition(" ")
        if m in MODULES:
            out[m] = int(v)
    return out


def table_imports(costs):
    cols = [k for k in ("64-bit .mpy", "32-bit frozen") if costs.get(k)]
    lines = ["heap each module adds when imported (in this order), bytes",
             "%-22s" % "" + "".join("%15s" % c for c in cols)]
    lines.append("-" * len(lines[-1]))
    for m in MODULES:
        vals = [costs[c].get(m) for c in cols]
        lines.append("%-22s" % m + "".join(
            "%15s" % ("-" if v is None or v < 0 else v) for v in vals))
    lines.append("%-22s" % "all of them" + "".join(
        "%15d" % sum(v for v in costs[c].values() if v > 0) for c in cols))
    return "\n".join(lines)


def table32(res, why):
    """The board-faithful figures: what a board with lws frozen needs."""
    title = ("32-bit unix port, lws frozen (make unix32, the esp32 "
             "selection; Microdot as .mpy on the same interpreter)")
    if why:
        return title + ": not measured: " + why
    names = [n for n in ("ours-32", "microdot-32") if n in res]
    if not names:
        return title + ": not measured"
    lines = [title, "%-22s" % "" + "".join("%13s" % n for n in names)
             + ("%13s" % "ours/md" if len(names) == 2 else "")]
    lines.append("-" * len(lines[-1]))
    for label, get, unit, better in BOARD32_ROWS:
        vals = [get(res[n]) for n in names]
        line = "%-22s" % label + "".join("%13s" % fmt(v, unit) for v in vals)
        if better is not None and len(names) == 2:
            line += "%13s" % ratio(vals[0], vals[1])
        lines.append(line)
    return "\n".join(lines)


def table(res):
    """The values, one column per server; then the ratios ours/peer. Rows
    nothing was measured for (--skip) are left out."""
    names = [n for n in SERVERS if n in res
             and SERVERS[n]["group"] != "board32"]
    if not names:
        return "(64-bit unix port: not measured)"
    pairs = [(o, p) for o, p in PAIRS if o in res and p in res]
    rows, section = [], None
    for row in ROWS:
        if row[1] is None:
            section = row
        elif any(row[1](res[n]) is not None for n in names):
            if section:
                rows.append(section)
                section = None
            rows.append(row)
    head = "%-20s" % "" + "".join("%13s" % n for n in names)
    lines = [head, "-" * len(head)]
    for label, get, unit, _ in rows:
        if get is None:
            lines.append(label)
            continue
        lines.append("%-20s" % label + "".join(
            "%13s" % fmt(get(res[n]), unit) for n in names))
    if not pairs:
        return "\n".join(lines)
    head = "%-20s" % "ours/peer" + "".join(
        "%13s" % ("%s/%s" % (o[5:], p.replace("microdot", "md")))
        for o, p in pairs)
    lines += ["", head, "-" * len(head)]
    for label, get, unit, better in rows:
        if get is None:
            lines.append(label)
        elif better is not None:
            lines.append("%-20s" % label + "".join(
                "%13s" % ratio(get(res[o]), get(res[p])) for o, p in pairs))
    return "\n".join(lines)


def targets(res):
    """(text, value, met) for each target of the server's own budget,
    judged on ours from .mpy: server CPU per operation as a ratio to the
    raw loop's in this run (times move from run to run, ratios less),
    heap figures as they are (they do not move)."""
    out = []
    raw = res.get("raw", {})
    o = res.get("ours-mpy", {})
    for key, what, goal in TARGET_CPU:
        a = (o.get(key) or {}).get("cpu_us")
        b = (raw.get(key) or {}).get("cpu_us")
        if a is not None and b:
            out.append(("%s CPU <= %.1fx raw's" % (what, goal),
                        "%.1f us, %.1fx" % (a, a / b), a / b <= goal))
    a = (o.get("close") or {}).get("cpu_us")
    if a is not None:
        out.append(("a connection per request <= %d us CPU" %
                    TARGET_CLOSE_US, "%.1f us" % a, a <= TARGET_CLOSE_US))
    for key, what, limit in (("heap_idle", "heap idle after start",
                              TARGET_IDLE_HEAP),
                             ("ws_conn_heap", "heap per open WebSocket",
                              TARGET_WS_CONN)):
        v = o.get(key)
        if v is not None:
            out.append(("%s <= %d B" % (what, limit), "%d B" % v,
                        v <= limit))
    k = (o.get("ws_min_heap") or {}).get("min_k")
    if k is not None or "ws_min_heap" in o:
        out.append(("HTTP + 10 WebSocket clients at heapsize <= %dK" %
                    TARGET_WS_HEAPSIZE_K, "%sK" % k, k is not None and
                    k <= TARGET_WS_HEAPSIZE_K))
    return out


def report(res, opts, took):
    print()
    print("microlws bench: HTTP %s, %d connections, median of %d x %gs "
          "per load, static %s (%d B); WebSocket python client, median of "
          "%d x %gs; heapsize %s; load average %s" % (
              "wrk" if opts.wrk else "python client", opts.conns, opts.repeat,
              opts.seconds, STATIC, STATIC_FILE.stat().st_size, opts.repeat,
              opts.ws_seconds, opts.heap or "default (2 MB)",
              " ".join("%.1f" % x for x in os.getloadavg())))
    print("ratios are ours/peer (req/s, echo/s, MiB/s: higher is better; "
          "ms, KB, K: lower is better)")
    print()
    print(table(res))
    print()
    print(table32(res, opts.board32))
    if res.get("imports"):
        print()
        print(table_imports(res["imports"]))
    notes = []
    for n, r in res.items():
        if r.get("error"):
            notes.append("%s: %s" % (n, r["error"]))
        if r.get("static_ok") is False:
            notes.append("%s: static file answer differs" % n)
        if r.get("routed_ok") is False and n != "raw":
            # the raw loop answers every path with its one page: its row
            # is the floor of a request's cost, not a route
            notes.append("%s: routed JSON answer differs" % n)
        for key in ("keepalive", "close", "routed"):
            m = r.get(key) or {}
            if m.get("errors") or m.get("non2xx"):
                notes.append("%s %s: %d socket errors, %d non-2xx" % (
                    n, key, m["errors"], m["non2xx"]))
        if r.get("min_heap") and r["min_heap"]["min_k"] is None:
            notes.append("%s: fails 10 clients even at %dK" % (
                n, opts.heap_hi))
        for e in r.get("ws_errors", ()):
            notes.append("%s WebSocket %s" % (n, e))
        if r.get("ws_open") is not None and r["ws_open"] < opts.open_conns:
            notes.append("%s: only %d of %d WebSockets stayed open" % (
                n, r["ws_open"], opts.open_conns))
        for key in ("ws_echo1", "ws_echo10", "ws_bulk"):
            m = r.get(key) or {}
            cpu, srv = m.get("client_cpu"), m.get("server_cpu")
            if cpu is not None and cpu > CLIENT_BUSY:
                notes.append("%s %s: the load client was busy %.0f%% of "
                             "the time (may be what limits)" % (
                                 n, key, 100 * cpu))
            elif key == "ws_echo10" and srv is not None and \
                    srv < SERVER_IDLE:
                # with 10 connections in flight the server always has
                # work: other processes took the CPU
                notes.append("%s %s: the server had a CPU only %.0f%% of "
                             "the time and the client %.0f%% (other load "
                             "on the machine?)" % (n, key, 100 * srv,
                                                   100 * (cpu or 0)))
        if r.get("ws_min_heap") and r["ws_min_heap"]["min_k"] is None:
            notes.append("%s: fails HTTP + 10 WebSocket clients even at "
                         "%dK" % (n, opts.heap_hi))
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

# -- a site from a ZIP archive ----------------------------------------------

ZIP_PAGE = 20 * 1024


def bench_zip(opts):
    """req/s (keep-alive, wrk with Accept-Encoding: gzip) and heap in use
    for a 20 KB page: from a ZIP archive (sent as gzip: the entry's deflate
    data as it is) against the same page as a plain file; ours as .mpy."""
    sys.path.insert(0, str(REPO / "host_tools"))
    from lwstool import pack
    d = BUILD / "bench" / "zip"
    (d / "plain").mkdir(parents=True, exist_ok=True)
    words = (REPO / "README.md").read_bytes().split()
    page = b"<!doctype html><title>bench</title><p>"
    i = 0
    while len(page) < ZIP_PAGE:
        page += words[i % len(words)] + (b"\n" if i % 12 == 11 else b" ")
        i += 1
    page = page[:ZIP_PAGE]
    (d / "plain" / "page.html").write_bytes(page)
    pack.zip_dir(d / "plain", d / "site.zip")
    out = {"page_bytes": len(page)}
    for key, path in (("plain", d / "plain" / "page.html"),
                      ("zip_gzip", d / "site.zip" / "page.html")):
        port = free_port()
        argv = unixport.command(SERVERS["ours-mpy"]["script"],
                                [port, path], opts.heap)
        env = unixport.environment()
        env["MICROPYPATH"] = ".frozen:%s" % MPY
        with open(LOGS / ("zip-%s.log" % key), "wb") as f:
            p = subprocess.Popen(argv, env=env, stdout=f,
                                 stderr=subprocess.STDOUT)
            try:
                if not wait_ready(p, port):
                    out[key] = {"error": "did not start"}
                    continue
                r = {"heap_idle": clients.heap(port, "/heap")}
                st, body = clients.get(port, "/page.html")
                r["sent_bytes"] = len(body)
                if opts.wrk:
                    cmd = [opts.wrk, "-t1", "-c%d" % opts.conns,
                           "-d%gs" % opts.seconds, "--latency", "--timeout",
                           "2s", "-H", "Accept-Encoding: gzip",
                           "http://127.0.0.1:%d/page.html" % port]
                    w = subprocess.run(cmd, capture_output=True, text=True,
                                       timeout=opts.seconds + 30)
                    r.update(parse_wrk(w.stdout))
                    with socket.create_connection(("127.0.0.1", port)) as s:
                        s.sendall(b"GET /page.html HTTP/1.1\r\nHost: b\r\n"
                                  b"Accept-Encoding: gzip\r\n"
                                  b"Connection: close\r\n\r\n")
                        n = 0
                        while True:
                            k = len(s.recv(65536))
                            if not k:
                                break
                            n += k
                        r["response_bytes_gzip"] = n
                else:
                    r.update(clients.load(port, "/page.html", opts.seconds,
                                          opts.conns, False))
                r["heap_after"] = clients.heap(port, "/heap")
                out[key] = r
            finally:
                stop(p)
    return out


def table_zip(z):
    a, b = z.get("plain", {}), z.get("zip_gzip", {})
    lines = ["a %d B page, keep-alive, %s: from a ZIP archive (sent as "
             "gzip) vs a plain file (ours .mpy)" % (
                 z["page_bytes"], "Accept-Encoding: gzip")]
    lines.append("  %-22s %12s %12s %8s" % ("", "plain file", "zip+gzip",
                                            "ratio"))
    for k, what in (("rps", "req/s"), ("heap_idle", "heap idle B"),
                    ("heap_after", "heap after B")):
        x, y = a.get(k), b.get(k)
        lines.append("  %-22s %12s %12s %8s" % (
            what, "%.0f" % x if x else "-", "%.0f" % y if y else "-",
            "%.2f" % (y / x) if x and y else "-"))
    return "\n".join(lines)


def options(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short durations, coarse heap steps (a smoke run)")
    ap.add_argument("--only", choices=("ours", "microdot", "raw", "board32"),
                    action="append", help="measure only these (repeatable)")
    ap.add_argument("--client", choices=("wrk", "python"), default="wrk",
                    help="load generator (python when wrk cannot be had)")
    ap.add_argument("--skip", choices=("http", "ws", "tls", "deflate", "zip",
                                       "loop"),
                    action="append",
                    default=[], help="leave out the HTTP or the WebSocket "
                    "measurements (repeatable)")
    ap.add_argument("--no-heap-search", action="store_true",
                    help="skip the -X heapsize bisections")
    ap.add_argument("--heap", metavar="SIZE",
                    help="-X heapsize for the speed and heap runs, e.g. "
                    "256K (default: the unix port's own, 2 MB; allocation "
                    "costs on MicroPython grow with the heap size)")
    opts = ap.parse_args(argv)
    opts.conns = 10
    opts.open_conns = 50
    opts.seconds = 1.0 if opts.quick else 5.0
    opts.repeat = 1 if opts.quick else 3
    opts.clients, opts.gets, opts.fresh = 10, 20, 2
    opts.deadline = 5.0 if opts.quick else 10.0
    opts.heap_lo, opts.heap_hi = 8, 256
    opts.heap_step = 8 if opts.quick else 2
    # WebSocket: 32-byte echoes, 64 KiB echoes; the heap trial's clients
    opts.ws_seconds = 1.0 if opts.quick else 3.0
    opts.ws_size, opts.ws_bulk = 32, 65536
    opts.ws_echoes, opts.ws_big, opts.ws_http_clients = 20, 1024, 2
    return opts


def main(argv=None):
    opts = options(argv)
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    LOGS.mkdir(parents=True, exist_ok=True)
    names = [n for n in SERVERS
             if not opts.only or SERVERS[n]["group"] in opts.only]
    opts.board32 = None  # why the 32-bit figures are missing, if they are
    if any(SERVERS[n]["group"] == "board32" for n in names):
        from lwstool import unix32
        from lwstool.errors import LwsToolError
        try:
            unix32.build("esp32")
        except LwsToolError as e:
            opts.board32 = str(e)
            names = [n for n in names if SERVERS[n]["group"] != "board32"]
    opts.wrk = find_wrk() if opts.client == "wrk" else None
    if "ours-mpy" in names:
        build_mpy()
    if "microdot-py" in names or "microdot-32" in names:
        install_microdot()
    expected = write_static()
    res = {}
    if "ours-mpy" in names:
        res["imports"] = {"64-bit .mpy": import_costs(path=MPY)}
        if opts.board32 is None and "ours-32" in names:
            from lwstool import unix32
            res["imports"]["32-bit frozen"] = import_costs(
                unix32.find("esp32"))
    for n in names:
        log("bench: %s: heap and load" % n)
        res[n] = measure(n, opts, expected)
    if not opts.no_heap_search:
        # the WebSocket search only for what boards run (.mpy) and raw:
        # the .py builds differ from those in the compiler's heap only
        for part, key, check, what, which in (
                ("http", "min_heap", http_trial, "%d clients", names),
                ("ws", "ws_min_heap", ws_trial, "HTTP + %d WebSocket clients",
                 [n for n in names if not n.endswith("-py")])):
            if part == "http":
                which = [n for n in which if not n.endswith("-32")]
            if part in opts.skip:
                continue
            for n in which:
                log("bench: %s: smallest -X heapsize for %s" % (
                    n, what % opts.clients))
                res[n][key] = min_heap(n, opts, expected, check)
    if "ours-mpy" in names and "tls" not in (opts.skip or ()):
        import tls_bench
        log("bench: ours-mpy: TLS footprint")
        try:
            res["tls"] = tls_bench.measure(MPY, STATIC_FILE, LOGS,
                                           quick=opts.quick)
        except Exception as e:  # a failed part must not hide the rest
            res["tls"] = {"error": repr(e)}
    if "deflate" not in (opts.skip or ()):
        import deflate_bench
        log("bench: permessage-deflate: heap per connection, 64 KiB echo")
        res["deflate"] = deflate_bench.run_all()
    if "ours-mpy" in names and "loop" not in opts.skip:
        import loop_bench
        log("bench: ours-mpy: the service loop under asyncio")
        try:
            res["loop"] = loop_bench.measure(MPY, STATIC_FILE, LOGS,
                                             opts.quick, opts.wrk, parse_wrk)
        except Exception as e:  # a failed part must not hide the rest
            res["loop"] = {"error": repr(e)}
    if "ours-mpy" in names and "zip" not in opts.skip:
        log("bench: ours-mpy: a 20 KB page from a ZIP archive")
        try:
            res["zip"] = bench_zip(opts)
        except Exception as e:  # a failed part must not hide the rest
            res["zip"] = {"error": repr(e)}
    took = time.monotonic() - t0
    report(res, opts, took)
    if "deflate" in res:
        print(deflate_bench.table(res["deflate"]))
    if "zip" in res:
        print()
        print(table_zip(res["zip"]) if "error" not in res["zip"]
              else "ZIP: failed: %s" % res["zip"]["error"])
    if "loop" in res:
        print(loop_bench.table(res["loop"]) if "error" not in res["loop"]
              else "\nasyncio loop: failed: %s" % res["loop"]["error"])
    if "tls" in res:
        print(tls_bench.table(res["tls"]) if "error" not in res["tls"]
              else "\nTLS: failed: %s" % res["tls"]["error"])
    save(res, opts, took)


if __name__ == "__main__":
    main()
