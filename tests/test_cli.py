"""The cellops command line: through click's CliRunner in this process, and as a real
process where that is the point (the installed script, bytes on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import cellops
from cellops.cli import cli as cellops_cli


def cli(*args: str, cwd: Path, input: str | None = None) -> SimpleNamespace:
    """Run ``cellops ARGS`` in ``cwd`` with no CELLOPS_HOME; exit code, stdout and stderr."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cellops_cli, list(args), input=input,
                                    env={"CELLOPS_HOME": None}, catch_exceptions=False)
    finally:
        os.chdir(old)
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


@pytest.fixture
def seeded(tmp_path):
    with cellops.start_run(name="alpha", experiment="exp", params={"lr": 0.1}) as a:
        a.log_metrics({"acc": 0.8, "loss": float("nan")})
        a.log_artifact(b"model-bytes", "model.bin")
    with cellops.start_run(name="beta", experiment="exp", params={"lr": 0.2}) as b:
        b.log_metric("acc", 0.9)
    cellops.workspace().close()
    return a.id, b.id


def test_init_creates_a_workspace_and_says_where(tmp_path):
    res = cli("init", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / ".cellops" / "cellops.db").is_file()
    assert str(tmp_path / ".cellops") in res.stdout
    res = cli("init", "sub", cwd=tmp_path)
    assert (tmp_path / "sub" / ".cellops" / "cellops.db").is_file()


def test_runs_list_prints_a_table_and_json(tmp_path, seeded):
    a, b = seeded
    res = cli("runs", "list", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:6] == ["run", "name", "experiment", "status", "started", "duration"]
    assert "beta" in lines[2] and "alpha" in lines[3]  # newest first
    res = cli("runs", "list", "--json", "-f", "metrics.acc > 0.85", cwd=tmp_path)
    records = json.loads(res.stdout)
    assert [r["run_id"] for r in records] == [b]
    res = cli("runs", "list", "--json", "-o", "metrics.acc ASC", cwd=tmp_path)
    records = json.loads(res.stdout)
    assert [r["name"] for r in records] == ["alpha", "beta"]
    assert records[0]["metrics.loss"] == "NaN" and records[0]["params.lr"] == "0.1"


