"""The registry from its front ends: the CLI (`cellops models`, `cellops audit`, `cellops ci
init`), the `%register` magic, and the CI workflow executed step by step on the example
pipeline."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from test_cli import cli
from test_magics import TestingShell, ip  # noqa: F401 - the ip fixture

import cellops

X, Y = load_breast_cancer(return_X_y=True, as_frame=True)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def registered(ws, tmp_path):
    """Model 'cancer' v1 (auc 0.91) and v2 (auc 0.97) from runs; workspace closed so the CLI
    opens it like any other process."""
    ids = []
    for auc in (0.91, 0.97):
        with cellops.start_run(params={"C": 1.0}) as run:
            run.log_metric("auc", auc)
            model = LogisticRegression(max_iter=5000).fit(X, Y)
            run.log_artifact(cellops.dump_skops(model), "model.skops")
        ids.append(run.id)
    cellops.workspace().close()
    return ids


def test_register_list_show_and_versions(registered, tmp_path):
    r1, r2 = registered
    res = cli("models", "register", r1[:8], "cancer", "--tag", "team=ml", "--description",
              "Screening", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Registered cancer version 1 (models:/cancer/1) from run {r1[:8]}")
    cli("models", "register", f"runs:/{r2}/model.skops", "cancer", cwd=tmp_path)
    cli("models", "alias", "cancer", "champion", "1", cwd=tmp_path)

    listed = cli("models", "list", cwd=tmp_path).stdout.splitlines()
    assert listed[0].split() == ["model", "versions", "latest", "aliases", "updated", "by"]
    assert listed[2].split()[:4] == ["cancer", "2", "2", "champion->v1"]

    shown = cli("models", "show", "cancer@champion", cwd=tmp_path).stdout
    assert shown.startswith("cancer version 1  models:/cancer/1")
    assert "aliases     champion" in shown and "description Screening" in shown
    assert "tags        team=ml" in shown
    as_json = json.loads(cli("models", "show", "cancer/2", "--json", cwd=tmp_path).stdout)
    assert as_json["version"] == 2 and as_json["run_id"] == r2 and len(as_json["sha256"]) == 64

    rows = cli("models", "versions", "cancer", "-f", "metrics.auc > 0.95", cwd=tmp_path).stdout
    assert [line.split()[1] for line in rows.splitlines()[2:]] == ["2"]
    every = json.loads(cli("models", "versions", "--json", "-o", "version ASC", cwd=tmp_path).stdout)
    assert [v["version"] for v in every] == [1, 2]
    assert cli("models", "versions", "-f", "version > 5", cwd=tmp_path).stdout.strip() == "No versions match."


def test_load_check_and_card(registered, tmp_path):
    cli("models", "register", registered[0], "cancer", cwd=tmp_path)
    res = cli("models", "load-check", "models:/cancer/1", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stdout.strip() == ("OK: models:/cancer/1 loads as "
                                  "sklearn.linear_model._logistic.LogisticRegression (30 features)")
    info = json.loads(cli("models", "load-check", "models:/cancer/latest", "--json", cwd=tmp_path).stdout)
    assert info["classes"] == ["0", "1"]
    card = tmp_path / "out" / "card.md"
    res = cli("models", "card", "cancer/1", "-o", str(card), cwd=tmp_path)
    assert res.returncode == 0 and card.read_text().startswith("# cancer — version 1")
    assert "| auc | 0.91 |" in card.read_text()
    assert cli("models", "card", "cancer", cwd=tmp_path).stdout.startswith("# cancer — version 1")


@pytest.mark.parametrize("args, message", [
    (("models", "show", "nope"), "No registered model named 'nope'"),
    (("models", "show", "cancer/7"), "no version 7. Versions: 1"),
    (("models", "show", "cancer@prod"), "no alias 'prod'"),
    (("models", "alias", "cancer", "prod", "9"), "no version 9"),
    (("models", "register", "zzzz", "cancer"), "No run"),
    (("models", "load-check", "s3://bucket/model"), "not a model URI"),
    (("models", "approve", "5"), "No promotion request 5"),
    (("models", "versions", "-f", "status = 'x'"), "Unknown attribute 'status'"),
    (("audit", "log", "--object", "cancer@"), None),
])
def test_errors_are_one_line_with_exit_code_1_and_change_nothing(registered, tmp_path, args, message):
    cli("models", "register", registered[0], "cancer", cwd=tmp_path)
    before = sqlite3.connect(tmp_path / ".cellops" / "cellops.db").execute(
        "SELECT count(*), max(seq) FROM audit_log").fetchone()
    res = cli(*args, cwd=tmp_path)
    if message is None:  # no entries is not an error
        assert res.returncode == 0 and "empty" in res.stdout
        return
    assert res.returncode == 1, res.stdout
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 3  # a filter error adds its caret lines
    after = sqlite3.connect(tmp_path / ".cellops" / "cellops.db").execute(
        "SELECT count(*), max(seq) FROM audit_log").fetchone()
    assert after == before


def test_usage_errors_exit_2(registered, tmp_path):
    assert cli("models", "approve", "0", cwd=tmp_path).returncode == 2
    assert cli("models", "protect", "cancer", "prod", cwd=tmp_path).returncode in (1, 2)
    assert cli("models", "register", registered[0], "cancer", "--tag", "novalue",
               cwd=tmp_path).returncode == 2


def run_as(user, *args, cwd):
    old = os.environ.get("CELLOPS_USER")
    os.environ["CELLOPS_USER"] = user
    try:
        return cli(*args, cwd=cwd)
    finally:
        if old is None:
            del os.environ["CELLOPS_USER"]
        else:
            os.environ["CELLOPS_USER"] = old


def test_protect_request_approve_reject_and_audit_from_the_cli(registered, tmp_path):
    for run_id in registered:
        run_as("alice", "models", "register", run_id, "cancer", cwd=tmp_path)
    res = run_as("alice", "models", "protect", "cancer", "prod", "--approver", "bob",
                 "--approver", "carol", "--gate", "metrics.auc >= 0.95", cwd=tmp_path)
    assert res.stdout.strip() == ("cancer@prod now needs 1 approval(s) from bob, carol; "
                                  "gate: metrics.auc >= 0.95.")
    assert "already protected; left as it is" in run_as(
        "alice", "models", "protect", "cancer", "prod", "--if-missing", cwd=tmp_path).stdout

    res = run_as("alice", "models", "alias", "cancer", "prod", "1", cwd=tmp_path)
    assert "opened request #1" in res.stdout and "GATE FAILED" in res.stdout
    assert "[x ] metrics.auc >= 0.95" in res.stdout
    res = run_as("alice", "models", "alias", "cancer", "prod", "2", "--json", cwd=tmp_path)
    opened = json.loads(res.stdout)["request"]
    assert (opened["id"], opened["status"], opened["gate_passed"]) == (2, "PENDING", True)
    assert opened["approvals_needed"] == 1

    table = run_as("bob", "models", "requests", cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:4] == ["id", "alias", "version", "status"]
    assert [line.split()[0] for line in table[2:]] == ["2", "1"]
    assert "FAILED" in table[3] and "1 of bob, carol" in table[2]

    res = run_as("alice", "models", "approve", "2", cwd=tmp_path)
    assert res.returncode == 1 and "'alice' requested promotion 2" in res.stderr
    res = run_as("bob", "models", "approve", "1", cwd=tmp_path)
    assert res.returncode == 1 and "failed its gate" in res.stderr
    res = run_as("bob", "models", "reject", "1", "--comment", "auc too low", cwd=tmp_path)
    assert res.returncode == 0 and "REJECTED" in res.stdout
    res = run_as("carol", "models", "approve", "2", "--comment", "ship it", "--json", cwd=tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "APPROVED"
    assert json.loads(res.stdout)["approvals"][0]["comment"] == "ship it"
    assert run_as("bob", "models", "show", "cancer@prod", cwd=tmp_path).stdout.startswith(
        "cancer version 2")
    assert run_as("bob", "models", "requests", cwd=tmp_path).stdout.strip() == "No pending promotion requests."
    done = json.loads(run_as("bob", "models", "requests", "--status", "all", "--json", cwd=tmp_path).stdout)
    assert [(r["id"], r["status"]) for r in done] == [(2, "APPROVED"), (1, "REJECTED")]

    log = cli("audit", cwd=tmp_path).stdout.splitlines()
    assert log[0].split()[:5] == ["#", "when", "who", "action", "object"]
    assert "carol" in log[2] and "set_alias" in log[2]
    entries = json.loads(cli("audit", "log", "--object", "cancer@prod", "--json", cwd=tmp_path).stdout)
    assert [e["action"] for e in entries][:3] == ["set_alias", "approve", "reject"]

    ok = cli("audit", "verify", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("audit log OK:")
    seq, head = cli("audit", "head", cwd=tmp_path).stdout.split()
    assert int(seq) == len(json.loads(cli("audit", "log", "--json", cwd=tmp_path).stdout))
    assert cli("audit", "verify", "--head", head, cwd=tmp_path).returncode == 0

    db = sqlite3.connect(tmp_path / ".cellops" / "cellops.db", isolation_level=None)
    db.execute("UPDATE audit_log SET details = replace(details, 'ship it', 'shipped') WHERE action = 'approve'")
    bad = cli("audit", "verify", cwd=tmp_path)
    assert bad.returncode == 1 and "audit log BROKEN at entry" in bad.stdout and "was altered" in bad.stdout


def test_the_magic_registers_the_model_of_the_last_tracked_cell(ip, capsys):  # noqa: F811
    ip.run_cell("from sklearn.datasets import load_breast_cancer\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "X, y = load_breast_cancer(return_X_y=True, as_frame=True)")
    ip.run_cell("%%track -n fit\nclf = LogisticRegression(max_iter=5000).fit(X, y)\nacc = clf.score(X, y)")
    ip.run_line_magic("register", "cancer --alias champion --description 'first try'")
    v = cellops.get_model_version("cancer", "champion")
    run = cellops.get_run(v.run_id)
    assert v.version == 1 and run.name == "fit" and v.artifact_path == "models/clf.skops"
    assert v.signature["inputs"][0]["name"] == "mean radius" and v.description == "first try"
    assert "cancer@champion -> version 1" in capsys.readouterr().out

    cellops.protect_alias("cancer", "champion", approvers=["someone-else"])
    ip.run_line_magic("register", f"cancer --run {run.id[:8]} --alias champion")
    assert "cancer@champion is protected: opened request #1" in capsys.readouterr().out
    assert cellops.get_model_version("cancer", "champion").version == 1

    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="No run"):
        ip.run_line_magic("register", "cancer --run nope")
    with pytest.raises(UsageError, match="model name"):
        ip.run_line_magic("register", "'a/b'")
    assert [v.version for v in cellops.search_model_versions()] == [2, 1]


def test_the_magic_without_a_tracked_cell_says_what_to_do(ip):  # noqa: F811
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="No tracked cell yet"):
        ip.run_line_magic("register", "cancer")


# -- CI/CD ------------------------------------------------------------------------------------

def shell_steps(workflow: Path) -> list[dict]:
    doc = yaml.safe_load(workflow.read_text())
    assert set(doc["on"]) == {"push", "workflow_dispatch"}
    job = doc["jobs"]["pipeline"]
    assert job["runs-on"] == "ubuntu-latest" and "CELLOPS_HOME" in job["env"]
    steps = job["steps"]
    assert [s.get("uses") for s in steps[:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]
    return [s for s in steps if "run" in s]


def execute(steps, cwd, env):
    """Run the workflow's shell steps in order, stopping at the first failure (as Actions does)."""
    results = []
    for step in steps:
        res = subprocess.run(["bash", "-ec", step["run"]], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=600)
        results.append((step["name"], res))
        if res.returncode:
            break
    return results


