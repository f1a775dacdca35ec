"""End to end: the Registry tab in Chromium shows, per version, the local scoring servers
serving it and their request rate; an alias move carries the badge to the new version."""

from __future__ import annotations

import threading
import time

from serving_kit import Client, numeric_frame
from sklearn.linear_model import LogisticRegression
from test_sidebar_e2e import ARTIFACTS, lab, lab_page, use_theme  # noqa: F401

import cellops


def test_the_registry_tab_shows_which_versions_are_served_and_how_busy(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    X, y = numeric_frame()
    for c in (0.1, 1.0):
        cellops.register_model(LogisticRegression(C=c, max_iter=1000).fit(X, y), "churn-model",
                               X_sample=X.head())
    cellops.set_alias("churn-model", "champion", 1)
    server = cellops.serve("models:/churn-model@champion", poll_interval=0.2)
    stop = threading.Event()

    def traffic() -> None:
        client = Client(server.url)
        rows = X.head(3).to_numpy().tolist()
        while not stop.is_set():
            client.invocations({"instances": rows})
            time.sleep(0.02)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        with lab_page(base, token, "serving-failure.png") as (page, tab):
            tab.click()
            panel = page.locator("#cellops-sidebar")
            panel.locator(".jp-cellops-tabs button", has_text="Registry").click()
            model = panel.locator('.jp-cellops-model[data-model="churn-model"]')
            v1 = model.locator('.jp-cellops-version[data-version="1"]')
            v2 = model.locator('.jp-cellops-version[data-version="2"]')
            serving = v1.locator('[data-decorator="serving"]')
            expect(serving).to_contain_text("serving", timeout=30_000)
            expect(serving.locator(".jp-cellops-serving-url")).to_have_text(
                server.url.replace("http://", ""))
            expect(serving.locator(".jp-cellops-rate")).not_to_have_text(" 0 req/s ", timeout=30_000)
            expect(v2.locator('[data-decorator="serving"]')).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "sidebar-serving.png"))

            cellops.set_alias("churn-model", "champion", 2)  # the server follows; so does the tab
            expect(v2.locator('[data-decorator="serving"]')).to_contain_text("serving", timeout=30_000)
            expect(v1.locator('[data-decorator="serving"]')).to_have_count(0)

            use_theme(page, "JupyterLab Dark")
            if not panel.is_visible():
                tab.click()
            page.screenshot(path=str(ARTIFACTS / "sidebar-serving-dark.png"))
            url = v2.locator(".jp-cellops-serving-url")
            assert url.evaluate("e => getComputedStyle(e).color") != \
                url.evaluate("e => getComputedStyle(document.body).backgroundColor")

            stop.set()
            server.stop()
            panel.locator(".jp-cellops-tabs button", has_text="Runs").click()
            panel.locator(".jp-cellops-tabs button", has_text="Registry").click()
            expect(model.locator('[data-decorator="serving"]')).to_have_count(0, timeout=30_000)
    finally:
        stop.set()
        server.stop()
