"""The tracking API: start and end runs, log to the active run, find runs again.

The functions here act on the *active run* of the calling thread (the innermost
run started and not yet ended). Starting a run while another is active makes the
new one its child. Logging with no active run starts one, as MLflow does; it
ends when the interpreter exits.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..errors import InvalidArgumentError, RunNotFoundError, RunStateError
from ..execution.environment import KernelEnv
from ..identity import current_user, require_role
from ..store.batch import final_flush, flush_all
from ..store.values import INT64_MAX, check_text
from ..workspaces import Workspace, workspace
from ..workspaces import workspace as workspace_of
from . import active, context
from .run import Run, ids_of
from .values import (
    ms_to_datetime,
    param_values,
    row_duration,
    run_values,
    same_value_key,
    tag_values,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..datasets import Dataset

DEFAULT_EXPERIMENT = "Default"
# Kinds of runs, and what each is. Tracking's own are here; the areas' kinds (pipelines:
# pipeline, step, trial, sweep; monitoring: monitor) are registered with register_run_kind
# by cellops/__init__.py, so a new area needs no edit here.
_RUN_KINDS: dict[str, str] = {
    "run": "a run started with start_run",
    "cell": "a %%track cell",
    "notebook": "a notebook session (%%params, %track on, papermill)",
}


def register_run_kind(kind: str, description: str) -> None:
    """Let runs be started with ``kind`` (a lower-case word): an area registers the kinds
    of runs it makes, as papermill registers engines. Registering a kind again keeps the
    first description."""
    if not isinstance(kind, str) or not kind.isidentifier() or kind != kind.lower() or len(kind) > 40:
        raise InvalidArgumentError(f"A run kind is a lower-case word such as 'trial', not {kind!r}.")
    _RUN_KINDS.setdefault(kind, str(description))


def run_kinds() -> dict[str, str]:
    """Every registered kind of run and what it is."""
    return dict(_RUN_KINDS)


# What other areas check before runs are deleted, as "module:function" (resolved when runs
# are deleted, so tracking imports no area): guard(tx, runs, actor, force) raises to refuse
# and returns {run_id: details} to add to the runs' audit entries. The registry's guard
# (the runs registered versions come from) is registered by cellops/__init__.py.
_DELETION_GUARDS: list[str] = []


def register_deletion_guard(ref: str) -> None:
    """Check every deletion of runs with the function ``"package.module:function"``:
    ``function(tx, runs, actor, force)`` runs inside the deletion's unit of work (``runs``:
    the rows about to go, children included), raises to refuse, and returns extra audit
    details by run id."""
    if ":" not in ref:
        raise InvalidArgumentError(f"A deletion guard is 'module:function', not {ref!r}.")
    if ref not in _DELETION_GUARDS:
        _DELETION_GUARDS.append(ref)


def _guards() -> list[Any]:
    import importlib

    out = []
    for ref in _DELETION_GUARDS:
        module, _, name = ref.partition(":")
        out.append(getattr(importlib.import_module(module), name))
    return out

_experiment: str | None = None


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    created_at: datetime
    description: str | None = None
    run_count: int = 0
    last_run_time: datetime | None = None


# -- experiments -----------------------------------------------------------
def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment new runs go to (created if missing)."""
    global _experiment
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"An experiment name must be a non-empty string, not {name!r}.")
    check_text(name, "Experiment name")
    ws = workspace()
    _experiment_id(ws, name)
    _experiment = name
    return _experiment_of(ws.store.experiments.list(name)[0])


def current_experiment() -> str:
    """The experiment new runs go to: set_experiment's, else $CELLOPS_EXPERIMENT, else Default."""
    return _experiment or KernelEnv.current().experiment or DEFAULT_EXPERIMENT


def _experiment_id(ws: Workspace, name: str) -> int:
    eid = ws.experiment_ids.get(name)
    if eid is None:
        eid = ws.experiment_ids[name] = ws.store.experiments.ensure(name)
    return eid


def list_experiments(*, workspace: Workspace | str | os.PathLike[str] | None = None
                     ) -> list[Experiment]:
    """Every experiment of the workspace (default: the current one), with its number of runs."""
    return [_experiment_of(r) for r in workspace_of(workspace).store.experiments.list()]


