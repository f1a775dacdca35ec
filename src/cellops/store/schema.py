"""The whole cellops data model, as numbered migrations.

``PRAGMA user_version`` holds the number of the last migration applied. Each
migration is a function that receives a :class:`sqlite_utils.Database` bound to
the connection, inside the ``BEGIN IMMEDIATE`` transaction that also bumps the
version, so a migration is applied completely or not at all, exactly once, even
when many processes open a brand-new workspace at the same moment.

Conventions: times are integer milliseconds since the epoch (UTC); JSON columns
hold text; a metric value stored as NULL means NaN (SQLite turns NaN into NULL,
and no other NULL is ever written there).

The same migrations build a PostgreSQL workspace: there ``db`` is a
:class:`~cellops.store.dialect.PgSchema` (the same calls, PostgreSQL DDL) and the
version lives in the ``cellops_schema`` table; the few steps SQLite and PostgreSQL spell
differently ask ``_pg(db)`` and take their PostgreSQL text from :mod:`.dialect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from sqlite_utils import Database


def _pg(db: Database) -> bool:
    """Whether this migration is building a PostgreSQL workspace."""
    return getattr(db, "dialect", "sqlite") == "postgresql"


def _m1_tracking(db: Database) -> None:
    if _pg(db):
        from .dialect import PG_FUNCTIONS

        db.execute(PG_FUNCTIONS)
    db["experiments"].create(
        {"id": int, "name": str, "created_at": int, "description": str},
        pk="id",
        not_null={"name", "created_at"},
    )
    db["experiments"].create_index(["name"], unique=True)

    db["environments"].create(
        {"id": str, "python": str, "implementation": str, "platform": str, "packages": str,
         "created_at": int},
        pk="id",
    )

    db["runs"].create(
        {
            "id": str,
            "experiment_id": int,
            "parent_id": str,
            "kind": str,  # run | cell | notebook | pipeline | step | trial | sweep
            "name": str,
            "status": str,  # RUNNING | FINISHED | FAILED | KILLED
            "start_time": int,
            "end_time": int,
            "user": str,
            "host": str,
            "pid": int,
            "proc_start": str,  # process start ticks: tells a live pid from a reused one
            "notebook_path": str,
            "source_name": str,
            "source_sha": str,  # blob holding the executed source
            "git_commit": str,
            "git_branch": str,
            "git_dirty": int,
            "git_diff_sha": str,  # blob holding `git diff HEAD` when dirty
            "environment_id": str,
            "error": str,
        },
        pk="id",
        not_null={"experiment_id", "kind", "status", "start_time"},
        foreign_keys=[("experiment_id", "experiments", "id"),
                      ("environment_id", "environments", "id")],
    )
    db["runs"].create_index(["experiment_id", "start_time"])
    db["runs"].create_index(["parent_id"])
    db["runs"].create_index(["status", "host"])

    db["params"].create(
        {"run_id": str, "key": str, "value": str},
        pk=("run_id", "key"),
        not_null={"value"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["params"].create_index(["key", "value"])

    db["tags"].create(
        {"run_id": str, "key": str, "value": str},
        pk=("run_id", "key"),
        not_null={"value"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["tags"].create_index(["key", "value"])

    # Full history; no uniqueness: the same step may be logged twice.
    db["metrics"].create(
        {"run_id": str, "key": str, "step": int, "value": float, "timestamp": int},
        not_null={"run_id", "key", "step", "timestamp"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["metrics"].create_index(["run_id", "key", "step"])

    # Latest value per (run, key): the row with the highest step, then timestamp.
    db["latest_metrics"].create(
        {"run_id": str, "key": str, "value": float, "step": int, "timestamp": int},
        pk=("run_id", "key"),
        not_null={"step", "timestamp"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["latest_metrics"].create_index(["key", "value"])

    db["artifacts"].create(
        {"run_id": str, "path": str, "sha256": str, "size": int, "media_type": str,
         "created_at": int},
        pk=("run_id", "path"),
        not_null={"sha256", "size", "created_at"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["artifacts"].create_index(["sha256"])

    db["datasets"].create(
        {
            "id": int,
            "name": str,
            "fingerprint": str,
            "source": str,
            "format": str,
            "schema": str,  # JSON [{"name", "dtype"}]
            "num_rows": int,
            "num_columns": int,
            "profile": str,  # JSON per-column statistics (drift reference)
            "created_at": int,
        },
        pk="id",
        not_null={"name", "fingerprint", "created_at"},
    )
    db["datasets"].create_index(["name", "fingerprint"], unique=True)
    db["datasets"].create_index(["fingerprint"])

    db["run_datasets"].create(
        {"run_id": str, "dataset_id": int, "role": str, "created_at": int},
        pk=("run_id", "dataset_id", "role"),
        foreign_keys=[("run_id", "runs", "id"), ("dataset_id", "datasets", "id")],
    )
    db["run_datasets"].create_index(["dataset_id"])


def _m2_cells(db: Database) -> None:
    # The real execution history of a notebook session (`%track on`), in order.
    db["cells"].create(
        {
            "run_id": str,
            "seq": int,  # 0, 1, 2... in the order the cells really ran
            "execution_count": int,
            "source": str,
            "start_time": int,
            "duration_ms": int,
            "status": str,  # ok | error | interrupted
            "error": str,
        },
        pk=("run_id", "seq"),
        not_null={"source", "start_time", "status"},
        foreign_keys=[("run_id", "runs", "id")],
    )


def _m3_step_cache(db: Database) -> None:
    # Pipeline step cache: a finished step run, by the key of everything it depended on.
    db["step_cache"].create(
        {
            "key": str,
            "pipeline": str,
            "step": str,
            "run_id": str,
            "parts": str,  # JSON: notebook, parameters, inputs, upstream, kernel
            "outputs": str,  # JSON: {path: sha256} after the step ran
            "created_at": int,
        },
        pk="key",
        not_null={"pipeline", "step", "run_id", "parts", "outputs", "created_at"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["step_cache"].create_index(["pipeline", "step", "created_at"])
    db["step_cache"].create_index(["run_id"])


def _m4_run_listing(db: Database) -> None:
    """Indexes for paging through every run newest first, and through runs of one kind
    (the sidebar's runs and pipelines lists on large workspaces)."""
    db["runs"].create_index(["start_time"])
    db["runs"].create_index(["kind", "start_time"])


def _m5_large_workspaces(db: Database) -> None:
    """Indexes that keep the sidebar's pages fast on 100,000 runs.

    (key, value, run_id) for params, tags and latest metrics replace the (key, value)
    ones: a filter reads the matching run ids from the index alone. Runs by status and by
    name (NULL names last), each with start time in both directions, let a page sorted
    on those columns walk an index instead of sorting every run.
    """
    for table in ("params", "tags", "latest_metrics"):
        db.execute(f"DROP INDEX IF EXISTS idx_{table}_key_value")
        db[table].create_index(["key", "value", "run_id"], if_not_exists=True)
    for name, columns in (
        ("idx_runs_status_newest", "status, start_time DESC"),
        ("idx_runs_status_oldest", "status, start_time"),
        ("idx_runs_name_asc", "(name IS NULL), name, start_time DESC"),
        ("idx_runs_name_desc", "(name IS NULL), name DESC, start_time DESC"),
    ):
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON runs ({columns})")


def _m6_experiment_counts(db: Database) -> None:
    """Each experiment's run count and latest start time, kept by triggers on ``runs``, so
    listing experiments (and ``set_experiment``) costs the same at 100 or 100,000 runs."""
    db.execute("ALTER TABLE experiments ADD COLUMN run_count INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE experiments ADD COLUMN last_run_time INTEGER")
    db.execute(
        "UPDATE experiments SET"
        " run_count = (SELECT count(*) FROM runs WHERE experiment_id = experiments.id),"
        " last_run_time = (SELECT max(start_time) FROM runs"
        "                  WHERE experiment_id = experiments.id)")
    if _pg(db):
        from .dialect import PG_RUN_COUNT_TRIGGERS

        db.execute(PG_RUN_COUNT_TRIGGERS)
        return
    latest = "(SELECT max(start_time) FROM runs WHERE experiment_id = {which}.experiment_id)"
    db.execute(
        "CREATE TRIGGER runs_counted_on_insert AFTER INSERT ON runs BEGIN"
        " UPDATE experiments SET run_count = run_count + 1,"
        "  last_run_time = max(coalesce(last_run_time, NEW.start_time), NEW.start_time)"
        "  WHERE id = NEW.experiment_id; END")
    db.execute(
        "CREATE TRIGGER runs_counted_on_delete AFTER DELETE ON runs BEGIN"
        " UPDATE experiments SET run_count = run_count - 1,"
        f"  last_run_time = {latest.format(which='OLD')} WHERE id = OLD.experiment_id; END")
    db.execute(
        "CREATE TRIGGER runs_counted_on_move AFTER UPDATE OF experiment_id, start_time ON runs"
        " BEGIN"
        " UPDATE experiments SET run_count = run_count - 1,"
        f"  last_run_time = {latest.format(which='OLD')} WHERE id = OLD.experiment_id;"
        " UPDATE experiments SET run_count = run_count + 1,"
        f"  last_run_time = {latest.format(which='NEW')} WHERE id = NEW.experiment_id; END")


def _m7_heartbeats(db: Database) -> None:
    """When the process that owns a RUNNING run last said it was alive (ms): how a run whose
    process is on another host is told live from abandoned. Older runs start from their
    start time."""
    db.execute("ALTER TABLE runs ADD COLUMN heartbeat INTEGER")
    db.execute("UPDATE runs SET heartbeat = start_time WHERE status = 'RUNNING'")


def _m8_pipeline_steps(db: Database) -> None:
    """The state of each step of a pipeline run as rows (it was a JSON tag,
    ``pipeline.steps``, plus ``step.<name>`` tags): backfilled, then the tags go."""
    import json

    db["pipeline_steps"].create(
        {"pipeline_run_id": str, "position": int, "name": str, "status": str, "run_id": str,
         "duration_s": float, "reason": str, "error": str, "updated_at": int},
        pk=("pipeline_run_id", "name"),
        not_null={"position", "status", "updated_at"},
        foreign_keys=[("pipeline_run_id", "runs", "id")],
    )
    db["pipeline_steps"].create_index(["run_id"])
    rows = db.execute(
        "SELECT r.id, r.start_time, t.value FROM runs r LEFT JOIN tags t"
        " ON t.run_id = r.id AND t.key = 'pipeline.steps' WHERE r.kind = 'pipeline'").fetchall()
    for run_id, started, text in rows:
        try:
            steps = json.loads(text) if text else []
        except ValueError:
            steps = []
        if not steps:
            steps = [{"name": key[5:], "status": value} for key, value in db.execute(
                "SELECT key, value FROM tags WHERE run_id = ? AND key LIKE 'step.%'"
                " ORDER BY rowid", (run_id,)).fetchall()]
        for i, step in enumerate(steps):
            db.execute(
                "INSERT OR IGNORE INTO pipeline_steps (pipeline_run_id, position, name, status,"
                " run_id, duration_s, reason, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, i, step.get("name"), step.get("status") or "pending", step.get("run_id"),
                 step.get("duration_s"), step.get("reason"), step.get("error"), started))
    db.execute("DELETE FROM tags WHERE key = 'pipeline.steps'"
               " OR (key LIKE 'step.%' AND run_id IN (SELECT id FROM runs WHERE kind = 'pipeline'))")


