"""End to end: the Monitoring tab in Chromium shows a monitor's state and drift-share chart
and its open alert with the retraining it caused; Acknowledge works from the tab."""

from __future__ import annotations

from serving_kit import numeric_frame, register_numeric
from test_sidebar_e2e import LEGIBLE, ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401

import cellops


# Every chip, button and label of the Monitoring tab, its tables and chart legends.
MONITORING_TEXT = (LEGIBLE + ", .jp-cellops-monitoring-tab td, .jp-cellops-monitoring-tab "
                   ".u-legend .u-label, .jp-cellops-monitoring-tab .u-legend .u-value, "
                   ".jp-cellops-alert, .jp-cellops-monitoring-tab figcaption")


def test_the_monitoring_tab_shows_monitors_charts_and_alerts(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    register_numeric()
    X, y = numeric_frame(1000, seed=3)
    cellops.create_monitor("churn-drift", "churn@champion", X.assign(target=y), target="target",
                           window="250 rows")
    calm = numeric_frame(500, seed=4)[0]
    shifted = numeric_frame(500, seed=5)[0]
    shifted["income"] *= 2
    shifted["score"] = shifted["score"] ** 3
    for name, frame in (("calm", calm), ("shifted", shifted)):
        frame.to_csv(root / f"{name}.csv", index=False)
        cellops.predict_file("models:/churn@champion", root / f"{name}.csv", root / f"{name}-o.csv",
                             chunk_rows=250)
    cellops.flush()
    results = cellops.run_monitors()
    assert [r.status for r in results] == ["ok", "ok", "failing", "failing"]
    (alert,) = cellops.alerts()
    with lab_page(base, token, "monitoring-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        panel.locator(".jp-cellops-tabs button", has_text="Monitoring").click()
        monitor = panel.locator('.jp-cellops-monitor[data-monitor="churn-drift"]')
        expect(monitor).to_contain_text("alerting", timeout=30_000)
        expect(monitor).to_contain_text("4 window(s)")
        chart = monitor.locator('figure.jp-cellops-chart[data-metric="churn-drift: drift share"]')
        expect(chart.locator("canvas")).to_have_count(1)
        # Issue #22: the threshold is drawn and the failing windows marked (legend entries).
        expect(chart.locator(".u-legend")).to_contain_text("fails at 0.5")
        expect(chart.locator(".u-legend")).to_contain_text("failing")
        # Drift by column for the latest window: every column's test and threshold, the
        # drifted first, and the worst columns' distributions, reference vs current.
        by_column = monitor.locator(".jp-cellops-drift-by-column")
        rows = by_column.locator(".jp-cellops-drift-columns tbody tr")
        expect(rows.first).to_have_class("jp-cellops-drifted")
        drifted = by_column.locator("tr.jp-cellops-drifted").evaluate_all(
            "rs => rs.map(r => r.dataset.column)")
        assert set(drifted) == {"income", "score"}
        expect(rows.filter(has_text="income")).to_contain_text("p < 0.05")
        expect(by_column.locator('figure[data-metric="income: reference vs current"] canvas')).to_have_count(1)
        # Any window on demand: the first one (calm) has nothing drifted.
        by_column.locator(".jp-cellops-window-pick").select_option(index=0)
        expect(by_column.locator("tr.jp-cellops-drifted")).to_have_count(0, timeout=15_000)
        expect(by_column.locator("figure")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "sidebar-monitoring-window.png"))
        by_column.locator(".jp-cellops-window-pick").select_option(index=3)
        expect(by_column.locator("tr.jp-cellops-drifted")).to_have_count(2, timeout=15_000)
        card = panel.locator(f'.jp-cellops-alert[data-alert-id="{alert.id}"]')
        expect(card).to_contain_text("churn-drift · drift")
        expect(card).to_contain_text("2 window(s)")
        assert low_contrast(page, MONITORING_TEXT) == []  # 4.5:1 in the light theme (issue #22)
        page.screenshot(path=str(ARTIFACTS / "sidebar-monitoring.png"))
        card.locator(".jp-cellops-ack").click()
        expect(card).to_contain_text("acknowledged", timeout=30_000)
        assert cellops.get_alert(alert.id).state == "acknowledged"
        use_theme(page, "JupyterLab Dark")
        if not panel.is_visible():
            tab.click()
        assert low_contrast(page, MONITORING_TEXT) == []  # and in the dark theme
        page.screenshot(path=str(ARTIFACTS / "sidebar-monitoring-dark.png"))
        note = monitor.locator(".jp-cellops-note").first
        assert note.evaluate("e => getComputedStyle(e).color") != \
            note.evaluate("e => getComputedStyle(document.body).backgroundColor")
        card.locator(".jp-cellops-resolve").click()
        expect(panel.locator(".jp-cellops-alert")).to_have_count(0, timeout=30_000)
