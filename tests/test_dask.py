"""The same pipelines and sweeps on a Dask cluster (a LocalCluster of 2 worker processes)."""

from __future__ import annotations

import pytest

import cellops
from cellops.pipelines import run_pipeline, run_sweep
from test_pipelines import notebook, project  # noqa: F401 - the fixture

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield "dask://" + c.scheduler_address.removeprefix("tcp://")


def test_a_pipeline_runs_on_dask_and_caches_like_locally(project, cluster):  # noqa: F811
    lines: list[str] = []
    result = run_pipeline(project / "pipeline.yaml", executor=cluster, workers=2,
                          progress=lines.append)
    assert {n: s.status for n, s in result.steps.items()} == \
        {"prepare": "ran", "train": "ran", "report": "ran"}
    assert any(": cell " in line for line in lines)  # cell progress read from the workers' output
    train = cellops.get_run(result.steps["train"].run_id)
    assert "mean" in train.metrics and train.parent_id == result.run_id
    again = run_pipeline(project / "pipeline.yaml", executor=cluster, progress=None)
    assert {s.status for s in again.steps.values()} == {"cached"}


def test_a_sweep_runs_its_trials_on_dask_workers(tmp_path, cluster):
    notebook(tmp_path / "s.ipynb", "a = 1", "import cellops, os\ncellops.log_metric('a', a)\n"
             "cellops.set_tag('pid', os.getppid())")
    result = run_sweep(tmp_path / "s.ipynb", ["a=1,2,3,4"], executor=cluster, workers=2,
                       progress=None)
    assert sorted(t["metrics"]["a"] for t in result.trials) == [1, 2, 3, 4]
    pids = {cellops.get_run(t["run_id"]).tags["pid"] for t in result.trials}
    assert len(pids) == 2  # both dask workers ran trials


def test_an_unreachable_or_unknown_executor_is_a_clear_error(project):  # noqa: F811
    with pytest.raises(cellops.InvalidArgumentError, match="Unknown executor"):
        run_pipeline(project / "pipeline.yaml", executor="spark://x", progress=None)


def test_an_unreachable_scheduler_is_one_line_within_the_timeout_and_starts_no_run(project, monkeypatch):  # noqa: F811
    """Issue #27: it waited 30 s and printed a multi-line traceback."""
    import subprocess
    import sys
    import time

    monkeypatch.setenv("CELLOPS_DASK_TIMEOUT", "2")
    t0 = time.monotonic()
    with pytest.raises(cellops.ExecutorError, match=r"No Dask scheduler answered at "
                                                    r"tcp://127.0.0.1:9 within 2 s.*dask scheduler"):
        run_pipeline(project / "pipeline.yaml", executor="dask://127.0.0.1:9", progress=None)
    assert time.monotonic() - t0 < 10
    assert cellops.search_runs().empty  # refused before any run was started
    monkeypatch.delenv("CELLOPS_DASK_TIMEOUT")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "pipeline", "run", "pipeline.yaml",
                          "--executor", "dask://127.0.0.1:9"], cwd=project, capture_output=True,
                         text=True, timeout=120)
    assert time.monotonic() - t0 < 20  # the default: 10 s
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "127.0.0.1:9" in res.stderr
    monkeypatch.setenv("CELLOPS_DASK_TIMEOUT", "soon")
    with pytest.raises(cellops.InvalidArgumentError, match="CELLOPS_DASK_TIMEOUT must be"):
        run_pipeline(project / "pipeline.yaml", executor="dask://127.0.0.1:9", progress=None)


def test_automl_trials_run_on_dask_workers(tmp_path, monkeypatch, cluster):
    import cellops
    from sklearn.datasets import load_breast_cancer

    monkeypatch.chdir(tmp_path)
    cellops.init_workspace(tmp_path)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = cellops.automl(X, y, time_budget=8, workers=2, executor=cluster, random_state=0,
                            estimators=["linear", "hist_gradient_boosting"])
    assert result.best_score > 0.97 and result.trials >= 2
    trials = cellops.search_runs(filter="attributes.kind = 'trial'")
    assert len(trials) == result.trials and set(trials["status"]) <= {"FINISHED", "KILLED"}
