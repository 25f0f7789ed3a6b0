"""Flash MicroPython onto a board with esptool's Python API.

    flash("esp32", port="/dev/ttyUSB0", firmware="ESP32_GENERIC.bin")

The profile gives the chip, the image offset, the baud rate and the flash
mode and size. The chip that answers must be the profile's; the image is
checked before anything is written (it exists, it starts like an ESP
image, it fits the flash); esptool verifies what it wrote (md5 of the
flash against the image) and a mismatch or a board lost half way is an
LwsToolError.
"""
import sys
from pathlib import Path

from . import profiles
from .errors import LwsToolError
from .unixport import REPO

ESP_IMAGE_MAGIC = 0xE9


def default_firmware(prof):
    """Where `lwstool flash` looks without --firmware."""
    f = prof.get("firmware")
    if f:
        f = Path(f)
        return f if f.is_absolute() else REPO / f
    return REPO / "build" / "firmware" / ("%s.bin" % prof["name"])


def check_image(prof, image):
    """The image's bytes, or an LwsToolError saying what is wrong."""
    path = Path(image)
    if not path.is_file():
        raise LwsToolError("no firmware image at %s (pass --firmware FILE: "
                           "a MicroPython .bin for %s)" % (path, prof["chip"]))
    data = path.read_bytes()
    if not data:
        raise LwsToolError("%s is empty" % path)
    if data[0] != ESP_IMAGE_MAGIC:
        raise LwsToolError("%s is not an ESP firmware image (first byte "
                           "0x%02x, expected 0x%02x)"
                           % (path, data[0], ESP_IMAGE_MAGIC))
    size = profiles.flash_bytes(prof)
    room = size - prof["image_offset"] if size else None
    if room is not None and len(data) > room:
        raise LwsToolError("%s is %d bytes: it does not fit in %s of flash "
                           "at 0x%x (room for %d)" % (
                               path, len(data), prof["flash_size"],
                               prof["image_offset"], room))
    return data


class _Progress:
    """esptool's logger, with lwstool's progress bar for the write."""

    def __init__(self, quiet=False):
        from esptool.logger import TemplateLogger

        class Logger(TemplateLogger):
            def print(self, *args, **kw):
                if not quiet:
                    kw.pop("soft_wrap", None)
                    kw.pop("flush", None)
                    print(*args, **kw)
                    sys.stdout.flush()

            def note(self, message):
                self.print("Note: %s" % message)

            def warning(self, message):
                print("Warning: %s" % message, file=sys.stderr)

            def error(self, message):
                print(message, file=sys.stderr)

            def stage(self, finish=False):
                pass

            def progress_bar(self, cur_iter, total_iters, prefix="",
                             suffix="", bar_length=30):
                if not quiet:
                    from .board import progress_bar
                    progress_bar("writing", cur_iter, total_iters)

            def set_verbosity(self, verbosity):
                pass

        self.logger = Logger()

    def __enter__(self):
        from esptool.logger import log
        from esp_pylib.logger import EspLog
        self._old = EspLog.instance
        log.set_logger(self.logger)
        return self

    def __exit__(self, *a):
        from esp_pylib.logger import EspLog
        EspLog.instance = self._old


def flash(board, port=None, firmware=None, erase=False, baud=None,
          before="default-reset", after="hard-reset", quiet=False):
    """Write firmware to the board on port; returns the chip's name."""
    from esptool.cmds import (attach_flash, detect_chip, erase_flash,
                              reset_chip, run_stub, write_flash)
    from esptool.util import FatalError

    from .board import find_port
    prof = profiles.load(board)
    if prof["chip"] == "unix":
        raise LwsToolError("the unix board is not flashed: "
                           "lwstool emulate runs it")
    image = firmware or default_firmware(prof)
    data = check_image(prof, image)
    port = find_port(port)
    baud = baud or prof["baud"]
    with _Progress(quiet):
        try:
            esp = detect_chip(port, 115200, connect_mode=before,
                              connect_attempts=3)
        except (FatalError, OSError) as e:
            raise LwsToolError("no ESP bootloader answers on %s (%s); "
                               "hold BOOT and press RESET, or check -p"
                               % (port, _short(e)))
        try:
            found = esp.CHIP_NAME.lower().replace("-", "")
            if found != prof["chip"].replace("-", ""):
                raise LwsToolError(
                    "the board on %s is an %s, but board profile %s is for "
                    "an %s: wrong board or wrong --board"
                    % (port, esp.CHIP_NAME, prof["name"], prof["chip"]))
            try:
                esp = run_stub(esp)
                if baud != 115200:
                    esp.change_baud(baud)
                attach_flash(esp)
                if erase:
                    erase_flash(esp)
                write_flash(esp, [(prof["image_offset"], data)],
                            flash_mode=prof.get("flash_mode", "keep"),
                            flash_size=prof.get("flash_size", "keep"),
                            flash_freq=prof.get("flash_freq", "keep"))
                reset_chip(esp, after)
            except FatalError as e:
                raise LwsToolError("flashing %s failed: %s"
                                   % (port, _short(e)))
            except (OSError, Exception) as e:
                if isinstance(e, LwsToolError):
                    raise
                raise LwsToolError("the board on %s went away while "
                                   "flashing (%s): flash again"
                                   % (port, _short(e)))
        finally:
            try:
                esp._port.close()
            except Exception:
                pass
    return esp.CHIP_NAME


def _short(e):
    s = str(e).strip().splitlines()
    return s[0] if s else e.__class__.__name__
