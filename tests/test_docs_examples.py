"""Every ``python`` and ``bash`` block of README.md and docs/ runs, in order, page by page.

Each page runs in a fresh workspace folder holding a copy of ``example_notebooks/`` (as a
clone does): its python blocks in one IPython shell (so ``%magics`` work), its bash
blocks with ``bash -e`` in that folder, interleaved as the page shows them, so a command
sees what the code above it made. A block that fails fails the test with the page, the
block and what it printed.

What the docs mark, and the test honours:

- ``<run>``, ``<step-run>``, ``<notebook-run>``, ``<audit-head>`` in a command are
  placeholders (the prose says what to put there); the test substitutes the newest such
  run's id prefix (successive ``<run>`` in one block: the newest, the one before, ...;
  a notebook run: the newest with recorded cells) and the audit log's head hash;
- ``cellops serve ...`` starts a server that runs until stopped: the test starts it in
  the background on a free port (``:5000`` after it in the page becomes that port), waits
  for ``/ping``, and stops it when the page is done;
- ``<!-- test: skip: REASON -->`` on the line before a block: not run, for the reason
  given (installing packages, rebuilding the sidebar: what the test command itself does).

A config-file snippet (``c.Cellops...``) gets IPython's ``c = get_config()``. Commands
that ``cd cellops-demo`` find the folder ``cellops demo`` makes (the demo is run once per
test session by ``tests/conftest.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import cellops

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:^<!-- test: (?P<marker>[^\n]*?) -->\n)?^```(?P<lang>python|bash)\n"
                   r"(?P<code>.*?)^```", re.S | re.M)
SERVE = re.compile(r"^(cellops serve [^#\n]*?)\s*(#.*)?$", re.M)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, marker) of each python/bash block of a page, in order."""
    return [(m["lang"], m["code"], m["marker"]) for m in BLOCK.finditer(page.read_text())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PLACEHOLDER = re.compile(r"<(run|step-run|notebook-run|audit-head)>")
# Prints what a placeholder stands for, from the workspace of the folder the command runs
# in (a block may `cd` into another project first).
PICK = """
import sys
import cellops

kind, index = sys.argv[1], int(sys.argv[2])
if kind == "audit-head":
    print(cellops.verify_audit().head)
    raise SystemExit
runs = cellops.search_runs(order_by=["attributes.start_time DESC"])
if kind == "step-run":
    ids = list(runs[runs["kind"].isin(["step", "trial"])]["run_id"])
elif kind == "notebook-run":
    ids = [r for r in runs[runs["kind"] == "notebook"]["run_id"] if cellops.cell_history(r)]
else:
    ids = list(runs[runs["kind"].isin(["run", "cell"])]["run_id"])
if index >= len(ids):
    raise SystemExit(f"no run to put for <{kind}> number {index + 1}")
print(ids[index][:8])
"""


def substitute(code: str, helper: Path) -> str:
    """Each placeholder the docs mark becomes a command substitution that prints, where the
    command runs, the newest such run's id prefix (the next placeholder of the same kind in
    the block: the one before) or the audit log's head."""
    count: dict[str, int] = {}

    def pick(m: re.Match) -> str:
        n = count[m[1]] = count.get(m[1], -1) + 1
        return f'"$(python {helper} {m[1]} {n})"'
    return PLACEHOLDER.sub(pick, code)


class Servers:
    """``cellops serve ...`` lines started in the background, each on a free port, waited
    for; ``:5000`` in a block means the latest one's port."""

    def __init__(self, folder: Path) -> None:
        self.pidfile, self.port = folder / ".servers.pid", free_port()

    def rewrite(self, code: str) -> str:
        def start(m: re.Match) -> str:
            self.port = port = free_port()
            log = self.pidfile.parent / f"serve-{port}.log"
            return (f"{m[1]} --port {port} > {log} 2>&1 &\necho $! >> {self.pidfile}\n"
                    f"for i in $(seq 300); do curl -sf http://127.0.0.1:{port}/ping > /dev/null "
                    f"&& break; sleep 0.2; done\ncurl -sf http://127.0.0.1:{port}/ping > /dev/null")

        lines = []
        for line in code.splitlines():
            line = SERVE.sub(start, line)
            lines.append(line.replace(":5000", f":{self.port}"))
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        if self.pidfile.exists():
            for pid in self.pidfile.read_text().split():
                subprocess.run(["kill", pid], capture_output=True)


class Terminal:
    """The bash blocks of one page as one terminal session: each block starts in the
    folder the last one ended in, with the variables earlier blocks set (``URL=...``)."""

    ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$", re.M)

    def __init__(self, folder: Path) -> None:
        self.cwd, self.state = folder, folder / ".terminal-cwd"
        self.variables: list[str] = []

    def run(self, code: str, page: str, i: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
        script = "\n".join(self.variables + [code, f"pwd > {self.state}"])
        res = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.cwd, env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, (
            f"{page}, bash block {i} exited {res.returncode}:\n{code}\n"
            f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}")
        self.cwd = Path(self.state.read_text().strip())
        self.variables += self.ASSIGNMENT.findall(code)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_the_code_blocks_of_a_page_run(page, ws, tmp_path, monkeypatch, request):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    shutil.copytree(ROOT / "example_notebooks", tmp_path / "example_notebooks")
    if any("cellops-demo" in code for lang, code, _ in blocks(page) if lang == "bash"):
        os.symlink(request.getfixturevalue("demo")["folder"], tmp_path / "cellops-demo")
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.user_ns["get_config"] = Config
    shell.user_ns["c"] = Config()
    servers, terminal = Servers(tmp_path), Terminal(tmp_path)
    helper = tmp_path / ".pick.py"
    helper.write_text(PICK)
    try:
        for i, (lang, code, marker) in enumerate(blocks(page), start=1):
            if marker is not None:
                assert marker.startswith("skip: ") and len(marker) > 10, \
                    f"{page.name}, block {i}: a marker reads <!-- test: skip: REASON -->"
                continue
            if lang == "python":
                result = shell.run_cell(code, store_history=True)
                error = result.error_before_exec or result.error_in_exec
                assert error is None, f"{page.name}, python block {i}: {type(error).__name__}: {error}"
            else:
                cellops.flush()  # what the python blocks logged, for the commands to see
                terminal.run(servers.rewrite(substitute(code, helper)), page.name, i)
    finally:
        servers.stop()
        if "cellops" in shell.extension_manager.loaded:
            shell.run_line_magic("unload_ext", "cellops")
        InteractiveShell.clear_instance()
