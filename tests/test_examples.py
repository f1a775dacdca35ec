"""The example notebooks run, with a real kernel, exactly as shipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import cellops

EXAMPLES = Path(__file__).resolve().parents[1] / "example_notebooks"


def test_01_track_experiments_runs_and_logs_three_models(tmp_path):
    nb_path = shutil.copy(EXAMPLES / "01-track-experiments.ipynb", tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    df = cellops.search_runs(experiment="breast-cancer", order_by=["metrics.roc_auc DESC"])
    assert set(df["name"]) == {"logreg", "forest", "boosting"}
    assert (df["status"] == "FINISHED").all() and df["metrics.roc_auc"].min() > 0.9
    boosting = cellops.get_run(df[df["name"] == "boosting"]["run_id"].iloc[0])
    assert len(boosting.metric_history("stage_accuracy")) == 80
    assert "models/boosting.skops" in {a["path"] for a in boosting.artifacts}
    compare_out = nb.cells[10].outputs[0]["data"]["text/html"]
    assert "Params" in compare_out and "Metric histories" in compare_out


def test_03_serve_a_model_scores_over_http_and_logs_with_labels(tmp_path):
    nb_path = shutil.copy(EXAMPLES / "03-serve-a-model.ipynb", tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells)}
    served = next(o for outs in outputs.values() for o in outs
                  if "text/html" in o.get("data", {}) and "curl -s http://127.0.0.1:" in o["data"]["text/html"])
    assert "cancer" in served["data"]["text/html"]
    with cellops.use_workspace(tmp_path / ".cellops"):
        log = cellops.predictions("cancer")
        assert log["request_id"].nunique() == 2 and len(log) == 10
        assert log["label"].notna().sum() == 5 and set(log["version"]) == {1}
        assert cellops.serving_endpoints() == []  # stopped at the end


def test_02_papermill_batch_records_the_injected_parameters(tmp_path):
    shutil.copy(EXAMPLES / "02-papermill-batch.ipynb", tmp_path)
    res = subprocess.run([sys.executable, "-m", "papermill", "02-papermill-batch.ipynb", "out.ipynb",
                          "-p", "alpha", "0.3", "-p", "model", "lasso"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    run = cellops.get_run(cellops.search_runs()["run_id"].iloc[0])
    assert run.kind == "notebook" and run.status == "FINISHED"
    assert run.params == {"alpha": "0.3", "model": "lasso", "test_size": "0.25", "seed": "0"}
    assert run.metrics["r2"] > 0.3
    assert [d.name for d in run.inputs] == ["diabetes_train"]
    assert "out.ipynb" in {a["path"] for a in run.artifacts}


def test_02_papermill_batch_fails_clearly_on_a_bad_parameter(tmp_path):
    shutil.copy(EXAMPLES / "02-papermill-batch.ipynb", tmp_path)
    res = subprocess.run([sys.executable, "-m", "papermill", "02-papermill-batch.ipynb", "out.ipynb",
                          "-p", "model", "svm"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode != 0
    run = cellops.get_run(cellops.search_runs()["run_id"].iloc[0])
    assert run.status == "FAILED" and "model must be one of" in run.error


def test_the_example_pipeline_ran_in_the_demo_and_a_second_run_is_fully_cached(demo):
    """`cellops demo` ran the shipped example pipeline (session fixture); again, nothing runs."""
    assert "evaluate: ran" in demo["stdout"] or "evaluate: cached" in demo["stdout"]
    cli = [sys.executable, "-m", "cellops.cli", "pipeline", "run", "pipeline.yaml"]
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    again = subprocess.run(cli, cwd=demo["folder"] / "pipeline", env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "3 cached" in again.stdout
    ws = cellops.workspace(demo["folder"] / ".cellops")
    evaluate = cellops.list_runs(filter="attributes.run_name = 'evaluate'", workspace=ws).runs
    assert evaluate[0]["metrics"]["roc_auc"] > 0.9
