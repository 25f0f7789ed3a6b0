# boot.py: runs first on every boot; keep it small and safe.
# It counts boots in the file boot_count (soft resets excepted, where the
# port tells them apart); main.py clears the count once the server is up.
# After 3 boots that never got there, main.py starts nothing (safe mode),
# so a bad config or deploy cannot lock the REPL out.
import gc

try:
    import esp
    esp.osdebug(None)  # no ROM debug chatter on the REPL's UART
except ImportError:
    pass


def _count_boot():
    try:
        import machine
        if machine.reset_cause() == machine.SOFT_RESET:
            # Ctrl-D or a tool's soft reset (raw REPL: main.py does not
            # run after it): not a boot that could loop; where the port
            # cannot tell (esp8266, unix), every boot counts
            return
    except (ImportError, AttributeError):
        pass
    n = 0
    try:
        with open("boot_count") as f:
            n = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    with open("boot_count", "w") as f:
        f.write(str(n + 1))


try:
    _count_boot()
except Exception as e:  # a full or read-only filesystem: boot anyway
    print("boot: cannot count boots:", e)
del _count_boot
gc.collect()
