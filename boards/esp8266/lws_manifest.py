# lws as frozen for esp8266 boards: the server core, WebSockets, the WLAN
# slot manager, form parsing (spa) and the small plugins (permessage-deflate
# frozen but off unless Vhost(ws_deflate=...) asks); no TLS, no clients
# (the "deploy" list in profile.json says the same for file deploys).
# Included by manifest.py here, and by the 32-bit unix build (make unix32),
# so the emulation freezes exactly what the board does. Paths are relative
# to this file.
package(
    "lws",
    files=(
        "__init__.py",
        "_xor.py",
        "auth.py",
        "board.py",
        "conn.py",
        "context.py",
        "cookie.py",
        "files.py",
        "gz.py",
        "httpmsg.py",
        "log.py",
        "mask.py",
        "mounts.py",
        "protocol.py",
        "ranges.py",
        "ring.py",
        "spa.py",
        "uri.py",
        "utf8.py",
        "util.py",
        "wlan.py",
        "zipfs.py",
        "roles/__init__.py",
        "roles/chunked.py",
        "roles/dns.py",
        "roles/http.py",
        "roles/raw.py",
        "roles/ws.py",
        "roles/ws_deflate.py",
        "plugins/__init__.py",
        "plugins/captive.py",
        "plugins/echo.py",
        "plugins/serial_bridge.py",
        "plugins/status.py",
        "plugins/wlan_setup.py",
    ),
    base_path="../../firmware",
    opt=3,
)
