"""Roles through the Jupyter server (issue #26): who holds what, granted and revoked as
the authenticated user, with the API's checks and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

import cellops
from test_registry_server import jp_server_config  # noqa: F401 - several named users

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def team(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    cellops.workspace().close()
    return jp_root_dir


async def call(jp_fetch, method: str, *parts: str, user: str, body: dict | bytes | None = None):
    kwargs = {} if body is None else {"body": body if isinstance(body, bytes) else json.dumps(body)}
    if method == "DELETE":
        kwargs["allow_nonstandard_methods"] = True
    try:
        response = await jp_fetch("cellops", "api", "v1", *parts, method=method,
                                  headers={"X-Test-User": user}, **kwargs)
    except HTTPClientError as exc:
        return exc.code, json.loads(exc.response.body) if exc.response is not None else {}
    return response.code, json.loads(response.body)


async def test_roles_are_listed_granted_and_revoked_as_the_jupyter_user(jp_fetch, team):
    code, body = await call(jp_fetch, "GET", "roles", user="ana")
    assert code == 200 and body["enforced"] is False and body["roles"] == []
    assert body["you"] == {"user": "ana", "role": "admin"}  # an open workspace
    # Where the data lives: here the embedded SQLite file's folder and the local blobs.
    assert body["workspace"] == {"shared": False, "store": str(team / ".cellops"),
                                 "artifacts": str(team / ".cellops" / "artifacts")}
    # The first grant makes the asking user an admin, as on the command line.
    code, body = await call(jp_fetch, "PUT", "roles", "bob", user="ana", body={"role": "editor"})
    assert code == 403 and "first grant must make you an admin" in body["message"]
    code, body = await call(jp_fetch, "PUT", "roles", "ana", user="ana", body={"role": "admin"})
    assert code == 200 and body == {"user": "ana", "role": "admin", "before": None}
    code, _ = await call(jp_fetch, "PUT", "roles", "bob", user="ana", body={"role": "editor"})
    assert code == 200
    code, body = await call(jp_fetch, "GET", "roles", user="bob")
    assert body["enforced"] is True and body["you"] == {"user": "bob", "role": "editor"}
    assert [(r["user"], r["role"], r["granted_by"]) for r in body["roles"]] == \
        [("ana", "admin", "ana"), ("bob", "editor", "ana")]
    code, body = await call(jp_fetch, "GET", "roles", user="dan")
    assert body["you"] == {"user": "dan", "role": "viewer"}  # no role granted: a viewer
    # Only an admin grants or revokes; nothing changes otherwise.
    code, body = await call(jp_fetch, "PUT", "roles", "bob", user="bob", body={"role": "admin"})
    assert code == 403 and "bob is an editor in this workspace; granting roles needs admin" in body["message"]
    code, body = await call(jp_fetch, "DELETE", "roles", "ana", user="bob")
    assert code == 403
    code, body = await call(jp_fetch, "DELETE", "roles", "ana", user="ana")
    assert code == 403 and "last admin" in body["message"]
    code, body = await call(jp_fetch, "DELETE", "roles", "bob", user="ana")
    assert code == 200 and body == {"user": "bob", "before": "editor"}
    code, body = await call(jp_fetch, "GET", "roles", user="ana")
    assert [r["user"] for r in body["roles"]] == ["ana"]
    entries = [(e.actor, e.action, e.object) for e in reversed(cellops.audit_log(limit=10))]
    assert entries == [("ana", "grant_role", "user:ana"), ("ana", "grant_role", "user:bob"),
                       ("ana", "revoke_role", "user:bob")]
    assert cellops.verify_audit().ok


@pytest.mark.parametrize("body, code, message", [
    (b"not json", 400, '{"role": "editor"}'),
    ({"role": 3}, 400, "viewer, editor, approver or admin"),
    ({}, 400, '{"role": "editor"}'),
    ({"role": "owner"}, 400, "Unknown role 'owner'"),
])
async def test_a_bad_grant_is_refused_with_what_to_send(jp_fetch, team, body, code, message):
    got, reply = await call(jp_fetch, "PUT", "roles", "ana", user="ana", body=body)
    assert got == code and message in reply["message"]
    assert cellops.workspace_roles() == []  # nothing was granted


async def test_revoking_someone_without_a_role_is_a_clear_error(jp_fetch, team):
    await call(jp_fetch, "PUT", "roles", "ana", user="ana", body={"role": "admin"})
    code, body = await call(jp_fetch, "DELETE", "roles", "nobody", user="ana")
    assert code == 400 and "nobody holds no role" in body["message"]


async def test_the_roles_routes_need_authentication(jp_fetch, team):
    for method, parts, body in (("GET", ("roles",), None), ("PUT", ("roles", "eve"), b'{"role": "admin"}'),
                                ("DELETE", ("roles", "eve"), None)):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("cellops", "api", "v1", *parts, method=method, body=body,
                           headers={"Authorization": ""}, allow_nonstandard_methods=True)
        assert info.value.code == 403, method
    assert cellops.workspace_roles() == []
