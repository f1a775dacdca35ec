"""Drift statistics: one function per test, and the registry that names them.

Each test compares one column of the reference with the same column of the current data
and returns a number: a p-value (drift when it is *below* the threshold) or a distance
(drift when it is *at or above* it). The definitions, bins and thresholds follow
Evidently's documented ones, so a column gets the same verdict here as there:

=================  ==========  =========  ============================================
name               kinds       threshold  what it measures
=================  ==========  =========  ============================================
ks                 numeric     p < 0.05   two-sample Kolmogorov-Smirnov (scipy)
chisquare          both        p < 0.05   chi-squared test of homogeneity of the two
                                          samples' counts (numbers with more than 20
                                          values: in the reference's deciles)
z                  both        p < 0.05   two-proportion Z-test (two values only)
wasserstein        numeric     >= 0.1     Wasserstein-1 distance / reference std
jensenshannon      both        >= 0.1     Jensen-Shannon distance (natural log)
psi                both        >= 0.1     population stability index
kl_div             both        >= 0.1     Kullback-Leibler divergence (ref || cur)
hellinger          both        >= 0.1     Hellinger distance
anderson           numeric     p < 0.1    k-sample Anderson-Darling (scipy)
cramer_von_mises   numeric     p < 0.1    two-sample Cramer-von Mises (scipy)
=================  ==========  =========  ============================================

Binned tests (jensenshannon, psi, kl_div) bin a numeric column with more than 20 distinct
reference values into Sturges' bins over both samples' range, and otherwise compare the
frequencies of each value; psi and kl_div replace empty bins with a small share
(1e-4, or a millionth of the smallest share when that is under 1e-4).

The Wasserstein distance of large samples (over ``EXACT_MAX`` values) is computed from
2^16-bin histograms in one pass, with a proven error bound (two bin widths); when the
threshold lies inside that bound the exact, sorting computation decides instead, so the
verdict is always the exact one.

Chi-squared is the two-sample test of homogeneity (a 2 x k table of counts), not
Evidently's goodness-of-fit of the current counts against the reference's shares: that
treats the reference's shares as exact, so with a reference no larger than the current
sample it flags about a third of columns drawn from one distribution (measured on random
halves; tests/test_drift.py holds every test to its nominal rate). It compares counts of
values, so a numeric column with more than 20 distinct
reference values is first put into bins at the reference's deciles (fewer bins when the
current sample is too small for five rows a bin; the outer bins are open-ended, so current
values beyond the reference's range count in them): counted value by value, every
continuous column would look drifted, since almost no value of one sample recurs in the
other.

A column of many values (more than ``MAX_CATEGORIES``, 50, over both samples: ids, zip
codes, free text) is compared on its 50 most frequent values (by their shares in the two
samples together: a value that became common in the current data is among them) and one
``(other)`` for all the rest: value by value, two samples of one
100,000-value column share almost no value, and every distance calls that drift
(Jensen-Shannon 0.39 on two draws of one distribution; Evidently counts value by value
and flags it too). New values are still listed apart (``new_categories``).

A test of one's own: :func:`register_drift_test` (as papermill registers engines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

NUMERIC, CATEGORICAL = "numeric", "categorical"
MAX_CATEGORIES = 50  # more values than this: the 50 most frequent in the reference, and the rest
OTHER = "(other)"
EXACT_MAX = 200_000  # samples up to this size get the exact Wasserstein distance
HIST_BINS = 1 << 16


class Column:
    """One column of one sample, cleaned: NaN (and, for numbers, infinities) dropped.

    Counts, sorted values and the number of distinct values are computed when a test
    first asks and kept, so two tests of one column share the work.
    """

    def __init__(self, values: Any, kind: str) -> None:
        self.kind = kind
        self.values = values  # float64 ndarray (numeric) or a pandas Series (categorical)
        self._counts: Any = None
        self._sorted: Any = None

    def __len__(self) -> int:
        return len(self.values)

    def counts(self) -> Any:
        """A pandas Series value -> count (categories as they are, numbers as numbers)."""
        if self._counts is None:
            import pandas as pd

            self._counts = pd.Series(self.values, copy=False).value_counts(sort=False)
        return self._counts

    def sorted(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self.values)
        return self._sorted

    def distinct_at_most(self, limit: int) -> int | None:
        """The number of distinct values when it is at most ``limit``, else None — cheaply:
        a first slice with more distinct values than ``limit`` answers without hashing all."""
        if self._counts is not None:
            n = len(self._counts)
            return n if n <= limit else None
        head = self.values[:2048]
        if len(np.unique(head) if self.kind == NUMERIC else set(head.tolist())) > limit:
            return None
        n = len(self.counts())
        return n if n <= limit else None


def distinct_combined(ref: Column, cur: Column, limit: int) -> int | None:
    """Distinct values over both samples when at most ``limit``, else None."""
    a = ref.distinct_at_most(limit)
    if a is None:
        return None
    b = cur.distinct_at_most(limit)
    if b is None:
        return None
    n = len(ref.counts().index.union(cur.counts().index))
    return n if n <= limit else None


def _shares(ref: Column, cur: Column) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Per-value shares of each sample over the union of their values; with more than
    ``MAX_CATEGORIES`` values, the most frequent ones (by their share in both samples) and
    one ``OTHER`` for the rest (see the module docstring)."""
    rc, cc = ref.counts(), cur.counts()
    keys = rc.index.union(cc.index)
    if len(keys) > MAX_CATEGORIES:
        both = (rc / len(ref)).add(cc / len(cur), fill_value=0)
        top = both.sort_values(ascending=False, kind="stable").index[:MAX_CATEGORIES]
        r = rc.reindex(top, fill_value=0).to_numpy(dtype=float)
        c = cc.reindex(top, fill_value=0).to_numpy(dtype=float)
        r = np.append(r, len(ref) - r.sum()) / len(ref)
        c = np.append(c, len(cur) - c.sum()) / len(cur)
        return r, c, list(top) + [OTHER]
    r = rc.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(ref)
    c = cc.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(cur)
    return r, c, list(keys)


