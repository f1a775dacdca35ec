"""Performance (realised and CBPE-estimated), monitors over the real prediction log,
alerts and their webhooks (a real HTTP server on 127.0.0.1), the retraining loop through a
real papermill pipeline, and the CLI, magics and REST routes."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cellops
from cellops.cli import cli as cellops_cli
from cellops.errors import InvalidArgumentError, ModelStateError, NotFoundError
from cellops.monitoring import CBPE
from cellops.monitoring.spec import MonitorSpecError
from serving_kit import numeric_frame, register_numeric
from test_magics import TestingShell, ip  # noqa: F401 - the ip fixture

from cellops.monitoring import alerting as alerts_mod
from cellops.monitoring import evaluation


# -- performance -------------------------------------------------------------------------------
def test_realised_metrics_for_classifiers_and_regressors():
    got = cellops.performance([0, 1, 1, 0, None], [0, 1, 0, 0, 1], y_proba=[0.1, 0.9, 0.4, 0.3, 0.8])
    assert got["rows"] == 4 and got["accuracy"] == 0.75
    assert got["precision"] == 1.0 and got["recall"] == 0.5 and got["f1"] == pytest.approx(2 / 3)
    assert got["roc_auc"] == 1.0
    reg = cellops.performance([1.5, 2.5, 3.5, 10.25], [1.0, 3.0, 3.5, 9.25])
    assert reg["mae"] == pytest.approx(0.5) and reg["rmse"] == pytest.approx(np.sqrt(1.5 / 4))
    assert "accuracy" not in reg and reg["r2"] < 1


def test_cbpe_expected_confusion_matrix_by_hand():
    rng = np.random.default_rng(0)
    ref_p = rng.random(4000)
    ref_y = (rng.random(4000) < ref_p).astype(int)  # calibrated scores
    cbpe = CBPE().fit(ref_p, ref_y)
    p = np.array([0.9, 0.8, 0.3, 0.1])
    est = cbpe.estimate(p)
    cal = cbpe._calibrate(p)
    tp, fp = cal[0] + cal[1], (1 - cal[0]) + (1 - cal[1])
    fn, tn = cal[2] + cal[3], (1 - cal[2]) + (1 - cal[3])
    assert est["accuracy"].value == pytest.approx((tp + tn) / 4)
    assert est["precision"].value == pytest.approx(tp / (tp + fp))
    assert est["recall"].value == pytest.approx(tp / (tp + fn))
    assert est["accuracy"].sampling_error > 0 and est["accuracy"].lower < est["accuracy"].value


def test_cbpe_estimates_a_shifted_window_within_its_band_and_compares_with_labels():
    rng = np.random.default_rng(1)
    ref_p = rng.beta(2, 2, 5000)
    ref_y = (rng.random(5000) < ref_p).astype(int)
    cbpe = CBPE().fit(ref_p, ref_y)
    cur_p = rng.beta(5, 1.5, 3000)  # covariate shift: more confident positives
    cur_y = (rng.random(3000) < cur_p).astype(int)
    est = cbpe.estimate(cur_p, cur_y)
    for metric in ("accuracy", "f1", "roc_auc"):
        e = est[metric]
        assert e.lower <= e.realized <= e.upper, (metric, e)
    ref_acc = cbpe.estimate(ref_p)["accuracy"].value
    assert est["accuracy"].value != pytest.approx(ref_acc, abs=0.02)  # it moved with the data


def test_cbpe_refuses_what_it_cannot_estimate():
    with pytest.raises(InvalidArgumentError, match="binary"):
        CBPE().fit(np.linspace(0, 1, 30), [0, 1, 2] * 10)
    with pytest.raises(InvalidArgumentError, match="at least 20"):
        CBPE().fit([0.5] * 5, [0, 1, 0, 1, 0])


# -- monitors ----------------------------------------------------------------------------------
@pytest.fixture
def churn(ws, tmp_path):
    """churn@champion and a labelled reference of 2,000 rows."""
    version, model, _ = register_numeric()
    X, y = numeric_frame(2000, seed=3)
    return {"model": model, "reference": X.assign(target=y)}


def score(tmp_path: Path, frame: pd.DataFrame, name: str = "batch") -> pd.DataFrame:
    """Score a frame through `cellops.predict_file` (logged, source batch)."""
    frame.to_csv(tmp_path / f"{name}.csv", index=False)
    cellops.predict_file("models:/churn@champion", tmp_path / f"{name}.csv",
                         tmp_path / f"{name}-out.csv", chunk_rows=250)
    cellops.flush()
    return cellops.predictions("churn")


def shifted(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = numeric_frame(n, seed=seed)
    X["income"] = X["income"] * 1.8
    X["score"] = X["score"] ** 3
    return X, y


def test_a_row_window_monitor_checks_each_window_once_and_opens_one_alert(churn, tmp_path):
    cellops.create_monitor("churn-drift", "churn@champion", churn["reference"], target="target",
                           window="500 rows", checks=["drift", {"type": "volume", "min": 10},
                                                      "schema", "missing"])
    score(tmp_path, numeric_frame(500, seed=5)[0], "calm")
    score(tmp_path, shifted(1000, seed=6)[0], "shifted")
    results = cellops.run_monitors()
    assert [r.status for r in results] == ["ok", "failing", "failing"]
    assert [r.rows for r in results] == [500, 500, 500]
    assert results[1].drift_share >= 0.5 and results[0].drift_share < 0.5
    assert cellops.run_monitors() == []  # nothing new: each window is evaluated once
    (alert,) = cellops.alerts()
    assert (alert.monitor, alert.check, alert.state, alert.windows) == ("churn-drift", "drift",
                                                                        "open", 2)
    assert alert.opened_result == results[1].id and alert.last_result == results[2].id
    history = cellops.monitor_history("churn-drift")
    assert list(history["status"]) == ["ok", "failing", "failing"]
    assert list(history["volume"]) == [500.0] * 3 and history["schema.passed"].all()
    html = cellops.get_monitor("churn-drift")._repr_html_()
    assert "drift share" in html and "<svg" in html and "#1 open" in html


def test_the_alert_lifecycle_records_who_and_when(churn, tmp_path):
    cellops.create_monitor("m", "churn@champion", churn["reference"], window="500 rows")
    score(tmp_path, shifted(500, seed=7)[0])
    cellops.run_monitors()
    (alert,) = cellops.alerts("open")
    with cellops.acting_as("dana"):
        acked = cellops.ack_alert(alert.id, "looking")
    assert (acked.state, acked.acknowledged_by, acked.comment) == ("acknowledged", "dana", "looking")
    assert acked.acknowledged_at is not None
    with pytest.raises(ModelStateError, match="only open alerts can be acknowledged"):
        cellops.ack_alert(alert.id)
    with cellops.acting_as("erin"):
        done = cellops.resolve_alert(alert.id, "retrained")
    assert (done.state, done.resolved_by) == ("resolved", "erin")
    with pytest.raises(ModelStateError):
        cellops.resolve_alert(alert.id)
    with pytest.raises(NotFoundError, match="No alert #999"):
        cellops.ack_alert(999)
    # Failing again after resolution opens a new alert; the old one stays resolved.
    score(tmp_path, shifted(500, seed=8)[0], "again")
    cellops.run_monitors()
    assert [a.state for a in cellops.alerts(None)] == ["open", "resolved"]


def test_time_windows_include_empty_ones_and_wait_for_the_grace(churn, tmp_path):
    cellops.create_monitor("hourly", "churn@champion", churn["reference"], window="1h",
                           checks=[{"type": "volume", "min": 1}])
    score(tmp_path, numeric_frame(300, seed=5)[0])
    assert cellops.run_monitors() == []  # the current hour is not over
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=2, minutes=1)
    results = cellops.run_monitors(now=later.to_pydatetime())
    assert [r.rows for r in results] == [300, 0]
    assert [r.status for r in results] == ["ok", "failing"]  # no predictions: volume fails
    assert cellops.alerts()[0].check == "volume"


def test_performance_checks_wait_for_labels_and_estimates_do_not(churn, tmp_path):
    cellops.create_monitor(
        "perf", "churn@champion", churn["reference"], target="target", window="500 rows",
        checks=[{"type": "performance", "metric": "accuracy", "min": 0.99},
                {"type": "estimated_performance", "metric": "roc_auc", "min": 0.5}])
    X, y = numeric_frame(1000, seed=9)
    log = score(tmp_path, X)
    cellops.log_labels(log.iloc[:500], y[:500])  # the first window is labelled
    first, second = cellops.run_monitors()
    by_name = {c["name"]: c for c in first.checks}
    assert by_name["performance:accuracy"]["passed"] is False
    assert by_name["estimated_performance:roc_auc"]["passed"] is True
    est = first.metrics["estimated_performance:roc_auc"]
    assert est["lower"] <= est["realized"] <= est["upper"]
    assert {c["name"]: c["passed"] for c in second.checks}["performance:accuracy"] is None


def test_one_broken_window_is_recorded_and_the_next_still_runs(churn, tmp_path, monkeypatch):
    cellops.create_monitor("m", "churn@champion", churn["reference"], window="250 rows")
    score(tmp_path, numeric_frame(500, seed=5)[0])
    from cellops.monitoring import checks

    real = checks.window_frame
    calls = []

    def flaky(rows, labels):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        return real(rows, labels)

    monkeypatch.setattr(checks, "window_frame", flaky)
    monkeypatch.setattr(evaluation, "window_frame", flaky)
    results = cellops.run_monitors()
    assert [r.status for r in results] == ["error", "ok"]
    assert "disk hiccup" in results[0].error


@pytest.mark.parametrize("kwargs,message", [
    ({"window": "soon"}, "window must be a duration"),
    ({"checks": [{"type": "performance", "metric": "accuracy"}]}, "needs one bound"),
    ({"checks": [{"type": "estimated_performance", "metric": "roc_auc", "min": 0.7}]},
     "set target"),
    ({"checks": ["nope"]}, "Unknown check type 'nope'"),
    ({"checks": [{"type": "drift", "method": "nope"}]}, "No drift test named"),
    ({"alert": {"webhook": "ftp://x"}}, "http:// or https://"),
    ({"action": {"retrain": {"pipeline": "missing.yaml"}}}, "does not exist"),
    ({"target": "nope"}, "no target column 'nope'"),
])
def test_bad_monitor_specs_are_refused_and_nothing_is_stored(churn, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        cellops.create_monitor("m", "churn@champion", churn["reference"], **kwargs)
    assert cellops.monitors() == []


def test_unknown_models_names_and_duplicates(churn):
    with pytest.raises(NotFoundError):
        cellops.create_monitor("m", "nope@champion", churn["reference"])
    with pytest.raises(MonitorSpecError, match="name of letters"):
        cellops.create_monitor("bad name", "churn@champion", churn["reference"])
    cellops.create_monitor("m", "churn@champion", churn["reference"])
    with pytest.raises(InvalidArgumentError, match="exists"):
        cellops.create_monitor("m", "churn@champion", churn["reference"])
    updated = cellops.create_monitor("m", "churn@champion", churn["reference"], window="2h",
                                     replace=True)
    assert updated.spec["window"]["ms"] == 7_200_000


def test_monitors_yaml_is_validated_with_file_and_line(churn, tmp_path):
    churn["reference"].to_parquet(tmp_path / "ref.parquet")
    good = tmp_path / "monitors.yaml"
    good.write_text("monitors:\n  - name: a\n    model: churn@champion\n"
                    "    reference: {file: ref.parquet}\n    window: 100 rows\n"
                    "    checks: [drift, {type: volume, min: 5}]\n")
    (m,) = cellops.apply_monitors(good)
    assert m.spec["reference"]["file"] == str(tmp_path / "ref.parquet") and m.source == str(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text("monitors:\n  - name: b\n    model: churn@champion\n    window: 5 parsecs\n")
    with pytest.raises(MonitorSpecError, match=r"bad.yaml:4: window must be"):
        cellops.apply_monitors(bad)
    bad.write_text("monitors:\n  - name: b\n    model: churn@champion\n    colour: red\n")
    with pytest.raises(MonitorSpecError, match="Unknown key"):
        cellops.apply_monitors(bad)
    bad.write_text("monitors: [\n")
    with pytest.raises(MonitorSpecError, match="bad.yaml"):
        cellops.apply_monitors(bad)
    assert [x.name for x in cellops.monitors()] == ["a"]


# -- webhooks ----------------------------------------------------------------------------------
class Hook:
    """A real HTTP server on 127.0.0.1 that records JSON POSTs; fails the first ``fail``."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict] = []
        self.fail = fail
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.fail > 0:
                    hook.fail -= 1
                    self.send_response(500)
                else:
                    hook.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_webhooks_are_posted_retried_and_never_hold_up_the_check(churn, tmp_path, monkeypatch):
    monkeypatch.setattr(alerts_mod, "RETRY_BASE_MS", 0)
    hook = Hook(fail=2)
    try:
        cellops.create_monitor("m", "churn@champion", churn["reference"], window="500 rows",
                               alert={"webhook": hook.url})
        score(tmp_path, shifted(500, seed=7)[0])
        (result,) = cellops.run_monitors()
        assert result.status == "failing" and result.opened_alerts
        (body,) = hook.bodies
        assert body["event"] == "alert.opened" and body["alert"]["check"] == "drift"
        assert body["check"]["passed"] is False and body["window"]["rows"] == 500
        (delivery,) = cellops.workspace().store.monitors.deliveries()
        assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
        cellops.ack_alert(result.opened_alerts[0])
        alerts_mod.deliver_pending(5)
        assert hook.bodies[-1]["event"] == "alert.acknowledged"
    finally:
        hook.close()
    # A webhook that is down: the check is stored at once; the delivery waits its turn.
    monkeypatch.setattr(alerts_mod, "RETRY_BASE_MS", 60_000)
    cellops.create_monitor("down", "churn@champion", churn["reference"], window="500 rows",
                           alert={"webhook": hook.url})
    started = time.monotonic()
    (result,) = cellops.run_monitors("down")
    assert result.status == "failing" and time.monotonic() - started < 8
    pending = [d for d in cellops.workspace().store.monitors.deliveries() if d["status"] == "pending"]
    assert pending and pending[0]["last_error"]


