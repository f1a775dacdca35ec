"""The sidebar's packaging and its TypeScript unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEXT = ROOT / "labextension"


def test_the_typescript_unit_tests_pass():
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed to build and test the sidebar (see README)"
    if not (LABEXT / "node_modules").is_dir():  # pip install -e . normally leaves them there
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=LABEXT, check=True,
                       capture_output=True, timeout=600)
    res = subprocess.run([npm, "test"], cwd=LABEXT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    written = sum(t.read_text().count("\ntest(") for t in (LABEXT / "test").glob("*.test.ts"))
    assert "# fail 0" in res.stdout and f"# pass {written}\n" in res.stdout  # every test ran


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


@pytest.fixture(scope="module")
def unpacked_sdist(tmp_path_factory):
    """The project's sdist, built here and unpacked: what a user downloads from an index."""
    if not (ROOT / "src/cellops/labextension/package.json").exists():
        pytest.fail("the sidebar is not built; run pip install -e . (needs Node.js, see README)")
    out = tmp_path_factory.mktemp("sdist")
    code = "import sys; from hatchling.build import build_sdist; print(build_sdist(sys.argv[1]))"
    res = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with tarfile.open(out / res.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return next(p for p in out.iterdir() if p.is_dir())


def build_wheel_without_node(src: Path, dest: Path, **env: str) -> subprocess.CompletedProcess:
    """``pip wheel -v`` (the build hook's output shows) with a PATH that has Python but no
    node or npm."""
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", str(src), "--no-deps", "--no-build-isolation",
         "-w", str(dest)],
        env={**os.environ, "PATH": str(bin_dir), **env}, capture_output=True, text=True,
        timeout=600)


def wheel_names(dest: Path) -> list[str]:
    (wheel,) = dest.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_a_wheel_built_from_the_sdist_carries_the_sidebar_without_node(unpacked_sdist, tmp_path):
    res = build_wheel_without_node(unpacked_sdist, tmp_path / "dist")
    assert res.returncode == 0, res.stdout + res.stderr
    names = wheel_names(tmp_path / "dist")
    share = "cellops-0.1.0.data/data/share/jupyter/labextensions/cellops/"
    assert share + "package.json" in names and share + "install.json" in names
    assert any(n.startswith(share + "static/remoteEntry.") for n in names)
    assert "cellops-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/cellops.json" in names
    # The examples `cellops demo` runs travel inside the package.
    assert "cellops/examples/pipeline/pipeline.yaml" in names
    assert "cellops/examples/monitoring/monitor-and-retrain.ipynb" in names


def test_an_editable_install_leaves_the_examples_in_the_checkout(tmp_path):
    """An editable wheel carries no copy of the examples beside its path hook: the demo
    reads them from the checkout, where the package's files are too."""
    code = ("import sys; from hatchling.build import build_editable; "
            "print(build_editable(sys.argv[1]))")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "SKIP_JUPYTER_BUILDER": "1"})
    assert res.returncode == 0, res.stderr
    names = zipfile.ZipFile(tmp_path / res.stdout.strip().splitlines()[-1]).namelist()
    assert any(n.endswith(".pth") for n in names)
    assert not [n for n in names if "examples" in n]
    from cellops.demo import example_folder

    assert (example_folder("pipeline") / "pipeline.yaml").is_file()


def test_a_source_tree_without_node_installs_without_the_sidebar_and_says_how_to_get_it(
        unpacked_sdist, tmp_path):
    src = tmp_path / "src-tree"
    shutil.copytree(unpacked_sdist, src)
    shutil.rmtree(src / "src/cellops/labextension")  # a git clone has no built sidebar
    res = build_wheel_without_node(src, tmp_path / "dist")
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert "Traceback" not in output
    [line] = [ln for ln in output.splitlines() if "Node.js/npm not found" in ln]
    assert "install Node.js 18+" in line and "wheel" in line
    names = wheel_names(tmp_path / "dist")
    assert "cellops/__init__.py" in names
    assert "cellops-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/cellops.json" in names
    assert not [n for n in names if "labextensions" in n]


def test_the_server_says_how_to_get_a_missing_sidebar(monkeypatch, tmp_path):
    import cellops.server as server

    monkeypatch.setattr(server, "_labextension_dirs", lambda: [tmp_path])
    logged = []
    server._warn_without_sidebar(logged.append)
    assert len(logged) == 1 and "sidebar is not installed" in logged[0]
    (tmp_path / "cellops").mkdir()
    (tmp_path / "cellops" / "package.json").write_text("{}")
    server._warn_without_sidebar(logged.append)
    assert len(logged) == 1  # installed: nothing to say
