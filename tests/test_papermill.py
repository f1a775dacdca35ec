"""Plain papermill runs of notebooks that use cellops: one notebook run, final params."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import cellops


def make_notebook(path: Path, *cells: str, params_cell: int | None = 1) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    if params_cell is not None:
        nb.cells[params_cell].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def papermill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "papermill", *args, "--log-level", "WARNING"],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


TRAIN = (
    "%load_ext cellops",
    "%%params\nalpha = 0.1\nmodel = 'ridge'\nn_iter = 10",
    "import cellops\ncellops.log_metric('score', alpha * 10)",
    "%%track -n fit --metrics loss\nloss = alpha / 2",
)


def test_injected_parameters_win_and_the_executed_notebook_is_stored(tmp_path):
    make_notebook(tmp_path / "train.ipynb", *TRAIN)
    res = papermill("train.ipynb", "out.ipynb", "-p", "alpha", "0.5", "-p", "n_iter", "3",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    df = cellops.search_runs(filter="attributes.kind = 'notebook'")
    assert len(df) == 1
    run = cellops.get_run(df["run_id"].iloc[0])
    assert run.status == "FINISHED" and run.name == "train"
    assert run.params == {"alpha": "0.5", "model": "ridge", "n_iter": "3"}
    assert run.metrics == {"score": 5.0}
    assert run.info["notebook_path"] == str(tmp_path / "train.ipynb")
    executed = nbformat.reads(run.read_artifact("out.ipynb").decode(), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    [child] = run.children()
    assert child.name == "fit" and child.metrics == {"loss": 0.25}


def test_defaults_are_logged_when_papermill_injects_nothing(tmp_path):
    make_notebook(tmp_path / "train.ipynb", *TRAIN)
    assert papermill("train.ipynb", "out.ipynb", cwd=tmp_path).returncode == 0
    run = cellops.get_run(cellops.search_runs(filter="attributes.kind = 'notebook'")["run_id"][0])
    assert run.params == {"alpha": "0.1", "model": "ridge", "n_iter": "10"}


def test_a_failing_notebook_records_the_failed_cell_and_keeps_the_output(tmp_path):
    make_notebook(tmp_path / "bad.ipynb", "%load_ext cellops", "%%params\nrows = 5",
                  "raise ValueError('no data for ' + str(rows))", "never = 1")
    res = papermill("bad.ipynb", "out.ipynb", "-p", "rows", "0", cwd=tmp_path)
    assert res.returncode != 0 and "ValueError" in res.stderr
    run = cellops.get_run(cellops.search_runs()["run_id"][0])
    assert run.status == "FAILED"
    assert "ValueError: no data for 0" in run.error and run.error.startswith("Cell 3 raised")
    executed = nbformat.reads(run.read_artifact("out.ipynb").decode(), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))
    assert (tmp_path / "out.ipynb").exists()  # papermill's own output is untouched


def test_a_notebook_without_cellops_leaves_no_workspace(tmp_path):
    make_notebook(tmp_path / "plain.ipynb", "x = 1", "y = x + 1", params_cell=0)
    res = papermill("plain.ipynb", "out.ipynb", "-p", "x", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / ".cellops").exists()


def test_api_only_notebooks_get_the_executed_notebook_too(tmp_path):
    make_notebook(tmp_path / "api.ipynb", "lr = 0.1",
                  "import cellops\nwith cellops.start_run(name='api', params={'lr': lr}):\n"
                  "    cellops.log_metric('m', 1)", params_cell=0)
    import papermill as pm

    pm.execute_notebook(str(tmp_path / "api.ipynb"), str(tmp_path / "out.ipynb"),
                        parameters={"lr": 0.3}, progress_bar=False, cwd=str(tmp_path))
    run = cellops.get_run(cellops.search_runs()["run_id"][0])
    assert run.params == {"lr": "0.3"}
    assert [a["path"] for a in run.artifacts] == ["out.ipynb"]


@pytest.mark.parametrize("flag", ["0"])
def test_the_integration_can_be_switched_off(tmp_path, monkeypatch, flag):
    monkeypatch.setenv("CELLOPS_PAPERMILL", flag)
    make_notebook(tmp_path / "train.ipynb", *TRAIN)
    assert papermill("train.ipynb", "out.ipynb", cwd=tmp_path).returncode == 0
    run = cellops.get_run(cellops.search_runs(filter="attributes.kind = 'notebook'")["run_id"][0])
    assert run.artifacts == []


SLOW_LOOP = (
    "%load_ext cellops\n%config Cellops.live_interval = 0.05",
    "%%track -n slow\nimport time, cellops\nfor step in range(40):\n    time.sleep(0.01)\n"
    "    cellops.log_metrics({'train_loss': 1 / (step + 1), 'val_loss': 2 / (step + 1)}, step=step)",
)


@pytest.mark.parametrize("engine", ["cellops", "off"])
def test_a_batch_run_keeps_the_chart_record_and_no_live_widget_data(tmp_path, monkeypatch, engine):
    """Under cellops' papermill engine nobody watches: no live widget at all. Without it
    (a plain nbclient run) the live widget is drawn and gives way to the record, and what
    nbclient saves of its widgets (emptied for the next cell) holds no line data."""
    if engine == "off":
        monkeypatch.setenv("CELLOPS_PAPERMILL", "0")
    # While the kernel waits after %load_ext (here: an await), the chart library is
    # imported for the first live chart, where someone may watch.
    idle = "import asyncio, sys\nawait asyncio.sleep(1.5)\nprint('bqplot' in sys.modules)"
    make_notebook(tmp_path / "slow.ipynb", SLOW_LOOP[0], idle, *SLOW_LOOP[1:], params_cell=None)
    res = papermill("slow.ipynb", "out.ipynb", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert nb.cells[1].outputs[0]["text"] == ("False\n" if engine == "cellops" else "True\n")
    outputs = [o.get("data", {}) for o in nb.cells[2].outputs]
    (chart,) = [d for d in outputs if "application/vnd.plotly.v1+json" in d]
    assert {t["name"] for t in chart["application/vnd.plotly.v1+json"]["data"]} \
        >= {"train_loss", "val_loss"}
    assert not any("application/vnd.jupyter.widget-view+json" in d for d in outputs)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    lines = [w for w in state.get("state", {}).values() if w["model_name"] in ("LinesModel",
                                                                              "ScatterModel")]
    if engine == "cellops":
        assert not state
    else:
        assert len(lines) == 8  # two lines and their hover points, linear and log, then emptied
        assert all(not b["data"] for w in lines for b in w["buffers"] if b["path"][0] in "xy")
