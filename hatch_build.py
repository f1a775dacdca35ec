"""Build hook: the JupyterLab sidebar (labextension/, TypeScript) into the wheel.

- A prebuilt sidebar that is newer than its sources (an sdist, a previous build) is used
  as it is: no Node.js needed.
- Otherwise, with npm on PATH, ``npm install`` (once) and ``npm run build:prod`` build it into
  ``src/cellops/labextension``.
- Without npm, the package installs without the sidebar, and this prints one line saying
  how to get it (``pip install -v`` shows it; the server extension says it again in
  Jupyter's log). ``SKIP_JUPYTER_BUILDER=1`` skips the build on purpose.

The built sidebar is installed as shared data into ``share/jupyter/labextensions/cellops``.

The example folders ``cellops demo`` runs (``example_notebooks/pipeline`` and
``/monitoring``) go into a wheel as ``cellops/examples``. An editable install leaves them
out: its ``cellops`` is the checkout's ``src/cellops``, and the demo finds them in the
checkout (a copy under site-packages would sit beside the package, unused).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

HOW_TO_GET_IT = (
    "cellops: Node.js/npm not found, so the JupyterLab sidebar is not built; everything else "
    "installs. For the sidebar, install Node.js 18+ and npm and reinstall, or install a cellops "
    "wheel (it carries the sidebar prebuilt)."
)


EXAMPLES = ("pipeline", "monitoring")  # what `cellops demo` runs, shipped in the wheel


def _newest(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


class SidebarBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        source = root / "labextension"
        built = root / "src" / "cellops" / "labextension"
        marker = built / "static" / "style.js"
        sources = [p for d in ("src", "style") for p in (source / d).rglob("*")] + \
            [source / "package.json"]
        fresh = marker.is_file() and (not source.is_dir() or _newest(sources) <= marker.stat().st_mtime)
        if not fresh and source.is_dir() and not os.environ.get("SKIP_JUPYTER_BUILDER"):
            npm = shutil.which("npm")
            if npm is None:
                print(HOW_TO_GET_IT, file=sys.stderr)
            else:
                self._build(npm, source)
        if self.target_name == "wheel" and (built / "package.json").is_file():
            build_data.setdefault("shared_data", {})["src/cellops/labextension"] = \
                "share/jupyter/labextensions/cellops"
        if self.target_name == "wheel" and version != "editable":
            for name in EXAMPLES:
                folder = root / "example_notebooks" / name
                if folder.is_dir():
                    build_data.setdefault("force_include", {})[str(folder)] = \
                        f"cellops/examples/{name}"

    def _build(self, npm: str, source: Path) -> None:
        if not (source / "node_modules").is_dir():
            subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=source, check=True)
        subprocess.run([npm, "run", "build:prod"], cwd=source, check=True)