def _experiment_of(row: Mapping[str, Any]) -> Experiment:
    return Experiment(row["id"], row["name"], ms_to_datetime(row["created_at"]), row["description"],
                      row["run_count"], ms_to_datetime(row["last_run_time"]))


# -- runs ------------------------------------------------------------------
def _blob(ws: Workspace, text: str | None) -> str | None:
    if not text:
        return None
    data = text.encode("utf-8", "replace")
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    if sha not in ws.known_blobs:
        ws.artifacts.put(data)
        ws.known_blobs.add(sha)
    return sha


def _context_columns(ws: Workspace, source: str | None = None) -> dict[str, Any]:
    """Who, where and which code, for a new run's row (``environment_id`` names
    ``context.environment()``, which the caller stores in the run's transaction)."""
    cols: dict[str, Any] = dict(context.process_info())
    cols["environment_id"] = context.environment()["id"]
    ip = context.ipython_info() if source is None else None
    if source is not None:  # the notebook or script the run executes, not this process
        cols["source_name"] = source
        if source.endswith(".ipynb"):
            cols["notebook_path"] = source
        try:
            cols["source_sha"] = _blob(ws, Path(source).read_text(encoding="utf-8",
                                                                  errors="replace"))
        except OSError:
            pass
        git_dir = os.path.dirname(source)
    elif ip is not None:
        cols["notebook_path"] = ip["notebook_path"]
        cols["source_name"] = ip["notebook_path"] or "<ipython>"
        cols["source_sha"] = _blob(ws, ip["source"])
        git_dir = os.path.dirname(ip["notebook_path"]) if ip["notebook_path"] else None
    else:
        script = context.script_source()
        if script is not None:
            cols["source_name"] = script[0]
            cols["source_sha"] = _blob(ws, script[1])
        git_dir = None
    if git_dir and not os.path.isdir(git_dir):
        git_dir = None
    git = context.git_info(git_dir)
    if git is not None:
        cols.update(git_commit=git["commit"], git_branch=git["branch"],
                    git_dirty=int(git["dirty"]), git_diff_sha=_blob(ws, git["diff"]))
    return cols


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: Run | str | None = None,
    *,
    kind: str = "run",
    run_id: str | None = None,
    activate: bool = True,
    source: str | os.PathLike[str] | None = None,
) -> Run:
    """Start a run (or resume ``run_id``) and make it the active run of this thread.

    Use it in a ``with`` block to end it automatically: FINISHED, or FAILED with
    the error recorded when the block raises. ``parent`` defaults to the active
    run, so a run started inside another is nested under it. ``activate=False``
    creates the run without making it active (the caller ends it). ``source`` names the
    notebook or script the run executes when that is not the calling process's own (a
    pipeline step started by the runner): its path, text and git state are recorded.
    """
    ws = workspace()
    if run_id is not None:
        run = get_run(run_id)
        # This process owns it from now on (its pid, host and heartbeat): nobody reaps it
        # while this process lives, and a stale KILLED error from a dead owner goes.
        ws.store.runs.claim(run.id, {**context.process_info(),
                                    "heartbeat": int(time.time() * 1000)})
        run.refresh()
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        active.own(run)
        return active.push(run)
    if kind not in _RUN_KINDS:
        raise InvalidArgumentError(
            f"kind must be one of {', '.join(_RUN_KINDS)}, not {kind!r}. An area that makes "
            "runs of a new kind registers it with cellops.tracking.register_run_kind.")
    if name is not None and not isinstance(name, str):
        raise InvalidArgumentError(f"A run name must be a string, not {type(name).__name__}.")
    if name is not None:
        check_text(name, "Run name")
    if experiment is not None:
        check_text(str(experiment), "Experiment name")
    params_text = param_values(ws, params or {})
    tags_text = tag_values(tags or {})
    told = KernelEnv.current()
    if parent is None:
        current = active.current()
        parent_id = current.id if current else told.run_id
    else:
        parent_id = ws.store.runs.resolve_id(parent.id if isinstance(parent, Run) else parent)
    token = told.papermill_token
    if token and parent_id is None:
        # Lets cellops' papermill engine find this run and attach the executed notebook.
        tags_text.setdefault("papermill.token", token)
    exp_name = experiment or current_experiment()
    row: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "parent_id": parent_id,
        "kind": kind,
        "name": name,
        "status": "RUNNING",
        "start_time": int(time.time() * 1000),
    }
    row.update(_context_columns(ws, os.path.abspath(source) if source is not None else None))
    row["heartbeat"] = row["start_time"]
    env = context.environment()
    require_role("editor", "logging runs", workspace=ws)
    # One transaction (one sync to disk) for the run with its params and tags, and — the
    # first time this process sees them — its experiment and environment. It checks no
    # rule, so it need not wait for other units of work (PostgreSQL; SQLite always does).
    with ws.store.transaction(serialize=False) as tx:
        row["experiment_id"] = ws.experiment_ids.get(exp_name) or tx.experiments.ensure(exp_name)
        if env["id"] not in ws.stored_environments:
            tx.environments.ensure(env)
        tx.runs.insert(row, params_text, tags_text)
    ws.experiment_ids[exp_name] = row["experiment_id"]  # remembered once committed
    ws.stored_environments.add(env["id"])
    from ..store.runs import RUN_COLUMNS

    run = Run(ws, {**dict.fromkeys(RUN_COLUMNS), **row, "experiment": exp_name})
    run._created_here = True
    active.own(run)
    return active.push(run) if activate else run