def test_ci_init_writes_a_workflow_whose_steps_do_what_they_say(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "example_notebooks" / "pipeline", project)
    res = cli("ci", "init", "--approver", "bob", "--approver", "carol", "--install",
              "pip install -e .", cwd=project)
    assert res.returncode == 0, res.stderr
    workflow = project / ".github" / "workflows" / "cellops.yml"
    steps = shell_steps(workflow)
    assert [s["name"] for s in steps] == ["Install", "Run the pipeline", "Gate the result",
                                          "Register the model", "Protect the alias (once)",
                                          "Request promotion"]
    assert steps[0]["run"] == "pip install -e ."
    assert cli("ci", "init", "--approver", "bob", cwd=project).returncode == 1  # exists: --force

    env = {**os.environ, "CELLOPS_HOME": str(project / ".cellops"), "CELLOPS_USER": "ci-alice",
           "GITHUB_SHA": "abc123"}
    done = execute(steps[1:], project, env)  # installing is what this test's venv already did
    assert [(name, res.returncode) for name, res in done] == [(s["name"], 0) for s in steps[1:]], \
        done[-1][1].stderr[-2000:]
    assert "PASS" in done[1][1].stdout

    with cellops.use_workspace(project / ".cellops"):
        v = cellops.get_model_version("breast-cancer", "latest")
        assert v.version == 1 and v.tags == {"git_sha": "abc123"}
        assert v.artifact_path == "model.skops" and v.created_by == "ci-alice"
        assert cellops.alias_protection("breast-cancer", "production")["approvers"] == ["bob", "carol"]
        [req] = cellops.promotion_requests("pending")
        assert (req.alias, req.version, req.requested_by) == ("production", 1, "ci-alice")
        assert cellops.load_model("models:/breast-cancer/1").predict(X.head(2)).shape == (2,)

    # A second push: the pipeline is cached, a second version and request; bob approves it.
    again = execute(steps[1:], project, {**env, "GITHUB_SHA": "def456"})
    assert all(res.returncode == 0 for _, res in again)
    assert "already protected" in again[3][1].stdout
    res = run_as("bob", "models", "approve", "2", cwd=project)
    assert res.returncode == 0, res.stderr
    with cellops.use_workspace(project / ".cellops"):
        assert cellops.get_model_version("breast-cancer", "production").version == 2
        assert cellops.verify_audit().ok


