"""One way to show values, in the CLI, the notebook and (the same cases in
labextension/test/format.test.ts) the sidebar."""

from __future__ import annotations

import math

import pytest

import cellops
from cellops.display import (
    STATUS_COLOURS,
    format_bytes,
    format_duration,
    format_number,
    run_summary_html,
    status_badge,
)


@pytest.mark.parametrize("value, text", [
    (0.912345, "0.9123"), (0.972028, "0.972"), (42, "42"), (143.0, "143"), (1234.5678, "1,235"),
    (12345678.9, "12,345,679"), (1.234e-5, "1.234e-5"), (1e20, "1.000e+20"), (-0.5, "-0.5"),
    (math.nan, "NaN"), (math.inf, "∞"), (None, ""), ("rf", "rf"), (True, "True"), (10**6, "1,000,000"),
])
def test_numbers_have_one_format(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("seconds, text", [(0.44, "440 ms"), (12.34, "12.3 s"), (245, "4m 05s"),
                                           (7380, "2h 03m"), (None, ""), (math.nan, "")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("n, text", [(812, "812 bytes"), (1, "1 byte"), (2_003_651, "2.0 MB"),
                                     (None, "")])
def test_byte_sizes(n, text):
    assert format_bytes(n) == text


def test_statuses_are_coloured_with_theme_variables_that_have_fallbacks():
    for status, (fg, bg) in STATUS_COLOURS.items():
        assert fg.startswith("var(--jp-") and "#" in fg and bg.startswith("var(--jp-")
        assert status in status_badge(status)
    assert "var(--jp-" in status_badge("SOMETHING NEW")


def test_a_run_summary_uses_the_stored_duration_and_escapes_text(ws):
    with cellops.start_run(name="<b>bold</b>") as run:
        run.log_metric("acc", 143.0)
    html = run_summary_html(run, notes=["a <note>"])
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "&lt;note&gt;" in html
    assert "acc=143" in html and "143.0000" not in html
    assert format_duration(run.duration) in html


def test_a_run_id_in_a_summary_opens_the_run_in_the_sidebar():
    from cellops.display import run_link

    link = run_link("0123456789abcdef")
    assert "data-commandlinker-command='cellops:open-run'" in link
    assert "&quot;runId&quot;: &quot;0123456789abcdef&quot;" in link and ">01234567</code>" in link


def test_the_runs_table_shows_varying_params_first_and_an_experiment_column_when_mixed():
    import pandas as pd

    from cellops.widgets.runs_table import param_columns, runs_html

    df = pd.DataFrame({
        "run_id": ["a" * 32, "b" * 32], "name": ["x", "y"], "experiment": ["e1", "e2"],
        "status": ["FINISHED", "FAILED"], "start_time": pd.to_datetime(["2026-01-01", "2026-01-02"]),
        "duration_s": [1.5, float("nan")], "metrics.acc": [0.97123, None],
        "params.alpha": ["1", "1"], "params.beta": ["1", "1"], "params.lr": ["0.1", "0.2"],
        "params.seed": ["0", None]})
    assert param_columns(df) == ["params.lr", "params.seed", "params.alpha", "params.beta"]
    assert param_columns(df, 1) == ["params.lr"]
    table = runs_html(df)
    heads = [h.split(">")[-1] for h in table.split("</th>")[:-1]]
    assert heads[:3] == ["run", "name", "experiment"] and heads[-4:] == ["lr", "seed", "alpha", "beta"]
    assert "0.9712" in table and "2026-01-01 00:00" in table and "white-space:nowrap" in table
    assert "experiment" not in runs_html(df.assign(experiment="e1")).split("</tr>")[0]
