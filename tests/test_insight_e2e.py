"""Explanations and fairness beside a version in the Registry tab (issue #25), in
JupyterLab and Chromium, light and dark; and the REST route behind it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import cellops
from test_sidebar_e2e import LEGIBLE, ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def seed_insight() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(50, 15, 600), "debt": rng.gamma(2, 8, 600),
                      "sex": rng.choice(["f", "m"], 600)})
    y = ((X.income + np.where(X.sex == "m", 8, 0) - X.debt) > 35).astype(int)
    with cellops.start_run(name="loans"):
        model = LogisticRegression().fit(X[["income", "debt"]], y)
        cellops.explain(model, X[["income", "debt"]], y, n_repeats=2)
        cellops.fairness(model, X, y, sensitive_features="sex")
        cellops.register_model(model, "loans", X_sample=X[["income", "debt"]])
    cellops.flush()


def test_the_registry_tab_shows_a_versions_fairness_gaps_and_top_features(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    seed_insight()
    with lab_page(base, token, "insight-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        panel.locator('.jp-cellops-tabs button[data-tab="registry"]').click()
        line = panel.locator('.jp-cellops-insight[data-model="loans"][data-version="1"]')
        expect(line).to_contain_text("fairness by sex:", timeout=30_000)
        expect(line.locator('[data-gap="demographic_parity_difference"]')).to_contain_text("parity gap")
        assert "largest minus smallest selection rate" in line.locator(
            '[data-gap="demographic_parity_difference"]').get_attribute("title")
        expect(line).to_contain_text("depends on: income")
        assert line.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # wrapped, nothing cut
        text = LEGIBLE + ", .jp-cellops-insight span, .jp-cellops-explained"
        assert low_contrast(page, text) == []
        page.screenshot(path=str(ARTIFACTS / "sidebar-registry-insight-light.png"))
        use_theme(page, "JupyterLab Dark")
        if not panel.is_visible():
            tab.click()
        expect(line).to_be_visible()
        assert low_contrast(page, text) == []
        page.screenshot(path=str(ARTIFACTS / "sidebar-registry-insight-dark.png"))


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


async def test_the_insight_route_lists_versions_with_reports(jp_fetch, jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    seed_insight()
    reply = json.loads((await jp_fetch("cellops", "api", "v1", "insight", "versions")).body)
    (version,) = reply["versions"]
    assert (version["model"], version["version"]) == ("loans", 1)
    assert version["explanation"]["top"][0]["feature"] in ("income", "debt")
    assert set(version["fairness"]["gaps"]) >= {"demographic_parity_difference", "equalized_odds_difference"}
    assert "selection rate" in reply["definitions"]["demographic_parity_difference"]
