"""End to end in JupyterLab and Chromium: a saved notebook's `%runs` output, reopened
(a new kernel that never saw the widget), is a live runs grid — sorted by clicking a
header, runs ticked to compare — in the light and dark themes, never "model not found"."""

from __future__ import annotations

import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from test_sidebar_e2e import ARTIFACTS, lab, lab_page, low_contrast, use_theme  # noqa: F401 - the lab fixture


def test_a_saved_runs_output_is_a_live_grid_after_the_kernel_is_gone(lab):  # noqa: F811
    from playwright.sync_api import expect

    base, token, root = lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("%load_ext cellops"),
                nbformat.v4.new_code_cell("%runs -e churn"),
                nbformat.v4.new_code_cell(
                    "%%track -n linked -e churn\nfrom sklearn.linear_model import LogisticRegression\n"
                    "model = LogisticRegression(C=0.5).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(root)}}).execute()
    nb.metadata.pop("widgets", None)  # saved as JupyterLab saves it: no widget state
    nbformat.write(nb, root / "runs.ipynb")
    # Trusted, as a notebook the user ran and saved: its HTML outputs are not sanitised.
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(root / "runs.ipynb")], check=True,
                   capture_output=True)
    with lab_page(base, token, "notebook-runs-failure.png") as (page, _):
        page.goto(f"{base}/lab/tree/runs.ipynb?token={token}", timeout=90_000)
        grid = page.locator(".jp-cellops-output")
        rows = grid.locator("tr.jp-cellops-run")
        expect(rows).to_have_count(5, timeout=60_000)  # three runs, the pipeline, the cell
        assert page.get_by_text("Error displaying widget").count() == 0
        # Sort by accuracy: the arrow shows the order; again, and it flips.
        header = grid.locator("th.jp-cellops-sortable", has_text="accuracy")

        def order() -> list[str]:
            names = [t.split()[0] for t in rows.locator("td.jp-cellops-first").all_inner_texts()]
            return [n for n in names if n in ("logreg", "forest", "boosting")]

        header.click()
        expect(header).to_contain_text("▼", timeout=15_000)
        expect(rows.first).to_contain_text("boosting", timeout=15_000)
        assert order() == ["boosting", "forest", "logreg"]
        header.click()
        expect(header).to_contain_text("▲", timeout=15_000)
        page.wait_for_function("() => [...document.querySelectorAll('.jp-cellops-output "
                               "td.jp-cellops-first')].map(t => t.innerText).join(' ')"
                               ".indexOf('logreg') < [...document.querySelectorAll("
                               "'.jp-cellops-output td.jp-cellops-first')].map(t => t.innerText)"
                               ".join(' ').indexOf('boosting')", timeout=15_000)
        assert order() == ["logreg", "forest", "boosting"]
        # Other params on demand: the picker lists every param key; ticking one adds its
        # column, "Default" goes back to the params that vary.
        columns = grid.locator("details.jp-cellops-columns")
        before = grid.locator("thead th").count()
        columns.locator("summary").click()
        picks = columns.locator("label")
        expect(picks.first).to_be_visible()
        unshown = [t.strip() for t, box in zip(picks.all_inner_texts(), picks.locator("input").all())
                   if not box.is_checked()]
        if unshown:
            columns.locator(f'input[data-focus-key="param-column-{unshown[0]}"]').check()
            expect(grid.locator("thead th")).to_have_count(before + 1)
            assert unshown[0] in [t.strip(" ▲▼") for t in grid.locator("thead th").all_inner_texts()]
            expect(columns).to_have_attribute("open", "")  # stays open while picking
            columns.locator(".jp-cellops-columns-reset").click()
            expect(grid.locator("thead th")).to_have_count(before)
        shown = columns.locator("input:checked").first.get_attribute("data-focus-key")
        columns.locator(f'input[data-focus-key="{shown}"]').click()  # hide a shown one
        expect(grid.locator("thead th")).to_have_count(before - 1)
        columns.locator(".jp-cellops-columns-reset").click()
        columns.locator("summary").click()
        # Tick two rows: the comparison opens below the grid, with the overlaid history chart.
        grid.locator("tr.jp-cellops-run", has_text="logreg").locator("input[type=checkbox]").check()
        grid.locator("tr.jp-cellops-run", has_text="boosting").locator("input[type=checkbox]").check()
        compare = grid.locator(".jp-cellops-compare")
        expect(compare).to_contain_text("Comparing 2 runs", timeout=30_000)
        expect(compare.locator("canvas").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "notebook-runs-light.png"))
        use_theme(page, "JupyterLab Dark")
        expect(compare).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "notebook-runs-dark.png"))
        # The tracked cell's summary: its run id opens the run in the sidebar.
        page.locator("[data-commandlinker-command='cellops:open-run']").first.click()
        detail = page.locator("#cellops-sidebar")
        expect(detail.locator("h2, h3", has_text="linked").first).to_be_visible(timeout=30_000)
        # The param the user set is shown; the ones left at their defaults are folded away.
        params = detail.locator("section", has=page.locator("h3", has_text="Parameters"))
        expect(params.locator("table.jp-cellops-kv").first).to_contain_text("C0.5")
        folded = params.locator("details.jp-cellops-defaults")
        expect(folded.locator("summary")).to_contain_text("left at their defaults")
        assert not folded.locator("table").is_visible()
        page.screenshot(path=str(ARTIFACTS / "sidebar-run-params.png"))


