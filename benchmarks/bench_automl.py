"""AutoML, explanations and fairness (issue #25), side by side with their anchors.

    python benchmarks/bench_automl.py --flaml-python /path/to/flaml-venv/bin/python
        [--budgets 30 120] [--datasets breast_cancer digits classification diabetes]
    (FLAML's pins differ from ours: python -m venv fl && fl/bin/pip install "flaml[automl]")

- AutoML at equal time budgets: cellops.automl and FLAML (scikit-learn learners only:
  rf, extra_tree, histgb, kneighbor, lrl1/lrl2 or enet), each in a fresh process on the same
  75/25 split; the test score (roc_auc for two classes, accuracy for digits, r2 for
  diabetes) and the trials completed. Goal: within 0.005 of FLAML or better.
- explain: permutation importance on 20,000 x 40 with 5 repeats, against calling
  scikit-learn's permutation_importance directly. Goal: within 1.2x.
- fairness: 1,000,000 rows, 2 sensitive columns, against fairlearn's
  demographic_parity_difference and equalized_odds_difference. Goal: <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

DATASETS = ("breast_cancer", "digits", "classification", "diabetes")

LOAD = """
    import numpy as np, pandas as pd
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    name = {name!r}
    if name == "breast_cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True); metric = "roc_auc"
    elif name == "digits":
        X, y = datasets.load_digits(return_X_y=True, as_frame=True); metric = "accuracy"
    elif name == "classification":
        X, y = datasets.make_classification(20000, 40, n_informative=12, random_state=0)
        X = pd.DataFrame(X, columns=[f"x{{i}}" for i in range(40)]); y = pd.Series(y); metric = "roc_auc"
    else:
        X, y = datasets.load_diabetes(return_X_y=True, as_frame=True); metric = "r2"
    task = "regression" if name == "diabetes" else "classification"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=None if task == "regression" else y)
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    def test_score(model):  # the same arithmetic for both tools' models
        if metric == "roc_auc":
            scores = (model.predict_proba(X_test)[:, 1] if hasattr(model, "predict_proba")
                      else model.decision_function(X_test))
            return float(roc_auc_score(y_test, scores))
        if metric == "accuracy":
            return float(accuracy_score(y_test, model.predict(X_test)))
        return float(r2_score(y_test, model.predict(X_test)))
"""

CELLOPS = LOAD + """
    import os, time, cellops
    os.chdir({ws!r}); cellops.init_workspace({ws!r})
    t = time.perf_counter()
    result = cellops.automl(X_train, y_train, task=task, metric=metric, time_budget={budget}, random_state=0)
    elapsed = time.perf_counter() - t
    OUT = {{"test": test_score(result.best_estimator), "trials": result.trials,
            "elapsed": elapsed, "best": result.best_params["estimator"]}}
"""

FLAML = LOAD + """
    import time, warnings
    warnings.filterwarnings("ignore")
    from flaml import AutoML
    learners = (["rf", "extra_tree", "histgb", "kneighbor", "lrl1", "lrl2"] if task == "classification"
                else ["rf", "extra_tree", "histgb", "kneighbor", "enet"])
    automl = AutoML()
    t = time.perf_counter()
    automl.fit(X_train, y_train, task=task, metric=metric, time_budget={budget}, estimator_list=learners,
               seed=0, verbose=0)
    elapsed = time.perf_counter() - t
    trials = len(getattr(automl, "config_history", {{}}) or {{}})
    OUT = {{"test": test_score(automl), "trials": trials, "elapsed": elapsed,
            "best": automl.best_estimator}}
"""

EXPLAIN = """
    import os, time, pandas as pd, cellops
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    os.chdir({ws!r}); cellops.init_workspace({ws!r})
    X, y = make_classification(20000, 40, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{{i}}" for i in range(40)])
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X, y)
    permutation_importance(model, X.head(500), y[:500], n_repeats=1)  # warm up
    direct, mine = [], []
    for _ in range(2):
        t = time.perf_counter(); permutation_importance(model, X, y, n_repeats=5, random_state=0)
        direct.append(time.perf_counter() - t)
        with cellops.start_run():
            t = time.perf_counter(); cellops.explain(model, X, y, n_repeats=5, top=0)
            mine.append(time.perf_counter() - t)
    OUT = {{"direct": min(direct), "cellops": min(mine)}}
"""

FAIRNESS = """
    import time, numpy as np, pandas as pd, cellops
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    rng = np.random.default_rng(0)
    n = 1_000_000
    X = pd.DataFrame({{"sex": rng.choice(["f", "m"], n), "region": rng.choice(list("nsew"), n)}})
    y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    cellops.fairness(pred[:1000], X.head(1000), y[:1000], sensitive_features=["sex", "region"], log=False)
    t = time.perf_counter()
    report = cellops.fairness(pred, X, y, sensitive_features=["sex", "region"], log=False)
    mine = time.perf_counter() - t
    t = time.perf_counter()
    dpd = demographic_parity_difference(y, pred, sensitive_features=X)
    eod = equalized_odds_difference(y, pred, sensitive_features=X)
    theirs = time.perf_counter() - t
    assert abs(dpd - report.gaps["demographic_parity_difference"]) < 1e-12
    assert abs(eod - report.gaps["equalized_odds_difference"]) < 1e-12
    OUT = {{"cellops": mine, "fairlearn": theirs}}
"""


def run(code: str, python: str = sys.executable) -> dict:
    wrapped = textwrap.dedent(code) + '\nprint("RESULT " + __import__("json").dumps(OUT))\n'
    proc = subprocess.run([python, "-c", wrapped], capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(lines[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flaml-python", default=os.environ.get("BENCH_FLAML_PYTHON"))
    ap.add_argument("--budgets", type=float, nargs="+", default=[30, 120])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--skip-automl", action="store_true")
    args = ap.parse_args()
    if not args.skip_automl:
        print(f"{'dataset':<16}{'budget':>7}  {'cellops test':>12} {'trials':>7}  {'FLAML test':>10} "
              f"{'trials':>7}  difference")
        for name in args.datasets:
            for budget in args.budgets:
                with tempfile.TemporaryDirectory() as tmp:
                    mine = run(CELLOPS.format(name=name, ws=tmp, budget=budget))
                theirs = run(FLAML.format(name=name, budget=budget), args.flaml_python) \
                    if args.flaml_python else None
                diff = f"{mine['test'] - theirs['test']:+.4f}" if theirs else "(no FLAML)"
                print(f"{name:<16}{budget:>7.0f}  {mine['test']:>12.4f} {mine['trials']:>7}  "
                      f"{theirs['test'] if theirs else float('nan'):>10.4f} "
                      f"{theirs['trials'] if theirs else 0:>7}  {diff}   "
                      f"(best: {mine['best']} / {theirs['best'] if theirs else '-'}; "
                      f"{mine['elapsed']:.1f} s / {theirs['elapsed'] if theirs else float('nan'):.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        explain = run(EXPLAIN.format(ws=tmp))
    print(f"\nexplain, 20,000 x 40, 5 repeats: cellops {explain['cellops']:.2f} s, scikit-learn "
          f"{explain['direct']:.2f} s ({explain['cellops'] / explain['direct']:.2f}x; goal <= 1.2x)")
    fair = run(FAIRNESS.format())
    print(f"fairness, 1,000,000 rows x 2 sensitive columns: cellops {fair['cellops']:.3f} s, fairlearn "
          f"{fair['fairlearn']:.2f} s ({fair['fairlearn'] / fair['cellops']:.0f}x; goal <= 1 s)")


if __name__ == "__main__":
    main()
