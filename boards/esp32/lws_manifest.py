# lws as frozen for ESP32 boards: the whole package (TLS, clients, every
# plugin). Included by manifest.py here (and the other ESP32 boards'), and
# by the 32-bit unix build (make unix32), so the emulation freezes exactly
# what the board does. Paths are relative to this file.
package("lws", base_path="../../firmware", opt=3)