# The category tick labels of a plotly figure's first parallel axis (the runs).
CATEGORY_TICKS_JS = """el => [...el.querySelectorAll('.parcoords .y-axis')][0]
  ? [...[...el.querySelectorAll('.parcoords .y-axis')][0].querySelectorAll('.tick text')]
      .map(t => t.textContent) : []"""
# Every text of a figure that is not wholly inside its drawing (clipped by its edges).
TEXT_INSIDE_JS = """el => {
  const svg = el.querySelector('.main-svg').getBoundingClientRect();
  return [...el.querySelectorAll('.main-svg text')].filter(t => t.textContent.trim()
      && getComputedStyle(t).visibility !== 'hidden').map(t => [t.textContent, t.getBoundingClientRect()])
    .filter(([_, b]) => b.width > 0 && (b.left < svg.left - 1 || b.right > svg.right + 1
                                        || b.top < svg.top - 1 || b.bottom > svg.bottom + 1))
    .map(([text]) => text);
}"""

# The plotly buttons (linear | log, raw | smooth): text fill against the button's own fill
# over the notebook's background, WCAG ratio; those under 4.5:1.
BUTTON_CONTRAST_JS = """() => {
  const rgba = c => { const p = /rgba?\\(([^)]+)\\)/.exec(c)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
                      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const blend = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]));
  const lum = c => { const a = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                     return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; };
  const under = e => {  // the opaque background the figure is drawn on
    for (let n = e; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] >= 1) return c;
    }
    return [255, 255, 255, 1];
  };
  return [...document.querySelectorAll('.jp-RenderedPlotly .updatemenu-button')].map(b => {
    const page = under(b.closest('.jp-RenderedPlotly'));
    const rect = getComputedStyle(b.querySelector('rect'));
    const fill = rgba(rect.fill); fill[3] *= Number(rect.fillOpacity || 1);
    const bg = blend(fill, page);
    const fg = blend(rgba(getComputedStyle(b.querySelector('text')).fill), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    return [b.textContent, (hi + 0.05) / (lo + 0.05)];
  }).filter(([_, ratio]) => ratio < 4.5);
}"""


