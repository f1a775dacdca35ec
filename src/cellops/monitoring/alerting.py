"""Alerts: opened by a failing check, acknowledged and resolved by people (who and when are
kept), at most one not resolved per monitor and check — a check failing window after window
keeps one alert and counts the windows.

Webhooks are delivered from an outbox table: the check's result and the alert are stored
first, then each delivery is POSTed (JSON, 5 s timeout) by a background thread; a failed
delivery is retried with growing waits (10 s, 20 s, 40 s ... up to ``MAX_ATTEMPTS``) by
this run, the next ``monitor run`` or ``monitor watch``. A delivery never holds up a check.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidArgumentError, ModelStateError, NotFoundError
from ..store.values import INT64_MAX
from ..workspaces import workspace

__all__ = ["Alert", "ack_alert", "alerts", "deliver_pending", "get_alert", "resolve_alert"]

MAX_ATTEMPTS = 6
RETRY_BASE_MS = 10_000  # the first retry's wait; each later one waits twice as long
TIMEOUT_S = 5.0


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, timezone.utc) if ms else None


@dataclass
class Alert:
    """An alert: ``state`` open -> acknowledged -> resolved, with who and when; ``actions``
    holds what was done about it (webhook deliveries, the retraining pipeline run, the new
    model version and its promotion request)."""

    id: int
    monitor: str
    check: str
    state: str
    message: str
    value: float | None
    opened_at: datetime
    windows: int
    opened_result: int | None
    last_result: int | None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    comment: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Alert:
        return cls(r["id"], r["monitor"], r["check_name"], r["state"], r["message"] or "",
                   r["value"], _dt(r["opened_at"]), r["windows"], r["opened_result"],
                   r["last_result"], r["acknowledged_by"], _dt(r["acknowledged_at"]),
                   r["resolved_by"], _dt(r["resolved_at"]), r["comment"],
                   _current(json.loads(r["actions"] or "[]")))

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("opened_at", "acknowledged_at", "resolved_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out

    def __str__(self) -> str:
        who = (f", acknowledged by {self.acknowledged_by}" if self.acknowledged_by else "") + \
            (f", resolved by {self.resolved_by}" if self.resolved_by else "")
        return (f"alert #{self.id} {self.state.upper()} {self.monitor}/{self.check}: {self.message}"
                f" ({self.windows} window(s){who})")


DECIDED = {"APPROVED": "approved", "REJECTED": "rejected"}


def _current(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A retraining that was ``awaiting approval`` shows what became of its request."""
    from ..registry.governance import promotion_requests

    for action in actions:
        if action.get("status") == "awaiting approval" and action.get("request") is not None:
            found = [q for q in promotion_requests(name=action.get("model"))
                     if q.id == action["request"]]
            if found and found[0].status in DECIDED:
                action["status"] = DECIDED[found[0].status]
    return actions


def alerts(state: str | None = None, monitor: str | None = None) -> list[Alert]:
    """Alerts, newest first. ``state``: ``open``, ``acknowledged``, ``resolved`` or
    ``active`` (not resolved)."""
    if state not in (None, "open", "acknowledged", "resolved", "active"):
        raise InvalidArgumentError(f"state must be open, acknowledged, resolved or active, "
                                   f"not {state!r}.")
    return [Alert.from_row(r) for r in workspace().store.monitors.alerts(state=state, monitor=monitor)]


def get_alert(alert_id: int) -> Alert:
    """One alert by its number."""
    row = workspace().store.monitors.alert(_id(alert_id))
    if row is None:
        raise NotFoundError(f"No alert #{alert_id}. List them with `cellops alerts list`.")
    return Alert.from_row(row)


def _id(alert_id: Any) -> int:
    try:
        value = int(alert_id)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"An alert id is a number, not {alert_id!r}.") from None
    if not 0 < value <= INT64_MAX:  # a number SQLite cannot hold is no alert's
        raise NotFoundError(f"No alert #{alert_id}. List them with `cellops alerts list`.")
    return value


def _move(alert_id: Any, to: str, comment: str | None, allowed: tuple[str, ...]) -> Alert:
    from ..identity import current_user, require_role

    require_role("editor", f"moving an alert to {to}")
    before = get_alert(alert_id)
    if before.state not in allowed:
        raise ModelStateError(f"Alert #{before.id} is {before.state}; only "
                              f"{' or '.join(allowed)} alerts can be {to}.")
    with workspace().store.transaction() as tx:  # the move and its webhooks, together
        row = tx.monitors.move_alert(before.id, to, current_user(), comment, allowed)
        after = Alert.from_row(row)  # type: ignore[arg-type]
        if after.state != to:  # another process moved it first
            raise ModelStateError(f"Alert #{before.id} is now {after.state}; it was moved "
                                  "meanwhile.")
        _notify(after, f"alert.{to}")
    return after


def ack_alert(alert_id: int, comment: str | None = None) -> Alert:
    """Acknowledge an open alert: someone is on it. Records who and when."""
    return _move(alert_id, "acknowledged", comment, ("open",))


def resolve_alert(alert_id: int, comment: str | None = None) -> Alert:
    """Resolve an open or acknowledged alert. A later failing window opens a new one."""
    return _move(alert_id, "resolved", comment, ("open", "acknowledged"))


# -- webhooks ------------------------------------------------------------------------------------
def _notify(alert: Alert, event: str, extra: dict[str, Any] | None = None) -> int:
    """Queue the alert's webhooks for ``event``; returns how many."""
    store = workspace().store.monitors
    row = store.get(alert.monitor)
    if row is None:
        return 0
    hooks = json.loads(row["spec"]).get("alert", {}).get("webhooks", [])
    body = {"event": event, "alert": alert.to_dict(), **(extra or {})}
    for url in hooks:
        store.enqueue(alert.id, event, url, body)
    return len(hooks)


def _post(url: str, body: str) -> None:
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "cellops-monitoring"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - user's URL
        if not 200 <= resp.status < 300:
            raise urllib.error.HTTPError(url, resp.status, "not 2xx", resp.headers, None)


def deliver_pending(wait_s: float = 10.0) -> dict[str, int]:
    """Deliver the webhooks that are due, retrying failures, for at most ``wait_s`` seconds;
    returns counts of ``delivered``, ``retrying`` and ``failed``."""
    store = workspace().store.monitors
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        due = store.due_deliveries()
        if not due:
            break
        for d in due:
            try:
                _post(d["url"], d["body"])
            except Exception as exc:  # noqa: BLE001 - any failure is retried later
                attempts = d["attempts"] + 1
                if attempts >= MAX_ATTEMPTS:
                    store.delivery_failed(d["id"], str(exc), None)
                    counts["failed"] += 1
                else:
                    wait_ms = RETRY_BASE_MS * 2 ** (attempts - 1)
                    store.delivery_failed(d["id"], str(exc), int(time.time() * 1000) + wait_ms)
                    counts["retrying"] += 1
            else:
                store.delivered(d["id"])
                counts["delivered"] += 1
    return counts


def deliver_in_background(wait_s: float = 10.0) -> threading.Thread:
    """:func:`deliver_pending` on a daemon thread (the caller joins it, or not)."""
    thread = threading.Thread(target=deliver_pending, args=(wait_s,), daemon=True,
                              name="cellops-alert-webhooks")
    thread.start()
    return thread
