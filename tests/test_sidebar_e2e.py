"""End to end: a real `jupyter lab` on 127.0.0.1, Debian's Chromium driven by Playwright.

The test seeds a workspace (runs with metric histories, a pipeline run), opens the cellops
panel, checks the runs and the pipeline appear, opens a run's detail and a step's executed
notebook, and saves screenshots under test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import cellops

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(root: Path) -> None:
    cellops.init_workspace(root)
    cellops.set_experiment("churn")
    for i, model in enumerate(["logreg", "forest", "boosting"]):
        with cellops.start_run(name=model, params={"model": model}) as run:
            for step in range(30):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metric("accuracy", 0.8 + 0.05 * i)
    for suffix in ("l1", "l2"):  # names that share their first 16 characters
        with cellops.start_run(name=f"logistic-balanced-{suffix}", experiment="tuning",
                               params={"penalty": suffix}) as run:
            run.log_metric("val_accuracy", 0.9 if suffix == "l1" else 0.91)
    cellops.set_experiment("churn")
    for name in ("prepare", "train"):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(f"import cellops\ncellops.log_metric('{name}_ok', 1.0)")]
        nbformat.write(nb, root / f"{name}.ipynb")
    (root / "pipeline.yaml").write_text(
        "name: churn-pipeline\nsteps:\n  - name: prepare\n    notebook: prepare.ipynb\n"
        "  - name: train\n    notebook: train.ipynb\n    needs: [prepare]\n")
    cellops.run_pipeline(root / "pipeline.yaml", progress=None)
    cellops.flush()


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    seed(root)
    port, token = free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    env.pop("CELLOPS_HOME", None)
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text())
            time.sleep(0.3)
    try:
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def use_theme(page, theme: str) -> None:
    """Switch the JupyterLab theme from the Settings menu, as a user does."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).hover()
    page.locator(".lm-Menu-itemLabel").get_by_text(theme, exact=True).click()
    page.wait_for_function(
        f"document.body.dataset.jpThemeName === {theme!r}", timeout=30_000)
    page.wait_for_timeout(500)