def active_run() -> Run | None:
    """The innermost run started in this thread and not yet ended, or None."""
    return active.current()


def last_active_run() -> Run | None:
    """The active run, else the run this process ended last (what ``%register`` registers
    from, as MLflow's ``last_active_run``)."""
    return active.last()


def end_run(status: str = "FINISHED") -> None:
    """End the active run (no-op when there is none)."""
    run = active_run()
    if run is not None:
        run.end(status)


def adopted_run() -> Run | None:
    """The run named by ``$CELLOPS_RUN_ID`` (set by pipelines for a step's kernel), made active.

    Logging in that process goes to it; runs started there nest under it. The
    process that created it (the pipeline runner) ends it, not this one.
    """
    run_id = KernelEnv.current().run_id
    if not run_id:
        return None
    for run in active.stack():
        if run.id == run_id:
            return run
    run = get_run(run_id)
    run._owned = False
    return active.push(run)


def _active_or_new() -> Run:
    run = active_run() or adopted_run()
    return run if run is not None else start_run()


def get_run(run_id: str, *, workspace: Workspace | None = None) -> Run:
    """Load a run by id or unique id prefix (at least 4 characters)."""
    ws = workspace_of(workspace)
    ws.flush()
    full = ws.store.runs.resolve_id(run_id)
    reap_dead_runs(ws)
    return Run(ws, ws.store.runs.get(full))


def delete_runs(run_ids: Iterable[Run | str], *, force: bool = False) -> list[str]:
    """Delete runs with their children, params, metrics and artifact links.

    A RUNNING run whose process is alive (on this host: its pid runs; on another host:
    its heartbeat is under ``LIVE_HEARTBEAT_S`` old) is refused, naming that process,
    unless ``force=True``; the process's later logging to it then fails. A run that a
    registered model version comes from (itself or a child) is refused too unless
    ``force=True`` — and when that model has protected aliases, only one of their
    approvers may force it (:class:`~cellops.errors.GovernanceError`). Every deleted run
    is an entry of the audit log, written in the same transaction as the deletion. Blobs
    stay until :func:`garbage_collect`. Returns the ids deleted.
    """
    ws = workspace()
    ws.flush()
    full = [ws.store.runs.resolve_id(r) for r in ids_of(run_ids)]
    if not force:
        for row in ws.store.runs.running_in_tree(full):
            owner = active.live_owner(row)
            if owner:
                raise RunStateError(
                    f"Run {row['id'][:8]} is RUNNING in a live process ({owner}). End it there "
                    "(or wait for it to finish), or delete it anyway with force=True "
                    "(`cellops runs delete --force`); that process's later logging to it "
                    "will then fail."
                )
    require_role("editor", "deleting runs")
    actor = current_user()
    guards = _guards()
    with ws.store.transaction() as tx:
        doomed = tx.runs.tree(full)
        extra: dict[str, dict[str, Any]] = {}
        for guard in guards:
            for run_id, details in (guard(tx, doomed, actor, force) or {}).items():
                extra.setdefault(run_id, {}).update(details)
        deleted = tx.runs.delete(full)
        for r in doomed:
            tx.audit.append(actor, "delete_run", r["id"], {"before": {
                "name": r["name"], "kind": r["kind"], "experiment": r["experiment"],
                "parent": r["parent_id"], "status": r["status"], **extra.get(r["id"], {})},
                "after": None})
    return deleted