def binned(ref: Column, cur: Column, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin (numbers with more than 20 distinct reference values) or per value."""
    if ref.kind == NUMERIC and ref.distinct_at_most(20) is None:
        lo = min(ref.values.min(), cur.values.min())
        hi = max(ref.values.max(), cur.values.max())
        edges = np.histogram_bin_edges(np.array([lo, hi]), bins=_sturges(len(ref) + len(cur)),
                                       range=(lo, hi))
        r = np.histogram(ref.values, edges)[0] / len(ref)
        c = np.histogram(cur.values, edges)[0] / len(cur)
    else:
        r, c, _ = _shares(ref, cur)
    if fill_zeroes:
        r, c = _fill(r), _fill(c)
    return r, c


def _sturges(n: int) -> int:
    return int(np.ceil(np.log2(n))) + 1  # numpy's rule for bins="sturges"


def _fill(shares: np.ndarray) -> np.ndarray:
    shares = shares.copy()
    positive = shares[shares != 0]
    if positive.size:
        smallest = positive.min()
        shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return shares


# -- the tests -------------------------------------------------------------------------------
def ks(ref: Column, cur: Column) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(ref.values, cur.values)[1])


def quantile_binned(ref: Column, cur: Column, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each sample in ``bins`` bins at the reference's quantiles (fewer when the
    current sample has under five values a bin, or quantiles coincide); the outer bins
    are open-ended."""
    bins = max(2, min(bins, len(cur) // 5))
    inner = np.unique(np.quantile(ref.values, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(inner, ref.values, "right"), minlength=inner.size + 1)
    c = np.bincount(np.searchsorted(inner, cur.values, "right"), minlength=inner.size + 1)
    return r / len(ref), c / len(cur)


def chisquare(ref: Column, cur: Column) -> float:
    from scipy.stats import chi2_contingency

    if ref.kind == NUMERIC and ref.distinct_at_most(20) is None:
        r, c = quantile_binned(ref, cur)
    else:
        r, c, _ = _shares(ref, cur)
    table = np.array([r * len(ref), c * len(cur)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # one value in both samples: nothing differs
        return 1.0
    return float(chi2_contingency(table, correction=False)[1])


def z(ref: Column, cur: Column) -> float:
    from scipy.stats import norm

    from ..errors import InvalidArgumentError

    rc, cc = ref.counts(), cur.counts()
    keys = sorted(rc.index.union(cc.index), key=str)
    if len(keys) > 2:
        raise InvalidArgumentError(
            f"the z test compares the shares of two values (a binary column), and this column "
            f"has {len(keys)} distinct values; use "
            "chisquare or jensenshannon (or ks for numbers).")
    if len(rc) == 1 and len(cc) == 1 and rc.index[0] == cc.index[0]:
        return 1.0
    first = keys[0]
    n1, n2 = len(ref), len(cur)
    p1 = (n1 - int(rc.get(first, 0))) / n1  # share of rows that are not the first value
    p2 = (n2 - int(cc.get(first, 0))) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(stat))))


def wasserstein_exact(a_sorted: np.ndarray, b_sorted: np.ndarray) -> float:
    """W1 between two sorted samples: the area between their empirical CDFs."""
    both = np.concatenate([a_sorted, b_sorted])
    both.sort()
    widths = np.diff(both)
    ca = np.searchsorted(a_sorted, both[:-1], "right") / a_sorted.size
    cb = np.searchsorted(b_sorted, both[:-1], "right") / b_sorted.size
    return float(np.sum(np.abs(ca - cb) * widths))


def wasserstein_binned(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """W1 from histograms on a common 2^16-bin grid, and the bound on its error."""
    lo = min(a.min(), b.min())
    hi = max(a.max(), b.max())
    if hi == lo:
        return 0.0, 0.0
    scale = HIST_BINS / (hi - lo)

    def cdf(x: np.ndarray) -> np.ndarray:
        idx = ((x - lo) * scale).astype(np.intp)
        np.minimum(idx, HIST_BINS - 1, out=idx)
        return np.cumsum(np.bincount(idx, minlength=HIST_BINS)) / x.size

    width = (hi - lo) / HIST_BINS
    diff = np.abs(cdf(a) - cdf(b))
    # Trapezoids between bin edges (|D| is 0 below the first edge and at the last).
    area = width * (diff.sum() - diff[-1] / 2)
    return float(area), 2.0 * width


def wasserstein(ref: Column, cur: Column, threshold: float | None = None) -> float:
    norm = max(float(np.std(ref.values)), 0.001)
    if len(ref) + len(cur) <= EXACT_MAX or threshold is None:
        return wasserstein_exact(ref.sorted(), cur.sorted()) / norm
    value, bound = wasserstein_binned(ref.values, cur.values)
    value, bound = value / norm, bound / norm
    if abs(value - threshold) <= bound:  # too close to call from the histogram
        return wasserstein_exact(ref.sorted(), cur.sorted()) / norm
    return value


def jensenshannon(ref: Column, cur: Column) -> float:
    from scipy.spatial import distance

    r, c = binned(ref, cur, fill_zeroes=False)
    return float(distance.jensenshannon(r, c))


def psi(ref: Column, cur: Column) -> float:
    r, c = binned(ref, cur, fill_zeroes=True)
    return float(np.sum((r - c) * np.log(r / c)))


def kl_div(ref: Column, cur: Column) -> float:
    from scipy.stats import entropy

    r, c = binned(ref, cur, fill_zeroes=True)
    return float(entropy(r, c))


def hellinger(ref: Column, cur: Column) -> float:
    if ref.kind == CATEGORICAL:
        r, c, _ = _shares(ref, cur)
        total = float(np.sum(np.sqrt(r * c)))
    else:
        keys = np.union1d(ref.counts().index.to_numpy(dtype=float),
                          cur.counts().index.to_numpy(dtype=float))
        edges = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(ref.values, bins=edges, density=True)[0]
        h2 = np.histogram(cur.values, bins=edges, density=True)[0]
        width = (edges.max() - edges.min()) / (len(edges) - 1)
        total = float(np.sum(np.sqrt(h1 * h2)) * width)
    return float(np.sqrt(1 - np.clip(total, 0, 1)))


def anderson(ref: Column, cur: Column) -> float:
    import warnings

    from scipy.stats import anderson_ksamp

    with warnings.catch_warnings():  # scipy warns when the p-value is capped to [0.001, 0.25]
        warnings.simplefilter("ignore")
        try:
            return float(anderson_ksamp([ref.values, cur.values], method=None).pvalue)
        except TypeError:  # scipy without the method argument
            return float(anderson_ksamp([ref.values, cur.values])[2])


def cramer_von_mises(ref: Column, cur: Column) -> float:
    from scipy.stats import cramervonmises_2samp

    return float(cramervonmises_2samp(ref.values, cur.values).pvalue)


# -- the registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftTest:
    """A named drift statistic. ``p_value`` tests drift below the threshold; distances at or
    above it."""

    name: str
    label: str
    kinds: tuple[str, ...]
    threshold: float
    p_value: bool
    func: Callable[..., float]
    takes_threshold: bool = False  # func(ref, cur, threshold): it may stop early near the bound

    def drifted(self, value: float, threshold: float) -> bool:
        if value != value:  # NaN: nothing to compare, no verdict of drift
            return False
        return value < threshold if self.p_value else value >= threshold

    def run(self, ref: Column, cur: Column, threshold: float) -> float:
        if self.takes_threshold:
            return float(self.func(ref, cur, threshold))
        return float(self.func(ref, cur))


_TESTS: dict[str, DriftTest] = {}


def register_drift_test(name: str, func: Callable[[Column, Column], float], *,
                        kinds: tuple[str, ...] = (NUMERIC, CATEGORICAL), threshold: float,
                        p_value: bool, label: str | None = None,
                        takes_threshold: bool = False) -> DriftTest:
    """Make ``func(reference, current) -> float`` usable as ``method=name``.

    ``func`` takes two :class:`Column` objects (``.values``, ``.counts()``,
    ``.sorted()``); ``p_value=True`` means drift when the result is below ``threshold``;
    ``takes_threshold=True`` passes the threshold as a third argument.
    """
    test = DriftTest(name, label or name, tuple(kinds), float(threshold), p_value, func,
                     takes_threshold)
    _TESTS[name] = test
    return test


def get_drift_test(name: str) -> DriftTest:
    from ..errors import InvalidArgumentError

    try:
        return _TESTS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"No drift test named {name!r}. Tests: {', '.join(sorted(_TESTS))} (or 'auto'); "
            "add one with cellops.monitoring.register_drift_test.") from None


def drift_tests() -> dict[str, DriftTest]:
    return dict(_TESTS)


for _name, _label, _func, _kinds, _threshold, _p in (
        ("ks", "K-S p-value", ks, (NUMERIC,), 0.05, True),
        ("chisquare", "chi-squared p-value", chisquare, (NUMERIC, CATEGORICAL), 0.05, True),
        ("z", "Z-test p-value", z, (NUMERIC, CATEGORICAL), 0.05, True),
        ("wasserstein", "Wasserstein (normed)", wasserstein, (NUMERIC,), 0.1, False),
        ("jensenshannon", "Jensen-Shannon distance", jensenshannon, (NUMERIC, CATEGORICAL), 0.1,
         False),
        ("psi", "PSI", psi, (NUMERIC, CATEGORICAL), 0.1, False),
        ("kl_div", "Kullback-Leibler divergence", kl_div, (NUMERIC, CATEGORICAL), 0.1, False),
        ("hellinger", "Hellinger distance", hellinger, (NUMERIC, CATEGORICAL), 0.1, False),
        ("anderson", "Anderson-Darling p-value", anderson, (NUMERIC,), 0.1, True),
        ("cramer_von_mises", "Cramer-von Mises p-value", cramer_von_mises, (NUMERIC,), 0.1, True)):
    register_drift_test(_name, _func, kinds=_kinds, threshold=_threshold, p_value=_p, label=_label,
                        takes_threshold=_func is wasserstein)


def auto_test(ref: Column, cur: Column) -> DriftTest:
    """Evidently's default choice for a column (see docs/monitoring.md, "Which test")."""
    few = distinct_combined(ref, cur, 5)
    if len(ref) <= 1000:
        if ref.kind == NUMERIC and few is None:
            return _TESTS["ks"]
        n = few if few is not None else 6
        return _TESTS["chisquare"] if n > 2 else _TESTS["z"]
    if ref.kind == NUMERIC and few is None:
        return _TESTS["wasserstein"]
    return _TESTS["jensenshannon"]
