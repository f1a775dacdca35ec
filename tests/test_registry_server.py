"""The registry's REST routes on a real Jupyter server: models, promotion requests decided as
the authenticated user, the audit log and model cards."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from tornado.httpclient import HTTPClientError

import cellops

pytest_plugins = ["pytest_jupyter.jupyter_server"]

X, Y = load_breast_cancer(return_X_y=True)


class NamedUsers(IdentityProvider):
    """Jupyter's token authentication, with the user name taken from a header: several
    people on one server, as JupyterHub gives them. Unauthenticated requests stay refused."""

    async def get_user(self, handler):  # type: ignore[override]
        user = super().get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        if user is None:
            return None
        name = handler.request.headers.get("X-Test-User", "alice")
        return User(username=name, name=name)


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True},
                          "identity_provider_class": NamedUsers}}


@pytest.fixture
def registry(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Model 'cancer' v1 (auc 0.90), v2 (auc 0.97); prod protected (bob, carol; gate on auc);
    alice asked for v1 (gate fails) and v2 (gate passes)."""
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    with cellops.acting_as("alice"):
        for auc in (0.90, 0.97):
            with cellops.start_run(params={"C": 1.0}) as run:
                run.log_metric("auc", auc)
                model = LogisticRegression(max_iter=5000).fit(X, Y)
                run.log_artifact(cellops.dump_skops(model), "model.skops")
            cellops.register_model(run, "cancer", description="Screening <b>model</b>")
        cellops.set_alias("cancer", "champion", 1)
        cellops.protect_alias("cancer", "prod", approvers=["bob", "carol"], gate="metrics.auc >= 0.95")
        failing = cellops.set_alias("cancer", "prod", 1)
        passing = cellops.set_alias("cancer", "prod", 2)
    cellops.workspace().close()
    return {"failing": failing.id, "passing": passing.id}


async def get(jp_fetch, *parts: str, user: str = "alice", **params: str) -> dict:
    response = await jp_fetch("cellops", "api", "v1", *parts, params=params,
                              headers={"X-Test-User": user})
    assert response.code == 200
    return json.loads(response.body)