def _m9_registry(db: Database) -> None:
    """The model registry and its governance: registered models, numbered versions (each
    tied to its run, blob and lineage), tags, aliases, protected aliases, promotion
    requests with their approvals, and the hash-chained audit log."""
    db["registered_models"].create(
        {"name": str, "description": str, "created_at": int, "created_by": str, "updated_at": int,
         "last_version": int},  # only grows: a deleted version's number is never reused
        pk="name", not_null={"created_at", "updated_at", "last_version"}, defaults={"last_version": 0})
    db["model_versions"].create(
        {"name": str, "version": int, "run_id": str, "artifact_path": str, "sha256": str,
         "size": int, "flavor": str, "signature": str, "environment_id": str, "lineage": str,
         "description": str, "created_at": int, "created_by": str},
        pk=("name", "version"), not_null={"sha256", "size", "flavor", "created_at"},
        foreign_keys=[("name", "registered_models", "name")])
    db["model_versions"].create_index(["run_id"])
    db["model_versions"].create_index(["sha256"])
    db["model_tags"].create(  # version 0: a tag of the registered model itself
        {"name": str, "version": int, "key": str, "value": str},
        pk=("name", "version", "key"), not_null={"value"},
        foreign_keys=[("name", "registered_models", "name")])
    db["model_tags"].create_index(["key", "value"])
    db["model_aliases"].create(
        {"name": str, "alias": str, "version": int, "updated_at": int, "updated_by": str},
        pk=("name", "alias"), not_null={"version", "updated_at"},
        foreign_keys=[("name", "registered_models", "name")])
    db["alias_protections"].create(
        {"name": str, "alias": str, "approvers": str, "min_approvals": int, "gate": str,
         "created_at": int, "created_by": str},
        pk=("name", "alias"), not_null={"approvers", "min_approvals", "created_at"},
        foreign_keys=[("name", "registered_models", "name")])
    db["promotion_requests"].create(
        {"id": int, "name": str, "alias": str, "version": int, "status": str,
         "requested_by": str, "requested_at": int, "gate": str, "gate_passed": int,
         "gate_result": str, "decided_at": int, "previous_version": int},
        pk="id", not_null={"name", "alias", "version", "status", "requested_at"},
        foreign_keys=[("name", "registered_models", "name")])
    db["promotion_requests"].create_index(["status", "name"])
    db["approvals"].create(
        {"request_id": int, "approver": str, "decision": str, "comment": str, "at": int},
        pk=("request_id", "approver"), not_null={"decision", "at"},
        foreign_keys=[("request_id", "promotion_requests", "id")])
    # Append-only; each row's hash covers its content and the previous row's hash.
    db["audit_log"].create(
        {"seq": int, "at": int, "actor": str, "action": str, "object": str, "details": str,
         "prev_hash": str, "hash": str},
        pk="seq", not_null={"at", "action", "object", "details", "prev_hash", "hash"})


