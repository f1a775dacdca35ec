"""Which runs this process has going: the active run of each thread, and the runs it owns.

The *active run* of a thread is the innermost run started (or resumed) there and not
yet ended; logging functions act on it. The runs a process *owns* (started or resumed
here, not yet ended) get a heartbeat every ``HEARTBEAT_S`` seconds, which is how a
process on another host tells a live run from an abandoned one (``LIVE_HEARTBEAT_S``).
At interpreter exit the owned active runs are ended (:mod:`cellops.tracking.api`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..workspaces import Workspace
    from .run import Run

HEARTBEAT_S = 30.0
LIVE_HEARTBEAT_S = 120.0

_local = threading.local()
_lock = threading.Lock()
_all_active: list[Run] = []  # every thread's active runs, for interpreter exit
_owned: dict[str, Workspace] = {}  # run id -> workspace, for the heartbeat
_heartbeat: threading.Thread | None = None
_last: Run | None = None  # the run this process ended last


def stack() -> list[Run]:
    """This thread's active runs, outermost first."""
    runs = getattr(_local, "stack", None)
    if runs is None:
        runs = _local.stack = []
    return runs


def current() -> Run | None:
    runs = stack()
    return runs[-1] if runs else None


def push(run: Run) -> Run:
    stack().append(run)
    with _lock:
        _all_active.append(run)
    return run


def forget(run: Run) -> None:
    """The run ended: it is no longer active, owned or beating."""
    global _last
    _last = run
    runs = stack()
    for i in range(len(runs) - 1, -1, -1):
        if runs[i] is run or runs[i].id == run.id:
            del runs[i]
    with _lock:
        _all_active[:] = [r for r in _all_active if r.id != run.id]
        _owned.pop(run.id, None)


def last() -> Run | None:
    """The active run, else the run this process ended last."""
    return current() or _last


def all_active() -> list[Run]:
    """Every thread's active runs, innermost last."""
    with _lock:
        return list(_all_active)


def own(run: Run) -> None:
    """Keep the heartbeat of a run this process started or resumed until it ends."""
    global _heartbeat
    with _lock:
        _owned[run.id] = run.workspace
        if _heartbeat is None or not _heartbeat.is_alive():
            _heartbeat = threading.Thread(target=_beat_forever, daemon=True,
                                          name="cellops-heartbeat")
            _heartbeat.start()


def live_owner(row: Mapping[str, Any]) -> str | None:
    """Who runs a RUNNING run (``row``: its pid, host, proc_start, user, heartbeat), when
    that process is alive; None when it is not."""
    from . import context

    info = context.process_info()
    who = f"pid {row['pid']} on {row['host']}" + (f", user {row['user']}" if row.get("user") else "")
    if row["host"] == info["host"]:
        if row["pid"] == info["pid"]:
            return who + ": this process"
        return who if context.process_alive(row["pid"], row["proc_start"]) else None
    beat = row.get("heartbeat") or row.get("start_time") or 0
    age = time.time() - beat / 1000
    return f"{who}, heartbeat {age:.0f} s ago" if age < LIVE_HEARTBEAT_S else None


def _beat_forever() -> None:
    while True:
        time.sleep(HEARTBEAT_S)
        with _lock:
            owned = list(_owned.items())
        by_ws: dict[Workspace, list[str]] = {}
        for run_id, ws in owned:
            by_ws.setdefault(ws, []).append(run_id)
        for ws, ids in by_ws.items():
            try:
                ws.store.runs.beat(ids, int(time.time() * 1000))
            except Exception:  # noqa: BLE001 - a missed beat is harmless; the next one retries
                pass


def reset() -> None:
    """Forget everything (after fork: the parent's runs are the parent's; and in tests)."""
    global _heartbeat, _last
    _last = None
    _local.__dict__.clear()
    with _lock:
        _all_active.clear()
        _owned.clear()


def _after_fork_in_child() -> None:
    global _heartbeat, _last
    _last = None
    _local.__dict__.clear()
    _all_active.clear()
    _owned.clear()
    _heartbeat = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
