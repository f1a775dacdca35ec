"""End to end in JupyterLab and Chromium: a saved notebook's `%runs` output, reopened
(a new kernel that never saw the widget), is a live runs grid — sorted by clicking a
header, runs ticked to compare — in the light and dark themes, never "model not found"."""

from __future__ import annotations

import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from test_sidebar_e2e import ARTIFACTS, lab, lab_page, use_theme  # noqa: F401 - the lab fixture


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
