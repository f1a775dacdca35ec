"""Finding, creating and opening workspaces; the SQLite settings they run with."""

from __future__ import annotations

import os
import json
import sqlite3

import pytest

import cellops
from cellops.store.schema import LATEST_VERSION


def test_first_use_creates_a_workspace_in_the_current_folder(tmp_path):
    with cellops.start_run():
        pass
    assert (tmp_path / ".cellops" / "cellops.db").is_file()
    assert (tmp_path / ".cellops" / "artifacts").is_dir()


def test_the_workspace_is_found_by_walking_up(tmp_path, monkeypatch):
    cellops.init_workspace(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert cellops.find_workspace() == tmp_path / ".cellops"
    assert cellops.workspace().path == tmp_path / ".cellops"
    assert not (deep / ".cellops").exists()


def test_cellops_home_names_the_workspace_folder_itself(tmp_path, monkeypatch):
    home = tmp_path / "elsewhere" / "ws"
    monkeypatch.setenv("CELLOPS_HOME", str(home))
    with cellops.start_run():
        pass
    assert (home / "cellops.db").is_file()
    assert not (tmp_path / ".cellops").exists()


def test_the_database_uses_wal_foreign_keys_and_a_schema_version(ws):
    con = sqlite3.connect(ws.db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn = ws.store.conn
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_rows_referring_to_missing_runs_are_refused(ws):
    with pytest.raises(cellops.RunNotFoundError, match="no-such- no longer exists"):
        ws.store.params.log("no-such-run", {"a": "1"})
    assert ws.store.query("SELECT * FROM params") == []


def test_a_database_from_a_newer_cellops_is_refused_untouched(tmp_path):
    db = tmp_path / ".cellops" / "cellops.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(cellops.StoreError, match="pip install -U cellops"):
        cellops.start_run()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 999


def test_a_broken_config_file_is_reported_with_its_path(tmp_path):
    (tmp_path / ".cellops").mkdir()
    (tmp_path / ".cellops" / "config.json").write_text("{not json")
    with pytest.raises(cellops.WorkspaceError, match="config.json is not valid JSON"):
        cellops.workspace()


def test_settings_may_live_in_config_toml(tmp_path):
    """A team keeps .cellops/config.toml by hand (or in git): cellops reads the same
    settings from it, and an error about one names that file."""
    (tmp_path / ".cellops").mkdir()
    (tmp_path / ".cellops" / "config.toml").write_text(
        '# the team\'s settings\nmetric_flush_rows = 3\nmax_param_bytes = 10\n')
    ws = cellops.workspace()
    assert ws.buffer.max_rows == 3
    with cellops.start_run() as run:
        run.log_params({"ok": "short"})
        with pytest.raises(cellops.InvalidArgumentError, match=r"config\.toml\) because"):
            run.log_params({"long": "x" * 11})
    assert cellops.get_run(run.id).params == {"ok": "short"}


def test_a_setting_set_differently_in_both_files_is_refused_naming_both(tmp_path):
    ws = cellops.init_workspace(tmp_path)
    with cellops.start_run(name="kept") as run:
        run.log_metric("m", 1.0)
    folder = tmp_path / ".cellops"
    (folder / "config.json").write_text(json.dumps({"metric_flush_rows": 10}))
    (folder / "config.toml").write_text("metric_flush_rows = 10\n")  # the same value: fine
    cellops.workspaces._reset_for_tests()
    assert cellops.workspace().config["metric_flush_rows"] == 10
    (folder / "config.toml").write_text("metric_flush_rows = 20\n")
    cellops.workspaces._reset_for_tests()
    with pytest.raises(cellops.WorkspaceError,
                       match=r"metric_flush_rows is 20 in .*config\.toml but 10 in .*config\.json"):
        cellops.workspace()
    (folder / "config.toml").unlink()
    cellops.workspaces._reset_for_tests()
    assert cellops.get_run(run.id).metrics == {"m": 1.0}  # nothing stored was touched
    del ws


def test_a_broken_config_toml_is_reported_with_its_path_and_nothing_is_lost(tmp_path):
    cellops.init_workspace(tmp_path)
    with cellops.start_run(name="kept") as run:
        pass
    (tmp_path / ".cellops" / "config.toml").write_text("store_url = postgresql://no-quotes\n")
    cellops.workspaces._reset_for_tests()
    with pytest.raises(cellops.WorkspaceError, match=r"config\.toml is not valid TOML"):
        cellops.start_run()
    (tmp_path / ".cellops" / "config.toml").unlink()
    cellops.workspaces._reset_for_tests()
    assert cellops.get_run(run.id).name == "kept"


def test_a_bad_synchronous_setting_is_reported(tmp_path):
    (tmp_path / ".cellops").mkdir()
    (tmp_path / ".cellops" / "config.json").write_text(json.dumps({"sqlite_synchronous": "MAYBE"}))
    with pytest.raises(cellops.StoreError, match="sqlite_synchronous"):
        cellops.workspace().store  # noqa: B018


def test_a_workspace_that_cannot_be_created_says_what_to_do(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CELLOPS_HOME", str(blocker / "ws"))
    with pytest.raises(cellops.WorkspaceError, match="CELLOPS_HOME"):
        cellops.start_run()


def test_a_corrupt_database_file_is_reported_not_overwritten(tmp_path):
    db = tmp_path / ".cellops" / "cellops.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(cellops.StoreError, match="not a database"):
        cellops.start_run()
    assert db.read_bytes().startswith(b"this is not a sqlite database")


def test_init_is_idempotent_and_keeps_data(tmp_path):
    ws = cellops.init_workspace(tmp_path)
    with cellops.start_run() as run:
        pass
    again = cellops.init_workspace(tmp_path)
    assert again.path == ws.path
    assert cellops.get_run(run.id).status == "FINISHED"


def experiment_counts() -> dict[str, tuple[int, object]]:
    return {e.name: (e.run_count, e.last_run_time) for e in cellops.list_experiments()}


def test_experiment_run_counts_follow_inserts_deletes_and_moves(ws):
    runs = []
    for exp in ("a", "a", "b"):
        with cellops.start_run(experiment=exp) as run:
            pass
        runs.append(run)
    counts = experiment_counts()
    assert counts["a"] == (2, runs[1].start_time) and counts["b"] == (1, runs[2].start_time)
    assert cellops.set_experiment("a").run_count == 2
    cellops.delete_runs([runs[1].id])
    assert experiment_counts()["a"] == (1, runs[0].start_time)
    conn = ws.store.conn
    b_id = conn.execute("SELECT id FROM experiments WHERE name = 'b'").fetchone()[0]
    conn.execute("UPDATE runs SET experiment_id = ? WHERE id = ?", (b_id, runs[0].id))
    assert experiment_counts() == {"a": (0, None), "b": (2, runs[2].start_time)}


def _drop_features(con: sqlite3.Connection) -> None:
    """Remove what migrations 13 and 14 added (the feature store, workspace roles)."""
    for table in ("workspace_roles", "feature_materializations", "online_features",
                  "feature_views"):
        con.execute(f"DROP TABLE {table}")


def _drop_registry(con: sqlite3.Connection) -> None:
    """Remove what migrations 9 to 13 added: the database as an older cellops left it."""
    _drop_features(con)
    for table in ("alert_deliveries", "alerts", "monitor_results", "monitors",
                  "approvals", "promotion_requests", "alias_protections", "model_aliases",
                  "model_tags", "model_versions", "registered_models", "audit_log",
                  "predictions", "prediction_labels", "serving_endpoints"):
        con.execute(f"DROP TABLE {table}")


def test_counts_are_filled_in_when_an_older_workspace_is_upgraded(tmp_path):
    ws = cellops.init_workspace(tmp_path)
    for exp in ("a", "b", "b"):
        with cellops.start_run(experiment=exp):
            pass
    ws.close()
    con = sqlite3.connect(ws.db_path)  # make it the schema-5 database it would have been
    for trigger in ("runs_counted_on_insert", "runs_counted_on_delete", "runs_counted_on_move"):
        con.execute(f"DROP TRIGGER {trigger}")
    con.execute("ALTER TABLE experiments DROP COLUMN run_count")
    con.execute("ALTER TABLE experiments DROP COLUMN last_run_time")
    con.execute("ALTER TABLE runs DROP COLUMN heartbeat")
    con.execute("DROP TABLE pipeline_steps")
    _drop_registry(con)
    con.execute("PRAGMA user_version = 5")
    con.commit()
    con.close()
    counts = experiment_counts()  # reopening migrates
    assert counts["a"][0] == 1 and counts["b"][0] == 2 and counts["b"][1] is not None
    with cellops.start_run(experiment="a"):
        pass
    assert experiment_counts()["a"][0] == 2


def test_pipeline_step_tags_of_an_older_workspace_become_step_rows(tmp_path):
    ws = cellops.init_workspace(tmp_path)
    steps = [{"name": "prepare", "status": "ran", "run_id": None, "duration_s": 1.5,
              "reason": "never ran", "error": None},
             {"name": "train", "status": "failed", "run_id": None, "duration_s": 2.0,
              "reason": "never ran", "error": "boom"}]
    with cellops.start_run(name="p", kind="pipeline") as new_style:
        pass
    with cellops.start_run(name="q", kind="pipeline") as old_style:
        pass
    ws.close()
    con = sqlite3.connect(ws.db_path)  # the schema-7 database, with steps in tags
    con.execute("DROP TABLE pipeline_steps")
    con.execute("INSERT INTO tags VALUES (?, 'pipeline.steps', ?)", (new_style.id, json.dumps(steps)))
    con.executemany("INSERT INTO tags VALUES (?, ?, ?)",
                    [(old_style.id, "step.a", "cached"), (old_style.id, "step.b", "skipped")])
    _drop_registry(con)
    con.execute("PRAGMA user_version = 7")
    con.commit()
    con.close()
    page = cellops.pipeline_runs()  # reopening migrates
    by_name = {r["name"]: r for r in page.runs}
    assert [(s["name"], s["status"], s["error"]) for s in by_name["p"]["steps"]] == \
        [("prepare", "ran", None), ("train", "failed", "boom")]
    assert [(s["name"], s["status"]) for s in by_name["q"]["steps"]] == [("a", "cached"), ("b", "skipped")]
    assert all(not k.startswith(("pipeline.steps", "step.")) for r in page.runs for k in r["tags"])


def test_a_schema_8_workspace_gains_the_registry_and_keeps_its_runs(tmp_path):
    ws = cellops.init_workspace(tmp_path)
    with cellops.start_run(name="kept") as run:
        run.log_metric("m", 1.0)
    ws.close()
    con = sqlite3.connect(ws.db_path)
    _drop_registry(con)
    con.execute("PRAGMA user_version = 8")
    con.commit()
    con.close()
    assert cellops.get_run(run.id).metrics == {"m": 1.0}  # reopening migrates
    from sklearn.linear_model import LogisticRegression

    v = cellops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    assert v.version == 1 and cellops.verify_audit().ok


def test_a_schema_9_workspace_gains_the_prediction_log_and_keeps_its_models(tmp_path):
    from sklearn.linear_model import LogisticRegression

    ws = cellops.init_workspace(tmp_path)
    cellops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    ws.close()
    con = sqlite3.connect(ws.db_path)
    _drop_features(con)
    for table in ("alert_deliveries", "alerts", "monitor_results", "monitors", "predictions",
                  "prediction_labels", "serving_endpoints"):
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 9")
    con.commit()
    con.close()
    assert cellops.get_model_version("m", 1).version == 1  # reopening migrates
    assert cellops.predictions().empty and cellops.serving_endpoints() == []
    assert cellops.monitors() == [] and cellops.alerts() == []
    assert cellops.verify_audit().ok


@pytest.mark.parametrize("args", [["runs", "list"], ["models", "list"], ["experiments"],
                                  ["audit"], ["alerts", "list"], ["runs", "show", "abc"]])
def test_read_only_commands_do_not_create_a_workspace_where_there_is_none(tmp_path, args):
    """Issue #27: `cellops runs list` in any folder left a .cellops/ there."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    res = subprocess.run([sys.executable, "-m", "cellops.cli", *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"No cellops workspace at {tmp_path} or in a folder above it" in res.stderr
    assert "cellops init" in res.stderr
    assert not (tmp_path / ".cellops").exists()
    helped = subprocess.run([sys.executable, "-m", "cellops.cli", *args[:2], "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "Usage:" in helped.stdout  # help needs no workspace
    assert not (tmp_path / ".cellops").exists()


def test_a_schema_12_workspace_gains_the_feature_store_and_keeps_its_runs(tmp_path):
    import pandas as pd

    ws = cellops.init_workspace(tmp_path)
    with cellops.start_run(name="kept") as run:
        run.log_metric("m", 1.0)
    ws.close()
    con = sqlite3.connect(ws.db_path)
    _drop_features(con)
    con.execute("PRAGMA user_version = 12")
    con.commit()
    con.close()
    assert cellops.list_feature_views() == []  # reopening migrates
    assert cellops.get_run(run.id).metrics == {"m": 1.0}
    frame = pd.DataFrame({"cid": [1], "ts": [pd.Timestamp("2024-01-01")], "x": [1.0]})
    assert cellops.register_feature_view("f", frame, entities="cid", timestamp="ts").version == 1