def _m10_serving(db: Database) -> None:
    """Serving: the prediction log (one row per request or batch chunk, inputs stored by
    column), labels joined later, and the scoring servers that are running."""
    db["predictions"].create(
        {"id": int, "request_id": str, "at": int, "model": str, "version": int, "source": str,
         "n_rows": int, "inputs": str, "outputs": str, "latency_ms": float, "status": int,
         "error": str},
        pk="id", not_null={"request_id", "at", "model", "source", "n_rows", "status"})
    db["predictions"].create_index(["model", "at"])
    db["predictions"].create_index(["at"])
    db["predictions"].create_index(["request_id"])
    db["prediction_labels"].create(
        {"request_id": str, "row": int, "label": str, "at": int},
        pk=("request_id", "row"), not_null={"at"})
    db["serving_endpoints"].create(
        {"id": str, "model": str, "version": int, "uri": str, "url": str, "host": str, "pid": int,
         "started_at": int, "heartbeat_at": int, "stopped_at": int, "requests_total": int,
         "rate": float},
        pk="id", not_null={"model", "uri", "url", "started_at", "heartbeat_at"})
    db["serving_endpoints"].create_index(["model", "version"])


def _m11_monitoring(db: Database) -> None:
    """Monitoring: monitors (their whole spec as JSON, and how far they have evaluated),
    one result per evaluated window, alerts (at most one not resolved per monitor and
    check), and the outbox of webhook deliveries that are retried until they land."""
    db["monitors"].create(
        {"name": str, "model": str, "spec": str, "source": str, "created_at": int,
         "created_by": str, "updated_at": int, "cursor_ms": int, "cursor_id": int},
        pk="name", not_null={"model", "spec", "created_at", "updated_at"})
    db["monitor_results"].create(
        {"id": int, "monitor": str, "window_key": str, "window_start": int, "window_end": int,
         "first_id": int, "last_id": int, "rows": int, "status": str, "checks": str,
         "drift_share": float, "metrics": str, "versions": str, "evaluated_at": int,
         "error": str},
        pk="id", not_null={"monitor", "window_key", "window_start", "window_end", "rows",
                           "status", "evaluated_at"},
        foreign_keys=[("monitor", "monitors", "name")])
    db["monitor_results"].create_index(["monitor", "window_key"], unique=True)
    db["alerts"].create(
        {"id": int, "monitor": str, "check_name": str, "state": str, "message": str,
         "value": float, "opened_at": int, "opened_result": int, "last_result": int,
         "windows": int, "acknowledged_by": str, "acknowledged_at": int, "resolved_by": str,
         "resolved_at": int, "comment": str, "actions": str},
        pk="id", not_null={"monitor", "check_name", "state", "opened_at", "windows"})
    db.execute("CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (monitor, check_name)"
               " WHERE state != 'resolved'")
    db["alerts"].create_index(["state"])
    db["alert_deliveries"].create(
        {"id": int, "alert_id": int, "event": str, "url": str, "body": str, "status": str,
         "attempts": int, "next_at": int, "delivered_at": int, "last_error": str,
         "created_at": int},
        pk="id", not_null={"alert_id", "event", "url", "body", "status", "attempts", "next_at",
                           "created_at"})
    db["alert_deliveries"].create_index(["status", "next_at"])


