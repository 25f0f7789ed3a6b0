"""A small file written so that a power cut at any moment loses nothing:
save() writes a temp file, syncs it, then renames it over the old one;
load() cleans up after a save that was cut off, and recovers the temp file
where the file system (FAT) made save() remove the old file before the
rename. Used by the WLAN slot file and the account store.

    atomic.save("x.json", lambda f: json.dump(d, f))
    d = atomic.load("x.json", read, "wlan", "slot")   # None: no file

read(f) returns the data or raises ValueError for a corrupt file; a
corrupt file is logged and kept aside as <path>.bad."""
import os
from . import log


def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass


def _read(p, read):
    try:
        f = open(p)
    except OSError:
        return None
    try:
        with f:
            return read(f)
    except Exception as e:  # json: ValueError; others: bad structure
        raise ValueError(str(e) or type(e).__name__)


def load(p, read, tag, noun):
    """The data in file p (None when there is none), never raising for
    a corrupt or half-written file. tag and noun name it in the log:
    '<tag>: <noun> file ... is corrupt', '<tag>: recovered the <noun>s'."""
    tmp = p + ".tmp"
    try:
        d = _read(p, read)
    except ValueError as e:
        log.err("%s: %s file %s is corrupt (%s): kept as %s.bad",
                tag, noun, p, e, p)
        _rm(p + ".bad")
        try:
            os.rename(p, p + ".bad")
        except OSError:
            _rm(p)
        d = None
    try:
        t = _read(tmp, read)
    except ValueError:
        t = None
        log.warn("%s: removed %s, half written by an interrupted save",
                 tag, tmp)
        _rm(tmp)
    if t is not None:
        if d is None:
            # the crash came between removing the old file and the
            # rename (file systems that cannot rename over a file)
            log.warn("%s: recovered the %ss from %s", tag, noun, tmp)
            d = t
            try:
                os.rename(tmp, p)
            except OSError:
                pass
        else:
            log.warn("%s: removed %s left by an interrupted save", tag, tmp)
            _rm(tmp)
    return d


def save(p, write):
    """Write file p through write(f), atomically: never a half-written
    file, and the old one whole until the new one is."""
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        write(f)
    # on flash before the rename makes it the file (os.sync where the
    # port has one: not the unix port)
    s = getattr(os, "sync", None)
    if s:
        s()
    try:
        os.rename(tmp, p)
    except OSError:
        # FAT cannot rename over a file: load() recovers from tmp
        # should the power go between these two
        _rm(p)
        os.rename(tmp, p)
