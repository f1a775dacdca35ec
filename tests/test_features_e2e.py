"""The Features tab (issue #24) in JupyterLab and Chromium, at the sidebar's default width,
light and dark: views with their freshness, the online store, the models that use them,
and Materialize."""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression

import cellops
from test_sidebar_e2e import LEGIBLE, ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401

T0 = pd.Timestamp("2024-01-01")
FEATURES_TEXT = (LEGIBLE + ", .jp-cellops-features-tab .jp-cellops-view header, "
                 ".jp-cellops-features-tab .jp-cellops-features li, .jp-cellops-features-tab .jp-cellops-online")


def seed_features() -> None:
    frame = pd.DataFrame({"customer_id": [1, 2, 1, 3], "ts": [T0, T0, T0 + pd.Timedelta("1h"), T0],
                          "spend_30d": [10.0, 20.0, 11.0, 5.0], "visits_30d": [1, 2, 3, 4]})
    cellops.register_feature_view("customer_activity", frame, entities="customer_id", timestamp="ts",
                                  ttl="7d", description="Spend and visits over 30 days")
    labels = pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [T0 + pd.Timedelta("2h")] * 3,
                           "churned": [0, 1, 0]})
    with cellops.start_run(name="train"):
        train = cellops.get_historical_features(labels, ["customer_activity:*"])
        X = train[["spend_30d", "visits_30d"]]
        cellops.register_model(LogisticRegression().fit(X, train["churned"]), "churn", X_sample=X)
    cellops.materialize(end=T0 + pd.Timedelta("2h"))
    cellops.flush()


def test_the_features_tab_shows_views_freshness_online_state_and_models(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    seed_features()
    with lab_page(base, token, "features-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        assert panel.bounding_box()["width"] < 300  # the default width
        bar = panel.locator(".jp-cellops-tabs")
        expect(bar.locator("button")).to_have_count(5)
        assert bar.evaluate("b => b.scrollWidth <= b.clientWidth + 1")  # five tabs, one row
        bar.locator('button[data-tab="features"]').click()
        view = panel.locator('.jp-cellops-view[data-view="customer_activity"]')
        expect(view).to_contain_text("v1 · by customer_id · TTL 7d", timeout=30_000)
        expect(view).to_contain_text("Spend and visits over 30 days")
        expect(view.locator('li[data-feature="spend_30d"]')).to_contain_text("2024-01-01 01:00 UTC")
        expect(view.locator(".jp-cellops-online")).to_contain_text(
            "Online: 3 entities, to 2024-01-01 02:00 UTC from v1")
        expect(view.locator(".jp-cellops-link", has_text="churn v1")).to_be_visible()
        expect(bar.locator("button.jp-mod-current")).to_contain_text("Features")
        assert low_contrast(page, FEATURES_TEXT) == []
        page.screenshot(path=str(ARTIFACTS / "sidebar-features-light.png"))
        view.locator(".jp-cellops-materialize").click()
        expect(panel.locator(".jp-cellops-confirmation")).to_contain_text(
            "Materialized customer_activity v1", timeout=30_000)
        with cellops.use_workspace(root / ".cellops"):
            from cellops.features import feature_view_status

            assert feature_view_status("customer_activity")["online"]["materialized_to"] > "2025"
        expect(view.locator(".jp-cellops-online")).not_to_contain_text("2024-01-01 02:00", timeout=30_000)
        # The model card of a model using the view opens from it.
        view.locator(".jp-cellops-link", has_text="churn v1").click()
        card = page.locator(".jp-cellops-card")
        expect(card).to_contain_text("features:customer_activity@v1", timeout=30_000)
        use_theme(page, "JupyterLab Dark")
        if not panel.is_visible():
            tab.click()
        expect(view).to_be_visible()
        assert low_contrast(page, FEATURES_TEXT) == []
        page.screenshot(path=str(ARTIFACTS / "sidebar-features-dark.png"))
