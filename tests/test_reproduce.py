"""Reproduction you can trust: inputs, code and environment checked first; real kernels."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import cellops
from cellops.pipelines import pipeline_status, reproduce, run_pipeline
from test_pipelines import notebook


@pytest.fixture
def scored(tmp_path):
    """A one-step pipeline that reads raw.csv (a declared input) and logs its mean; with
    keep=true the step also logs raw.csv as an artifact, which makes it restorable."""
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    notebook(tmp_path / "score.ipynb", "keep = False",
             "import cellops, pandas as pd\n"
             "df = pd.read_csv('raw.csv')\n"
             "cellops.log_metric('mean', float(df.x.mean()))\n"
             "if keep:\n    cellops.log_artifact('raw.csv')")
    (tmp_path / "p.yaml").write_text(
        "name: scored\nsteps:\n  - name: score\n    notebook: score.ipynb\n    inputs: [raw.csv]\n")
    return tmp_path


def test_a_changed_input_refuses_the_reproduction_unless_allowed(scored):
    step = run_pipeline(scored / "p.yaml", progress=None).steps["score"]
    assert cellops.get_run(step.run_id).metrics["mean"] == 2.0
    same = reproduce(step.run_id, progress=None)
    assert same.status == "FINISHED" and same.metrics[0]["difference"] == 0.0
    assert any(c["what"] == "input raw.csv" and c["status"] == "same" for c in same.checks)

    (scored / "raw.csv").write_text("x\n10\n20\n30\n")  # the data changed behind the run
    runs_before = len(cellops.search_runs())
    with pytest.raises(cellops.InvalidArgumentError, match=r"read raw.csv, which changed") as info:
        reproduce(step.run_id, progress=None)
    assert "--allow-changed" in str(info.value)
    assert len(cellops.search_runs()) == runs_before  # refused before anything was started

    anyway = reproduce(step.run_id, allow_changed=True, progress=None)
    assert anyway.changed == ["raw.csv"] and anyway.metrics[0]["difference"] == 18.0
    assert cellops.get_run(anyway.run_id).tags["reproduce.changed_inputs"] == "raw.csv"
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "reproduce", step.run_id[:8]],
                         cwd=scored, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "input raw.csv: changed" in res.stderr
    assert "--allow-changed" in res.stderr and "Traceback" not in res.stderr


def test_an_input_whose_bytes_are_stored_is_restored_and_reproduced_faithfully(scored):
    step = run_pipeline(scored / "p.yaml", ["score.keep=true"], progress=None).steps["score"]
    (scored / "raw.csv").write_text("x\n10\n20\n30\n")
    again = reproduce(step.run_id, progress=None)
    restored = [c for c in again.checks if c["what"] == "input raw.csv"]
    assert restored[0]["status"] == "restored" and again.changed == []
    assert again.metrics == [{"key": "mean", "original": 2.0, "reproduced": 2.0, "difference": 0.0}]
    assert (scored / "raw.csv").read_text() == "x\n10\n20\n30\n"  # the project is untouched


def test_code_and_environment_are_compared_and_reported(scored):
    step = run_pipeline(scored / "p.yaml", progress=None).steps["score"]
    result = reproduce(step.run_id, progress=None)
    env = next(c for c in result.checks if c["what"] == "environment")
    assert env["status"] == "same" and result.environment_differs is False


def test_a_step_downstream_of_a_stale_step_is_stale(tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n")
    notebook(tmp_path / "a.ipynb", "n = 1", "open('mid.txt', 'w').write(open('raw.csv').read())")
    notebook(tmp_path / "b.ipynb", "m = 1", "open('out.txt', 'w').write(open('mid.txt').read())")
    (tmp_path / "p.yaml").write_text(
        "name: chain\nsteps:\n"
        "  - {name: a, notebook: a.ipynb, inputs: [raw.csv], outputs: [mid.txt]}\n"
        "  - {name: b, notebook: b.ipynb, needs: [a], inputs: [mid.txt], outputs: [out.txt]}\n")
    run_pipeline(tmp_path / "p.yaml", progress=None)
    assert [r["up_to_date"] for r in pipeline_status(tmp_path / "p.yaml")] == [True, True]
    (tmp_path / "raw.csv").write_text("x\n2\n")
    a, b = pipeline_status(tmp_path / "p.yaml")
    assert not a["up_to_date"] and a["reason"] == "input raw.csv changed"
    assert not b["up_to_date"] and b["reason"] == "upstream a will re-run"


def cell(shell: InteractiveShell, code: str) -> None:
    """A cell as a kernel runs it: kept in IPython's history, errors raised."""
    shell.run_cell(code, store_history=True).raise_error()


