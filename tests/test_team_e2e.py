"""The Team tab (issue #26) in JupyterLab and Chromium, at the sidebar's default width,
light and dark: absent from a one-person workspace; once roles exist, where the data
lives, who you are, everyone's role, and an admin changing, granting and removing roles
through the same checks as `cellops roles` (a refused change says why and changes nothing)."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

import cellops
from test_sidebar_e2e import LEGIBLE, ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401

TEAM_TEXT = (LEGIBLE + ", .jp-cellops-team-tab .jp-cellops-role, .jp-cellops-team-tab td, "
             ".jp-cellops-team-tab dd, .jp-cellops-team-tab dt, .jp-cellops-team-tab .jp-cellops-team-help")


def wait_until_enforced(base: str, token: str) -> None:
    deadline = time.time() + 30
    while True:
        with urllib.request.urlopen(f"{base}/cellops/api/v1/roles?token={token}") as reply:
            if json.load(reply)["enforced"]:
                return
        assert time.time() < deadline, "the server never saw the roles granted"
        time.sleep(0.5)


def roles_in(root) -> dict[str, str]:
    with cellops.use_workspace(root / ".cellops"):
        return {r["user"]: r["role"] for r in cellops.workspace_roles()}


def test_the_team_tab_shows_and_changes_roles_once_a_workspace_has_them(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    me = cellops.current_user()  # Jupyter's token user acts as the person who started it
    with lab_page(base, token, "team-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        bar = panel.locator(".jp-cellops-tabs")
        expect(bar.locator('button[data-tab="features"]')).to_be_visible(timeout=30_000)
        expect(bar.locator('button[data-tab="team"]')).to_have_count(0)  # one person: no Team tab

        cellops.grant_role(me, "admin")
        cellops.grant_role("bob", "editor")
        wait_until_enforced(base, token)  # the server trusts what it read of roles for 5 s
        team = bar.locator('button[data-tab="team"]')  # appears without a reload
        expect(team).to_be_visible(timeout=30_000)
        assert panel.bounding_box()["width"] < 300  # the default width
        assert bar.evaluate("b => b.scrollWidth <= b.clientWidth + 1")  # every tab on one row
        team.click()
        view = panel.locator(".jp-cellops-team-tab")
        expect(view.locator(".jp-cellops-team-you")).to_contain_text(f"You are {me}, admin", timeout=30_000)
        where = view.locator(".jp-cellops-team-where dd")
        expect(where.first).to_have_text("SQLite in …/project/.cellops")
        expect(where.first).to_have_attribute("title", str(root / ".cellops"))  # in full on hover
        expect(where.last).to_have_text("…/.cellops/artifacts")
        expect(view.locator("tr[data-user]")).to_have_count(2)
        expect(view.locator('tr[data-user="bob"] select')).to_have_value("editor")
        expect(view.locator('tr[data-user="bob"] .jp-cellops-team-user')).to_have_attribute(
            "title", f"granted by {me} just now")
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            if theme != "JupyterLab Light":
                use_theme(page, theme)
                if not panel.is_visible():
                    tab.click()
                bar.locator('button[data-tab="team"]').click()
            expect(view.locator("tr[data-user]")).to_have_count(2, timeout=15_000)
            assert low_contrast(page, TEAM_TEXT) == [], theme
            assert view.evaluate("t => t.scrollWidth <= t.clientWidth + 1")  # nothing cut off
            page.screenshot(path=str(ARTIFACTS / f"sidebar-team-{suffix}.png"))

        # An admin changes bob's role, grants carol one, and removes bob.
        view.locator('tr[data-user="bob"] select').select_option("approver")
        expect(view.locator(".jp-cellops-confirmation")).to_have_text("bob: editor → approver.",
                                                                       timeout=15_000)
        assert roles_in(root)["bob"] == "approver"
        view.locator(".jp-cellops-team-new").fill("carol")
        view.locator(".jp-cellops-team-new-role").select_option("viewer")
        view.locator(".jp-cellops-team-grant-button").click()
        expect(view.locator('tr[data-user="carol"]')).to_be_visible(timeout=15_000)
        view.locator('tr[data-user="bob"] .jp-cellops-team-remove').click()
        expect(view.locator('tr[data-user="bob"]')).to_have_count(0, timeout=15_000)
        assert roles_in(root) == {me: "admin", "carol": "viewer"}

        # Removing the last admin while carol holds a role is refused, with the reason.
        view.locator(f'tr[data-user="{me}"] .jp-cellops-team-remove').click()
        expect(view.locator(".jp-cellops-error-box")).to_contain_text("last admin", timeout=15_000)
        assert roles_in(root) == {me: "admin", "carol": "viewer"}
        with cellops.use_workspace(root / ".cellops"):
            actions = [(e.action, e.object) for e in reversed(cellops.audit_log(limit=10))]
        assert actions[-3:] == [("grant_role", "user:bob"), ("grant_role", "user:carol"),
                                ("revoke_role", "user:bob")]

        # Made a viewer (ana is admin now), the same user sees the roles but no controls.
        view.locator(".jp-cellops-team-new").fill("ana")
        view.locator(".jp-cellops-team-new-role").select_option("admin")
        view.locator(".jp-cellops-team-grant-button").click()
        expect(view.locator('tr[data-user="ana"]')).to_be_visible(timeout=15_000)
        view.locator(f'tr[data-user="{me}"] .jp-cellops-team-remove').click()
        expect(view.locator(".jp-cellops-team-you")).to_contain_text(
            f"You are {me}, viewer — only an admin changes roles.", timeout=15_000)
        expect(view.locator("tr[data-user]")).to_have_count(2)
        expect(view.locator("select, .jp-cellops-team-remove, .jp-cellops-team-grant")).to_have_count(0)
        expect(view.locator('tr[data-user="ana"] .jp-cellops-role')).to_have_text("admin")
        assert roles_in(root) == {"ana": "admin", "carol": "viewer"}


@pytest.mark.parametrize("store_engine", ["postgresql"], indirect=True)
def test_a_team_workspace_shows_the_team_tab_and_the_first_admin_is_one_click(lab):  # noqa: F811
    """On PostgreSQL the tab is there before any role: it says the workspace is open and
    offers to make the Jupyter user its admin (the first grant's rule), which starts the
    role checks."""
    from playwright.sync_api import expect

    base, token, root = lab
    me = cellops.current_user()
    with lab_page(base, token, "team-first-admin-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        panel.locator('.jp-cellops-tabs button[data-tab="team"]').click(timeout=30_000)
        view = panel.locator(".jp-cellops-team-tab")
        where = view.locator(".jp-cellops-team-where dd")
        expect(where.first).to_have_text(re.compile(r"^PostgreSQL postgresql://.+/t_\w+$"), timeout=30_000)
        expect(view.locator(".jp-cellops-team-open")).to_contain_text("No roles are granted")
        expect(view.locator("tr[data-user]")).to_have_count(0)
        assert low_contrast(page, TEAM_TEXT) == []
        view.locator(".jp-cellops-team-first").click()
        expect(view.locator(".jp-cellops-team-you")).to_contain_text(f"You are {me}, admin", timeout=15_000)
        expect(view.locator(f'tr[data-user="{me}"] select')).to_have_value("admin")
        assert roles_in(root) == {me: "admin"}
        page.screenshot(path=str(ARTIFACTS / "sidebar-team-first-admin.png"))
