"""The sidebar's packaging and its TypeScript unit tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

LABEXT = Path(__file__).resolve().parents[1] / "labextension"


def test_the_typescript_unit_tests_pass():
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed to build and test the sidebar (see README)"
    if not (LABEXT / "node_modules").is_dir():  # pip install -e . normally leaves them there
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LABEXT, check=True,
                       capture_output=True, timeout=600)
    res = subprocess.run([npm, "test"], cwd=LABEXT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "# fail 0" in res.stdout and "# pass 10" in res.stdout


def test_the_server_and_lab_extensions_are_installed_and_enabled():
    server = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                            capture_output=True, text=True, timeout=120)
    out = server.stdout + server.stderr
    assert "cellops.server" in out and "enabled" in out
    assert "cellops.server  \x1b[32mOK" in out or "cellops.server  OK" in out
    lab = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True, timeout=120)
    line = next((ln for ln in (lab.stdout + lab.stderr).splitlines() if "cellops v" in ln), "")
    assert "enabled" in line and "OK" in line, lab.stdout + lab.stderr