def _m12_sortable_values(db: Database) -> None:
    """Params and tags sortable from an index: ``sort_value`` is the value with NUMERIC
    affinity (text that reads as a number is that number; numbers sort before text), a
    virtual column computed by SQLite itself, indexed with its key so that a page ordered
    by a param walks the index instead of sorting every run."""
    for table in ("params", "tags"):
        if _pg(db):  # stored by the store (dialect.sort_key): PostgreSQL has no affinity
            db.execute(f'ALTER TABLE {table} ADD COLUMN sort_value TEXT COLLATE "C"')
            db.execute(f"CREATE INDEX idx_{table}_key_sort_value ON {table} (key, sort_value, run_id)")
            continue
        have = {row[1] for row in db.execute(f"PRAGMA table_xinfo({table})").fetchall()}
        if "sort_value" not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN sort_value NUMERIC"
                       " GENERATED ALWAYS AS (value) VIRTUAL")
        db.execute(f"CREATE INDEX IF NOT EXISTS idx_{table}_key_sort_value"
                   f" ON {table} (key, sort_value, run_id)")


def _m13_features(db: Database) -> None:
    """The feature store: feature views, one row per version (its definition, the content
    fingerprint that makes a re-registration of the same data a no-op, and the artifact
    holding its rows, sorted for point-in-time joins); the online store (the latest value
    per view and entity key); and how far each view was materialized."""
    db["feature_views"].create(
        {"name": str, "version": int, "fingerprint": str, "entities": str, "timestamp": str,
         "created_timestamp": str, "ttl_ms": int, "features": str, "description": str,
         "tags": str, "source": str, "artifact": str, "num_rows": int, "min_ts": int,
         "max_ts": int, "created_at": int, "created_by": str},  # min_ts, max_ts: UTC ns
        pk=("name", "version"),
        not_null={"fingerprint", "entities", "timestamp", "features", "artifact", "num_rows",
                  "created_at"})
    db["online_features"].create(
        {"view": str, "entity_key": str, "version": int, "feature_ts": int, "feature_values": str,
         "written_at": int},
        pk=("view", "entity_key"), not_null={"version", "feature_ts", "feature_values", "written_at"})
    db["feature_materializations"].create(
        {"view": str, "version": int, "end_ns": int, "rows_written": int, "rows_expired": int,
         "materialized_at": int},
        pk="view", not_null={"version", "end_ns", "rows_written", "materialized_at"})


