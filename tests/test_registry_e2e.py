"""End to end: the sidebar's Registry tab in Chromium against a real `jupyter lab`.

The browser's user (Jupyter's anonymous token user, recorded as whoever started the server) is made an approver of
a protected alias; alice has asked to promote a version. The test approves it from the tab,
sees the alias move, opens the model card, checks the audit state, and saves screenshots.
"""

from __future__ import annotations

import getpass
import os

import json
import sqlite3

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from test_sidebar_e2e import LEGIBLE, ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401

import cellops

X, Y = load_breast_cancer(return_X_y=True)
TRAIN = load_breast_cancer(as_frame=True).frame


def seed_registry(me: str) -> dict[str, int]:
    with cellops.acting_as("alice"):
        for auc in (0.91, 0.97):
            with cellops.start_run(name=f"fit-{auc}", params={"C": 1.0}) as run:
                run.log_metric("auc", auc)
                run.log_dataset(TRAIN, "train")
                model = LogisticRegression(max_iter=5000).fit(X, Y)
                run.log_artifact(cellops.dump_skops(model), "model.skops")
            cellops.register_model(run, "churn-model", description="Flags customers likely to leave")
        cellops.set_alias("churn-model", "champion", 1)
        cellops.protect_alias("churn-model", "prod", approvers=[me, "bob"], gate="metrics.auc >= 0.95")
        theirs = cellops.set_alias("churn-model", "prod", 2)
    with cellops.acting_as(me):
        mine = cellops.set_alias("churn-model", "prod", 2)
    cellops.workspace().close()
    return {"theirs": theirs.id, "mine": mine.id}


# Every chip, button and label of the Registry tab (the sidebar's shared ones and its own).
REGISTRY_TEXT = (LEGIBLE + ", .jp-cellops-registry-tab .jp-cellops-alias, .jp-cellops-registry-tab "
                 ".jp-cellops-audit, .jp-cellops-registry-tab td, .jp-cellops-confirmation, "
                 ".jp-cellops-registry-tab .jp-cellops-model summary")


