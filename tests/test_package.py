"""package.json (for `mpremote mip install github:...`) lists exactly the
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
