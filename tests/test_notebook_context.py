"""Context captured inside IPython and a real Jupyter kernel: the executed cell, the notebook."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

import cellops


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    sh = InteractiveShell.instance(config=config)
    yield sh
    InteractiveShell.clear_instance()


def test_a_run_started_in_ipython_records_the_cell_source_and_notebook_path(shell, tmp_path):
    shell.user_ns["__session__"] = str(tmp_path / "analysis.ipynb")
    cell = "import cellops\nrun = cellops.start_run(name='cell')\ncellops.end_run()"
    shell.run_cell(cell).raise_error()
    run = cellops.get_run(shell.user_ns["run"].id)
    assert run.source == cell
    assert run.info["notebook_path"] == str(tmp_path / "analysis.ipynb")


def test_a_run_in_a_real_kernel_records_the_executed_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import cellops\nx = 41"),
        nbformat.v4.new_code_cell(
            "with cellops.start_run(name='kernel') as run:\n"
            "    cellops.log_metric('answer', x + 1)\n"
            "print(run.id)"
        ),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    run_id = nb.cells[1].outputs[0]["text"].strip()
    run = cellops.get_run(run_id)
    assert run.metrics == {"answer": 42.0}
    assert run.source == nb.cells[1].source
    # nbclient tells the kernel no notebook path; the source is still the cell's.
    assert run.info["notebook_path"] is None and run.info["source_name"] == "<ipython>"
    assert run.status == "FINISHED"
