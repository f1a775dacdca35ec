"""REST routes of the registry area. Decisions are made as Jupyter's authenticated user.

    GET  models                                     registered models with versions, aliases and
                                                    protections; the audit log's verification;
                                                    who is asking
    GET  models/requests?status=                    promotion requests (pending by default), each
                                                    saying whether the asking user may decide it
    POST models/requests/{id}/approve               approve (403 for the requester and for
                                                    non-approvers; 409 when already decided)
    POST models/requests/{id}/reject                reject (same rules)
    GET  models/audit?limit=                        the latest audit entries and the verification
    GET  models/{name}/card?version=                a version's model card (Markdown and HTML)
"""

from __future__ import annotations

from typing import Any

import cellops
from cellops.jsonable import to_jsonable

from .base import Handler, web

STATUSES = ("pending", "approved", "rejected", "cancelled", "all")


def _models_summary() -> dict[str, Any]:
    models = []
    for m in cellops.list_models():
        versions = cellops.search_model_versions(
            f"name = '{m.name.replace(chr(39), chr(39) * 2)}'", max_results=25)
        models.append({
            "name": m.name, "description": m.description, "latest_version": m.latest_version,
            "version_count": m.version_count, "aliases": m.aliases, "tags": m.tags,
            "protections": cellops.alias_protections(m.name),
            "versions": [{"version": v.version, "run_id": v.run_id, "created_at": v.created_at,
                          "created_by": v.created_by, "aliases": v.aliases, "tags": v.tags,
                          "sha256": v.sha256[:12], "size": v.size, "description": v.description,
                          "datasets": [{"name": d["name"], "role": d["role"],
                                        "digest": (d["fingerprint"] or "")[:12],
                                        "rows": d["rows"], "columns": d["columns"]}
                                       for d in v.lineage]}
                         for v in versions]})
    report = cellops.verify_audit()
    return {"models": models, "user": cellops.current_user(),
            "audit": {"ok": report.ok, "entries": report.entries, "head": report.head,
                      "first_bad": report.first_bad, "problem": report.problem}}


def _version_metrics(name: str, version: int | None) -> dict[str, Any] | None:
    """The latest metrics of the run a version came from (None: no such version or run)."""
    if version is None:
        return None
    try:
        run_id = cellops.get_model_version(name, version).run_id
        return to_jsonable(cellops.get_run(run_id).metrics) if run_id else {}
    except cellops.NotFoundError:
        return None


def _requests(status: str) -> list[dict[str, Any]]:
    user = cellops.current_user()
    out = []
    for r in cellops.promotion_requests(None if status == "all" else status):
        decided = {a["approver"] for a in r.approvals}
        out.append({**r.__dict__, "approvals_needed": r.approvals_needed,
                    "can_decide": (r.status == "PENDING" and user in r.approvers
                                   and user != r.requested_by and user not in decided),
                    # What an approver weighs: the candidate's metrics beside the current
                    # target's (None when the alias points nowhere yet).
                    "candidate_metrics": _version_metrics(r.name, r.version),
                    "current_metrics": _version_metrics(r.name, r.previous_version)})
    return out


class ModelsHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.workspace()
        self.reply(await self.call(_models_summary))


class RequestsHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        status = (self.get_argument("status", "pending") or "pending").lower()
        if status not in STATUSES:
            raise web.HTTPError(400, log_message=f"'status' must be one of {', '.join(STATUSES)}, "
                                                 f"not {status!r}.", reason="bad parameter")
        self.workspace()
        self.reply({"requests": await self.call(_requests, status)})


class DecisionHandler(Handler):
    @web.authenticated
    async def post(self, request_id: str, decision: str) -> None:
        comment = self.comment()
        self.workspace()
        decide = cellops.approve if decision == "approve" else cellops.reject
        result = await self.call(decide, int(request_id), comment)
        self.reply({**result.__dict__, "approvals_needed": result.approvals_needed})


class AuditHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, 10_000)
        self.workspace()

        def read() -> dict[str, Any]:
            report = cellops.verify_audit()
            return {"entries": [e.__dict__ for e in cellops.audit_log(limit)],
                    "verification": {"ok": report.ok, "entries": report.entries,
                                     "head": report.head, "first_bad": report.first_bad,
                                     "problem": report.problem}}

        self.reply(await self.call(read))


class CardHandler(Handler):
    @web.authenticated
    async def get(self, name: str) -> None:
        version: int | str = self.get_argument("version", "latest") or "latest"
        if version.isascii() and version.isdigit():  # "²" is a digit to str.isdigit
            version = int(version)
        self.workspace()

        def card() -> dict[str, Any]:
            c = cellops.model_card(name, version)
            return {"name": c.version.name, "version": c.version.version,
                    "markdown": c.markdown, "html": c.html()}

        self.reply(await self.call(card))


ROUTES = [
    ("models", ModelsHandler),
    ("models/requests", RequestsHandler),
    (r"models/requests/(?P<request_id>[0-9]{1,18})/(?P<decision>approve|reject)", DecisionHandler),
    ("models/audit", AuditHandler),
    (r"models/(?P<name>[^/]+)/card", CardHandler),
]