def test_a_failing_gate_stops_the_workflow_before_anything_is_registered(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "example_notebooks" / "pipeline", project)
    cli("ci", "init", "--approver", "bob", "--gate", "metrics.roc_auc >= 0.9999", cwd=project)
    steps = shell_steps(project / ".github" / "workflows" / "cellops.yml")
    env = {**os.environ, "CELLOPS_HOME": str(project / ".cellops")}
    done = execute(steps[1:], project, env)
    assert [name for name, _ in done] == ["Run the pipeline", "Gate the result"]
    assert done[-1][1].returncode == 1 and "FAIL" in done[-1][1].stdout
    with cellops.use_workspace(project / ".cellops"):
        assert cellops.list_models() == []


def test_ci_init_refuses_what_would_fail_later(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "example_notebooks" / "pipeline", project)
    res = cli("ci", "init", cwd=project)
    assert res.returncode == 2 and "--approver" in res.stderr
    res = cli("ci", "init", "--approver", "bob", "--train-step", "fit", cwd=project)
    assert res.returncode == 2 and "no step 'fit'; steps: prepare, train, evaluate" in res.stderr
    res = cli("ci", "init", "--approver", "bob", "--gate", "metrics.auc >>> 1", cwd=project)
    assert res.returncode == 1 and "Expected" in res.stderr
    res = cli("ci", "init", "--approver", "bob", "--pipeline", "missing.yaml", cwd=project)
    assert res.returncode != 0 and "missing.yaml" in res.stderr
    assert not (project / ".github").exists()


