"""package.json (for `mpremote mip install`) lists exactly the
lws package's files, at paths that exist."""
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_package_json_matches_the_firmware():
    pkg = json.loads((REPO / "package.json").read_text())
    listed = {dest: src for dest, src in pkg["urls"]}
    fw = REPO / "firmware"
    files = {str(p.relative_to(fw)) for p in (fw / "lws").rglob("*.py")
             if "__pycache__" not in p.parts}
    assert set(listed) == files
    for dest, src in listed.items():
        assert (REPO / src).is_file() and src == "firmware/" + dest


def _imports():
    """{module: the lws modules it imports}, read from the sources (every
    import, also those inside functions: a lazy import is still an edge)."""
    import ast
    fw = REPO / "firmware"
    mods = {}
    for p in (fw / "lws").rglob("*.py"):
        m = ".".join(p.relative_to(fw).with_suffix("").parts)
        mods[m[:-len(".__init__")] if m.endswith(".__init__") else m] = p
    edges = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        out = set()
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = pkg.split(".")
                    parts = parts[:len(parts) - n.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [base] + [base + "." + a.name for a in n.names]
            else:
                continue
            # a package's own parents are loaded before it: not an edge
            out.update(x for x in names if x in mods and x != m
                       and not m.startswith(x + "."))
        edges[m] = out
    return edges


def test_no_import_cycles():
    edges = _imports()

    def cycle(start):
        path, seen = [start], set()

        def walk(m):
            for n in sorted(edges[m]):
                if n == start:
                    return path + [n]
                if n not in seen:
                    seen.add(n)
                    path.append(n)
                    found = walk(n)
                    if found:
                        return found
                    path.pop()
            return None
        return walk(start)

    cycles = [c for c in (cycle(m) for m in sorted(edges)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c)
                                                     for c in cycles)


def test_leaf_modules_import_nothing_of_lws():
    edges = _imports()
    for leaf in ("lws.httpmsg", "lws.log", "lws.util", "lws.utf8",
                 "lws.uri", "lws.mask"):
        assert edges[leaf] <= {"lws._xor", "lws.util"} - {leaf}, (leaf,
                                                                 edges[leaf])


def test_mip_install_from_a_clone(tmp_path):
    """The README's install from a clone: `mpremote mip install
    package.json` in the repository puts lws on a board (a virtual one
    here, through its pty, as a serial board), and it imports there."""
    import subprocess
    import sys
    sys.path.insert(0, str(REPO / "host_tools"))
    from lwstool import vboard
    proc, port = vboard.start("esp32", root=tmp_path / "flash", stock=True)
    try:
        mp = [sys.executable, "-m", "mpremote", "connect", port]
        r = subprocess.run(mp + ["mip", "install", "--target", "/lib",
                                 "package.json"], cwd=str(REPO),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (tmp_path / "flash" / "lib" / "lws" / "httpmsg.py").is_file()
        r = subprocess.run(mp + ["exec", "import lws, lws.context; "
                                 "print('lws', lws.__version__)"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "lws 0.1.0" in r.stdout, r
    finally:
        vboard.stop(proc)