def _m14_roles(db: Database) -> None:
    """Who may do what in a shared workspace: one role per member (viewer, editor,
    approver, admin). No rows means no roles are enforced (a one-person workspace)."""
    db["workspace_roles"].create(
        {"member": str, "role": str, "granted_by": str, "granted_at": int},
        pk="member", not_null={"role", "granted_at"})


def _m15_param_check(db: Database) -> None:
    """PostgreSQL: the function that lets a params insert check for a clash in the same
    round trip (:func:`.dialect.pg_param_insert`). Nothing changes on SQLite."""
    if _pg(db):
        from .dialect import PG_PARAM_CLASH

        db.execute(PG_PARAM_CLASH)


def _m16_id_lookups(db: Database) -> None:
    """PostgreSQL: hash indexes for looking a run's rows up by its id. A search probes the
    runs it matched one by one (their run row, the metric it sorts by, then the page's params,
    metrics and tags); a hash probe reads a bucket instead of descending a B-tree of text
    ids, which made a search over 100,000 runs about a third faster (measured in
    benchmarks/bench_team.py) at no cost to run creation that three runs of 1,000 could
    measure. The B-tree keys stay: they enforce uniqueness and serve ranges. SQLite has no
    hash indexes; nothing changes there."""
    if _pg(db):
        for table, column in (("runs", "id"), ("params", "run_id"),
                              ("latest_metrics", "run_id"), ("tags", "run_id")):
            db.execute(f"CREATE INDEX idx_{table}_{column}_hash ON {table} USING hash ({column})")