def test_runs_show_accepts_a_prefix(tmp_path, seeded):
    a, _ = seeded
    res = cli("runs", "show", a[:6], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"Run {a}" in res.stdout and "lr" in res.stdout and "model.bin" in res.stdout
    data = json.loads(cli("runs", "show", a, "--json", cwd=tmp_path).stdout)
    assert data["params"] == {"lr": "0.1"} and data["metrics"]["acc"] == 0.8
    assert data["artifacts"][0]["path"] == "model.bin"


def test_runs_compare_shows_the_differences(tmp_path, seeded):
    a, b = seeded
    res = cli("runs", "compare", a, b, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "params.lr" in res.stdout and "metrics.acc" in res.stdout
    data = json.loads(cli("runs", "compare", a, b, "--json", cwd=tmp_path).stdout)
    assert data["params.lr"]["differs"] is True


def test_runs_delete_needs_confirmation_then_gc_frees_blobs(tmp_path, seeded):
    a, _ = seeded
    res = cli("runs", "delete", a, cwd=tmp_path)
    assert res.returncode == 2 and "--yes" in res.stderr
    assert cli("runs", "show", a, cwd=tmp_path).returncode == 0
    res = cli("runs", "delete", a, "--yes", cwd=tmp_path)
    assert res.returncode == 0 and "Deleted 1 run" in res.stdout
    assert cli("runs", "show", a, cwd=tmp_path).returncode == 1
    res = cli("gc", cwd=tmp_path)
    assert "Deleted 0 unreferenced blob(s)" in res.stdout and "--grace 0" in res.stdout
    dry = json.loads(cli("gc", "--dry-run", "--grace", "0", "--json", cwd=tmp_path).stdout)
    assert len(dry["blobs"]) == 1 and dry["dry_run"] is True
    res = cli("gc", "--grace", "0", cwd=tmp_path)
    assert "Deleted 1 unreferenced blob(s) (11 bytes)" in res.stdout


def test_experiments_lists_counts(tmp_path, seeded):
    res = cli("experiments", cwd=tmp_path)
    assert res.returncode == 0 and "exp" in res.stdout
    data = json.loads(cli("experiments", "--json", cwd=tmp_path).stdout)
    assert [(e["name"], e["run_count"]) for e in data] == [("exp", 2)]


def test_artifacts_list_and_get(tmp_path, seeded):
    a, _ = seeded
    res = cli("artifacts", "list", a, cwd=tmp_path)
    assert "model.bin" in res.stdout and "11" in res.stdout
    res = cli("artifacts", "get", a, "model.bin", "-o", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out").read_bytes() == b"model-bytes"
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "artifacts", "get", a, "model.bin",
                          "-o", "-"], cwd=tmp_path, capture_output=True, timeout=60)
    assert res.stdout == b"model-bytes"


@pytest.mark.parametrize(
    "args, message",
    [
        (["runs", "show", "ffffffff"], "No run with id 'ffffffff'"),
        (["runs", "list", "-f", "metrics.acc >"], "Expected a value"),
        (["runs", "list", "-e", "missing"], "No experiment named 'missing'"),
        (["artifacts", "get", "RUN", "../x"], "contains '..'"),
    ],
)
def test_errors_exit_1_with_a_message_and_no_traceback(tmp_path, seeded, args, message):
    a, _ = seeded
    args = [a if x == "RUN" else x for x in args]
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 1
    assert message in res.stderr and "Traceback" not in res.stderr


def test_usage_errors_exit_2(tmp_path):
    res = cli("runs", "bogus", cwd=tmp_path)
    assert res.returncode == 2 and "No such command" in res.stderr


def test_the_workspace_option_and_cellops_home_pick_the_workspace(tmp_path, seeded,
                                                                  tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    res = cli("-w", str(tmp_path / ".cellops"), "runs", "list", "--json", cwd=other)
    assert len(json.loads(res.stdout)) == 2
    res = cli("runs", "list", cwd=other)  # no workspace there: it says so, creates none
    assert res.returncode == 1 and "No cellops workspace" in res.stderr
    assert not (other / ".cellops").exists()


def test_demo_trains_models_and_prints_a_comparison(demo):
    out = demo["stdout"]
    assert "best ROC AUC first" in out
    for name in ("logreg-C0.1", "random-forest", "gradient-boosting"):
        assert name in out
    assert "Traceback" not in demo["stderr"] and "WARNING" not in demo["stderr"]  # no kernel noise
    assert f"everything is in {demo['folder']}" in out
    ws = cellops.workspace(demo["folder"] / ".cellops")
    df = cellops.list_runs("demo", kinds=["run"], workspace=ws).runs
    assert len(df) == 4 and all(r["status"] == "FINISHED" for r in df)
    assert min(r["metrics"]["roc_auc"] for r in df) > 0.9
    gb = next(r for r in df if r["name"] == "gradient-boosting")
    assert len(cellops.get_run(gb["run_id"], workspace=ws).metric_history("stage_accuracy")) == 60
    # ... the best of them registered, with @champion on it ...
    assert "Registered the best run's model as breast-cancer version 1" in out
    best = max(df, key=lambda r: r["metrics"]["roc_auc"])
    with cellops.use_workspace(ws):
        champion = cellops.get_model_version("breast-cancer", "champion")
        assert champion.run_id == best["run_id"] and champion.signature["n_features"] == 30
        assert cellops.load_model("models:/breast-cancer@champion").predict_proba is not None
        assert cellops.verify_audit().ok
    # ... then the example pipeline, end to end
    assert "Pipeline run" in out and "roc_auc=" in out
    [prun] = [r for r in cellops.pipeline_runs(workspace=ws).runs if r["name"] == "breast-cancer"]
    assert [s["name"] for s in prun["steps"]] == ["prepare", "train", "evaluate"]
    assert (demo["folder"] / "pipeline" / "models" / "model.skops").is_file()
    # everything under one folder that git ignores, and nothing beside it
    assert sorted(p.name for p in demo["folder"].parent.iterdir()) == ["cellops-demo"]
    assert (demo["folder"] / ".gitignore").read_text().strip() == "*"
