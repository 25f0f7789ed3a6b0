# Freeze lws into a custom MicroPython image for esp32c3 boards:
#   make -C ports/esp32 BOARD=<board> FROZEN_MANIFEST=$PWD/boards/esp32c3/manifest.py
# Paths are relative to this file. boot.py, main.py, lws.json and www/
# stay on the filesystem, so safe mode and the config can always be edited.
include("$(PORT_DIR)/boards/manifest.py")
include("../esp32/lws_manifest.py")
