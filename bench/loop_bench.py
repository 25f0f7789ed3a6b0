"""The service loop driven by asyncio against the blocking one, for make
bench: ours (from .mpy), bench/peers/lws_app.py with LWS_LOOP=asyncio
(asyncio.run(ctx.serve()): asyncio's poll waits for the context's
sockets) and LWS_LOOP=poll (what lws.aio did before: service(0), and a
5 ms sleep when idle), beside ctx.run(), one server at a time; and
ctx.run() with asyncio imported (LWS_LOOP=imported): a larger heap in use
makes each collection, so each request, cost more, loop or no loop.

Measured: one keep-alive client's GET latency (median, p99) and the
server's CPU per request; 10 keep-alive connections' req/s and CPU per
request; one WebSocket's 32-byte echo round trip and CPU per echo; the
server's CPU while idle. Ratios are to ctx.run()."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host_tools"))
sys.path.insert(0, str(HERE))
from lwstool import unixport  # noqa: E402
import clients  # noqa: E402

APP = HERE / "peers" / "lws_app.py"
LOOPS = (("run", "ctx.run()"), ("imported", "run(), asyncio in"),
         ("asyncio", "asyncio serve()"), ("poll", "old service(0)+sleep"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        x = f.read().rpartition(")")[2].split()
    return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")


def _start(mpy_path, static, loop, log):
    port = _free_port()
    env = unixport.environment(mpy_path)
    env["LWS_LOOP"] = loop
    p = subprocess.Popen(unixport.command(APP, [port, static]), env=env,
                         stdout=log, stderr=subprocess.STDOUT)
    t_end = time.monotonic() + 15
    while time.monotonic() < t_end:
        if p.poll() is not None:
            raise RuntimeError("%s: server exited" % loop)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("%s: server did not start" % loop)


def _stop(p):
    if p.poll() is None:
        p.send_signal(2)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _latency(port, path, seconds, pid):
    """One keep-alive client, one GET after the other."""
    lat = []
    with clients.connect(port) as s:
        clients.exchange(s, path)
        c0 = _cpu(pid)
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t = time.perf_counter()
            clients.exchange(s, path)
            lat.append(time.perf_counter() - t)
        c1 = _cpu(pid)
    lat.sort()
    return {"n": len(lat), "median_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
            "cpu_us": (c1 - c0) * 1e6 / len(lat)}


def _load(port, path, seconds, pid, wrk, parse_wrk):
    c0 = _cpu(pid)
    if wrk:
        r = subprocess.run([wrk, "-t1", "-c10", "-d%gs" % seconds,
                            "--latency", "--timeout", "2s",
                            "http://127.0.0.1:%d%s" % (port, path)],
                           capture_output=True, text=True,
                           timeout=seconds + 30)
        m = parse_wrk(r.stdout)
    else:
        m = clients.load(port, path, seconds, 10)
    c1 = _cpu(pid)
    m["cpu_us"] = (c1 - c0) * 1e6 / max(1, m["requests"])
    return m


def _ws(port, seconds, pid):
    c0 = _cpu(pid)
    m = clients.ws_echo_load(port, seconds, 1, 32)
    c1 = _cpu(pid)
    return {"rtt_us": 1e6 / m["rate"], "cpu_us": (c1 - c0) * 1e6 /
            max(1, m["count"])}


def _idle(pid, seconds):
    c0 = _cpu(pid)
    time.sleep(seconds)
    return (_cpu(pid) - c0) / seconds * 100


def _median(runs, key):
    runs = sorted(runs, key=lambda m: m[key])
    return runs[len(runs) // 2]


def measure(mpy_path, static, logs, quick=False, wrk=None, parse_wrk=None):
    """{loop: figures}, each the median of 1 (quick) or 3 runs; the
    loops take turns, so that a slower moment of the machine is shared.
    wrk, parse_wrk: the load client for 10 connections (else Python's)."""
    secs = 1.0 if quick else 3.0
    repeat = 1 if quick else 3
    path = "/" + Path(static).name
    runs = {k: {"lat": [], "load": [], "ws": [], "idle": []}
            for k, _ in LOOPS}
    for _ in range(repeat):
        for k, _ in LOOPS:
            with open(Path(logs) / ("loop-%s.log" % k), "ab") as log:
                p, port = _start(mpy_path, static, k, log)
                try:
                    r = runs[k]
                    r["idle"].append({"pct": _idle(p.pid, 1.0)})
                    r["lat"].append(_latency(port, path, secs, p.pid))
                    r["load"].append(_load(port, path, secs, p.pid, wrk,
                                               parse_wrk))
                    r["ws"].append(_ws(port, secs, p.pid))
                finally:
                    _stop(p)
    out = {}
    for k, _ in LOOPS:
        r = runs[k]
        lat = _median(r["lat"], "median_us")
        out[k] = {"lat_median_us": lat["median_us"],
                  "lat_p99_us": _median(r["lat"], "p99_us")["p99_us"],
                  "lat_cpu_us": _median(r["lat"], "cpu_us")["cpu_us"],
                  "load_rps": _median(r["load"], "rps")["rps"],
                  "load_cpu_us": _median(r["load"], "cpu_us")["cpu_us"],
                  "ws_rtt_us": _median(r["ws"], "rtt_us")["rtt_us"],
                  "ws_cpu_us": _median(r["ws"], "cpu_us")["cpu_us"],
                  "idle_cpu_pct": _median(r["idle"], "pct")["pct"]}
    return out


ROWS = (("lat_median_us", "1 client GET median", "us"),
        ("lat_p99_us", "1 client GET p99", "us"),
        ("lat_cpu_us", "  server CPU/request", "us"),
        ("load_rps", "10 conns keep-alive", "req/s"),
        ("load_cpu_us", "  server CPU/request", "us"),
        ("ws_rtt_us", "WS 32 B echo round trip", "us"),
        ("ws_cpu_us", "  server CPU/echo", "us"),
        ("idle_cpu_pct", "server CPU idle", "%"))


def table(res):
    """The figures of each loop, and their ratios to ctx.run()'s."""
    names = [k for k, _ in LOOPS if k in res]
    labels = dict(LOOPS)
    lines = ["", "the service loop under asyncio (ours .mpy; ratio: "
             "to ctx.run())",
             "%-26s" % "" + "".join("%22s" % labels[k] for k in names)]
    base = res.get("run", {})
    for key, what, unit in ROWS:
        cells = []
        for k in names:
            v = res[k].get(key)
            b = base.get(key)
            if v is None:
                cells.append("%22s" % "-")
                continue
            txt = ("%.1f %s" if unit == "%" else "%.0f %s") % (v, unit)
            if k != "run" and b and unit != "%":
                txt += " (%.2fx)" % (v / b)
            cells.append("%22s" % txt)
        lines.append("%-26s" % what + "".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    # python bench/loop_bench.py [--quick] [--mpy DIR]: this part alone,
    # ours from .py, or compiled into DIR
    quick = "--quick" in sys.argv
    src = unixport.FIRMWARE
    if "--mpy" in sys.argv:
        from lwstool import mpy
        src = Path(sys.argv[sys.argv.index("--mpy") + 1])
        mpy.build(src)
    import tempfile
    logs = Path(tempfile.mkdtemp(prefix="loop-bench-"))
    static = logs / "small.html"  # 512 B, as bench.py's
    static.write_bytes((b"<p>" + b"the quick brown fox " * 26)[:508] +
                       b"</p>")
    res = measure(src, static, logs, quick)
    print(table(res))
