"""Aliases, protected aliases and promotion requests: the registry's rules.

An alias (``champion``, ``production``) points at one version and moves atomically. A
*protected* alias does not move when someone sets it: a promotion request is opened
instead (with the result of the protection's gate, evaluated on the version's run), and
the alias moves in the transaction that records the last approval it needs. Approvers
are named users; nobody decides their own request; only a protection's approvers change
or remove it; a model with protected aliases lets only their approvers delete its
versions or the runs they came from. Every step is in the audit log.

Each rule is checked here, inside the unit of work (``ws.store.transaction()``) whose
writes it guards: a protection added by another process a moment earlier is seen, and a
refused change writes nothing. ``store.registry`` only reads and writes rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ..errors import (
    GovernanceError,
    InvalidArgumentError,
    ModelNotFoundError,
    ModelStateError,
)
from ..identity import current_user, require_role
from ..store.values import check_text
from ..tracking.values import ms_to_datetime
from ..workspaces import workspace
from .versions import ModelVersion, _check_name, get_model_version

__all__ = ["PromotionRequest", "alias_protection", "alias_protections", "approve",
           "check_run_deletion", "delete_alias", "delete_model_version", "promotion_requests",
           "protect_alias", "reject", "set_alias", "unprotect_alias"]


REQUEST_STATES = ("PENDING", "APPROVED", "REJECTED", "CANCELLED")


@dataclass
class PromotionRequest:
    """A request to move a protected alias to a version, and its approvals."""

    id: int
    name: str
    alias: str
    version: int
    status: str  # PENDING | APPROVED | REJECTED | CANCELLED (its protection was removed)
    requested_by: str | None
    requested_at: datetime
    previous_version: int | None
    gate: str | None
    gate_passed: bool | None
    gate_result: dict[str, Any] | None
    approvals: list[dict[str, Any]] = field(default_factory=list)
    decided_at: datetime | None = None
    approvers: list[str] = field(default_factory=list)
    min_approvals: int = 1

    @property
    def approvals_needed(self) -> int:
        got = sum(a["decision"] == "approve" for a in self.approvals)
        return max(0, self.min_approvals - got) if self.status == "PENDING" else 0

    def __str__(self) -> str:
        gate = "" if self.gate_passed is None else (" gate passed" if self.gate_passed else
                                                    " GATE FAILED")
        return (f"request #{self.id}: {self.name}@{self.alias} -> v{self.version} {self.status}"
                f"{gate}" + (f", {self.approvals_needed} more approval(s) needed from "
                             f"{', '.join(self.approvers)}" if self.status == "PENDING" else ""))


def _request(row: dict[str, Any]) -> PromotionRequest:
    rule = workspace().store.registry.protection(row["name"], row["alias"]) or {}
    return PromotionRequest(
        row["id"], row["name"], row["alias"], row["version"], row["status"], row["requested_by"],
        ms_to_datetime(row["requested_at"]), row["previous_version"], row["gate"],
        None if row["gate_passed"] is None else bool(row["gate_passed"]), row["gate_result"],
        [{**a, "at": ms_to_datetime(a["at"])} for a in row["approvals"]], ms_to_datetime(row["decided_at"]),
        list(rule.get("approvers", [])), int(rule.get("min_approvals", 1)))


def _check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not alias or alias.isdigit() or alias == "latest" \
            or any(c in alias for c in "/@ \t\n") or len(alias) > 100:
        raise InvalidArgumentError(
            f"An alias is a word such as 'champion' (no '/', '@', spaces; not a number or "
            f"'latest'), not {alias!r}.")
    return check_text(alias, "Alias")


def set_alias(name: str, alias: str, version: int | str) -> ModelVersion | PromotionRequest:
    """Point ``alias`` at ``version`` (a number or ``"latest"``) — at once, or, for a protected
    alias, by opening a promotion request that approvers decide. Returns the version the alias
    now points at, or the request."""
    ws = workspace()
    name, alias = _check_name(name), _check_alias(alias)
    if isinstance(version, str) and version.isascii() and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not (isinstance(version, int) or version == "latest"):
        raise InvalidArgumentError(f"version must be a version number or 'latest', not {version!r}.")
    require_role("editor", "moving an alias")
    actor = current_user()
    with ws.store.transaction() as tx:  # the protection is read where the alias is written
        number = tx.registry.resolve(name, version)
        rule = tx.registry.protection(name, alias)
        if rule is None:
            tx.registry.set_alias(name, alias, number, actor)
            request_id = None
        else:
            gate_result = None
            if rule["gate"]:
                gate_result = _evaluate_gate(tx.registry.version(name, number)["run_id"],
                                             rule["gate"])
            request_id = tx.registry.create_request(name, alias, number, actor, rule["gate"],
                                                    gate_result)
    if request_id is None:
        return get_model_version(name, number)
    return _request(ws.store.registry.request(request_id))


def _evaluate_gate(run_id: str | None, expression: str) -> dict[str, Any]:
    from ..pipelines.gating import gate

    if run_id is None:
        return {"passed": False, "expression": expression,
                "checks": [], "reason": "the version has no source run to check"}
    try:
        result = gate(run_id, expression)
    except Exception as exc:  # noqa: BLE001 - a gate that cannot run is a failed gate, said why
        return {"passed": False, "expression": expression, "checks": [], "reason": str(exc)}
    return {"passed": result.passed, "expression": expression, "checks": result.checks,
            "verdict": str(result)}


def _may_govern(tx: Any, name: str, actor: str, what: str) -> None:
    """A model with protected aliases is governed: only their approvers may ``what``."""
    rules = tx.registry.protections(name)
    approvers = sorted({a for rule in rules for a in rule["approvers"]})
    if rules and actor not in approvers:
        raise GovernanceError(
            f"{name} has protected aliases ({', '.join('@' + r['alias'] for r in rules)}), so "
            f"only their approvers ({', '.join(approvers)}) may {what}; you are {actor!r}.")


def delete_model_version(name: str, version: int | str) -> None:
    """Delete a version (refused while an alias points at it or a request is pending; a
    model with protected aliases lets only their approvers delete its versions). Its blob
    stays until ``cellops gc`` finds nothing refers to it. The deletion is audited."""
    ws = workspace()
    require_role("editor", "deleting a model version")
    actor = current_user()
    with ws.store.transaction() as tx:
        number = tx.registry.resolve(name, version)
        pointing = tx.registry.aliases_at(name, number)
        if pointing:
            raise ModelStateError(
                f"{name} version {number} is what alias(es) {', '.join(pointing)} point at; "
                "move or delete them first (cellops.set_alias / delete_alias).")
        pending = tx.registry.pending_requests(name, version=number)
        if pending:
            raise ModelStateError(f"{name} version {number} has a pending promotion request "
                                  f"(#{pending[0]}); reject it first.")
        _may_govern(tx, name, actor, "delete its versions")
        tx.registry.delete_version(name, number, actor)


def check_run_deletion(tx: Any, runs: list[dict[str, Any]], actor: str,
                       force: bool) -> dict[str, dict[str, Any]]:
    """The registry's guard on deleting runs (registered with
    :func:`cellops.tracking.register_deletion_guard`): runs that registered versions came
    from are not deleted without ``force``; and a model with protected aliases lets only
    their approvers force it. Runs inside the deletion's unit of work ``tx``, so a
    protection added meanwhile is seen. Returns, for the audit, the versions each run made."""
    versions = tx.registry.versions_from_runs([r["id"] for r in runs])
    if not versions:
        return {}
    shown = ", ".join(f"{v['name']} v{v['version']} (run {v['run_id'][:8]})" for v in versions[:5])
    if not force:
        raise ModelStateError(
            f"Registered model version(s) {shown} come from the run(s) to delete; their model "
            "cards and reproductions need them. Delete the versions first, or delete the runs "
            "anyway with force=True (`cellops runs delete --force`).")
    for name in sorted({v["name"] for v in versions}):
        _may_govern(tx, name, actor, "delete the runs its versions come from")
    made: dict[str, dict[str, Any]] = {}
    for v in versions:
        made.setdefault(v["run_id"], {"model_versions": []})["model_versions"].append(
            f"{v['name']}/{v['version']}")
    return made


def delete_alias(name: str, alias: str) -> None:
    """Remove an alias (a protected one must lose its protection first)."""
    ws = workspace()
    require_role("editor", "deleting an alias")
    actor = current_user()
    with ws.store.transaction() as tx:
        if tx.registry.protection(name, alias) is not None:
            raise GovernanceError(
                f"{name}@{alias} is protected; an approver must remove the protection first "
                f"(cellops.unprotect_alias({name!r}, {alias!r})).")
        tx.registry.delete_alias(name, alias, actor)


def protect_alias(name: str, alias: str, approvers: Iterable[str], min_approvals: int = 1, *,
                  gate: str | None = None) -> None:
    """Make moving ``alias`` need ``min_approvals`` approvals from ``approvers`` (users;
    nobody approves their own request). With ``gate`` (a condition in the search grammar,
    e.g. ``"metrics.auc >= 0.95"``) each request records whether the version's run passes
    it, and a failing request cannot be approved. Once protected, only its approvers may
    change or remove the protection."""
    from ..store.filter import parse_filter

    ws = workspace()
    name, alias = _check_name(name), _check_alias(alias)
    if isinstance(approvers, str):
        approvers = [approvers]
    people = list(dict.fromkeys(check_text(str(a), "Approver") for a in approvers))
    if not people or not all(p.strip() for p in people):
        raise InvalidArgumentError("protect_alias needs at least one approver (a user name).")
    if isinstance(min_approvals, bool) or not isinstance(min_approvals, int) \
            or not 1 <= min_approvals <= len(people):
        raise InvalidArgumentError(
            f"min_approvals must be from 1 to the number of approvers ({len(people)}), "
            f"not {min_approvals!r}.")
    if gate is not None:
        if parse_filter(gate) is None:
            raise InvalidArgumentError("gate must be a condition such as \"metrics.auc >= 0.95\".")
    require_role("admin", "protecting an alias")
    actor = current_user()
    with ws.store.transaction() as tx:
        tx.registry.model(name)
        before = tx.registry.protection(name, alias)
        if before is not None and actor not in before["approvers"]:
            raise GovernanceError(
                f"{name}@{alias} is already protected; only its approvers "
                f"({', '.join(before['approvers'])}) may change the protection, and you are "
                f"{actor!r}.")
        tx.registry.protect(name, alias, people, min_approvals, gate, actor)


def alias_protection(name: str, alias: str) -> dict[str, Any] | None:
    """How ``name@alias`` is protected (approvers, min_approvals, gate), or None."""
    rule = workspace().store.registry.protection(name, alias)
    return None if rule is None else {k: rule[k] for k in ("approvers", "min_approvals", "gate")}


def alias_protections(name: str | None = None) -> list[dict[str, Any]]:
    """Every protected alias (of one model): name, alias, approvers, min_approvals, gate."""
    return [{k: rule[k] for k in ("name", "alias", "approvers", "min_approvals", "gate")}
            for rule in workspace().store.registry.protections(name)]


def unprotect_alias(name: str, alias: str) -> None:
    """Remove an alias's protection (an approver only); its pending requests are cancelled
    (nobody is left to decide them)."""
    require_role("admin", "unprotecting an alias")
    actor = current_user()
    with workspace().store.transaction() as tx:
        before = tx.registry.protection(name, alias)
        if before is None:
            raise ModelNotFoundError(f"{name}@{alias} is not protected.")
        if actor not in before["approvers"]:
            raise GovernanceError(
                f"Only an approver of {name}@{alias} ({', '.join(before['approvers'])}) may "
                f"remove its protection; you are {actor!r}.")
        tx.registry.unprotect(name, alias, actor)


def _decide(request_id: int, approve_it: bool, comment: str | None,
            override_gate: bool = False) -> PromotionRequest:
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise InvalidArgumentError(f"A request id is a number, not {request_id!r}.")
    if comment is not None:
        comment = check_text(str(comment), "Comment")[:2000]
    ws = workspace()
    require_role("approver", "deciding a promotion request")
    actor = current_user()
    with ws.store.transaction() as tx:  # two approvals racing move the alias once
        req = tx.registry.request(request_id)
        if req["status"] != "PENDING":
            raise ModelStateError(f"Promotion request {request_id} is already {req['status']}.")
        rule = tx.registry.protection(req["name"], req["alias"])
        approvers = rule["approvers"] if rule else []
        if actor == req["requested_by"]:
            raise GovernanceError(
                f"{actor!r} requested promotion {request_id} and cannot decide it; one of "
                f"{', '.join(a for a in approvers if a != actor) or 'the other approvers'} must.")
        if actor not in approvers:
            raise GovernanceError(
                f"{actor!r} is not an approver of {req['name']}@{req['alias']}; approvers: "
                f"{', '.join(approvers) or 'none'}.")
        if any(a["approver"] == actor for a in req["approvals"]):
            raise ModelStateError(f"{actor!r} has already decided request {request_id}.")
        if approve_it and req["gate_passed"] == 0:
            if not override_gate:
                raise ModelStateError(
                    f"Request {request_id} failed its gate ({req['gate']}), so it cannot be "
                    "approved; reject it, and register a version that passes — or, deciding "
                    "to promote it anyway, approve it with override_gate=True and a comment "
                    "saying why (both recorded).")
            if not comment or not comment.strip():
                raise InvalidArgumentError(
                    "Overriding a failed gate needs a comment saying why: it is kept with the "
                    "approval and in the audit log.")
            comment = f"gate override ({req['gate']}): {comment}"[:2000]
        approvals = tx.registry.record_decision(req, actor, approve_it, comment)
        if not approve_it:
            tx.registry.close_request(request_id, "REJECTED")
        elif approvals >= (rule["min_approvals"] if rule else 1):  # the quorum is reached
            tx.registry.close_request(request_id, "APPROVED")
            tx.registry.set_alias(req["name"], req["alias"], req["version"], actor, request_id)
    return _request(ws.store.registry.request(request_id))


def approve(request_id: int, comment: str | None = None, *,
            override_gate: bool = False) -> PromotionRequest:
    """Approve a promotion request as the current user (an approver who did not request it);
    the alias moves on the last approval needed. A request whose version failed its gate
    (a metric or fairness condition) is approved only with ``override_gate=True`` and a
    ``comment`` saying why; the approval then reads "gate override (GATE): COMMENT" in the
    request and the audit log."""
    return _decide(request_id, True, comment, override_gate)


def reject(request_id: int, comment: str | None = None) -> PromotionRequest:
    """Reject a promotion request as the current user (an approver who did not request it)."""
    return _decide(request_id, False, comment)


def promotion_requests(status: str | None = None, name: str | None = None) -> list[PromotionRequest]:
    """Promotion requests, newest first (``status``: PENDING, APPROVED, REJECTED or
    CANCELLED)."""
    if status is not None and status.upper() not in REQUEST_STATES:
        raise InvalidArgumentError(
            f"status must be one of {', '.join(REQUEST_STATES)}, not {status!r}.")
    rows = workspace().store.registry.requests(status=status.upper() if status else None, name=name)
    return [_request(r) for r in rows]
