"""Drift statistics against scipy and hand computations, Evidently's auto-selection rules at
their boundaries, the report, and what bad input gets."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from scipy.spatial import distance

import cellops
from cellops.errors import InvalidArgumentError
from cellops.monitoring import stats
from cellops.monitoring.stats import CATEGORICAL, NUMERIC, Column

RNG = np.random.default_rng(7)
A = RNG.normal(0, 1, 400)
B = RNG.normal(0.3, 1.2, 300)


def num(x) -> Column:
    return Column(np.asarray(x, dtype=float), NUMERIC)


def cat(x) -> Column:
    return Column(pd.Series(list(x)), CATEGORICAL)


def test_ks_anderson_and_cramer_von_mises_are_scipys():
    assert stats.ks(num(A), num(B)) == pytest.approx(sst.ks_2samp(A, B).pvalue)
    assert stats.cramer_von_mises(num(A), num(B)) == pytest.approx(
        sst.cramervonmises_2samp(A, B).pvalue)
    assert stats.anderson(num(A), num(B)) == pytest.approx(sst.anderson_ksamp([A, B]).pvalue, abs=1e-9)


def test_wasserstein_is_normed_by_the_reference_std_and_exact_or_bounded():
    expected = sst.wasserstein_distance(A, B) / np.std(A)
    assert stats.wasserstein(num(A), num(B), 0.1) == pytest.approx(expected, rel=1e-9)
    big_a, big_b = RNG.normal(0, 1, 150_000), RNG.normal(0.05, 1, 150_000)
    exact = sst.wasserstein_distance(big_a, big_b)
    approx, bound = stats.wasserstein_binned(big_a, big_b)
    assert abs(approx - exact) <= bound and bound < 1e-3
    # Far from the threshold the histogram answers; its value is within the bound.
    got = stats.wasserstein(num(big_a), num(big_b), 0.5)
    assert abs(got - exact / np.std(big_a)) <= bound / np.std(big_a)
    # A threshold inside the bound makes the exact computation decide.
    at = exact / np.std(big_a)
    assert stats.wasserstein(num(big_a), num(big_b), at + 1e-6) == pytest.approx(at, rel=1e-9)


def test_a_constant_reference_is_normed_by_a_floor_not_zero():
    assert stats.wasserstein(num([2.0] * 50), num([2.0] * 49 + [3.0]), 0.1) == pytest.approx(
        (1 / 50) / 0.001)


def test_chi_squared_is_the_test_of_homogeneity_of_both_samples_by_hand():
    ref = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    cur = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    table = np.array([[60, 30, 10], [40, 40, 20]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = np.sum((table - expected) ** 2 / expected)
    assert stats.chisquare(cat(ref), cat(cur)) == pytest.approx(sst.chi2.sf(statistic, 2))
    assert stats.chisquare(cat(["a"] * 5), cat(["a"] * 9)) == 1.0  # one value on both sides


def test_chi_squared_bins_a_continuous_column_at_the_reference_deciles():
    ref, cur = RNG.normal(0, 1, 1000), RNG.normal(0, 1, 500)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    table = np.array([np.bincount(np.searchsorted(edges, x, "right"), minlength=10)
                      for x in (ref, cur)])
    assert table[0].min() >= 99  # deciles: a tenth of the reference in each bin
    assert stats.chisquare(num(ref), num(cur)) == pytest.approx(
        sst.chi2_contingency(table, correction=False)[1])
    # beyond the reference's range: counted in the open outer bins, and drift is seen
    assert stats.chisquare(num(ref), num(cur + 5)) < 1e-12
    # a small current sample gets fewer bins (five values a bin at least)
    assert stats.quantile_binned(num(ref), num(cur[:12]))[0].size == 2


def test_the_z_test_refuses_a_column_of_more_than_two_values():
    frame = pd.DataFrame({"city": ["a", "b", "c"] * 20})
    with pytest.raises(InvalidArgumentError, match=r"Column 'city': the z test compares the "
                                                   r"shares of two values.*has 3 distinct"):
        cellops.drift(frame, frame, method="z")


def _mixed_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "normal": rng.normal(10, 2, n), "lognormal": rng.lognormal(0, 1, n),
        "count": rng.poisson(30, n), "uniform": rng.uniform(0, 1, n),
        "rounded": np.round(rng.normal(0, 1, n), 1),
        "color": rng.choice(["red", "green", "blue", "grey"], n, p=[.4, .3, .2, .1]),
        "flag": rng.choice(["yes", "no"], n, p=[.3, .7]),
        "level": rng.integers(0, 4, n),
    })


def _columns_for(test, frame):
    from cellops.monitoring.drift import column_kind

    return [c for c in frame if column_kind(frame[c], set()) in test.kinds
            and (test.name != "z" or frame[c].nunique() == 2)]


@pytest.mark.parametrize("method", sorted(stats.drift_tests()))
def test_every_method_keeps_to_its_false_positive_rate_on_random_halves_and_sees_a_shift(method):
    """Random halves of one data set are the null hypothesis: p-value tests at p < 0.05
    and distances at their thresholds flag at most 10% of columns over 20 splits (the
    chi-squared test flagged 79% before numeric columns were binned), and all of them flag
    every column of a real shift."""
    test = stats.drift_tests()[method]
    data = _mixed_data(4000, 0)
    columns = _columns_for(test, data)
    threshold = 0.05 if test.p_value else None
    flagged = []
    for split in range(20):
        order = np.random.default_rng(split).permutation(len(data))
        half = len(data) // 2
        report = cellops.drift(data.iloc[order[:half]], data.iloc[order[half:]], columns=columns,
                               method=method, threshold=threshold)
        flagged += list(report.columns["drifted"])
    assert len(flagged) == 20 * len(columns) and np.mean(flagged) <= 0.10, np.mean(flagged)

    shifted, rng = data.copy(), np.random.default_rng(1)
    for c in ("normal", "lognormal", "count", "uniform", "rounded"):
        shifted[c] = data[c] + data[c].std()
    shifted["color"] = rng.choice(["red", "green", "blue", "grey"], len(data), p=[.1, .2, .3, .4])
    shifted["flag"] = rng.choice(["yes", "no"], len(data), p=[.6, .4])
    shifted["level"] = rng.choice(4, len(data), p=[.1, .2, .3, .4])
    report = cellops.drift(data.iloc[:2000], shifted.iloc[2000:], columns=columns, method=method)
    assert report.columns["drifted"].all(), report.columns[["column", "statistic"]]


@pytest.mark.parametrize("method", ["chisquare", "ks", "anderson", "cramer_von_mises"])
def test_p_value_tests_on_random_halves_of_a_real_data_set(method):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).data  # 569 rows, 30 continuous columns
    flagged = []
    for split in range(20):
        order = np.random.default_rng(split).permutation(len(data))
        report = cellops.drift(data.iloc[order[:284]], data.iloc[order[284:]], method=method,
                               threshold=0.05)
        flagged += list(report.columns["drifted"])
    assert np.mean(flagged) <= 0.10


def test_a_distance_test_on_small_samples_says_it_reads_noise_as_drift():
    frame = pd.DataFrame({"x": RNG.normal(0, 1, 600)})
    report = cellops.drift(frame.iloc[:300], frame.iloc[300:], method="wasserstein")
    assert any("fewer than 1,000 rows" in note and "method='ks'" in note for note in report.notes)
    assert not cellops.drift(frame.iloc[:300], frame.iloc[300:], method="ks").notes


def test_z_test_of_two_proportions_by_hand():
    ref, cur = ["y"] * 30 + ["n"] * 70, ["y"] * 45 + ["n"] * 55
    p1, p2 = 0.30, 0.45  # share of "y" (not the first value in order, "n")
    pooled = (30 + 45) / 200
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert stats.z(cat(ref), cat(cur)) == pytest.approx(2 * (1 - sst.norm.cdf(abs(z))))
    assert stats.z(cat(["a"] * 10), cat(["a"] * 5)) == 1.0  # one value, the same: no drift


def test_binned_distances_by_hand_on_categories():
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 80 + ["b"] * 10 + ["new"] * 10
    r, c = np.array([0.5, 0.5, 0.0]), np.array([0.8, 0.1, 0.1])
    assert stats.jensenshannon(cat(ref), cat(cur)) == pytest.approx(distance.jensenshannon(r, c))
    rf = np.array([0.5, 0.5, 0.0001])  # an empty share becomes 1e-4 for PSI and KL
    assert stats.psi(cat(ref), cat(cur)) == pytest.approx(np.sum((rf - c) * np.log(rf / c)))
    assert stats.kl_div(cat(ref), cat(cur)) == pytest.approx(sst.entropy(rf, c))
    assert stats.hellinger(cat(ref), cat(cur)) == pytest.approx(
        math.sqrt(1 - (math.sqrt(0.5 * 0.8) + math.sqrt(0.5 * 0.1))))


def test_numeric_columns_with_many_values_are_binned_by_sturges_over_both_samples():
    both = np.concatenate([A, B])
    edges = np.histogram_bin_edges(both, bins="sturges")
    r = np.histogram(A, edges)[0] / A.size
    c = np.histogram(B, edges)[0] / B.size
    assert stats.jensenshannon(num(A), num(B)) == pytest.approx(distance.jensenshannon(r, c))


@pytest.mark.parametrize("ref_rows,values,kind,expected", [
    (1000, 6, NUMERIC, "ks"),
    (1000, 5, NUMERIC, "chisquare"),
    (1000, 2, NUMERIC, "z"),
    (1000, 3, CATEGORICAL, "chisquare"),
    (1000, 2, CATEGORICAL, "z"),
    (1001, 6, NUMERIC, "wasserstein"),
    (1001, 5, NUMERIC, "jensenshannon"),
    (1001, 2, CATEGORICAL, "jensenshannon"),
    (1001, 30, CATEGORICAL, "jensenshannon"),
])
def test_the_auto_choice_at_its_boundaries(ref_rows, values, kind, expected):
    ref = np.arange(ref_rows) % values
    cur = np.arange(500) % values
    if kind == NUMERIC:
        chosen = stats.auto_test(num(ref), num(cur))
    else:
        chosen = stats.auto_test(cat(ref.astype(str)), cat(cur.astype(str)))
    assert chosen.name == expected


def test_distinct_values_count_both_samples():
    ref = np.arange(1000) % 5  # 5 values in the reference ...
    cur = np.arange(100) % 6  # ... and a sixth in the current data: KS, not chi-squared
    assert stats.auto_test(num(ref), num(cur)).name == "ks"


def frames(n=600, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n),
                         "city": rng.choice(["Lyon", "Oslo", "Pune"], n),
                         "flag": rng.choice([True, False], n),
                         "visits": rng.integers(0, 4, n)})


def test_drift_report_columns_share_and_kinds():
    report = cellops.drift(frames(), frames(shift=1.0, seed=1))
    cols = report.columns.set_index("column")
    assert list(cols.index) == ["x", "y", "city", "flag", "visits"]
    assert dict(cols["type"]) == {"x": "numeric", "y": "numeric", "city": "categorical",
                                  "flag": "categorical", "visits": "categorical"}
    assert dict(cols["test"]) == {"x": "ks", "y": "ks", "city": "chisquare", "flag": "z",
                                  "visits": "chisquare"}
    assert cols.loc["x", "drifted"] and not cols.loc["y", "drifted"]
    assert report.share == pytest.approx(cols["drifted"].mean())
    assert report.drifted is (report.share >= 0.5)
    assert json.loads(json.dumps(report.to_dict()))["n_columns"] == 5
    html = report._repr_html_()
    assert "<svg" in html and "<title>" in html and "var(--jp-" in html and ">x<" in html
    # Issue #22: each row states its value in the test's terms, then the rule, so an ok
    # row never reads "0.43 p < 0.05".
    y_row = next(r for r in html.split("<tr>") if ">y<" in r)
    p_y = cols.loc["y", "statistic"]
    assert "p = " in y_row and "(drift if p &lt; 0.05)" in y_row
    assert ">ok<" in y_row and p_y >= 0.05
    # In a notebook: the table, then the distributions as one plotly figure (a panel per
    # column, reference and current side by side) with the SVG copy.
    table, chart = [part if isinstance(part, str) else part._repr_mimebundle_()[0]
                    for part in report.notebook_view().parts]
    assert "<table" in table and "<svg" not in table
    figure = chart["application/vnd.plotly.v1+json"]
    assert {t["name"] for t in figure["data"]} == {"reference", "current"}
    assert len({t["xaxis"] for t in figure["data"]}) == len(report.distributions)
    assert "<svg" in chart["text/html"]


def test_methods_and_thresholds_per_column():
    report = cellops.drift(frames(), frames(shift=0.2, seed=1),
                           method={"x": "psi", "*": "auto"}, threshold={"x": 0.5})
    row = report.columns.set_index("column").loc["x"]
    assert (row["test"], row["threshold"], row["value_kind"]) == ("psi", 0.5, "distance")
    with pytest.raises(InvalidArgumentError, match="for numeric columns; 'city' is categorical"):
        cellops.drift(frames(), frames(), method="ks", columns=["city"])
    with pytest.raises(InvalidArgumentError, match="No drift test named 'nope'"):
        cellops.drift(frames(), frames(), method="nope")


def test_missing_values_new_categories_and_all_missing_columns_are_reported_apart():
    ref, cur = frames(), frames(seed=2)
    cur.loc[:99, "y"] = np.nan
    cur.loc[:9, "city"] = "Rome"
    cur["x"] = np.nan
    report = cellops.drift(ref, cur)
    cols = report.columns.set_index("column")
    assert cols.loc["y", "missing_current"] == pytest.approx(100 / 600)
    assert cols.loc["city", "new_categories"] == ["Rome"]
    assert pd.isna(cols.loc["x", "test"]) and "no values in the current" in cols.loc["x", "note"]
    assert not cols.loc["x", "drifted"]


def test_constant_columns_and_a_prediction_log_frame():
    ref = pd.DataFrame({"c": [1.0] * 50, "request_id": ["r"] * 50})
    cur = pd.DataFrame({"c": [1.0] * 20, "request_id": ["q"] * 20, "prediction": [0] * 20,
                        "time": pd.Timestamp("2026-01-01")})
    report = cellops.drift(ref, cur)  # the log's own columns are not features
    assert list(report.columns["column"]) == ["c"] and not report.drifted


@pytest.mark.parametrize("ref,cur,message", [
    (pd.DataFrame({"a": [1.0]}).iloc[:0], pd.DataFrame({"a": [1.0]}), "reference has no rows"),
    (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}).iloc[:0], "an empty window"),
    (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), "share no column"),
    (pd.DataFrame({"a": [1.5, 2.5]}), pd.DataFrame({"a": ["x", "y"]}), "numeric in the reference"),
    (pd.DataFrame({"a": [1.0]}), [1, 2], "must be a DataFrame"),
    (pd.DataFrame({"a": [1.0]}), "no-such-dataset", "no dataset named 'no-such-dataset'"),
])
def test_bad_input_gets_a_clear_error(ws, ref, cur, message):
    with pytest.raises(InvalidArgumentError, match=message):
        cellops.drift(ref, cur)


def test_named_columns_must_exist_on_both_sides():
    with pytest.raises(InvalidArgumentError, match="'z'.* not in the reference"):
        cellops.drift(frames(), frames(), columns=["x", "z"])


def test_a_logged_dataset_is_a_reference_read_back_or_rebuilt_from_its_profile(ws, tmp_path):
    data = frames(2000)
    data.to_csv(tmp_path / "train.csv", index=False)
    with cellops.start_run():
        cellops.log_dataset(str(tmp_path / "train.csv"))
    report = cellops.drift("train.csv", frames(500, seed=3))
    assert "read from" in report.notes[0] and not report.drifted
    (tmp_path / "train.csv").write_text("x\n1\n")  # changed since: the profile stands in
    rebuilt = cellops.drift("train.csv", frames(500, seed=3), columns=["x", "city"])
    assert "approximate" in rebuilt.notes[0] and not rebuilt.drifted
    assert cellops.drift("train.csv", frames(500, shift=2, seed=3), columns=["x"]).drifted


def test_log_records_a_monitor_run_with_the_report(ws, tmp_path):
    report = cellops.drift(frames(), frames(shift=1, seed=1), log=True)
    run = cellops.get_run(report.run_id)
    assert run.info["kind"] == "monitor"
    assert run.metrics["drift_share"] == pytest.approx(report.share)
    assert {a["path"] for a in run.artifacts} == {"drift_report.html", "drift_report.json"}
    page = report.save_html(tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "Drift report" in page


def test_a_registered_test_is_usable_by_name():
    stats.register_drift_test("mean_gap", lambda r, c: abs(r.values.mean() - c.values.mean()),
                              kinds=(NUMERIC,), threshold=0.5, p_value=False)
    report = cellops.drift(frames(), frames(shift=1, seed=1), columns=["x"], method="mean_gap")
    assert report.columns.iloc[0]["test"] == "mean_gap" and report.drifted


def test_chart_ticks_never_repeat_and_row_windows_are_numbered():
    import re

    from cellops import charts

    assert charts._tick_labels([0.85, 0.9, 0.95]) == ["0.85", "0.90", "0.95"]
    assert charts._tick_labels([0.0, 50.0, 100.0]) == ["0", "50", "100"]
    assert charts._tick_labels([0.0, 5000.0, 10000.0]) == ["0", "5,000", "10,000"]
    flat = charts.lines("rows", {"rows": [(1_000, 100), (2_000, 100), (3_000, 100)]},
                        from_zero=True, x_kind="time")
    ticks = re.findall(r"text-anchor='end' fill='[^']+'>([^<]+)</text>", flat)
    assert ticks[0] == "0" and len(ticks) == len(set(ticks)) and "100" in ticks
    numbered = charts.lines("share", {"s": [(1, 0.1), (2, 0.6), (3, 0.2)]}, x_kind="window")
    assert ">window</text>" in numbered and "s 0.2 · window 3" in numbered
    xs = [float(x) for x in re.findall(r"<circle cx='([\d.]+)'", numbered)]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])  # evenly spaced, whatever the times


# -- hostile and extreme data (issue #23) -----------------------------------------------------
def test_duplicate_column_names_are_refused_with_what_to_do():
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["x", "x"])
    with pytest.raises(InvalidArgumentError, match=r"The reference has column name\(s\) 'x' more "
                                                   r"than once.*duplicated"):
        cellops.drift(frame, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(InvalidArgumentError, match="The current data has column name"):
        cellops.drift(pd.DataFrame({"x": [1.0]}), frame)


@pytest.mark.parametrize("method", sorted(m for m, t in stats.drift_tests().items()
                                          if NUMERIC in t.kinds and m != "z"))
def test_numbers_near_the_float_limit_are_tested_like_any_others(method):
    """Values near 1e308 gave a raw ValueError (bins must increase monotonically)."""
    import warnings

    rng = np.random.default_rng(3)
    big = pd.DataFrame({"x": rng.uniform(-1, 1, 2000) * 1.7e308})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way either
        same = cellops.drift(big.iloc[:1000], big.iloc[1000:], method=method)
        moved = cellops.drift(big.iloc[:1000], big.iloc[1000:] * 0.25, method=method)
    assert same.columns["statistic"].notna().all() and not same.drifted
    assert moved.drifted and moved.distributions["x"]["edges"][-1] > 1e307  # shown as given


def test_a_column_of_many_values_drawn_twice_is_not_drift_but_a_real_shift_is():
    """A 100,000-value categorical drawn from its own distribution was flagged (JS 0.39):
    such columns are compared on their 50 most frequent values and the rest as one."""
    rng = np.random.default_rng(0)
    n = 100_000
    ref = pd.DataFrame({"id": rng.integers(0, 100_000, n).astype(str)})
    same = pd.DataFrame({"id": rng.integers(0, 100_000, n).astype(str)})
    fewer = pd.DataFrame({"id": rng.integers(0, 1_000, n).astype(str)})  # mass on 1% of values
    new = pd.DataFrame({"id": np.where(rng.random(n) < 0.2, "NEW",
                                       rng.integers(0, 100_000, n).astype(str))})
    for method in ("auto", "jensenshannon", "psi", "chisquare", "hellinger"):
        assert not cellops.drift(ref, same, method=method).drifted, method
        assert cellops.drift(ref, fewer, method=method).drifted, method
        assert cellops.drift(ref, new, method=method).drifted, method
    r, c, keys = stats._shares(cat(ref["id"]), cat(new["id"]))
    assert len(keys) == stats.MAX_CATEGORIES + 1 and keys[-1] == "(other)" and "NEW" in keys
    assert r.sum() == pytest.approx(1) and c.sum() == pytest.approx(1)


def test_the_distribution_charts_read_without_rotated_or_long_labels():
    """Issue #22: a number's bins are drawn on a numeric axis (a few round ticks, never a
    label per bin that plotly rotates and clips); categories that are numbers read in four
    digits; bin edges in thousands read as 48,400, not 4.84e+04."""
    import pandas as pd

    from cellops import charts

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"income": rng.normal(50_000, 20_000, 500),
                        "sex": rng.choice([-0.044641636506989144, 0.05068011873981862], 500),
                        "plan": rng.choice(["basic-monthly-subscription", "pro"], 500)})
    cur = ref.assign(income=ref["income"] * 1.5, sex=-0.044641636506989144,
                     plan=rng.choice(["basic-monthly-subscription", "pro"], 500, p=[0.1, 0.9]))
    report = cellops.drift(ref, cur)
    assert set(report.drifted_columns) == {"income", "sex", "plan"}
    (chart,) = [p for p in report.notebook_view().parts if isinstance(p, charts.Chart)]
    layout, data = chart.figure["layout"], chart.figure["data"]
    axes = {layout["annotations"][i]["text"]: layout["xaxis" + ("" if i == 0 else str(i + 1))]
            for i in range(3)}
    income = axes["<b>income</b>"]
    assert income["type"] == "linear" and income["tickangle"] == 0 and income["nticks"] <= 6
    bars = [t for t in data if t["xaxis"] == income["anchor"].replace("y", "x")]
    assert len(bars) == 2 and all(len(t["x"]) == 20 and t["width"] for t in bars)
    assert "to" in bars[0]["customdata"][0]  # hover names the bin's range
    assert sorted(axes["<b>sex</b>"]["ticktext"]) == ["-0.04464", "0.05068"]
    plan = axes["<b>plan</b>"]
    assert plan["type"] == "category" and max(len(t) for t in plan["ticktext"]) <= 12
    assert "basic-monthly-subscription" in plan["tickvals"]  # the full name behind its tick
    assert charts.tick_label(48_400.3) == "48,400" and charts.tick_label(999.9) == "1,000"
    assert charts.tick_label(2.5e6) == "2.50e+06" and charts.tick_label(18.8) == "18.8"
    edges = report.distributions["income"]["labels"]
    assert all("e+" not in e for e in edges), edges
