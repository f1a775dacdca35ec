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
    compare_out = "".join(o["data"]["text/html"] for o in nb.cells[10].outputs)
    assert "Params" in compare_out and "Metric histories" in compare_out
    figures = [o["data"]["application/vnd.plotly.v1+json"] for o in nb.cells[10].outputs
               if "application/vnd.plotly.v1+json" in o["data"]]
    assert figures[-1]["data"][0]["name"].startswith("boosting")  # the run with a history


def test_01_saved_by_papermill_reads_without_a_kernel(tmp_path):
    """Executed by papermill and read back from disk: every cellops output carries static
    HTML (the runs table beside its widget, the compare view, live charts, run summaries)."""
    import papermill

    shutil.copy(EXAMPLES / "01-track-experiments.ipynb", tmp_path)
    papermill.execute_notebook(str(tmp_path / "01-track-experiments.ipynb"),
                               str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                               kernel_name="python3", progress_bar=False)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    (runs,) = [o for o in nb.cells[11].outputs if "data" in o]
    assert "application/vnd.jupyter.widget-view+json" in runs["data"]  # live with a kernel
    static = runs["data"]["text/html"]
    assert static.count("<tr>") == 4 and "boosting" in static and "3 runs" in static
    boosting = [o["data"] for o in nb.cells[7].outputs if "text/html" in o.get("data", {})]
    # The metrics chart: the interactive figure, and SVG for viewers without plotly.
    (chart,) = [d for d in boosting if "application/vnd.plotly.v1+json" in d]
    assert "<svg" in chart["text/html"] and "stage_accuracy" in chart["text/html"]
    assert chart["application/vnd.plotly.v1+json"]["data"][0]["name"] == "stage_accuracy"
    assert any("cellops-run" in d["text/html"] for d in boosting)  # the run summary
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for o in nb.cells[7].outputs)  # the live widget gave way to the record
    assert any("<svg" in o["data"]["text/html"] for o in nb.cells[10].outputs)
    # What nbconvert (nbviewer) shows for the runs cell of a notebook saved without widget
    # state (JupyterLab's default; papermill stores it): the static table.
    from nbconvert import HTMLExporter

    nb.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "cellops-runs-static" in body and "Error displaying widget" not in body


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


def test_04_feature_store_trains_without_leakage_and_serves_by_entity_key(tmp_path):
    nb_path = shutil.copy(EXAMPLES / "04-feature-store.ipynb", tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells for o in c.get("outputs", []))
    assert "none from the future" in text and "'predictions': [" in text
    with cellops.use_workspace(tmp_path / ".cellops"):
        version = cellops.get_model_version("churn", 1)
        assert [d["name"] for d in version.lineage] == ["features:customer_activity@v1"]
        assert "customer_activity:spend_30d" in version.tags["cellops.features"]
        log = cellops.predictions("churn")
        assert len(log) == 2 and log["spend_30d"].notna().all()  # filled in by the server
        assert cellops.serving_endpoints() == []


def test_05_automl_explain_and_a_fairness_gate(tmp_path):
    nb_path = shutil.copy(EXAMPLES / "05-automl-explain-fairness.ipynb", tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells for o in c.get("outputs", []))
    assert "failed its gate" in text and "## Fairness" in text
    with cellops.use_workspace(tmp_path / ".cellops"):
        searches = cellops.search_runs(filter="attributes.kind = 'automl'")
        assert len(searches) == 2  # the magic's and the one inside the run
        trials = cellops.search_runs(filter="attributes.kind = 'trial'")
        assert len(trials) >= 6
        (request,) = cellops.promotion_requests()
        assert request.status == "PENDING" and request.gate_passed is False
        assert cellops.get_model_version("loans", 1).aliases == []


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


def test_monitoring_example_serves_alerts_retrains_and_approves(tmp_path):
    """example_notebooks/monitoring: a shifted stream opens alerts, one retraining makes
    version 2 behind a promotion request, the approval swaps it into the running server."""
    folder = shutil.copytree(EXAMPLES / "monitoring", tmp_path / "monitoring")
    nb = nbformat.read(folder / "monitor-and-retrain.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    with cellops.use_workspace(folder / ".cellops"):
        history = cellops.monitor_history("screening")
        assert list(history["status"]) == ["ok", "failing", "ok"]
        assert [v for v in history["versions"]] == [[1], [1], [2]]  # v2 answered the last window
        assert history["drift_share"].iloc[1] >= 0.25 > history["drift_share"].iloc[2]
        alerts = sorted(cellops.alerts(monitor="screening"), key=lambda a: a.id)
        assert [(a.check, a.state) for a in alerts] == [("drift", "resolved"),
                                                        ("performance:accuracy", "resolved")]
        assert alerts[0].actions == alerts[1].actions  # one retraining for the window
        action = alerts[0].actions[0]
        assert (action["status"], action["version"]) == ("approved", 2)
        pipeline_run = cellops.get_run(action["pipeline_run"])
        assert pipeline_run.info["kind"] == "pipeline" and pipeline_run.status == "FINISHED"
        v2 = cellops.get_model_version("cancer-screening", "champion")
        assert v2.version == 2 and v2.tags["retrained_by"] == f"alert #{alerts[0].id}"
        assert [d["name"] for d in v2.lineage] == ["screening-retrain"]
        assert [i["name"] for i in v2.signature["inputs"]][:2] == ["mean radius", "mean texture"]
        (request,) = cellops.promotion_requests("APPROVED")
        assert request.approvals[0]["approver"] == "lead"
        assert cellops.serving_endpoints() == []  # stopped at the end
    # The saved notebook shows the monitor (history charts) without a kernel.
    monitor_cell = [c for c in nb.cells if "cellops-monitor" in str(c.get("outputs"))][-1]
    (chart,) = [o["data"] for o in monitor_cell.outputs
                if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert "<svg" in chart["text/html"] and "drift share" in chart["text/html"]
    panels = {t["yaxis"] for t in chart["application/vnd.plotly.v1+json"]["data"]}
    assert len(panels) == 3  # drift share, accuracy, predicted rows


def test_the_demo_runs_the_monitoring_loop(demo):
    out = demo["stdout"]
    assert "window of 100 rows (v1): FAILING (drift, performance:accuracy)" in out
    assert "window of 100 rows (v2): OK" in out
    assert "cancer-screening@champion is version 2 now." in out
    executed = nbformat.read(demo["folder"] / "monitoring" / "monitor-and-retrain.ipynb", 4)
    assert all(c.get("outputs") is not None for c in executed.cells if c.cell_type == "code")
    assert executed.metadata["papermill"]["exception"] is None