def test_an_approver_approves_from_the_registry_tab(lab):  # noqa: F811 - the imported fixture
    from playwright.sync_api import expect

    base, token, root = lab
    with lab_page(base, token, "registry-failure.png") as (page, tab):
        # Jupyter's token login is an anonymous user (an opaque hex id); cellops records the
        # person who started the server instead (issue #22): $CELLOPS_USER, else the OS user.
        anonymous = json.loads(page.evaluate("fetch('/api/me').then(r => r.text())"))["identity"]
        assert len(anonymous["username"]) == 32
        me = os.environ.get("CELLOPS_USER") or getpass.getuser()
        ids = seed_registry(me)
        with cellops.use_workspace(root / ".cellops"):
            digest = cellops.get_model_version("churn-model", 1).lineage[0]["fingerprint"][:12]

        tab.click()
        panel = page.locator("#cellops-sidebar")
        panel.locator(".jp-cellops-tabs button", has_text="Registry").click()
        registry = panel.locator(".jp-cellops-registry-tab")
        expect(registry.locator(".jp-cellops-audit.jp-mod-ok")).to_contain_text(
            "Audit log intact", timeout=30_000)
        model = registry.locator('.jp-cellops-model[data-model="churn-model"]')
        expect(model).to_contain_text("2 version(s)")
        expect(model.locator(".jp-cellops-alias", has_text="@champion → v1")).to_be_visible()
        expect(model.locator(".jp-cellops-alias.jp-mod-protected")).to_have_text("@prod → unset (protected)")
        expect(model.locator('.jp-cellops-version[data-version="2"]')).to_contain_text("v2")

        theirs = registry.locator(f'.jp-cellops-request[data-request="{ids["theirs"]}"]')
        mine = registry.locator(f'.jp-cellops-request[data-request="{ids["mine"]}"]')
        expect(theirs).to_contain_text("churn-model@prod → v2")
        expect(theirs).to_contain_text("gate passed")
        expect(theirs).to_contain_text("by alice")
        expect(theirs).to_contain_text("Needs 1 more approval from you, bob")
        expect(mine).to_contain_text("you requested it")
        expect(mine.locator(".jp-cellops-approve")).to_have_count(0)
        # Issue #22: what an approver weighs, the candidate beside the current target.
        auc = theirs.locator('.jp-cellops-request-metrics tr[data-metric="auc"]')
        expect(auc).to_contain_text("0.97")
        expect(theirs.locator(".jp-cellops-request-metrics thead")).to_contain_text("now: none")
        assert low_contrast(page, REGISTRY_TEXT) == []  # 4.5:1 in the light theme (issue #22)
        page.screenshot(path=str(ARTIFACTS / "sidebar-registry.png"))

        theirs.locator(".jp-cellops-comment").fill("holdout checked")
        theirs.locator(".jp-cellops-approve").click()
        expect(theirs).to_have_count(0, timeout=15_000)
        expect(registry.locator(".jp-cellops-confirmation")).to_have_text(
            "Approved churn-model@prod → v2: the alias has moved.")
        prod = model.locator(".jp-cellops-alias.jp-mod-protected", has_text="@prod → v2 (protected)")
        expect(prod).to_be_visible(timeout=15_000)
        with cellops.use_workspace(root / ".cellops"):
            done = cellops.promotion_requests("approved")[0]
            assert done.id == ids["theirs"] and done.approvals[0]["approver"] == me
            assert done.approvals[0]["comment"] == "holdout checked"
            assert cellops.get_model_version("churn-model", "prod").version == 2
        page.screenshot(path=str(ARTIFACTS / "sidebar-registry-approved.png"))

        model.locator('.jp-cellops-version[data-version="2"] .jp-cellops-card-link').click()
        card = page.locator(".jp-cellops-card")
        expect(card.locator("h1")).to_contain_text("churn-model — version 2", timeout=15_000)
        assert card.locator("h2").first.inner_text() == "Approvals and alias history"
        expect(card).to_contain_text("Flags customers likely to leave")
        expect(card.locator("table").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "model-card.png"))

        use_theme(page, "JupyterLab Dark")
        if not panel.is_visible():
            tab.click()
        expect(registry.locator(".jp-cellops-confirmation")).to_be_visible()
        assert low_contrast(page, REGISTRY_TEXT) == []  # and in the dark theme
        page.screenshot(path=str(ARTIFACTS / "sidebar-registry-dark.png"))
        ok = registry.locator(".jp-cellops-audit")
        assert ok.evaluate("e => getComputedStyle(e).color") != \
            ok.evaluate("e => getComputedStyle(document.body).backgroundColor")

        # Someone edits the audit log behind cellops' back: the tab says so.
        sqlite3.connect(root / ".cellops" / "cellops.db", isolation_level=None).execute(
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        panel.locator(".jp-cellops-tabs button", has_text="Runs").click()
        panel.locator(".jp-cellops-tabs button", has_text="Registry").click()
        expect(registry.locator(".jp-cellops-audit.jp-mod-broken")).to_contain_text(
            "Audit log broken at entry 2", timeout=15_000)

        # Lineage (issue #27): a version lists its datasets; one opens the runs that used it.
        data = model.locator('.jp-cellops-version[data-version="1"] .jp-cellops-lineage')
        expect(data).to_contain_text("data: train (input)")
        data.locator(".jp-cellops-dataset-link").click()
        runs_tab = panel.locator(".jp-cellops-runs-tab")
        expect(runs_tab.locator("input.jp-cellops-filter")).to_have_value(
            f"datasets.digest = '{digest}'", timeout=15_000)
        expect(runs_tab.locator("tbody tr")).to_have_count(2, timeout=15_000)
        expect(runs_tab).to_contain_text("fit-0.91")
        expect(runs_tab).to_contain_text("fit-0.97")
