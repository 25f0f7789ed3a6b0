"""Pack a site for a board: a ZIP archive to mount (file://site.zip) and
.gz files to serve beside their originals. Both are reproducible (names
in sorted order, fixed times, no host names: the same input makes the
same bytes) and both use a small deflate window, marked in an extra field
(gzip FEXTRA / zip extra "LW"), so that the board inflates them with a
1 KiB window instead of zlib's 32 KiB.

    zip_dir("www", "www.zip")          # -> bytes written
    gzip_tree("www", replace=False)    # x -> x.gz beside it
"""
import os
import struct
import zlib
from pathlib import Path

#: the deflate window (log2) of what lwstool writes: 1 KiB on the board
WBITS = 10
_MARK = lambda w: b"LW" + struct.pack("<H", 2) + bytes((1, w))  # noqa
# 1980-01-01 00:00:00, the first DOS date: every entry's time
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
#: what is worth compressing (by suffix); the rest is stored
COMPRESS = (".html", ".htm", ".css", ".js", ".mjs", ".json", ".txt",
            ".svg", ".xml", ".map", ".ico", ".wasm", ".md", ".csv")


def deflate_raw(data, wbits=WBITS):
    """data as raw deflate (level 9) with a 1 << wbits byte window."""
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits, 9)
    return c.compress(data) + c.flush()


def gzip_bytes(data, wbits=WBITS):
    """data as one gzip member: mtime 0, no name, the window marked."""
    x = _MARK(wbits)
    head = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x02\xff" + \
        struct.pack("<H", len(x)) + x
    return head + deflate_raw(data, wbits) + struct.pack(
        "<II", zlib.crc32(data), len(data) & 0xffffffff)


def site_files(folder):
    """The files of a folder to pack: sorted relative POSIX paths, no
    dotfiles, no .gz twins of files that are there too."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if not p.is_file() or any(s.startswith(".") for s in rel.split("/")):
            continue
        out.append(rel)
    return out


def zip_bytes(entries, wbits=WBITS):
    """entries: [(name, data)] -> a ZIP archive (bytes). Text-like files
    deflated when that makes them smaller, the others stored."""
    local, central = [], []
    off = 0
    for name, data in entries:
        n = name.encode()
        crc = zlib.crc32(data)
        method, body, extra = 0, data, b""
        if name.lower().endswith(COMPRESS):
            d = deflate_raw(data, wbits)
            if len(d) < len(data):
                method, body, extra = 8, d, _MARK(wbits)
        fields = struct.pack("<HHHHHIIIHH", 20, 0x800, method, _DOS_TIME,
                             _DOS_DATE, crc, len(body), len(data), len(n),
                             len(extra))
        rec = b"PK\x03\x04" + fields + n + extra
        local.append(rec)
        local.append(body)
        central.append(b"PK\x01\x02" + struct.pack("<H", 0x314) + fields +
                       struct.pack("<HHHII", 0, 0, 0, 0o100644 << 16, off) +
                       n + extra)
        off += len(rec) + len(body)
    cd = b"".join(central)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries),
                                       len(entries), len(cd), off, 0)
    return b"".join(local) + cd + end


def zip_dir(folder, out, wbits=WBITS):
    """Pack a folder into the archive out; returns its size."""
    folder = Path(folder)
    data = zip_bytes([(r, (folder / r).read_bytes())
                      for r in site_files(folder)], wbits)
    tmp = str(out) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    return len(data)


def gzip_tree(folder, replace=False, wbits=WBITS, suffixes=COMPRESS):
    """Write x.gz beside every compressible file x of a folder (that
    gzip makes smaller); replace: remove x (the board then inflates for
    clients that do not take gzip). Returns the paths written."""
    folder = Path(folder)
    done = []
    for rel in site_files(folder):
        p = folder / rel
        if not rel.lower().endswith(suffixes):
            continue
        data = p.read_bytes()
        g = gzip_bytes(data, wbits)
        if len(g) >= len(data):
            continue
        gp = p.with_name(p.name + ".gz")
        gp.write_bytes(g)
        if replace:
            p.unlink()
        done.append(gp)
    return done
