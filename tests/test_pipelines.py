"""Pipelines with real kernels: order, caching, failure and resume, timeouts, bad files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

import cellops
from cellops.pipelines import PipelineSpecError, pipeline_status, run_pipeline


def notebook(path: Path, params: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(params)] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells[0].metadata["tags"] = ["parameters"]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path):
    notebook(tmp_path / "nb" / "prepare.ipynb", "rows = 20\nseed = 0",
             "import os, pandas as pd, numpy as np\nos.makedirs('data', exist_ok=True)\n"
             "rng = np.random.default_rng(seed)\n"
             "pd.DataFrame({'x': rng.random(rows)}).to_csv('data/train.csv', index=False)")
    notebook(tmp_path / "nb" / "train.ipynb", "scale = 1.0\nfail = False",
             "import pandas as pd, cellops\ndf = pd.read_csv('data/train.csv')\n"
             "if fail:\n    raise RuntimeError('training diverged')\n"
             "cellops.log_metric('mean', float(df.x.mean() * scale))\n"
             "open('model.txt', 'w').write(str(scale))")
    notebook(tmp_path / "nb" / "report.ipynb", "title = 'r'",
             "import cellops\ncellops.log_metric('report', 1.0)")
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent("""\
        name: demo
        parameters: {seed: 0}
        steps:
          - name: prepare
            notebook: nb/prepare.ipynb
            parameters: {rows: 50}
            outputs: [data/train.csv]
          - name: train
            notebook: nb/train.ipynb
            needs: [prepare]
            inputs: [data/train.csv]
            outputs: [model.txt]
            parameters: {scale: 2.0}
          - name: report
            notebook: nb/report.ipynb
            needs: [train]
        """))
    return tmp_path


def statuses(result) -> dict[str, str]:
    return {n: s.status for n, s in result.steps.items()}


def test_steps_run_in_order_as_child_runs_and_a_second_run_is_fully_cached(project):
    first = run_pipeline(project / "pipeline.yaml", progress=None)
    assert statuses(first) == {"prepare": "ran", "train": "ran", "report": "ran"}
    prun = cellops.get_run(first.run_id)
    assert prun.kind == "pipeline" and prun.status == "FINISHED"
    children = {c.name: c for c in prun.children()}
    assert list(children) == ["prepare", "train", "report"]
    train = children["train"]
    assert train.kind == "step" and train.params == {"scale": "2.0"}  # seed: not its parameter
    assert children["prepare"].params == {"rows": "50", "seed": "0"}
    assert abs(train.metrics["mean"] - 2 * 0.5) < 0.2  # logged inside the notebook's kernel
    assert {"notebook.ipynb", "output.ipynb"} <= {a["path"] for a in train.artifacts}
    assert children["prepare"].end_time <= children["train"].start_time

    second = run_pipeline(project / "pipeline.yaml", progress=None)
    assert statuses(second) == {"prepare": "cached", "train": "cached", "report": "cached"}
    assert second.steps["train"].run_id == train.id
    assert all(s["up_to_date"] for s in pipeline_status(project / "pipeline.yaml"))


def test_a_changed_parameter_reruns_that_step_and_its_dependents_only(project):
    run_pipeline(project / "pipeline.yaml", progress=None)
    result = run_pipeline(project / "pipeline.yaml", ["train.scale=3"], progress=None)
    assert statuses(result) == {"prepare": "cached", "train": "ran", "report": "ran"}
    status = {s["step"]: s for s in pipeline_status(project / "pipeline.yaml", ["train.scale=4"])}
    assert status["prepare"]["up_to_date"] and not status["train"]["up_to_date"]
    assert "scale: '2.0' -> '4'" in status["train"]["reason"] or "scale" in status["train"]["reason"]


def test_a_deleted_output_reruns_its_producer(project):
    run_pipeline(project / "pipeline.yaml", progress=None)
    (project / "model.txt").unlink()
    status = {s["step"]: s for s in pipeline_status(project / "pipeline.yaml")}
    assert not status["train"]["up_to_date"] and "outputs" in status["train"]["reason"]
    result = run_pipeline(project / "pipeline.yaml", progress=None)
    assert result.steps["prepare"].status == "cached" and result.steps["train"].status == "ran"
    # train wrote the same model again, so report's inputs did not change
    assert result.steps["report"].status == "cached"
    assert (project / "model.txt").read_text() == "2.0"


def test_force_reruns_everything(project):
    run_pipeline(project / "pipeline.yaml", progress=None)
    result = run_pipeline(project / "pipeline.yaml", force=True, only=["prepare"], progress=None)
    assert statuses(result) == {"prepare": "ran"}


def test_a_failing_step_skips_dependents_and_the_next_run_resumes_from_it(project):
    result = run_pipeline(project / "pipeline.yaml", ["train.fail=true"], progress=None)
    assert statuses(result) == {"prepare": "ran", "train": "failed", "report": "skipped"}
    failed = result.steps["train"]
    error = failed.error  # structured, like papermill's PapermillExecutionError
    assert isinstance(error, cellops.StepError) and error.kind == "failed" and error.step == "train"
    assert (error.cell_index, error.ename, error.evalue) == (2, "RuntimeError", "training diverged")
    assert str(error) == "Cell 2 raised RuntimeError: training diverged"
    assert error.output_notebook == failed.output_notebook
    with pytest.raises(cellops.StepError, match="training diverged"):
        result.raise_for_failure()
    out = nbformat.read(failed.output_notebook, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in out.cells for o in c.get("outputs", []))
    assert cellops.get_run(failed.run_id).status == "FAILED"
    assert cellops.get_run(result.run_id).status == "FAILED"
    resumed = run_pipeline(project / "pipeline.yaml", progress=None)
    assert statuses(resumed) == {"prepare": "cached", "train": "ran", "report": "ran"}


def test_a_step_past_its_timeout_is_reported_as_such(tmp_path):
    notebook(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(60)")
    (tmp_path / "p.yaml").write_text("name: slow\nsteps:\n  - name: slow\n    notebook: slow.ipynb\n"
                                     "    timeout: 2\n")
    result = run_pipeline(tmp_path / "p.yaml", progress=None)
    step = result.steps["slow"]
    assert step.status == "failed" and step.error.kind == "timeout"
    assert "timeout of 2.0 s" in str(step.error)
    assert step.duration < 40
    assert cellops.get_run(step.run_id).tags["pipeline.failure"] == "timeout"


def test_a_kernel_that_dies_is_reported_not_hung(tmp_path):
    notebook(tmp_path / "die.ipynb", "x = 1", "import os\nos._exit(1)", "y = 2")
    (tmp_path / "p.yaml").write_text("name: die\nsteps:\n  - name: die\n    notebook: die.ipynb\n")
    result = run_pipeline(tmp_path / "p.yaml", progress=None)
    step = result.steps["die"]
    assert step.status == "failed" and step.error.kind == "dead"
    assert "kernel died" in str(step.error)


def test_independent_steps_run_in_parallel(tmp_path):
    for name in ("a", "b"):
        notebook(tmp_path / f"{name}.ipynb", "x = 1", "import time\ntime.sleep(3)")
    (tmp_path / "p.yaml").write_text("name: par\nsteps:\n  - name: a\n    notebook: a.ipynb\n"
                                     "  - name: b\n    notebook: b.ipynb\n")
    result = run_pipeline(tmp_path / "p.yaml", workers=2, progress=None)
    a, b = (cellops.get_run(result.steps[n].run_id) for n in ("a", "b"))
    assert a.start_time < b.end_time and b.start_time < a.end_time  # their runs overlap


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nsteps:\n  - name: a\n    notebook: nb/prepare.ipynb\n    needs: [b]\n"
         "  - name: b\n    notebook: nb/prepare.ipynb\n    needs: [a]\n", "cycle: a -> b -> a"),
        ("name: x\nsteps:\n  - name: a\n    notebook: nb/prepare.ipynb\n    needs: [zzz]\n",
         "pipeline.yaml:5: step 'a' needs unknown step 'zzz'"),
        ("name: x\nsteps:\n  - name: a\n    notebook: nb/missing.ipynb\n",
         "pipeline.yaml:4: step 'a': notebook 'nb/missing.ipynb' not found"),
        ("name: x\nsteps: [\n  - name: a\n", "not valid YAML"),
        ("name: x\nsteps:\n  - name: a\n    notebok: nb/prepare.ipynb\n",
         "pipeline.yaml:4: unknown step key 'notebok'"),
        ("name: x\nsteps: []\n", "'steps' must be a non-empty list"),
        ("name: x\nsteps:\n  - name: a\n    notebook: nb/prepare.ipynb\n    timeout: -1\n",
         "'timeout' must be a positive number"),
    ],
)
def test_invalid_pipeline_files_get_a_clear_message(project, text, message):
    (project / "pipeline.yaml").write_text(text)
    with pytest.raises(PipelineSpecError) as info:
        run_pipeline(project / "pipeline.yaml", progress=None)
    assert message in str(info.value)
    assert cellops.search_runs().empty  # nothing was started


def test_the_cli_runs_reports_status_and_exits_nonzero_on_failure(project):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cellops.cli", *args], cwd=project,
                              capture_output=True, text=True, timeout=300)

    res = cli("pipeline", "status", "pipeline.yaml")
    assert res.returncode == 0 and "never ran" in res.stdout
    res = cli("pipeline", "run", "pipeline.yaml", "-p", "train.fail=true")
    assert res.returncode == 1
    assert "step train failed" in res.stderr and "output notebook:" in res.stderr
    res = cli("pipeline", "run", "pipeline.yaml", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "prepare: cached" in res.stdout and "train: running" in res.stdout
    res = cli("pipeline", "status", "pipeline.yaml")
    assert res.stdout.count("up to date") >= 3
    res = cli("pipeline", "run", "missing.yaml")
    assert res.returncode == 1 and "no such pipeline file" in res.stderr


# -- parameters must reach the notebooks (issue #27) ----------------------------------------
def test_a_misspelled_step_parameter_is_refused_before_anything_runs(project):
    path = project / "pipeline.yaml"
    path.write_text(path.read_text().replace("parameters: {scale: 2.0}", "parameters: {scael: 2.0}"))
    with pytest.raises(cellops.UnknownParameterError) as info:
        run_pipeline(path, progress=None)
    message = str(info.value)
    assert "pipeline.yaml:13: step 'train': notebook train.ipynb has no parameter 'scael'" in message
    assert "Did you mean 'scale' for 'scael'?" in message
    assert "declares: scale, fail" in message and "--allow-unknown-params" in message
    assert info.value.unknown == ["scael"] and info.value.known == ["scale", "fail"]
    assert cellops.search_runs().empty  # nothing was started
    with pytest.raises(cellops.UnknownParameterError, match="has no parameter 'scael'"):
        pipeline_status(path)


def test_a_misspelled_override_on_the_command_line_is_refused(project):
    with pytest.raises(cellops.UnknownParameterError, match="step 'train'.*'scal'.*Did you mean 'scale'"):
        run_pipeline(project / "pipeline.yaml", ["train.scal=3"], progress=None)
    with pytest.raises(cellops.UnknownParameterError, match="shared parameter.*'sede'.*Did you mean 'seed'"):
        run_pipeline(project / "pipeline.yaml", ["sede=3"], progress=None)
    assert cellops.search_runs().empty


def test_shared_parameters_go_only_to_the_steps_that_declare_them(project):
    result = run_pipeline(project / "pipeline.yaml", ["seed=7"], progress=None)
    params = {n: cellops.get_run(s.run_id).params for n, s in result.steps.items()}
    assert params["prepare"] == {"rows": "50", "seed": "7"}  # what the notebook received
    assert params["train"] == {"scale": "2.0"} and params["report"] == {}
    assert all("params.undeclared" not in cellops.get_run(s.run_id).tags
               for s in result.steps.values())


def test_a_step_whose_notebook_has_no_parameters_cell_is_refused(project):
    nb = nbformat.read(project / "nb" / "train.ipynb", as_version=4)
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, project / "nb" / "train.ipynb")
    with pytest.raises(cellops.UnknownParameterError) as info:
        run_pipeline(project / "pipeline.yaml", progress=None)
    assert "train.ipynb has no cell tagged 'parameters'" in str(info.value)
    assert "own assignments overwrite them" in str(info.value)


def test_allow_unknown_injects_them_and_tags_the_run(project):
    path = project / "pipeline.yaml"
    path.write_text(path.read_text().replace("parameters: {scale: 2.0}",
                                             "parameters: {scale: 2.0, extra: 1}"))
    with pytest.raises(cellops.UnknownParameterError):
        run_pipeline(path, progress=None)
    result = run_pipeline(path, progress=None, allow_unknown=True)
    train = cellops.get_run(result.steps["train"].run_id)
    assert train.params["extra"] == "1" and train.params["seed"] == "0"  # injected, all of them
    assert train.tags["params.undeclared"] == "seed, extra"
    path.write_text("allow_unknown: true\n" + path.read_text())  # the same, said in the file
    assert run_pipeline(path, progress=None).ok


def test_the_cli_says_which_parameter_and_how_to_opt_in(project):
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "pipeline", "run", "pipeline.yaml",
                          "-p", "train.scal=3"], cwd=project, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "Error: " in res.stderr and "has no parameter 'scal'" in res.stderr
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "pipeline", "status", "pipeline.yaml",
                          "-p", "train.scal=3", "--allow-unknown-params"], cwd=project,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_declared_parameters_are_read_from_the_cell_itself_where_papermill_skips_a_line(tmp_path):
    from cellops.execution.parameters import notebook_parameters

    notebook(tmp_path / "p.ipynb", '%%params\nwindow = ""  # set by the monitor: x = "{w}"\n'
                                   "a, b = 1, 2\nrate: float = 0.1", "print(window)")
    assert list(notebook_parameters(tmp_path / "p.ipynb").names) == ["window", "a", "b", "rate"]
