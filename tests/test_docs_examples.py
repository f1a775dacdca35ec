"""Every ``python`` code block in README.md and docs/ runs, in order, page by page.

Each page runs in a fresh IPython shell (so ``%magics`` work) inside a fresh workspace;
a block that raises fails the test with the page and the block. A config-file snippet
(``c.Cellops...``) gets IPython's ``c = get_config()``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_the_python_blocks_of_a_page_run(page, ws, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.user_ns["get_config"] = Config
    shell.user_ns["c"] = Config()
    try:
        for i, code in enumerate(blocks(page), start=1):
            result = shell.run_cell(code, store_history=True)
            error = result.error_before_exec or result.error_in_exec
            assert error is None, f"{page.name}, python block {i}: {type(error).__name__}: {error}"
    finally:
        if "cellops" in shell.extension_manager.loaded:
            shell.run_line_magic("unload_ext", "cellops")
        InteractiveShell.clear_instance()
