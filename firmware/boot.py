# boot.py: runs first on every boot; keep it small and safe.
import gc

try:
    import esp
    esp.osdebug(None)  # no ROM debug chatter on the REPL's UART
except ImportError:
    pass
gc.collect()