@contextlib.contextmanager
def lab_page(base: str, token: str, failure_shot: str):
    """JupyterLab open in Chromium with the cellops sidebar's button ready: yields the page
    and that button. A failure saves a screenshot as ``failure_shot``; page errors that
    name cellops fail the test."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (the README's test command does)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(f"{base}/lab?token={token}", timeout=90_000)
            tab = page.locator('.lm-TabBar-tab[data-id="cellops-sidebar"]')
            tab.wait_for(timeout=90_000)
            yield page, tab
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure_shot))
            raise
        finally:
            browser.close()
    assert not [e for e in errors if "cellops" in e.lower()], errors


def test_the_sidebar_shows_runs_a_run_detail_and_pipeline_steps(lab):
    from playwright.sync_api import expect

    base, token, root = lab
    with lab_page(base, token, "sidebar-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        panel.wait_for()
        # At the sidebar's default width: status, name and the key metric are all visible.
        rows = panel.locator(".jp-cellops-run")
        expect(rows.first).to_be_visible(timeout=30_000)
        names = rows.locator(".jp-cellops-run-label").all_inner_texts()
        assert {"logreg", "forest", "boosting", "churn-pipeline"} <= set(names)
        assert not {"prepare", "train"} & set(names)  # steps are folded under their pipeline
        header = panel.locator("th", has_text="accuracy")
        expect(header).to_be_visible()
        panel_box, header_box = panel.bounding_box(), header.bounding_box()
        assert header_box["x"] + header_box["width"] <= panel_box["x"] + panel_box["width"] + 1
        page.screenshot(path=str(ARTIFACTS / "sidebar-runs.png"))

        pipeline_row = rows.filter(has_text="churn-pipeline")
        pipeline_row.locator(".jp-cellops-expand").click()
        steps = panel.locator(".jp-cellops-child")
        expect(steps).to_have_count(2, timeout=15_000)
        expect(steps.first).to_contain_text("prepare")

        panel.locator(".jp-cellops-filter").fill("metrics.accuracy >")
        panel.locator(".jp-cellops-filter").press("Enter")
        box = panel.locator(".jp-cellops-error-box")
        expect(box).to_contain_text("Expected a value", timeout=15_000)
        expect(panel.locator(".jp-cellops-results.jp-mod-stale")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "sidebar-filter-error.png"))

        panel.locator(".jp-cellops-filter").fill("metrics.accuracy > 0.87")
        panel.locator(".jp-cellops-filter").press("Enter")
        expect(rows).to_have_count(1, timeout=15_000)
        expect(rows.first).to_contain_text("boosting")
        expect(panel.locator(".jp-cellops-error-box")).to_have_count(0)

        rows.first.click()
        detail = panel.locator(".jp-cellops-detail")
        expect(detail.locator("h2")).to_contain_text("boosting", timeout=15_000)
        expect(detail.locator('.jp-cellops-chart[data-metric="loss"] canvas').first).to_be_visible()
        expect(detail.locator('.jp-cellops-chart[data-metric="loss"] .u-axis').first).to_be_attached()
        expect(detail).to_contain_text("Parameters")
        page.screenshot(path=str(ARTIFACTS / "sidebar-run-detail.png"))
        detail.locator(".jp-cellops-back").click()
        panel.locator(".jp-cellops-filter").fill("")
        panel.locator(".jp-cellops-filter").press("Enter")
        expect(rows.filter(has_text="logreg")).to_have_count(1, timeout=15_000)

        panel.locator(".jp-cellops-tabs button", has_text="Pipelines").click()
        pipeline = panel.locator(".jp-cellops-pipeline").first
        expect(pipeline).to_contain_text("churn-pipeline", timeout=15_000)
        expect(pipeline.locator('.jp-cellops-step[data-step="prepare"]')).to_contain_text("ran")
        expect(pipeline.locator('.jp-cellops-step[data-step="train"]')).to_contain_text("ran")
        page.screenshot(path=str(ARTIFACTS / "sidebar-pipelines.png"))

        pipeline.locator('.jp-cellops-step[data-step="train"] .jp-cellops-open').click()
        expect(page.locator(".lm-TabBar-tab", has_text="-output.ipynb").first).to_be_visible(
            timeout=30_000)
        expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=30_000)
        assert list((root / "cellops-notebooks").glob("train-*-output.ipynb"))
        page.screenshot(path=str(ARTIFACTS / "sidebar-open-notebook.png"))

        # Runs ticked in the sidebar open side by side in the full-width view: every
        # column, the comparison with overlaid charts.
        panel.locator(".jp-cellops-tabs button", has_text="Runs").click()
        compare_button = panel.locator(".jp-cellops-compare-button")
        expect(compare_button).to_be_disabled()
        for name in ("logreg", "boosting"):
            rows.filter(has_text=name).locator("input[type=checkbox]").check()
        expect(compare_button).to_have_text("Compare (2)", timeout=15_000)
        expect(panel.locator(".jp-cellops-detail")).to_have_count(0)  # ticking opens no detail
        compare_button.click()
        main = page.locator("#cellops-runs-view")
        expect(main.locator(".jp-cellops-run").first).to_be_visible(timeout=30_000)
        expect(main.locator("th", has_text="experiment")).to_be_visible()
        compare = main.locator(".jp-cellops-compare")
        expect(compare).to_contain_text("Comparing 2 runs", timeout=15_000)
        expect(compare.locator("tr.jp-cellops-differs", has_text="model")).to_have_count(1)
        expect(compare.locator('.jp-cellops-chart[data-metric="loss"] canvas').first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "runs-view-compare-light.png"))

        use_theme(page, "JupyterLab Dark")
        page.screenshot(path=str(ARTIFACTS / "runs-view-compare-dark.png"))
        tab.click()
        page.screenshot(path=str(ARTIFACTS / "sidebar-runs-dark.png"))
        badge = panel.locator(".jp-cellops-badge-ok").first
        colour = badge.evaluate("e => getComputedStyle(e).color")
        background = badge.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour != background


# WCAG contrast of every chip, button, header and label the selector finds, against the
# background it is drawn on (translucent layers blended down to the first opaque one).
# ``prop`` is the colour property of the text: "color", or "fill" for SVG text (charts).
CONTRAST_JS = """([selector, prop]) => {
  const parse = c => {
    let m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (m) { const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
             return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = /color\\(srgb ([^)]+)\\)/.exec(c);
    if (m) { const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
             return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    return null;
  };
  const blend = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]));
  const background = e => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = blend(c, out);
    return out;
  };
  const lum = c => { const a = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                     return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; };
  return [...document.querySelectorAll(selector)]
    .filter(e => e.offsetParent !== null && !e.disabled && (e.innerText || e.textContent || '').trim()
                 && getComputedStyle(e).visibility !== 'hidden')
    .map(e => {
      const bg = background(e);
      const style = getComputedStyle(e);
      const fg = blend(parse(style[prop || 'color']), bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      return { text: (e.innerText || e.textContent).trim().slice(0, 30), cls: String(e.className.baseVal ?? e.className),
               ratio: (hi + 0.05) / (lo + 0.05) };
    });
}"""
LEGIBLE = (".jp-cellops-panel .jp-cellops-badge, .jp-cellops-panel .jp-cellops-step, "
           ".jp-cellops-panel .jp-Button, .jp-cellops-panel th, .jp-cellops-panel .jp-cellops-sort, "
           ".jp-cellops-panel .jp-cellops-sub, .jp-cellops-panel .jp-cellops-meta, "
           ".jp-cellops-panel .jp-cellops-tabs button, .jp-cellops-panel .jp-cellops-note, "
           ".jp-cellops-panel .jp-cellops-error-box p, .jp-cellops-panel .jp-cellops-empty")


def low_contrast(page, selector: str = LEGIBLE, prop: str = "color") -> list[dict]:
    """What fails WCAG AA for text (4.5:1) among the sidebar's chips, buttons and labels
    (or what ``selector`` finds, its colour in ``prop``)."""
    found = page.evaluate(CONTRAST_JS, [selector, prop])
    assert found, f"nothing measured: {selector} matches nothing visible"
    return [f for f in found if f["ratio"] < 4.5]


def test_the_sidebar_reads_at_its_default_width_in_both_themes(lab):
    """Issue #22: at JupyterLab's default sidebar width, names are readable, the tabs stay
    on one row, headers say what they sort by, the metric column can be picked from the
    metrics the runs have, a filter error wraps with its mark on the offending character,
    and every chip, button and label reaches 4.5:1 contrast in the light and dark themes."""
    from playwright.sync_api import expect

    base, token, root = lab
    with lab_page(base, token, "sidebar-default-width-failure.png") as (page, tab):
        tab.click()
        panel = page.locator("#cellops-sidebar")
        rows = panel.locator(".jp-cellops-run")
        expect(rows.first).to_be_visible(timeout=30_000)
        assert panel.bounding_box()["width"] < 300  # JupyterLab's default, not widened

        runs_tab = panel.locator(".jp-cellops-runs-tab")
        assert runs_tab.evaluate("t => t.scrollWidth <= t.clientWidth + 1")  # nothing cut at the right
        bar = panel.locator(".jp-cellops-tabs")
        tops = bar.locator("button").evaluate_all("bs => bs.map(b => b.offsetTop)")
        assert len(tops) >= 4 and len(set(tops)) == 1, tops  # one row of tabs
        assert bar.evaluate("b => b.scrollWidth <= b.clientWidth + 1")  # none hidden
        expect(panel.locator(".jp-cellops-sort", has_text="started")).to_have_attribute(
            "title", "Sort by start time (click again to reverse)")

        panel.locator(".jp-cellops-experiment").select_option("tuning")
        expect(rows).to_have_count(2, timeout=15_000)
        names = panel.locator(".jp-cellops-run-name")
        for i in range(2):
            full = names.nth(i).evaluate("e => e.scrollHeight <= e.clientHeight + 1 && "
                                         "e.scrollWidth <= e.clientWidth + 1")
            assert full, names.nth(i).inner_text()
        assert set(panel.locator(".jp-cellops-run-label").all_inner_texts()) == {
            "logistic-balanced-l1", "logistic-balanced-l2"}
        assert rows.first.locator(".jp-cellops-name").get_attribute("title").startswith(
            "logistic-balanced-l2\n")  # the hover shows the name first, then the id
        picker = panel.locator(".jp-cellops-metric-pick")
        expect(picker).to_have_value("val_accuracy")  # the metric these runs have
        expect(rows.first.locator(".jp-cellops-num")).to_have_text("0.91")

        panel.locator(".jp-cellops-experiment").select_option("")
        expect(rows.filter(has_text="forest")).to_have_count(1, timeout=15_000)
        picker.select_option("val_accuracy")  # a page of both: the user picks the column
        expect(rows.filter(has_text="logistic-balanced-l1").locator(".jp-cellops-num")).to_have_text("0.9")
        picker.select_option("accuracy")
        expect(rows.filter(has_text="boosting").locator(".jp-cellops-num")).to_have_text("0.9")

        flt = panel.locator(".jp-cellops-filter")
        flt.fill("params.model = 'a-rather-long-model-name' and metrics.accuracy ~ 0.9")
        flt.press("Enter")
        box = panel.locator(".jp-cellops-error-box")
        expect(box).to_contain_text("Unexpected character", timeout=15_000)
        expect(box.locator(".jp-cellops-error-at")).to_have_text("~")
        assert box.evaluate("b => b.scrollWidth <= b.clientWidth + 1")  # wrapped, not clipped
        page.screenshot(path=str(ARTIFACTS / "sidebar-filter-error-default-width.png"))
        flt.fill("")
        flt.press("Enter")
        expect(box).to_have_count(0, timeout=15_000)

        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            if theme != "JupyterLab Light":
                use_theme(page, theme)
                if not panel.is_visible():
                    tab.click()
            panel.locator(".jp-cellops-tabs button", has_text="Runs").click()
            expect(rows.first).to_be_visible(timeout=15_000)
            assert low_contrast(page) == [], theme
            page.screenshot(path=str(ARTIFACTS / f"sidebar-runs-{suffix}.png"))
            panel.locator(".jp-cellops-tabs button", has_text="Pipelines").click()
            expect(panel.locator(".jp-cellops-step").first).to_be_visible(timeout=15_000)
            assert low_contrast(page) == [], theme
            page.screenshot(path=str(ARTIFACTS / f"sidebar-pipelines-{suffix}.png"))
