"""The :class:`Run` object: one tracked unit of work and everything logged to it."""

from __future__ import annotations

import json
import math
import numbers
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..artifacts import validate_name
from ..errors import (
    ArtifactNotFoundError,
    CellopsError,
    InvalidArgumentError,
    RunNotFoundError,
    RunStateError,
    StoreBusyError,
)
from ..store.metrics import fill_steps
from ..store.values import check_int64, to_stored
from .values import (
    CHECKED_KEYS,
    STATUSES,
    check_key,
    format_error,
    media_type,
    metric_float,
    ms_to_datetime,
    param_values,
    row_duration,
    run_values,
    tag_values,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..datasets import Dataset
    from ..workspaces import Workspace

# The on_metrics subscriptions per run id (live charts).
metric_listeners: dict[str, list[MetricListener]] = {}
_METRIC_KEYS = CHECKED_KEYS["metric"]  # metric keys found valid (check_key fills it)


class MetricListener:
    """One :meth:`Run.on_metrics` subscription: the points logged since it was last
    called, handed over at most every ``every_ms``.

    Logging a point costs the subscription one list ``extend`` and a comparison; the
    steps of points logged without one are worked out when they are handed over, in the
    order they were logged, by the rule that gives the stored step when the point is
    written (:func:`cellops.store.metrics.fill_steps`).
    """

    __slots__ = ("callback", "every_ms", "due", "pending", "_top", "_lock")

    def __init__(self, callback: Callable[[list[tuple]], None], every_s: float) -> None:
        self.callback = callback
        self.every_ms = every_s * 1000
        # The first batch waits an interval too; without one, every batch goes at once.
        self.due = time.time() * 1000 + self.every_ms if every_s else -math.inf
        self.pending: list[tuple] = []  # extended by any thread, never replaced
        self._top: dict[tuple[str, str], int] = {}  # the highest step so far, per key
        self._lock = threading.Lock()

    def deliver(self, run: Run, now_ms: float) -> None:
        """Call the callback with the pending points (if any), steps filled in."""
        with self._lock:  # one delivery at a time; another thread may still be extending
            if self.every_ms:
                self.due = now_ms + self.every_ms
            pending = self.pending
            n = len(pending)
            if not n:
                return
            rows = pending[:n]
            del pending[:n]  # not a new list: a concurrent extend lands after these n
            out = fill_steps(rows, self._top, lambda run_id, key: (
                -1 if run._created_here else run._ws.store.metrics.next_step(run_id, key) - 1))
        self.callback(out)


class Run:
    """A run in the workspace. Returned by :func:`cellops.start_run` and :func:`cellops.get_run`.

    Attributes mirror the ``runs`` table (``id``, ``name``, ``status``, ``experiment``,
    ``start_time``...). ``params``, ``metrics`` (latest values) and ``tags`` are read
    from the workspace when first accessed; call :meth:`refresh` to re-read.
    Use it as a context manager to end it: FINISHED, or FAILED with the error when
    the block raises (KILLED on KeyboardInterrupt).
    """

    def __init__(self, ws: Workspace, row: Mapping[str, Any]) -> None:
        self._ws = ws
        self._row = dict(row)
        self._cache: dict[str, Any] = {}
        self._created_here = False
        self._owned = True  # False for a run this process adopted (CELLOPS_RUN_ID): not ended at exit

    # -- attributes --------------------------------------------------------
    @property
    def id(self) -> str:
        return self._row["id"]

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def name(self) -> str | None:
        return self._row.get("name")

    @property
    def experiment(self) -> str:
        return self._row.get("experiment") or ""

    @property
    def status(self) -> str:
        return self._row["status"]

    @property
    def kind(self) -> str:
        return self._row.get("kind") or "run"

    @property
    def parent_id(self) -> str | None:
        return self._row.get("parent_id")

    @property
    def start_time(self) -> datetime:
        return ms_to_datetime(self._row["start_time"])  # type: ignore[return-value]

    @property
    def end_time(self) -> datetime | None:
        return ms_to_datetime(self._row.get("end_time"))

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while running)."""
        return row_duration(self._row)

    @property
    def error(self) -> str | None:
        return self._row.get("error")

    @property
    def info(self) -> dict[str, Any]:
        """Every recorded attribute of the run (user, host, pid, git state, ...)."""
        return dict(self._row)

    @property
    def workspace(self) -> Workspace:
        return self._ws

    def refresh(self) -> Run:
        """Re-read the run from the workspace."""
        self._ws.flush()
        self._row = self._ws.store.runs.get(self.id)
        self._cache.clear()
        return self

    def _kv(self, kind: str) -> dict[str, Any]:
        if kind not in self._cache:
            self._ws.flush()
            self._cache[kind] = {k: v for _, _, k, v in run_values(self._ws, [self.id], (kind,))}
        return self._cache[kind]

    @property
    def params(self) -> dict[str, str]:
        return dict(self._kv("params"))

    @property
    def metrics(self) -> dict[str, float]:
        """Latest value of each metric (NaN round-trips)."""
        return dict(self._kv("metrics"))

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._kv("tags"))

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """Artifacts as dicts of path, sha256, size, media_type, created_at."""
        return self._ws.store.artifacts.list(self.id)

    @property
    def inputs(self) -> list[Dataset]:
        return [d for d in self._datasets() if d.role == "input"]

    @property
    def outputs(self) -> list[Dataset]:
        return [d for d in self._datasets() if d.role == "output"]

    def _datasets(self) -> list[Dataset]:
        from ..datasets import Dataset

        return [Dataset.from_row(r) for r in self._ws.store.datasets.of_run(self.id)]

    @property
    def environment(self) -> dict[str, Any] | None:
        env_id = self._row.get("environment_id")
        return self._ws.store.environments.get(env_id) if env_id else None

    @property
    def source(self) -> str | None:
        """The executed source captured when the run started (cell or script)."""
        sha = self._row.get("source_sha")
        return self._ws.artifacts.read(sha).decode("utf-8", "replace") if sha else None

    @property
    def git_diff(self) -> str | None:
        sha = self._row.get("git_diff_sha")
        return self._ws.artifacts.read(sha).decode("utf-8", "replace") if sha else None

    def children(self) -> list[Run]:
        """The runs started under this one, oldest first."""
        ids = self._ws.store.runs.children(self.id)
        rows = {r["id"]: r for r in self._ws.store.runs.get_many(ids)}
        return [Run(self._ws, rows[i]) for i in ids if i in rows]

    def metric_history(self, key: str | None = None) -> pd.DataFrame:
        """Every logged value, as a DataFrame of key, step, value, timestamp."""
        import pandas as pd

        self._ws.flush()
        rows = self._ws.store.metrics.history(self.id, key)
        df = pd.DataFrame(rows, columns=["key", "step", "value", "timestamp"])
        df["value"] = df["value"].astype(float)
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
        return df

    def to_dict(self, *, details: bool = False, max_points: int | None = None) -> dict[str, Any]:
        """Everything recorded about the run as plain data (datetimes stay datetimes).

        ``details`` adds every metric's history (``metric_history``: key -> list of
        ``{step, value, timestamp}``) and the executed ``source``. ``max_points`` thins
        each history to about that many evenly spaced points, always keeping the last.
        """
        info = self.info
        out: dict[str, Any] = {
            "run_id": self.id, "name": self.name, "experiment": self.experiment,
            "status": self.status, "kind": self.kind, "parent_run_id": self.parent_id,
            "start_time": self.start_time, "end_time": self.end_time, "duration_s": self.duration,
            "user": info.get("user"), "host": info.get("host"), "pid": info.get("pid"),
            "notebook_path": info.get("notebook_path"), "source_name": info.get("source_name"),
            "git": {"commit": info.get("git_commit"), "branch": info.get("git_branch"),
                    "dirty": None if info.get("git_dirty") is None else bool(info.get("git_dirty"))},
            "environment_id": info.get("environment_id"),
            "params": self.params, "metrics": self.metrics, "tags": self.tags,
            "artifacts": self.artifacts,
            "datasets": [{"name": d.name, "digest": d.digest, "role": d.role, "rows": d.num_rows,
                          "columns": d.num_columns, "source": d.source}
                         for d in self.inputs + self.outputs],
            "children": self._ws.store.runs.children(self.id),
            "error": self.error,
        }
        if details:
            history: dict[str, list[dict[str, Any]]] = {}
            self._ws.flush()
            for row in self._ws.store.metrics.history(self.id):
                history.setdefault(row["key"], []).append(
                    {"step": row["step"], "value": row["value"],
                     "timestamp": ms_to_datetime(row["timestamp"])})
            if max_points is not None and max_points > 0:
                for key, points in history.items():
                    if len(points) > max_points:
                        stride = -(-len(points) // max_points)
                        history[key] = points[::stride] + ([points[-1]] if (len(points) - 1) % stride
                                                           else [])
            out["metric_history"] = history
            out["source"] = self.source
        return out

    # -- logging -----------------------------------------------------------
    def _check_writable(self) -> None:
        if self.status != "RUNNING":
            raise RunStateError(
                f"Run {self.short_id} has ended ({self.status}); nothing more can be logged to "
                f"it. Start a new run, or resume this one with cellops.start_run(run_id={self.id!r})."
            )
        self._ws.buffer.check(self.id)

    def log_param(self, key: str, value: Any) -> None:
        """Log one param. Logging the same value again is a no-op; another value is an error."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not isinstance(params, Mapping):
            raise InvalidArgumentError(f"log_params takes a dict, not {type(params).__name__}.")
        self._check_writable()
        self._ws.store.params.log(self.id, param_values(self._ws, params))
        self._cache.pop("params", None)

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Log a metric value; ``step`` defaults to the next step for that key."""
        # The common case — a float or int at the next step, in a training loop — costs a
        # few lookups and a list append; everything else takes log_metrics' general path.
        kind = type(value)
        row = self._row
        if step is not None or (kind is not float and kind is not int) \
                or row["status"] != "RUNNING" or row["id"] in metric_listeners:
            self.log_metrics({key: value}, step=step)
            return
        if kind is int:
            value = metric_float(key, value)  # ints beyond a float's range are refused
        known = _METRIC_KEYS.get(key) if type(key) is str else None
        self._ws.buffer.add_one((row["id"], known or check_key(key, "metric"), None,
                                 value if value == value else None, int(time.time() * 1000)))
        if self._cache:
            self._cache.pop("metrics", None)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log several metrics at one step (default: the next step of each key).

        Points are buffered and written in batches; a step left out is given when the
        point is written, so processes logging to one run never reuse a step.
        """
        if not isinstance(metrics, Mapping):
            raise InvalidArgumentError(f"log_metrics takes a dict, not {type(metrics).__name__}.")
        self._check_writable()
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise InvalidArgumentError(f"step must be an integer, not {step!r}.")
            step = check_int64(int(step), "step")
        ts = int(time.time() * 1000)
        rows = []
        for key, value in metrics.items():
            v = metric_float(check_key(key, "metric"), value)
            rows.append((self.id, key, step, to_stored(v), ts))
        self._ws.buffer.add(rows)
        self._cache.pop("metrics", None)
        listeners = metric_listeners.get(self.id)
        if listeners:
            for listener in listeners:  # a few attribute reads: this runs every logged step
                listener.pending.extend(rows)
                if ts >= listener.due:
                    listener.deliver(self, ts)

    def on_metrics(self, callback: Callable[[list[tuple]], None],
                   every: float = 0.0) -> Callable[[], None]:
        """Call ``callback(points)`` with the points this process logs to the run
        (``(run_id, key, step, value, timestamp_ms)`` tuples, steps filled in) — for live
        charts. With ``every`` (seconds), points are handed over in batches, at most once
        per ``every`` seconds (when a point is logged after the interval: a batch never
        waits for a timer). Returns a function that stops the calls, after handing over
        what is still pending."""
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not every >= 0:
            raise InvalidArgumentError(f"every must be a number of seconds >= 0, not {every!r}.")
        listener = MetricListener(callback, float(every))
        metric_listeners.setdefault(self.id, []).append(listener)

        def stop() -> None:
            listeners = metric_listeners.get(self.id, [])
            if listener in listeners:
                listeners.remove(listener)
                listener.deliver(self, time.time() * 1000)
            if not listeners:
                metric_listeners.pop(self.id, None)

        return stop

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (mutable, unlike params). Allowed on ended runs too."""
        if not isinstance(tags, Mapping):
            raise InvalidArgumentError(f"set_tags takes a dict, not {type(tags).__name__}.")
        self._ws.store.tags.set(self.id, tag_values(tags))
        self._cache.pop("tags", None)

    def delete_tag(self, key: str) -> None:
        self._ws.store.tags.delete(self.id, key)
        self._cache.pop("tags", None)

    def log_artifact(
        self, path_or_bytes: str | os.PathLike[str] | bytes, name: str | None = None
    ) -> str | list[str]:
        """Store a file, a folder (every file in it) or bytes; return the logical name(s).

        The content is stored once per workspace (by sha256); ``name`` defaults to the
        file or folder name and must be relative, without ``..``.
        """
        self._check_writable()
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            if name is None:
                raise InvalidArgumentError(
                    "Logging bytes needs a name: run.log_artifact(data, name='model.bin')."
                )
            return self._put(bytes(path_or_bytes), validate_name(name))
        if not isinstance(path_or_bytes, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"log_artifact takes a file or folder path, or bytes with a name; "
                f"got {type(path_or_bytes).__name__}. For figures use log_figure."
            )
        path = Path(path_or_bytes)
        if name is not None:
            name = validate_name(name)
        if path.is_dir():
            base = name or validate_name(path.absolute().name)
            return [
                self._put(p, f"{base}/{p.relative_to(path).as_posix()}")
                for p in sorted(path.rglob("*")) if p.is_file()
            ]
        if not path.is_file():
            raise InvalidArgumentError(
                f"No file or folder at {str(path)!r}. Pass an existing path, or bytes with name=."
            )
        return self._put(path, name or validate_name(path.name))

    def _put(self, data: bytes | Path, name: str) -> str:
        sha, size = self._ws.artifacts.put(data)
        media = media_type(name)
        self._ws.store.artifacts.put(self.id, name, sha, size, media)
        return name

    def attach(self, data: bytes | str | os.PathLike[str], name: str) -> str:
        """Store an output under ``name`` whatever the run's status — for tools that record
        what a run produced after it ended (an executed notebook, say). Users log with
        :meth:`log_artifact`, which refuses ended runs."""
        if isinstance(data, (str, os.PathLike)):
            data = Path(data)
        return self._put(data, validate_name(name))

    def log_text(self, text: str, name: str) -> str:
        """Store a string as a UTF-8 text artifact."""
        return self.log_artifact(str(text).encode("utf-8"), name)  # type: ignore[return-value]

    def log_dict(self, data: Any, name: str) -> str:
        """Store a JSON-serialisable object as a ``.json`` artifact."""
        return self.log_artifact(  # type: ignore[return-value]
            json.dumps(data, indent=2, default=str).encode("utf-8"), name
        )

    def log_model(self, model: Any, name: str = "model", *, X_sample: Any = None) -> str:
        """Store a fitted scikit-learn model as ``models/NAME.skops`` with its input
        signature (``models/NAME.signature.json``: column names from the estimator, dtypes
        from ``X_sample``) — what ``%%track`` keeps for a model it sees fitted, and what
        :func:`~cellops.register_model` and the scoring server read. Returns the model's
        artifact name."""
        from ..skops_io import dump_skops
        from .autolog import signature

        if not (hasattr(model, "fit") and hasattr(model, "predict")):
            raise InvalidArgumentError(
                f"log_model takes a fitted scikit-learn estimator, not {type(model).__name__}. "
                "Store other files with log_artifact.")
        name = validate_name(name.removesuffix(".skops"))  # "model.skops" is "model", not "model.skops.skops"
        path = self.log_artifact(dump_skops(model), f"models/{name}.skops")
        sig = signature(model, {} if X_sample is None else {"X": X_sample})
        if sig is not None:
            self.log_artifact(json.dumps(sig, indent=2).encode(), f"models/{name}.signature.json")
        return path  # type: ignore[return-value]

    def log_figure(self, fig: Any, name: str) -> str:
        """Store a matplotlib figure (PNG, SVG, PDF by extension) or a plotly figure (HTML)."""
        import io

        name = validate_name(name)
        if hasattr(fig, "savefig"):
            ext = Path(name).suffix.lstrip(".").lower()
            if not ext:
                ext, name = "png", name + ".png"
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, bbox_inches="tight")
            return self.log_artifact(buf.getvalue(), name)  # type: ignore[return-value]
        if hasattr(fig, "to_html"):
            if not name.endswith(".html"):
                name += ".html"
            return self.log_artifact(fig.to_html(include_plotlyjs="cdn").encode(), name)  # type: ignore[return-value]
        raise InvalidArgumentError(
            f"log_figure takes a matplotlib or plotly figure, not {type(fig).__name__}. "
            "Save other images to a file and use log_artifact."
        )

    def log_dataset(self, data: Any, name: str | None = None, role: str = "input") -> Dataset:
        """Record a dataset (DataFrame, array or file path) as an input or output of the run."""
        from ..datasets import Dataset, describe

        if role not in ("input", "output"):
            raise InvalidArgumentError(f"role must be 'input' or 'output', not {role!r}.")
        row = describe(data, name)
        dataset_id = self._ws.store.datasets.link(self.id, row, role)
        return Dataset.from_row({**row, "id": dataset_id, "role": role})

    # -- artifacts back ----------------------------------------------------
    def _artifact(self, name: str) -> dict[str, Any]:
        # The name as stored first: names logged before today's checks still read back.
        if isinstance(name, str) and name:
            try:
                return self._ws.store.artifacts.get(self.id, name)
            except ArtifactNotFoundError:
                pass
        return self._ws.store.artifacts.get(self.id, validate_name(name))

    def read_artifact(self, name: str) -> bytes:
        return self._ws.artifacts.read(self._artifact(name)["sha256"])

    def download_artifact(self, name: str, dest: str | os.PathLike[str] = ".", *,
                          overwrite: bool = True) -> Path:
        """Copy an artifact to ``dest`` (a folder, or a file path) and return the file's path.

        ``overwrite=False`` never replaces an existing file: an identical one is reused,
        a different one (a user's edited copy, say) makes the copy go to ``name-1.ext``.
        """
        art = self._artifact(name)
        target = Path(dest)
        if target.is_dir() or str(dest).endswith(("/", os.sep)):
            target = target / _file_name(art["path"])
        return self._ws.artifacts.copy_to(art["sha256"], target, overwrite=overwrite)

    # -- ending ------------------------------------------------------------
    def end(self, status: str = "FINISHED", error: str | None = None, *,
            amend: bool = False) -> None:
        """End the run: its buffered metrics and the status are written in one transaction.

        Ending an ended run does nothing, unless ``amend``: then its status and error are
        replaced (a tool that learns afterwards that the notebook failed).
        """
        from . import active, context

        status = str(status).upper()
        if status not in STATUSES[1:]:
            raise InvalidArgumentError(
                f"status must be one of FINISHED, FAILED, KILLED, not {status!r}."
            )
        active.forget(self)
        if self._row["status"] != "RUNNING" and not amend:
            return
        end_time = int(time.time() * 1000)
        if self._row["status"] != "RUNNING":
            end_time = self._row.get("end_time") or end_time
        if amend:
            me = None
        else:
            info = context.process_info()
            me = (info["host"], info["pid"])
        rows = self._ws.buffer.take(self.id)
        try:
            outcome = self._ws.store.runs.set_status(self.id, status, end_time, error,
                                                     metric_rows=rows, owner=me)
        except StoreBusyError:
            self._ws.buffer.put_back(rows)
            raise
        except CellopsError as exc:  # its points cannot be stored: end it without them
            if not rows:
                raise
            self._ws.buffer.drop(self.id, rows, exc)
            outcome = self._ws.store.runs.set_status(self.id, status, end_time, error, owner=me)
        if outcome == "owned":
            if self._taken_over():
                # Another live process resumed it and owns it now: it ends it. What this
                # process logged is stored; the run's status is not this process's to set.
                return
            outcome = self._ws.store.runs.set_status(self.id, status, end_time, error)
        ended = outcome == "set"
        self._row.update(status=status, end_time=end_time)
        if error:
            self._row["error"] = error
        self._cache.clear()
        if not ended:
            failure = self._ws.buffer.failure(self.id)
            lost = f"; {failure.count} metric point(s) logged to it were not stored" if failure else ""
            raise RunNotFoundError(
                f"Run {self.short_id} was deleted (by `cellops runs delete --force` or another "
                f"process) while this process was using it, so its end ({status}) was not "
                f"recorded{lost}. Start a new run."
            )

    def _taken_over(self) -> bool:
        """Whether a live process other than this one owns the run now (it resumed it)."""
        from . import active, context

        owner = self._ws.store.runs.owner(self.id)
        if owner is None or owner["status"] != "RUNNING":
            return False
        me = context.process_info()
        if (owner["host"], owner["pid"]) == (me["host"], me["pid"]):
            return False
        return active.live_owner(owner) is not None

    def fail(self, exc: BaseException, *, amend: bool = False, text: str | None = None) -> None:
        """End the run because of ``exc``: KILLED for an interrupt (KeyboardInterrupt),
        FAILED otherwise, with the exception's type, message and traceback as its error
        (or ``text``, the traceback as it was shown: what ``%%track`` stores)."""
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        self.end(status, error=text if text is not None else format_error(exc), amend=amend)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.end("FINISHED")
        else:
            self.fail(exc)

    # -- display -----------------------------------------------------------
    def __repr__(self) -> str:
        return f"<Run {self.short_id} {self.name or ''!s} {self.status}>".replace("  ", " ")

    def _repr_html_(self) -> str:
        from ..display import run_summary_html

        return run_summary_html(self, details=True)


def _file_name(path: str) -> str:
    """A safe local file name for an artifact's logical path (older names may hold
    control characters)."""
    import re

    return re.sub(r"[\x00-\x1f\x7f]", "_", Path(path).name) or "artifact"


def ids_of(runs: Iterable[Run | str]) -> list[str]:
    return [r.id if isinstance(r, Run) else r for r in runs]
