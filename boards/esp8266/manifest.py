# Freeze lws into a custom MicroPython image for esp8266 boards:
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=$PWD/boards/esp8266/manifest.py
# Paths are relative to this file. Only the server core, WebSockets, the
# WLAN slot manager and the small plugins: no TLS, no deflate, no clients
# (the "deploy" list in profile.json says the same for file deploys).
include("$(PORT_DIR)/boards/manifest.py")
package(
    "lws",
    files=(
        "__init__.py",
        "_xor.py",
        "conn.py",
        "context.py",
        "files.py",
        "httpmsg.py",
        "log.py",
        "mask.py",
        "mounts.py",
        "protocol.py",
        "ring.py",
        "uri.py",
        "utf8.py",
        "util.py",
        "wlan.py",
        "roles/__init__.py",
        "roles/chunked.py",
        "roles/dns.py",
        "roles/http.py",
        "roles/raw.py",
        "roles/ws.py",
        "plugins/__init__.py",
        "plugins/captive.py",
        "plugins/echo.py",
        "plugins/status.py",
        "plugins/wlan_setup.py",
    ),
    base_path="../../firmware",
    opt=3,
)
