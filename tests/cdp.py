"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol
with the websockets sync client: a browser, its contexts and pages.

Every wait is bounded, and Browser.close() leaves no Chromium process
behind: they all run in a folder of their own (profile, HOME, crash
database), and whatever still names that folder is killed by its pid.
"""
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from websockets.sync.client import connect

# what Chromium needs as root on this closed network
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions",
         "--disable-dev-shm-usage", "--mute-audio",
         "--window-size=900,700", "--remote-debugging-port=0"]


def chromium():
    """The Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CDPError(Exception):
    pass


class Browser:
    """One Chromium process and one DevTools connection to it."""

    def __init__(self, exe, folder, flags=(), timeout=20):
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        profile = self.folder / "profile"
        env = dict(os.environ, HOME=str(self.folder),
                   XDG_CONFIG_HOME=str(self.folder / "config"),
                   XDG_CACHE_HOME=str(self.folder / "cache"))
        self.logpath = self.folder / "chromium.log"
        self._log = open(self.logpath, "wb")
        argv = [exe] + FLAGS + list(flags) + \
            ["--user-data-dir=%s" % profile, "about:blank"]
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ws = None
        self._stack = contextlib.ExitStack()
        self._id = 0
        self.events = []
        self.keep = set()      # the event methods kept in self.events
        try:
            port, path = self._devtools(profile / "DevToolsActivePort",
                                        timeout)
            self.ws = self._stack.enter_context(connect(
                "ws://127.0.0.1:%s%s" % (port, path), max_size=None,
                open_timeout=timeout, close_timeout=3, compression=None))
        except BaseException:
            self.close()
            raise

    def _devtools(self, f, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                lines = f.read_text().split()
                if len(lines) == 2:
                    return lines
            except OSError:
                pass
            time.sleep(0.1)
        raise CDPError("Chromium did not open its DevTools port:\n" +
                       self.log()[-3000:])

    def log(self):
        return self.logpath.read_text(errors="replace")

    def call(self, method, params=None, session=None, timeout=10):
        """Send a command, wait for its answer (events meanwhile are
        kept when self.keep names them)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise CDPError("%s: no answer in %gs" % (method, timeout))
            try:
                m = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue
            if m.get("id") == self._id:
                if "error" in m:
                    raise CDPError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if m.get("method") in self.keep:
                self.events.append(m)

    def page(self, url="about:blank"):
        """A new page in a browser context of its own (own cookies,
        cache and connections)."""
        ctx = self.call("Target.createBrowserContext", {
            "disposeOnDetach": True})["browserContextId"]
        tid = self.call("Target.createTarget", {
            "url": "about:blank", "browserContextId": ctx})["targetId"]
        sid = self.call("Target.attachToTarget", {
            "targetId": tid, "flatten": True})["sessionId"]
        p = Page(self, ctx, tid, sid)
        p.call("Page.enable")
        p.call("Runtime.enable")
        if url != "about:blank":
            p.goto(url)
        return p

    def close(self):
        if self.ws is not None:
            try:
                self.call("Browser.close", timeout=3)
            except Exception:
                pass
            try:
                self._stack.close()
            except Exception:
                pass
            self.ws = None
        if self.proc.poll() is None:
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        # the process group first, then any straggler that left it (the
        # crash handler does) and still names this folder
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in leftovers(self.folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def leftovers(folder):
    """pids of the processes whose command line names folder."""
    key = str(folder).encode()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if key in (d / "cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            pass
    return out


class Page:
    """One tab of the browser, on its own DevTools session."""

    def __init__(self, browser, context, target, session):
        self.browser = browser
        self.context = context
        self.target = target
        self.session = session

    def call(self, method, params=None, timeout=10):
        return self.browser.call(method, params, self.session, timeout)

    def goto(self, url, timeout=15):
        r = self.call("Page.navigate", {"url": url}, timeout)
        if r.get("errorText"):
            raise CDPError("%s: %s" % (url, r["errorText"]))
        self.wait("document.readyState === 'complete' && "
                  "location.href === %s" % json.dumps(url),
                  timeout, "the page %s loaded" % url)

    def eval(self, expr, timeout=10):
        """The value of a JavaScript expression (promises awaited)."""
        r = self.call("Runtime.evaluate", {
            "expression": expr, "returnByValue": True, "awaitPromise": True,
            "timeout": timeout * 1000}, timeout + 1)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("%s: %s" % (expr, d.get("exception", {}).get(
                "description", d.get("text"))))
        return r["result"].get("value")

    def wait(self, expr, timeout=10, what=None):
        """Poll a JavaScript expression until it is truthy; its value."""
        end = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() > end:
                raise AssertionError("%s: not so after %gs (%r is %r)" % (
                    what or "waited", timeout, expr, v))
            time.sleep(0.05)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png"}, 15)
        Path(path).write_bytes(base64.b64decode(r["data"]))
        return path

    def events(self, method):
        return [e["params"] for e in self.browser.events
                if e.get("sessionId") == self.session and
                e["method"] == method]

    def close(self):
        try:
            self.browser.call("Target.disposeBrowserContext",
                              {"browserContextId": self.context})
        except CDPError:
            pass