# -- retraining, end to end --------------------------------------------------------------------
def write_retrain_pipeline(folder: Path) -> Path:
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("window_data = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(
                    "import cellops, pandas as pd\n"
                    "from sklearn.linear_model import LogisticRegression\n"
                    "from sklearn.pipeline import make_pipeline\n"
                    "from sklearn.preprocessing import StandardScaler\n"
                    "data = pd.read_parquet(window_data).dropna(subset=['label'])\n"
                    "X, y = data[['age', 'income', 'score']], data['label'].astype(int)\n"
                    "model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)\n"
                    "cellops.log_artifact(cellops.dump_skops(model), 'model.skops')\n"
                    "cellops.log_metric('rows', len(data))")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, folder / "train.ipynb")
    (folder / "pipeline.yaml").write_text(
        "name: retrain\nsteps:\n  - name: train\n    notebook: train.ipynb\n")
    return folder / "pipeline.yaml"


def test_the_retraining_loop_end_to_end(churn, tmp_path):
    pipeline = write_retrain_pipeline(tmp_path / "retrain")
    cellops.protect_alias("churn", "champion", approvers=["carol"])
    cellops.create_monitor(
        "loop", "churn@champion", churn["reference"], window="600 rows",
        checks=["drift", {"type": "performance", "metric": "accuracy", "min": 0.999}],
        action={"retrain": {"pipeline": str(pipeline),
                            "parameters": {"train.window_data": "{window_data}"},
                            "alias": "champion"}})
    X, y = shifted(600, seed=11)
    log = score(tmp_path, X)
    cellops.log_labels(log, y)
    (result,) = cellops.run_monitors()
    # Both checks failed: two alerts, one retraining (one version, one request) linked on both.
    alert, other = sorted(cellops.alerts(), key=lambda a: a.id)
    assert {alert.check, other.check} == {"drift", "performance:accuracy"}
    (action,) = alert.actions
    assert other.actions == alert.actions
    assert action["kind"] == "retrain" and action["status"] == "awaiting approval", action
    assert cellops.get_run(action["pipeline_run"]).info["kind"] == "pipeline"
    assert action["version"] == 2 and Path(action["window_data"]).is_file()
    (request,) = cellops.promotion_requests("PENDING")
    assert request.id == action["request"] and (request.alias, request.version) == ("champion", 2)
    assert cellops.get_model_version("churn", "champion").version == 1  # not until approved
    with cellops.acting_as("carol"):
        cellops.approve(request.id, "drift fixed")
    assert cellops.get_model_version("churn", "champion").version == 2
    assert [a.actions[0]["status"] for a in cellops.alerts()] == ["approved", "approved"]
    v2 = cellops.get_model_version("churn", 2)
    assert v2.tags["retrained_by"] == f"alert #{alert.id}"


