"""The audit log: every registry and governance change, who made it, when, before and after.

Entries are append-only and chained: each one's sha256 covers its content and the hash of
the entry before it. :func:`verify_audit` recomputes the chain and reports the first entry
that was altered, removed or reordered.

What it does not protect against: anyone who can write the workspace can rewrite the whole
chain consistently. Export the head (:func:`audit_head`, ``cellops audit head``) and keep it
somewhere they cannot write — commit it to git, paste it in a ticket — then
``verify_audit(head=...)`` proves the log still contains that exact history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import InvalidArgumentError
from ..store.registry import GENESIS, entry_hash
from ..tracking.values import ms_to_datetime
from ..workspaces import workspace

__all__ = ["AuditEntry", "AuditReport", "audit_head", "audit_log", "verify_audit"]


@dataclass
class AuditEntry:
    seq: int
    at: datetime
    actor: str | None
    action: str
    object: str
    details: dict[str, Any]
    hash: str


@dataclass
class AuditReport:
    """The verdict of :func:`verify_audit`."""

    ok: bool
    entries: int
    head: str | None  # hash of the last entry
    first_bad: int | None = None  # seq of the first entry that does not check out
    problem: str | None = None
    pinned: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.ok:
            pin = " and contains the pinned head" if self.pinned else ""
            return (f"audit log OK: {self.entries} entries, chain intact{pin}; head "
                    f"{(self.head or GENESIS)[:16]}")
        return f"audit log BROKEN at entry {self.first_bad}: {self.problem}"


def audit_log(limit: int = 100, *, object: str | None = None) -> list[AuditEntry]:  # noqa: A002
    """The latest entries, newest first. ``object``: a model name (with its versions and
    aliases), or one version or alias (``name/3``, ``name@champion``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise InvalidArgumentError(f"limit must be an integer from 1 to 100,000, not {limit!r}.")
    rows = workspace().store.audit.entries(limit=limit, obj=object)
    return [AuditEntry(r["seq"], ms_to_datetime(r["at"]), r["actor"], r["action"], r["object"],
                       r["details"], r["hash"]) for r in rows]


def audit_head() -> dict[str, Any]:
    """``{"seq", "hash"}`` of the last entry: what to pin outside the workspace."""
    head = workspace().store.audit.head()
    return {"seq": head["seq"], "hash": head["hash"]} if head else {"seq": 0, "hash": GENESIS}


def verify_audit(head: str | None = None) -> AuditReport:
    """Recompute the chain; report the first entry altered, removed or reordered. With
    ``head`` (a hash exported earlier), also check the log still contains that entry."""
    rows = list(workspace().store.audit.rows_in_order())
    prev, expected_seq = GENESIS, 1
    found_pin = head is None
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "reordered"
            return AuditReport(False, len(rows), None, expected_seq if seq > expected_seq else seq,
                               f"entry {expected_seq} is missing (entries were {what})"
                               if seq > expected_seq else f"entry {seq} is out of order")
        if row["prev_hash"] != prev:
            return AuditReport(False, len(rows), None, seq,
                               f"entry {seq} does not follow entry {seq - 1} (the chain was cut "
                               "or reordered)")
        if entry_hash(seq, row["at"], row["actor"], row["action"], row["object"], row["details"],
                      row["prev_hash"]) != row["hash"]:
            return AuditReport(False, len(rows), None, seq,
                               f"entry {seq} ({row['action']} {row['object']}) was altered")
        if head is not None and row["hash"] == head:
            found_pin = True
        prev, expected_seq = row["hash"], seq + 1
    if not found_pin:
        return AuditReport(False, len(rows), prev, None,
                           f"the pinned head {head[:16]} is not in the log: it was rewritten or "
                           "truncated since the head was exported")
    missing = _unaccounted(rows, workspace().store.registry.state())
    if missing:
        return AuditReport(False, len(rows), prev if rows else None, None, missing)
    return AuditReport(True, len(rows), prev if rows else None,
                       pinned={"hash": head} if head else {})


def _unaccounted(rows: list[Any], state: dict[str, Any]) -> str | None:
    """What the registry holds that the log has no entry for: a log shorter than the
    history it must cover (entries deleted from the start or the end, or the whole log,
    chain and all) is caught here, not by the chain."""
    import json

    seen: dict[str, Any] = {"models": set(), "versions": set(), "aliases": {},
                            "protections": set(), "requests": set(), "decisions": set()}
    for row in rows:
        action, obj = row["action"], row["object"]
        details = json.loads(row["details"] or "{}")
        if action == "create_model":
            seen["models"].add(obj)
        elif action == "register_version":
            seen["versions"].add(obj)
        elif action == "delete_version":
            seen["versions"].discard(obj)
        elif action == "set_alias":
            seen["aliases"][obj] = (details.get("after") or {}).get("version")
        elif action == "delete_alias":
            seen["aliases"].pop(obj, None)
        elif action == "protect_alias":
            seen["protections"].add(obj)
        elif action == "unprotect_alias":
            seen["protections"].discard(obj)
        elif action == "request_promotion":
            seen["requests"].add(details.get("request"))
        elif action in ("approve", "reject"):
            seen["decisions"].add((details.get("request"), row["actor"]))
    problems = []
    for what, label in (("models", "model(s)"), ("versions", "version(s)"),
                        ("protections", "protected alias(es)"),
                        ("requests", "promotion request(s)"), ("decisions", "decision(s)")):
        lacking = sorted(map(str, set(state[what]) - set(seen[what])))
        if lacking:
            problems.append(f"{len(lacking)} of the registry's {len(state[what])} {label} "
                            f"({', '.join(lacking[:3])}{', ...' if len(lacking) > 3 else ''})")
    wrong = sorted(a for a, v in state["aliases"].items() if seen["aliases"].get(a) != v)
    if wrong:
        problems.append(f"{len(wrong)} alias(es) whose last logged move is not where they "
                        f"point ({', '.join(wrong[:3])}{', ...' if len(wrong) > 3 else ''})")
    if not problems:
        return None
    return ("the log has no entry for " + "; ".join(problems) + ": entries were deleted, or "
            "the registry was changed around cellops")