async def post(jp_fetch, *parts: str, user: str, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    try:
        response = await jp_fetch("cellops", "api", "v1", *parts, method="POST", body=data,
                                  headers={"X-Test-User": user})
    except HTTPClientError as exc:
        raw = exc.response.body if exc.response is not None else b""
        return exc.code, (json.loads(raw) if raw else {})
    return response.code, json.loads(response.body)


async def test_models_list_versions_aliases_protections_and_the_audit_state(jp_fetch, registry):
    data = await get(jp_fetch, "models", user="bob")
    assert data["user"] == "bob"
    [model] = data["models"]
    assert model["name"] == "cancer" and model["latest_version"] == 2 and model["version_count"] == 2
    assert model["aliases"] == {"champion": 1}
    assert model["protections"] == [{"name": "cancer", "alias": "prod", "approvers": ["bob", "carol"],
                                     "min_approvals": 1, "gate": "metrics.auc >= 0.95"}]
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["versions"][1]["aliases"] == ["champion"] and model["versions"][0]["created_by"] == "alice"
    assert data["audit"]["ok"] is True and data["audit"]["entries"] == 7


async def test_requests_say_who_may_decide_them(jp_fetch, registry):
    as_bob = (await get(jp_fetch, "models", "requests", user="bob"))["requests"]
    assert [(r["id"], r["version"], r["gate_passed"], r["can_decide"]) for r in as_bob] == [
        (registry["passing"], 2, True, True), (registry["failing"], 1, False, True)]
    assert as_bob[0]["approvers"] == ["bob", "carol"] and as_bob[0]["approvals_needed"] == 1
    as_alice = (await get(jp_fetch, "models", "requests", user="alice"))["requests"]
    assert not any(r["can_decide"] for r in as_alice)  # her own requests
    as_mallory = (await get(jp_fetch, "models", "requests", user="mallory"))["requests"]
    assert not any(r["can_decide"] for r in as_mallory)
    assert (await get(jp_fetch, "models", "requests", status="approved"))["requests"] == []


async def test_the_requester_and_non_approvers_get_403_and_nothing_moves(jp_fetch, registry):
    req = registry["passing"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "approve", user="alice")
    assert code == 403 and "'alice' requested promotion" in body["message"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "approve", user="mallory")
    assert code == 403 and "'mallory' is not an approver of cancer@prod" in body["message"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "reject", user="mallory")
    assert code == 403
    with cellops.use_workspace(Path.cwd() / ".cellops"):
        assert [r.id for r in cellops.promotion_requests("pending")] == [req, registry["failing"]]
        assert "prod" not in cellops.list_models()[0].aliases


async def test_an_approver_approves_as_themselves_and_the_alias_moves(jp_fetch, registry):
    req = registry["passing"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "approve", user="bob",
                            body={"comment": "checked the holdout"})
    assert code == 200 and body["status"] == "APPROVED" and body["approvals_needed"] == 0
    assert body["approvals"][0]["approver"] == "bob"
    assert body["approvals"][0]["comment"] == "checked the holdout"
    code, body = await post(jp_fetch, "models", "requests", str(req), "approve", user="carol")
    assert code == 409 and "already APPROVED" in body["message"]
    data = await get(jp_fetch, "models")
    assert data["models"][0]["aliases"] == {"champion": 1, "prod": 2}
    audit = await get(jp_fetch, "models", "audit", limit="2")
    assert [(e["actor"], e["action"]) for e in audit["entries"]] == [("bob", "set_alias"),
                                                                     ("bob", "approve")]
    assert audit["verification"]["ok"] is True


async def test_a_request_that_failed_its_gate_cannot_be_approved_but_can_be_rejected(jp_fetch, registry):
    req = registry["failing"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "approve", user="carol")
    assert code == 409 and "failed its gate" in body["message"]
    code, body = await post(jp_fetch, "models", "requests", str(req), "reject", user="carol",
                            body={"comment": "auc 0.90"})
    assert code == 200 and body["status"] == "REJECTED"


@pytest.mark.parametrize("parts, body, code, message", [
    (("models", "requests", "999", "approve"), None, 404, "No promotion request 999"),
    (("models", "requests", "1", "approve"), b"not json", 400, "must be JSON"),
    (("models", "requests", "1", "approve"), {"comment": 5}, 400, "'comment' must be text"),
])
async def test_bad_decisions_are_refused_with_a_reason(jp_fetch, registry, parts, body, code, message):
    got, reply = await post(jp_fetch, *parts, user="bob", body=body)
    assert got == code and message in reply["message"]


async def test_bad_parameters_and_unknown_models(jp_fetch, registry):
    for parts, params, code, message in (
            (("models", "requests"), {"status": "open"}, 400, "'status' must be one of"),
            (("models", "nope", "card"), {}, 404, "No registered model named 'nope'"),
            (("models", "cancer", "card"), {"version": "7"}, 404, "no version 7"),
            # issue #23: both were 500s (an integer SQLite cannot hold; "²" is a digit to
            # str.isdigit but not to int())
            (("models", "cancer", "card"), {"version": "9" * 30}, 404, "no version 9999"),
            (("models", "cancer", "card"), {"version": "\u00b2"}, 404, "no alias '\u00b2'"),
            (("models", "audit"), {"limit": "0"}, 400, "limit")):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("cellops", "api", "v1", *parts, params=params)
        assert info.value.code == code, parts
        assert message in json.loads(info.value.response.body)["message"]


async def test_the_model_card_comes_as_markdown_and_escaped_html(jp_fetch, registry):
    card = await get(jp_fetch, "models", "cancer", "card", version="2")
    assert card["version"] == 2 and card["markdown"].startswith("# cancer — version 2")
    assert "Screening <b>model</b>" in card["markdown"]
    assert "Screening &lt;b&gt;model&lt;/b&gt;" in card["html"] and "<b>model" not in card["html"]
    latest = await get(jp_fetch, "models", "cancer", "card")
    assert latest["version"] == 2
    by_alias = await get(jp_fetch, "models", "cancer", "card", version="champion")
    assert by_alias["version"] == 1


async def test_a_tampered_audit_log_shows_in_the_models_summary(jp_fetch, registry, jp_root_dir):
    from engines_kit import RawDb

    RawDb(cellops.workspace(jp_root_dir / ".cellops")).execute(
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    data = await get(jp_fetch, "models")
    assert data["audit"]["ok"] is False and data["audit"]["first_bad"] == 3
    assert "was altered" in data["audit"]["problem"]


async def test_every_registry_route_needs_authentication(jp_fetch, registry):
    for parts in (("models",), ("models", "requests"), ("models", "audit"), ("models", "cancer", "card")):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("cellops", "api", "v1", *parts, headers={"Authorization": ""})
        assert info.value.code == 403, parts
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("cellops", "api", "v1", "models", "requests", str(registry["passing"]),
                       "approve", method="POST", body=b"{}", headers={"Authorization": ""})
    assert info.value.code == 403


async def test_a_cookie_session_needs_the_xsrf_token_to_decide(jp_fetch, registry, jp_auth_header):
    token = jp_auth_header["Authorization"].split()[-1]
    login = await jp_fetch("cellops", "api", "v1", "models", params={"token": token},
                           headers={"Authorization": "", "X-Test-User": "bob"})
    cookies = [c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")]
    session = "; ".join(c for c in cookies if c.startswith("username-"))
    route = ("cellops", "api", "v1", "models", "requests", str(registry["passing"]), "approve")
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*route, method="POST", body=b"{}",
                       headers={"Authorization": "", "Cookie": session, "X-Test-User": "bob"})
    assert info.value.code == 403
    response = await jp_fetch(*route, method="POST", body=b"{}", headers={
        "Authorization": "", "Cookie": f"{session}; _xsrf=k3y", "X-XSRFToken": "k3y",
        "X-Test-User": "bob"})
    assert json.loads(response.body)["status"] == "APPROVED"