def test_live_chart_then_interactive_record_and_compare_charts(lab):  # noqa: F811
    """Run in JupyterLab as a user does: a slow tracked loop shows the live bqplot chart
    while it runs; when it ends, the plotly record (hover values, log scale, smoothing)
    replaces it; ``%compare`` of three runs draws the histories overlaid and the parallel
    coordinates. Both themes are screenshotted; reloaded without a kernel, the charts stay."""
    from playwright.sync_api import expect

    base, token, root = lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    loop = ("%%track -n {name} -e charts\nimport math, random, time, cellops\n"
            "cellops.log_param('lr', {lr})\nrandom.seed({lr})\n"
            "for step in range({steps}):\n"
            "    noise = random.random() * 0.2\n"
            "    cellops.log_metrics({{'train_loss': 1 / math.sqrt(step + 1) + noise,\n"
            "                         'val_loss': 1.2 / math.sqrt(step + 1) + noise}}, step=step)\n"
            "    time.sleep({pause})")
    nb.cells = [nbformat.v4.new_code_cell("%load_ext cellops"),
                nbformat.v4.new_code_cell(loop.format(name="slow", lr=0.1, steps=300, pause=0.04)),
                nbformat.v4.new_code_cell(loop.format(name="quick", lr=0.3, steps=150,
                                                      pause=0.04)),
                nbformat.v4.new_code_cell(loop.format(name="third", lr=0.9, steps=100, pause=0)),
                nbformat.v4.new_code_cell(
                    "import cellops\nids = ' '.join(cellops.search_runs(experiment='charts')"
                    "['run_id'])\n%compare {ids} -m val_loss"),
                nbformat.v4.new_code_cell(
                    "from sklearn.datasets import load_diabetes\n"
                    "X = load_diabetes(as_frame=True).frame\n"
                    "cellops.drift(X.iloc[:220], X.iloc[220:] * 1.3)")]
    nbformat.write(nb, root / "charts.ipynb")
    with lab_page(base, token, "notebook-charts-failure.png") as (page, _):
        page.goto(f"{base}/lab/tree/charts.ipynb?token={token}", timeout=90_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(
            timeout=60_000)  # the kernel is up
        page.wait_for_timeout(1000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        slow = cells.nth(1)
        # While the loop runs: the live chart, one bqplot figure with both losses.
        live = slow.locator(".cellops-live .bqplot")
        expect(live.first).to_be_visible(timeout=60_000)
        expect(live.first).to_contain_text("loss")
        # The losses are noisy: drawn faint under their moving average, said in the title.
        expect(live.first).to_contain_text("loss (smoothed)", timeout=10_000)
        # The legend is under the plot, never over a line (bqplot's own is in the plot area).
        legend = slow.locator(".cellops-live-legend:visible").first
        expect(legend).to_contain_text("train_loss")
        expect(legend).to_contain_text("val_loss")
        assert live.first.locator(".legendtext").count() == 0
        figure_box, legend_box = live.first.bounding_box(), legend.bounding_box()
        assert legend_box["y"] >= figure_box["y"] + figure_box["height"] - 1
        page.screenshot(path=str(ARTIFACTS / "notebook-live-chart-light.png"))
        # The dark theme, while the loop still runs: light ink on the dark background.
        use_theme(page, "JupyterLab Dark")
        expect(live.first).to_be_visible()
        ink = live.first.locator(".tick text").first.evaluate(
            "el => getComputedStyle(el).fill.match(/[0-9.]+/g).slice(0, 3).map(Number)")
        assert sum(ink) / 3 > 128, ink  # light ticks, as the dark theme's text
        title = live.first.locator(".mainheading").first.evaluate(
            "el => getComputedStyle(el).fill.match(/[0-9.]+/g).slice(0, 3).map(Number)")
        assert max(title) - min(title) < 30, title  # the theme's grey, not bqplot's orange
        assert low_contrast(page, ".cellops-live-legend span") == []
        page.screenshot(path=str(ARTIFACTS / "notebook-live-chart-dark.png"))
        use_theme(page, "JupyterLab Light")
        # Log scale while the loop still runs (the kernel is busy): the toggle shows the
        # log figures, in the browser alone.
        slow.locator(".cellops-live button", has_text="log").click()
        shown = slow.locator(".cellops-live .bqplot:visible")
        expect(shown).to_have_count(1)
        ticks = shown.locator(".axis").nth(1).locator(".tick text").all_text_contents()
        assert {"0.2", "0.5", "1"} <= set(ticks) and "0.4" not in ticks, ticks  # 1-2-5
        assert shown.locator(".line").first.evaluate("el => el.getAttribute('d').length") > 100
        page.screenshot(path=str(ARTIFACTS / "notebook-live-chart-log.png"))
        # The next slow cell takes the same widgets (made once per kernel), in a new
        # output, on the scale the user picked.
        quick = cells.nth(2)
        shown = quick.locator(".cellops-live .bqplot:visible")
        expect(shown).to_have_count(1, timeout=60_000)
        expect(shown).to_contain_text("loss")
        ticks = shown.locator(".axis").nth(1).locator(".tick text").all_text_contents()
        assert "0.5" in ticks and "0.4" not in ticks, ticks  # still the log scale
        quick.locator(".cellops-live button", has_text="linear").click()
        expect(quick.locator(".cellops-live .bqplot:visible")).to_have_count(1)
        # When it ends: the plotly record replaces the widget.
        compare = cells.nth(4)
        expect(compare.locator(".jp-RenderedPlotly .parcoords").first).to_be_visible(timeout=90_000)
        slow.scroll_into_view_if_needed()
        record = slow.locator(".jp-RenderedPlotly .main-svg").first
        expect(record).to_be_visible(timeout=60_000)
        expect(slow.locator(".cellops-live")).to_have_count(0)
        expect(quick.locator(".cellops-live")).to_have_count(0)
        expect(quick.locator(".jp-RenderedPlotly .main-svg").first).to_be_visible()
        plot = slow.locator(".js-plotly-plot").first
        assert plot.evaluate("el => el.data.map(t => t.name)") == ["train_loss", "val_loss"]
        assert len(plot.locator(".ytick text").all_text_contents()) >= 3
        assert plot.evaluate("el => el.data[0].x.length") == 300
        # Hover values: the unified hover names both lines at a step.
        box = plot.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        expect(plot.locator(".hoverlayer")).to_contain_text("val_loss", timeout=10_000)
        # Log scale and smoothing, in the browser.
        plot.locator(".updatemenu-button", has_text="log").click()
        page.wait_for_function("() => document.querySelector('.js-plotly-plot')"
                               "._fullLayout.yaxis.type === 'log'", timeout=10_000)
        ticks = plot.locator(".ytick text").all_text_contents()
        assert "0.2" in ticks and "2" not in ticks, ticks  # values, not plotly's bare digits
        raw = plot.evaluate("el => el.data[0].y.slice(0, 50)")
        plot.locator(".updatemenu-button", has_text="smoother").click()
        smooth = plot.evaluate("el => el.data[0].y.slice(0, 50)")
        assert smooth != raw and max(smooth) - min(smooth) < max(raw) - min(raw)
        # %compare: histories overlaid per metric, one line per run, and the sweep view.
        history = compare.locator(".js-plotly-plot").last
        expect(history.locator(".legend")).to_contain_text("quick")
        names = history.evaluate("el => el.data.map(t => t.name)")
        assert sum("slow" in n for n in names) == 2  # train_loss and val_loss panels
        assert page.get_by_text("Error displaying").count() == 0
        # Parallel coordinates: the runs' names in full, inside the figure.
        parcoords = compare.locator(".js-plotly-plot").first
        names = parcoords.evaluate(CATEGORY_TICKS_JS)
        assert {n.split(" (")[0] for n in names} == {"slow", "quick", "third"}, names
        assert parcoords.evaluate(TEXT_INSIDE_JS) == []
        # %drift: the distributions read without rotated, clipped bin labels — numbers on
        # a numeric axis with a few ticks, categories in four digits.
        drift = cells.nth(5).locator(".js-plotly-plot").first
        expect(drift).to_be_visible(timeout=60_000)
        drift.scroll_into_view_if_needed()
        assert drift.evaluate(TEXT_INSIDE_JS) == []
        rotated = drift.locator(".xaxislayer-above text").evaluate_all(
            "ts => ts.filter(t => /rotate\\((?!0)/.test(t.getAttribute('transform') || ''))"
            ".map(t => t.textContent)")
        assert rotated == [], rotated
        bins = drift.locator(".xaxislayer-above text").all_text_contents()
        assert "-0.04464" in bins and len(bins) < 60, bins  # sex, not -0.0446416…; few ticks
        charts_text = (".jp-RenderedPlotly .xtick text, .jp-RenderedPlotly .ytick text, "
                       ".jp-RenderedPlotly .parcoords text, .jp-RenderedPlotly .annotation-text, "
                       ".jp-RenderedPlotly .legendtext")
        assert low_contrast(page, charts_text, "fill") == []
        assert page.evaluate(BUTTON_CONTRAST_JS) == []
        page.screenshot(path=str(ARTIFACTS / "notebook-drift-light.png"))
        compare.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "notebook-charts-light.png"))
        use_theme(page, "JupyterLab Dark")
        slow.scroll_into_view_if_needed()
        expect(slow.locator(".jp-RenderedPlotly .main-svg").first).to_be_visible()
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "notebook-record-dark.png"))
        compare.scroll_into_view_if_needed()
        page.wait_for_timeout(800)
        assert low_contrast(page, charts_text, "fill") == []  # every chart label, dark theme
        assert page.evaluate(BUTTON_CONTRAST_JS) == []  # the chosen button too
        page.screenshot(path=str(ARTIFACTS / "notebook-charts-dark.png"))
        drift.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "notebook-drift-dark.png"))
        use_theme(page, "JupyterLab Light")
        # Saved, the kernel shut down, reopened: the charts are still interactive figures.
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1500)
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Shut Down Kernel", exact=True).click()
        saved = nbformat.read(root / "charts.ipynb", as_version=4)
        page.reload()
        # No PNG was saved, so plotly's renderer draws the figure from its JSON at once.
        expect(page.locator(".jp-RenderedPlotly .main-svg").first).to_be_visible(timeout=90_000)
    assert not saved.metadata.get("widgets")  # no live widget state left in the file
    charts = [o for c in saved.cells for o in c.get("outputs", [])
              if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(charts) >= 6  # three records, the histories, the parallel axes, the drift
    for output in charts:  # one static copy each: the SVG, not also plotly's PNG
        assert "image/png" not in output["data"] and "<svg" in output["data"]["text/html"]
        assert output["metadata"]["cellops"]["chart"]
    assert (root / "charts.ipynb").stat().st_size < 600_000  # 14 outputs: figures and SVGs


def test_a_tracked_cells_traceback_names_the_cell_as_its_prompt_does(lab):  # noqa: F811
    """Issue #22: a ``%%track`` traceback says "Cell In[N]" for the cell shown as [N],
    the first time and when the cell is run again (here with the live chart drawn)."""
    from playwright.sync_api import expect

    base, token, root = lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("%load_ext cellops"),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell(
                    "%%track -n failing\nimport cellops, time\nfor i in range(40):\n"
                    "    cellops.log_metric('loss', 1 / (i + 1), step=i)\n    time.sleep(0.06)\n"
                    "raise ValueError('boom')")]
    nbformat.write(nb, root / "traceback.ipynb")
    with lab_page(base, token, "traceback-failure.png") as (page, _):
        page.goto(f"{base}/lab/tree/traceback.ipynb?token={token}", timeout=90_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(
            timeout=60_000)
        page.wait_for_timeout(1000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        cell = page.locator(".jp-Notebook .jp-CodeCell").nth(2)
        error = cell.locator(".jp-OutputArea-output", has_text="ValueError")
        for prompt in ("[3]:", "[4]:"):
            expect(cell.locator(".jp-InputPrompt")).to_have_text(prompt, timeout=60_000)
            expect(error).to_contain_text(f"Cell In{prompt[:-1]}, line 6", timeout=60_000)
            expect(error).to_contain_text("----> 6 raise ValueError('boom')")
            if prompt == "[3]:":  # run it again
                cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