@pytest.mark.parametrize("files, install", [
    ({}, "pip install cellops"),
    ({"requirements.txt": "pandas\nscikit-learn\n"}, "pip install -r requirements.txt && pip install cellops"),
    ({"requirements.txt": "cellops[s3]>=0.1\n"}, "pip install -r requirements.txt"),
    ({"pyproject.toml": '[project]\nname = "churn"\ndependencies = ["cellops>=0.1"]\n'}, "pip install ."),
    ({"pyproject.toml": '[project]\nname = "cellops"\n'}, "pip install ."),  # cellops' own repo
    ({"pyproject.toml": '[project]\nname = "churn"\ndependencies = ["cellopsx"]\n'},
     "pip install . && pip install cellops"),
])
def test_the_workflow_installs_the_project_under_test_not_a_release_of_cellops(tmp_path, files, install):
    """Issue #27: the template installed `cellops` from PyPI by name, even in a checkout of
    cellops or of a project that declares it."""
    from cellops.registry import default_install

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert default_install(tmp_path) == install
    project = tmp_path / "project"
    shutil.copytree(ROOT / "example_notebooks" / "pipeline", project)
    for name, text in files.items():
        (project / name).write_text(text)
    assert cli("ci", "init", "--approver", "bob", cwd=project).returncode == 0
    steps = shell_steps(project / ".github" / "workflows" / "cellops.yml")
    assert steps[0]["run"] == install


def test_cellops_audit_takes_the_log_options_directly(registered, tmp_path):
    """docs/cli.md documents `cellops audit [log] -n N`; `cellops audit -n 1` failed."""
    assert cli("models", "register", registered[0], "cancer", cwd=tmp_path).returncode == 0
    short = cli("audit", "-n", "1", cwd=tmp_path)
    assert short.returncode == 0, short.stderr
    assert short.stdout == cli("audit", "log", "-n", "1", cwd=tmp_path).stdout
    assert len(short.stdout.splitlines()) == 3  # header, rule, one entry
    head = cli("audit", "head", cwd=tmp_path).stdout.strip()
    assert cli("audit", "verify", "--head", head, cwd=tmp_path).returncode == 0  # "SEQ HASH"
    assert cli("audit", "verify", "--head", head.split()[1], cwd=tmp_path).returncode == 0
