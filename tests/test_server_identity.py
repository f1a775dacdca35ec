"""Who an action through JupyterLab is recorded as (issue #22): a name, never Jupyter's
opaque anonymous id."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from jupyter_server.auth.identity import User
from sklearn.linear_model import LogisticRegression

import cellops
from cellops.server.base import actor_name

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    # Jupyter's own identity provider: token login gives an anonymous user.
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


def test_names_are_preferred_and_an_anonymous_user_is_whoever_runs_the_server(monkeypatch):
    monkeypatch.setenv("CELLOPS_USER", "dana")
    hub = User(username="bob", name="bob", display_name="Bob Jones")
    assert actor_name(hub) == "bob"
    assert actor_name(User(username="3f" * 16, name="", display_name="Carol C")) == "Carol C"
    anonymous = User(username="0123456789abcdef0123456789abcdef", name="Anonymous Io",
                     display_name="Anonymous Io")
    assert actor_name(anonymous) == "dana"
    monkeypatch.delenv("CELLOPS_USER")
    assert actor_name(anonymous) == getpass.getuser()
    assert actor_name(User(username="a" * 32)) == getpass.getuser()  # an id alone is no name


async def test_an_approval_through_jupyter_with_token_login_is_recorded_by_name(
        jp_fetch, jp_root_dir: Path, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    monkeypatch.setenv("CELLOPS_USER", "dana")  # whoever started `jupyter lab`
    cellops.init_workspace(jp_root_dir)
    with cellops.acting_as("alice"):
        v = cellops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
        cellops.protect_alias("m", "prod", approvers=["dana"])
        request = cellops.set_alias("m", "prod", v.version)
    cellops.workspace().close()
    response = await jp_fetch("cellops", "api", "v1", "models", "requests", str(request.id), "approve",
                              method="POST", body=json.dumps({"comment": "ok"}))
    body = json.loads(response.body)
    assert body["status"] == "APPROVED" and body["approvals"][0]["approver"] == "dana"
    audit = json.loads((await jp_fetch("cellops", "api", "v1", "models", "audit")).body)
    assert {e["actor"] for e in audit["entries"]} == {"alice", "dana"}


async def test_a_viewer_cannot_approve_through_jupyter_and_nothing_changes(
        jp_fetch, jp_root_dir: Path, monkeypatch):
    """Roles are checked for writes through the Jupyter server too: a 403 that says which
    role is needed, and the request stays pending."""
    from tornado.httpclient import HTTPClientError

    monkeypatch.chdir(jp_root_dir)
    monkeypatch.setenv("CELLOPS_USER", "dana")  # the token user is recorded as dana
    cellops.init_workspace(jp_root_dir)
    with cellops.acting_as("alice"):
        v = cellops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
        cellops.protect_alias("m", "prod", approvers=["dana"])
        request = cellops.set_alias("m", "prod", v.version)
        cellops.grant_role("alice", "admin")  # from now on dana, with no role, is a viewer
    cellops.workspace().close()
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("cellops", "api", "v1", "models", "requests", str(request.id), "approve",
                       method="POST", body=json.dumps({"comment": "ok"}))
    assert info.value.code == 403
    assert "dana is a viewer in this workspace" in info.value.response.body.decode()
    assert cellops.promotion_requests()[0].status == "PENDING"
    with cellops.acting_as("alice"):
        cellops.grant_role("dana", "approver")
    cellops.workspace().close()
    response = await jp_fetch("cellops", "api", "v1", "models", "requests", str(request.id),
                              "approve", method="POST", body=json.dumps({"comment": "ok"}))
    assert json.loads(response.body)["status"] == "APPROVED"
