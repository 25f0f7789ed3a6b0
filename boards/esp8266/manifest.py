# Freeze lws into a custom MicroPython image for esp8266 boards:
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=$PWD/boards/esp8266/manifest.py
# The port's own frozen modules, then lws (lws_manifest.py: the selection).
include("$(PORT_DIR)/boards/manifest.py")
include("lws_manifest.py")