def _m17_write_receipts(db: Database) -> None:
    """PostgreSQL: receipts of writes that must land once (metric batches, prediction logs).
    When a connection breaks while a COMMIT's reply is on its way back, the client cannot
    tell whether the write committed; a retry first looks its receipt up here instead of
    writing the rows again (:meth:`.postgres.PgConnection.write`). Tokens start with the
    time in milliseconds, so old receipts are pruned by a key range. SQLite commits in the
    writing process: nothing changes there."""
    if _pg(db):
        db.execute("CREATE TABLE cellops_receipts (token TEXT PRIMARY KEY)")


def _m18_runs_by_id_and_experiment(db: Database) -> None:
    """SQLite: an index of runs by (id, experiment). A listing scoped to an experiment and
    filtered on one metric, param or tag is counted from that condition's index, each run
    it names looked up in this one to test its experiment: no run row is read (at 100,000
    runs, 10 ms where the unique index on ids took 45). PostgreSQL counts such a page with
    its planner; nothing changes there."""
    if not _pg(db):
        db.execute("CREATE INDEX IF NOT EXISTS idx_runs_id_experiment_id"
                   " ON runs (id, experiment_id)")


MIGRATIONS: list[tuple[int, Callable[[Database], None]]] = [
    (1, _m1_tracking),
    (2, _m2_cells),
    (3, _m3_step_cache),
    (4, _m4_run_listing),
    (5, _m5_large_workspaces),
    (6, _m6_experiment_counts),
    (7, _m7_heartbeats),
    (8, _m8_pipeline_steps),
    (9, _m9_registry),
    (10, _m10_serving),
    (11, _m11_monitoring),
    (12, _m12_sortable_values),
    (13, _m13_features),
    (14, _m14_roles),
    (15, _m15_param_check),
    (16, _m16_id_lookups),
    (17, _m17_write_receipts),
    (18, _m18_runs_by_id_and_experiment),
]
LATEST_VERSION = MIGRATIONS[-1][0]
