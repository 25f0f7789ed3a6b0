"""The test page served from a ZIP archive (lwstool.pack), in headless
Chromium (tests/cdp.py): every tab answers, and what the browser got
came as gzip (the archive's deflate data, not inflated on the board)."""
import pytest

import cdp
from conftest import FIRMWARE, PEERS, start
from lwstool import pack
from test_browser import TABS, goto, visible_tabs

pytestmark = pytest.mark.timeout(90)


def test_zipped_test_page(tmp_path):
    exe = cdp.chromium()
    if exe is None:
        pytest.skip("chromium is missing: install the Debian package %s "
                    "(make debs)" % PEERS["chromium"])
    z = tmp_path / "www.zip"
    pack.zip_dir(FIRMWARE / "www", z)
    srv = start(tmp_path, args=["--zip", str(z)])
    b = cdp.Browser(exe, tmp_path / "chromium")
    b.keep.add("Network.responseReceived")
    try:
        p = b.page()
        p.call("Network.enable")
        goto(p, srv.url + "/")
        assert visible_tabs(p) == TABS
        got = {}
        for e in p.events("Network.responseReceived"):
            r = e["response"]
            h = {k.lower(): v for k, v in r["headers"].items()}
            got[r["url"].rsplit("/", 1)[-1]] = h.get("content-encoding")
        for name in ("", "test.js", "test.css"):
            assert got.get(name) == "gzip", got
        p.close()
    finally:
        b.close()
        srv.stop()