@pytest.fixture
def shell(ws):
    """A real InteractiveShell with IPython's input history kept (in memory)."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    sh = InteractiveShell.instance(config=config)
    yield sh
    sh.run_line_magic("unload_ext", "cellops")
    InteractiveShell.clear_instance()


def test_history_exports_a_notebook_that_papermill_runs_top_to_bottom(shell, tmp_path):
    import papermill as pm

    cell(shell, "import math")
    cell(shell, "%load_ext cellops")
    cell(shell, "x = math.sqrt(16)")
    cell(shell, "%track on")
    cell(shell, "%%track -n plus\ny = x + 1")
    cell(shell, "z = y * 2")
    run = cellops.get_run(cellops.search_runs(filter="kind = 'notebook'")["run_id"].iloc[0])
    recorded = cellops.cell_history(run.id)
    assert [(c["source"], c["status"]) for c in recorded] == [
        ("import math", "untracked"), ("%load_ext cellops", "untracked"),
        ("x = math.sqrt(16)", "untracked"), ("%%track -n plus\ny = x + 1", "ok"), ("z = y * 2", "ok")]
    out = cellops.export_history(run.id, tmp_path / "replay.ipynb")
    nb = nbformat.read(out, as_version=4)
    assert "before %track on" in nb.cells[0].metadata["cellops"]["note"]
    pm.execute_notebook(str(out), str(tmp_path / "replayed.ipynb"), kernel_name="python3",
                        cwd=str(tmp_path), progress_bar=False)
    done = nbformat.read(tmp_path / "replayed.ipynb", as_version=4)
    assert not any(o.get("output_type") == "error" for c in done.cells for o in c.get("outputs", []))


def test_a_history_with_failing_cells_runs_to_the_end_under_papermill(shell, tmp_path):
    """papermill ignores the raises-exception tag and stopped (exit 1) at the first cell
    the history kept as failing (issue #27)."""
    import subprocess
    import sys

    cell(shell, "%load_ext cellops")
    cell(shell, "%track on")
    cell(shell, "total = 1")
    shell.run_cell("total += 1\nratio = total / 0", store_history=True)  # raises, half done
    shell.run_cell("%%track -n broken\nundefined_name", store_history=True)
    cell(shell, "total = total * 10")
    run = cellops.get_run(cellops.search_runs(filter="kind = 'notebook'")["run_id"].iloc[0])
    assert [c["status"] for c in cellops.cell_history(run.id)][-3:] == ["error", "error", "ok"]
    cellops.workspace().flush()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "history", run.id[:8]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "None ms" not in res.stdout and "not timed" in res.stdout
    out = cellops.export_history(run.id, tmp_path / "replay.ipynb")
    nb = nbformat.read(out, as_version=4)
    assert "%%expect_error" in nb.cells[0].source  # the notebook says why
    sources = [c.source for c in nb.cells]
    assert "%%expect_error ZeroDivisionError\ntotal += 1\nratio = total / 0" in sources
    assert "%%expect_error NameError\n%%track -n broken\nundefined_name" in sources
    res = subprocess.run([sys.executable, "-m", "papermill", str(out), str(tmp_path / "done.ipynb"),
                          "--no-progress-bar", "--cwd", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    done = nbformat.read(tmp_path / "done.ipynb", as_version=4)
    assert not any(o.get("output_type") == "error" for c in done.cells for o in c.get("outputs", []))
    shown = "".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))
    assert "ZeroDivisionError" in shown and "NameError" in shown
    last = next(c for c in done.cells if c.source == "total = total * 10")
    assert last.metadata["papermill"]["status"] == "completed"
    # the half-done cell left its state as it did when recorded: total 2, times 10
    check = nbformat.v4.new_code_cell("assert total == 20, total")
    done.cells.append(check)
    nbformat.write(done, tmp_path / "check.ipynb")
    res = subprocess.run([sys.executable, "-m", "papermill", str(tmp_path / "check.ipynb"),
                          str(tmp_path / "checked.ipynb"), "--no-progress-bar", "--cwd",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def test_an_export_adds_load_ext_when_the_history_uses_cellops_magics(shell, tmp_path):
    shell.run_line_magic("load_ext", "cellops")  # not a cell: not in the history
    cell(shell, "%track on")
    cell(shell, "%%track -n t\nv = 1")
    run = cellops.get_run(cellops.search_runs(filter="kind = 'notebook'")["run_id"].iloc[0])
    nb = nbformat.read(cellops.export_history(run.id, tmp_path / "r.ipynb"), as_version=4)
    assert nb.cells[0].source == "%load_ext cellops" and nb.cells[1].source.startswith("%%track")


def test_a_tracked_cell_is_reproduced_from_its_source_after_the_cells_before_it(shell):
    cell(shell, "%load_ext cellops")
    cell(shell, "%track on")
    cell(shell, "data = [1.0, 2.0, 6.0]")
    cell(shell, "%%track -n mean --metrics m\nm = sum(data) / len(data)")
    tracked = cellops.get_run(cellops.search_runs(filter="kind = 'cell'")["run_id"].iloc[0])
    assert tracked.metrics == {"m": 3.0}
    again = reproduce(tracked.id, progress=None)
    assert again.status == "FINISHED", again.error
    assert again.metrics == [{"key": "m", "original": 3.0, "reproduced": 3.0, "difference": 0.0}]
    copy = cellops.get_run(again.run_id)
    assert copy.kind == "cell" and copy.tags["reproduces"] == tracked.id and copy.id != tracked.id
    # The replay ran the cells before it once and the tracked cell once (not twice).
    assert len(cellops.search_runs(filter="kind = 'cell'")) == 2


def test_provenance_of_a_pipeline_model_and_of_its_reproduction(scored):
    """Issue #27: the card said the source was the `cellops` console script, and the
    reproduction went to experiment Default."""
    nb = nbformat.read(scored / "score.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from sklearn.linear_model import LinearRegression\n"
        "cellops.log_model(LinearRegression().fit(df[['x']], df.x), 'model.skops')"))
    nbformat.write(nb, scored / "score.ipynb")
    cellops.set_experiment("scoring")
    step = run_pipeline(scored / "p.yaml", progress=None).steps["score"]
    run = cellops.get_run(step.run_id)
    assert run.experiment == "scoring"
    assert run.info["source_name"] == str(scored / "score.ipynb")
    assert run.info["notebook_path"] == str(scored / "score.ipynb")
    version = cellops.register_model(run, "scorer")
    card = str(cellops.model_card("scorer", version.version))
    assert f"Notebook / source: `{scored / 'score.ipynb'}`" in card
    assert "bin/cellops" not in card

    cellops.set_experiment("elsewhere")  # the reproduction follows the original, not this
    again = reproduce(step.run_id, progress=None)
    assert cellops.get_run(again.run_id).experiment == "scoring"


def test_a_project_outside_git_is_reported_as_such_not_as_a_changed_commit(scored):
    from cellops.pipelines.reproduction import _git_check

    assert _git_check("0123456789abcdef", scored) == [{
        "what": "git commit", "status": "not in a git repository",
        "detail": f"recorded 0123456789ab; {scored} is not in a git repository, so the code "
                  "cannot be compared"}]
    assert _git_check(None, scored) == []
    repo = scored / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert _git_check(head, repo)[0]["status"] == "same"
    assert _git_check("f" * 40, repo)[0]["status"] == "changed"
    assert _git_check(None, repo)[0]["status"] == "not recorded"


def test_a_tracked_cell_outside_git_reproduces_without_a_false_code_change(shell, tmp_path):
    cell(shell, "%load_ext cellops")
    cell(shell, "%experiment cells")
    cell(shell, "%%track -n plain --metrics m\nm = 2 * 21")
    tracked = cellops.get_run(cellops.search_runs(filter="kind = 'cell'")["run_id"].iloc[0])
    again = reproduce(tracked.id, progress=None)
    assert again.status == "FINISHED", again.error
    assert not any(c["status"] == "changed" for c in again.checks if c["what"] == "git commit")
    assert cellops.get_run(again.run_id).experiment == "cells"