def test_a_failing_retraining_pipeline_is_recorded_on_the_alert(churn, tmp_path):
    pipeline = write_retrain_pipeline(tmp_path / "retrain")
    cellops.create_monitor(
        "loop", "churn@champion", churn["reference"], window="500 rows",
        action={"retrain": {"pipeline": str(pipeline),
                            "parameters": {"train.window_data": "/no/such/file.parquet"}}})
    score(tmp_path, shifted(500, seed=12)[0])
    (result,) = cellops.run_monitors()
    (action,) = cellops.alerts()[0].actions
    assert action["status"] == "failed" and "train" in action["error"]
    assert result.status == "failing"  # the window's result stands


# -- front ends --------------------------------------------------------------------------------
def cli(*args: str, cwd: Path):
    return CliRunner().invoke(cellops_cli, list(args), catch_exceptions=False)


def test_the_command_line(churn, tmp_path):
    churn["reference"].drop(columns="target").to_csv(tmp_path / "ref.csv", index=False)
    shifted(800, 3)[0].to_csv(tmp_path / "cur.csv", index=False)
    out = cli("drift", "ref.csv", "cur.csv", "--html", "r.html", cwd=tmp_path)
    assert out.exit_code == 3 and "DATASET DRIFT" in out.output and "wasserstein" in out.output
    assert (tmp_path / "r.html").is_file()
    same = cli("drift", "ref.csv", "ref.csv", "--json", cwd=tmp_path)
    assert same.exit_code == 0 and json.loads(same.output)["drifted"] is False
    (tmp_path / "monitors.yaml").write_text(
        "monitors:\n  - name: cli-mon\n    model: churn@champion\n    reference: {file: ref.csv}\n"
        "    window: 400 rows\n")
    assert cli("monitor", "apply", "monitors.yaml", cwd=tmp_path).exit_code == 0
    score(tmp_path, shifted(400, 4)[0])
    run = cli("monitor", "run", cwd=tmp_path)
    assert run.exit_code == 3 and "FAILING" in run.output
    assert "cli-mon" in cli("monitor", "list", cwd=tmp_path).output
    assert "failing" in cli("monitor", "history", "cli-mon", cwd=tmp_path).output
    listed = cli("alerts", "list", cwd=tmp_path)
    assert "cli-mon" in listed.output and "open" in listed.output
    alert_id = cellops.alerts()[0].id
    assert "ACKNOWLEDGED" in cli("alerts", "ack", str(alert_id), "-m", "mine", cwd=tmp_path).output
    assert "RESOLVED" in cli("alerts", "resolve", str(alert_id), cwd=tmp_path).output
    again = CliRunner().invoke(cellops_cli, ["alerts", "resolve", str(alert_id)])
    assert again.exit_code == 1 and "only open or acknowledged" in again.output
    missing = CliRunner().invoke(cellops_cli, ["monitor", "run", "nope"])
    assert missing.exit_code == 1 and "No monitor named 'nope'" in missing.output