def reap_dead_runs(ws: Workspace | None = None) -> list[str]:
    """Mark runs left RUNNING by a process on this host that no longer exists as KILLED."""
    ws = workspace_of(ws)
    info = context.process_info()
    reaped = []
    for r in ws.store.runs.running_on(info["host"]):
        if context.process_alive(r["pid"], r["proc_start"]):
            continue
        end = ws.store.metrics.last_activity(r["id"]) or r["start_time"]
        msg = f"The process (pid {r['pid']} on {info['host']}) that ran this run ended without ending it."
        # Only while that dead process still owns it: a resumed run has a new, live owner.
        if ws.store.runs.reap(r, end, msg):
            reaped.append(r["id"])
    return reaped


# -- logging to the active run ---------------------------------------------
def log_param(key: str, value: Any) -> None:
    """Log a param to the active run (immutable: a different value later is an error)."""
    _active_or_new().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _active_or_new().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric to the active run; buffered, and written in batches."""
    runs = active.stack()
    (runs[-1] if runs else _active_or_new()).log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _active_or_new().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _active_or_new().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _active_or_new().set_tags(tags)


def log_artifact(path_or_bytes: str | os.PathLike[str] | bytes, name: str | None = None) -> str | list[str]:
    return _active_or_new().log_artifact(path_or_bytes, name)


def log_text(text: str, name: str) -> str:
    return _active_or_new().log_text(text, name)


def log_dict(data: Any, name: str) -> str:
    return _active_or_new().log_dict(data, name)


def log_figure(fig: Any, name: str) -> str:
    return _active_or_new().log_figure(fig, name)


def log_model(model: Any, name: str = "model", *, X_sample: Any = None) -> str:
    return _active_or_new().log_model(model, name, X_sample=X_sample)


def log_dataset(data: Any, name: str | None = None, role: str = "input") -> Dataset:
    return _active_or_new().log_dataset(data, name, role)


def flush() -> None:
    """Write every buffered metric of this process now."""
    flush_all()


# -- search ----------------------------------------------------------------
def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002 - MLflow's name for it
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = None,
) -> pd.DataFrame:
    """Find runs with MLflow's filter grammar; return a DataFrame, one row per run.

    Columns: ``run_id, experiment, name, status, kind, parent_run_id, user,
    start_time, end_time, duration_s`` (seconds; to now while running) then ``params.*``,
    ``metrics.*`` (latest values) and ``tags.*``. ``experiment`` is a name or list of names; None searches all.
    """
    import pandas as pd

    from ..store.filter import parse_filter, parse_order_by

    node = parse_filter(filter)
    order = parse_order_by(order_by)
    if max_results is not None and (isinstance(max_results, bool) or not isinstance(max_results, int)
                                    or not 0 <= max_results <= INT64_MAX):
        raise InvalidArgumentError(
            f"max_results must be an integer from 0 to {INT64_MAX}, not {max_results!r}.")
    ws = workspace()
    exp_ids = _searchable(ws, experiment)
    rows = ws.store.search.rows(exp_ids, node, order, max_results, columns=FRAME_COLUMNS)
    return runs_frame(ws, rows, pd)


def _searchable(ws: Workspace, experiment: str | Sequence[str] | None) -> list[int] | None:
    """Make the workspace current for a search (buffered writes flushed, dead runs reaped);
    return the ids of the named experiments, or None for all."""
    ws.flush()
    reap_dead_runs(ws)
    if experiment is None:
        return None
    names = [experiment] if isinstance(experiment, str) else list(experiment)
    return [ws.store.experiments.id_of(n) for n in names]


@dataclass
class RunPage:
    """One page of :func:`list_runs`: ``runs`` (dicts) out of ``total`` matching runs."""

    runs: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def list_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002 - MLflow's name for it
    order_by: Sequence[str] | str | None = None,
    *,
    kinds: Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> RunPage:
    """A page of runs as plain dicts, with the number of runs that match — for tables and UIs.

    Same filter and order grammar as :func:`search_runs`. Each dict has ``run_id, name,
    experiment, status, kind, parent_run_id, user, start_time, end_time, duration_s,
    params, metrics, tags``. Only the page's rows are read, so it stays fast on large
    workspaces.
    """
    from ..store.filter import parse_filter, parse_order_by

    node = parse_filter(filter)
    order = parse_order_by(order_by)
    for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= INT64_MAX:
            raise InvalidArgumentError(
                f"{name} must be an integer from {low} to {INT64_MAX}, not {value!r}.")
    if limit > 1000:
        raise InvalidArgumentError(f"limit must be at most 1000, not {limit}; page with offset.")
    ws = workspace_of(workspace)
    exp_ids = _searchable(ws, experiment)
    kinds = list(kinds) if kinds else None
    rows, total = ws.store.search.page(exp_ids, node, order, limit, kinds, offset)
    runs: dict[str, dict[str, Any]] = {}
    for r in rows:
        runs[r["id"]] = {
            "run_id": r["id"], "name": r["name"], "experiment": r["experiment"],
            "status": r["status"], "kind": r["kind"] or "run", "parent_run_id": r["parent_id"],
            "user": r["user"], "start_time": ms_to_datetime(r["start_time"]),
            "end_time": ms_to_datetime(r["end_time"]),
            "duration_s": row_duration(r),
            "params": {}, "metrics": {}, "tags": {},
        }
    if runs:
        for kind, run_id, key, value in run_values(ws, list(runs)):
            runs[run_id][kind][key] = value
    return RunPage(list(runs.values()), total, limit, offset)


FRAME_COLUMNS = ("id", "name", "status", "kind", "parent_id", "user", "start_time", "end_time")


def runs_frame(ws: Workspace, rows: list[dict[str, Any]], pd: Any) -> pd.DataFrame:
    """The rows as a DataFrame, built column by column (a dict per run and a DataFrame
    from records cost more than the query)."""
    import numpy as np

    n = len(rows)
    at = {r["id"]: i for i, r in enumerate(rows)}
    frame: dict[str, Any] = {
        "run_id": [r["id"] for r in rows], "experiment": [r["experiment"] for r in rows],
        "name": [r["name"] for r in rows], "status": [r["status"] for r in rows],
        "kind": [r["kind"] for r in rows], "parent_run_id": [r["parent_id"] for r in rows],
        "user": [r["user"] for r in rows],
        "start_time": pd.to_datetime(np.array([r["start_time"] for r in rows], dtype="float64"),
                                     unit="ms", utc=True),
        "end_time": pd.to_datetime(np.array([np.nan if r["end_time"] is None else r["end_time"]
                                             for r in rows], dtype="float64"), unit="ms", utc=True),
        "duration_s": np.array([np.nan if (d := row_duration(r)) is None else d for r in rows],
                               dtype="float64"),
    }
    extra: dict[str, dict[str, list[Any]]] = {"params": {}, "metrics": {}, "tags": {}}
    if n:
        for kind, run_id, key, value in run_values(ws, list(at)):
            column = extra[kind].get(key)
            if column is None:
                column = extra[kind][key] = [np.nan if kind == "metrics" else None] * n
            column[at[run_id]] = value
    for kind in ("params", "metrics", "tags"):
        for key in sorted(extra[kind]):
            values = extra[kind][key]
            frame[f"{kind}.{key}"] = np.array(values, dtype="float64") if kind == "metrics" \
                else values
    return pd.DataFrame(frame, index=pd.RangeIndex(n))


def resolve_runs(runs: Sequence[Run | str], *, workspace: Workspace | None = None) -> list[str]:
    """Full ids of runs given as ``Run`` objects, ids, unique id prefixes or run names.

    A name is looked up in the current experiment first, then in every experiment; a name
    that several runs there share is an error that lists them (give an id instead). An
    exact id always wins; a name wins over an id prefix it also happens to be.
    """
    ws = workspace_of(workspace)
    ws.flush()
    out = []
    for ref in ids_of(runs):
        if isinstance(ref, str) and ref and not ws.store.runs.exists(ref):
            named = ws.store.runs.named(ref, current_experiment()) or ws.store.runs.named(ref)
            if len(named) > 1:
                raise RunNotFoundError(
                    f"{len(named) if len(named) < 6 else 'Six or more'} runs are called {ref!r} "
                    f"({', '.join(i[:8] for i in named[:5])}): give one's id (or a prefix) instead.")
            if named:
                out.append(named[0])
                continue
        out.append(ws.store.runs.resolve_id(ref))
    return out


def compare_runs(run_ids: Sequence[Run | str]) -> pd.DataFrame:
    """Params and latest metrics of several runs side by side (one column per run); runs
    are given by id, unique id prefix or name (see :func:`resolve_runs`).

    A ``differs`` column marks the rows whose values are not all equal as values: ``0``,
    ``0.0`` and ``False`` logged as params are the same value; ``"rf"`` and ``"RF"`` are not.
    """
    import pandas as pd

    ws = workspace()
    full = resolve_runs(run_ids, workspace=ws)
    if len(full) < 2:
        raise InvalidArgumentError("compare_runs needs at least two runs.")
    rows = {r["id"]: r for r in ws.store.runs.get_many(full)}
    labels = [f"{(rows[i]['name'] or 'run')} ({i[:8]})" for i in full]
    data: dict[str, dict[str, Any]] = {}
    for kind, run_id, key, value in run_values(ws, full, ("params", "metrics")):
        data.setdefault(f"{kind}.{key}", {})[run_id] = value
    index = sorted(data, key=lambda k: (not k.startswith("params."), k))
    df = pd.DataFrame(
        [[data[k].get(i) for i in full] for k in index], index=index, columns=labels, dtype=object
    )
    df["differs"] = [len({same_value_key(data[k].get(i)) for i in full}) > 1 for k in index]
    return df


# -- interpreter exit --------------------------------------------------------
def _at_exit() -> None:
    exc = getattr(sys, "last_value", None) if "IPython" not in sys.modules else None
    for run in reversed(active.all_active()):
        if not run._owned:
            continue
        try:
            if exc is None:
                run.end("FINISHED")
            else:
                run.fail(exc)
        except Exception:  # noqa: BLE001 - never fail interpreter shutdown
            pass
    try:
        lost = final_flush()
    except Exception as exc:  # noqa: BLE001 - never fail interpreter shutdown
        lost = [f"the final flush failed: {exc}"]
    if lost:
        sys.stderr.write("cellops warning: data logged by this process was not stored:\n"
                         + "".join(f"  {line}\n" for line in lost))


atexit.register(_at_exit)


def _reset_for_tests() -> None:
    global _experiment
    _experiment = None
    active.reset()


# -- maintenance -------------------------------------------------------------
@dataclass(frozen=True)
class GarbageReport:
    """What :func:`garbage_collect` removed (or would remove, with ``dry_run``).

    ``blobs``/``bytes``: artifact blobs no run refers to; ``temp_files``/``temp_bytes``:
    leftovers of interrupted artifact writes; ``freed``: the two together; ``kept``: how
    many of either were left because they are younger than ``grace_s``.
    """

    blobs: list[str]
    bytes: int
    dry_run: bool
    temp_files: list[str] = field(default_factory=list)
    temp_bytes: int = 0
    grace_s: float = 3600.0
    kept: int = 0

    @property
    def freed(self) -> int:
        return self.bytes + self.temp_bytes


def garbage_collect(dry_run: bool = False, *, grace: float = 3600.0) -> GarbageReport:
    """Delete artifact blobs no run refers to any more (after ``delete_runs``) and the
    temporary files of interrupted artifact writes (a process killed mid-write).

    Only blobs and temp files older than ``grace`` seconds (default: one hour) go, so a
    write in progress in another process is never collected; ``grace=0`` takes
    everything unreferenced now.
    """
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace < math.inf:
        raise InvalidArgumentError(f"grace must be a number of seconds >= 0, not {grace!r}.")
    ws = workspace()
    ws.flush()
    found = ws.artifacts.gc(ws.store.artifacts.referenced_blobs, dry_run=dry_run, grace_s=float(grace))
    if not dry_run:
        ws.known_blobs.difference_update(found.blobs)
    return GarbageReport(found.blobs, found.blob_bytes, dry_run, found.temp_files,
                         found.temp_bytes, float(grace), found.young)
