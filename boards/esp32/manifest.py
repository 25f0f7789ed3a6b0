# Freeze lws into a custom MicroPython image for esp32 boards:
#   make -C ports/esp32 BOARD=<board> FROZEN_MANIFEST=$PWD/boards/esp32/manifest.py
# Paths are relative to this file. boot.py, main.py, lws.json and www/
# stay on the filesystem, so safe mode and the config can always be edited.
include("$(PORT_DIR)/boards/manifest.py")
include("lws_manifest.py")