def test_drift_and_monitor_magics(ip, churn, tmp_path, capsys):  # noqa: F811
    ip.user_ns["ref"] = churn["reference"].drop(columns="target")
    ip.user_ns["cur"] = shifted(700, 2)[0]
    report = ip.run_line_magic("drift", "ref cur --columns income,score")
    assert report.drifted and list(report.columns["column"]) == ["income", "score"]
    cellops.create_monitor("nb", "churn@champion", churn["reference"], window="300 rows")
    score(tmp_path, shifted(300, 5)[0])
    monitor = ip.run_line_magic("monitor", "nb --run")
    assert "FAILING" in capsys.readouterr().out and "drift share" in monitor._repr_html_()
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="No monitor named"):
        ip.run_line_magic("monitor", "nope")
    ip.user_ns["other"] = pd.DataFrame({"q": [1.0]})
    with pytest.raises(UsageError, match="share no column"):
        ip.run_line_magic("drift", "ref other")


def test_an_alert_naming_drifted_columns_says_how_many_it_leaves_out():
    """Issue #22: "a, b, c, d, e" read as if five of sixteen columns drifted."""
    from cellops.monitoring.checks import named_some

    columns = [f"c{i}" for i in range(16)]
    assert named_some(columns) == "c0, c1, c2, c3, c4 +11 more"
    assert named_some(columns[:5]) == "c0, c1, c2, c3, c4"
    assert named_some(["only"]) == "only"
