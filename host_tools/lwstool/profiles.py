"""Board profiles: boards/<name>/profile.json, with per-chip defaults for
whatever a profile leaves out."""
import json

from .errors import LwsToolError
from .unixport import REPO

BOARDS = REPO / "boards"

# what a profile may leave out, per chip (values as esptool and mpy-cross
# take them); image_offset is where MicroPython's .bin goes
CHIP_DEFAULTS = {
    "esp32": {"image_offset": "0x1000", "baud": 460800, "flash_mode": "dio",
              "flash_size": "4MB", "heap_budget": 110000,
              "march": "xtensawin"},
    "esp32s2": {"image_offset": "0x1000", "baud": 460800,
                "flash_mode": "dio", "flash_size": "4MB",
                "heap_budget": 110000, "march": "xtensawin"},
    "esp32s3": {"image_offset": "0x0", "baud": 460800, "flash_mode": "dio",
                "flash_size": "8MB", "heap_budget": 200000,
                "march": "xtensawin"},
    "esp32c3": {"image_offset": "0x0", "baud": 460800, "flash_mode": "dio",
                "flash_size": "4MB", "heap_budget": 150000,
                "march": "rv32imc"},
    "esp32c6": {"image_offset": "0x0", "baud": 460800, "flash_mode": "dio",
                "flash_size": "4MB", "heap_budget": 200000,
                "march": "rv32imc"},
    "esp8266": {"image_offset": "0x0", "baud": 460800, "flash_mode": "dio",
                "flash_size": "detect", "heap_budget": 40000,
                "march": "xtensa"},
    "unix": {"heap_budget": 262144, "march": None},
}

SIZES = {"256KB": 256 << 10, "512KB": 512 << 10, "1MB": 1 << 20,
         "2MB": 2 << 20, "4MB": 4 << 20, "8MB": 8 << 20, "16MB": 16 << 20,
         "32MB": 32 << 20, "64MB": 64 << 20, "128MB": 128 << 20}


def names():
    return sorted(p.parent.name for p in BOARDS.glob("*/profile.json"))


def load(board):
    """The profile of a board by name (or a path to a profile.json), with
    the chip's defaults filled in; `chip` defaults to the board's name."""
    from pathlib import Path
    path = Path(board)
    if not path.name.endswith(".json"):
        path = BOARDS / board / "profile.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LwsToolError("no board profile %r (known: %s)"
                           % (board, ", ".join(names()) or "none"))
    except ValueError as e:
        raise LwsToolError("%s: %s" % (path, e))
    name = data.get("name") or path.parent.name
    chip = str(data.get("chip") or name).lower()
    prof = dict(CHIP_DEFAULTS.get(chip, CHIP_DEFAULTS["esp32"]
                                  if chip.startswith("esp32") else {}))
    prof.update({k: v for k, v in data.items() if v is not None})
    prof["name"], prof["chip"] = name, chip
    prof["image_offset"] = int(str(prof.get("image_offset", 0)), 0)
    prof["baud"] = int(prof.get("baud") or 460800)
    prof["dir"] = path.parent
    return prof


def unix_heap(prof):
    """A unix-port heap for the board's budget: the unix port is 64-bit,
    its objects about twice a 32-bit board's, so twice the budget."""
    budget = prof.get("heap_budget")
    if not budget:
        return None
    return "%dK" % ((int(budget) * 2 + 1023) // 1024)


def flash_bytes(prof):
    """The flash size in bytes, or None when the profile says detect."""
    return SIZES.get(str(prof.get("flash_size", "")).upper())
