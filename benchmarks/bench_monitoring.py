"""Drift detection: `cellops.drift` against Evidently 0.7's DataDriftPreset and a plain
loop of scipy's ks_2samp, on synthetic data with known shifts.

    python benchmarks/bench_monitoring.py --evidently-python /path/to/evidently-venv/bin/python
    (Evidently's pins clash with ours: python -m venv ev && ev/bin/pip install
     "evidently>=0.7,<0.8" "pandas<2.3")

Data: 20 columns — 14 numeric (normal with shifts of 0 to 0.5 standard deviations,
log-normal, an integer column with 4 values, a nearly constant one) and 6 categorical
(shifted proportions, a category the reference never had, a binary flag, stable ones) —
reference and current of --rows each (default 1,000 then 100,000 and 1,000,000; the first
size exercises the p-value tests Evidently picks for references of <= 1,000 rows).

Each tool runs in a fresh process on the same Parquet files: seconds for the drift
computation alone (files already read), and the process's peak resident memory.
Targets (issue #13): the same per-column verdicts as Evidently's defaults; 1M x 20 in
<= 1 s (>= 36x Evidently's 36 s on its machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make(n: int, seed: int, current: bool) -> "object":
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    shifts = [0.0, 0.0, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.0]
    d = {}
    for i, s in enumerate(shifts):
        d[f"normal_{i}"] = rng.normal(s if current else 0.0, 1.0, n) * (i + 1) + 10 * i
    d["lognormal"] = rng.lognormal(0.15 if current else 0.0, 1.0, n)
    d["scaled"] = rng.normal(0.0, 1.25 if current else 1.0, n)
    d["int_4"] = rng.choice([1.0, 2.0, 3.0, 4.0], n, p=[0.1, 0.2, 0.3, 0.4] if current else
                            [0.25, 0.25, 0.25, 0.25])
    d["almost_constant"] = np.where(rng.random(n) < 0.001, 1.0, 0.0) + rng.normal(0, 1e-9, n)
    cats = np.array(["a", "b", "c", "d", "e"], dtype=object)
    d["cat_stable"] = rng.choice(cats, n, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    d["cat_shifted"] = rng.choice(cats, n, p=[0.1, 0.1, 0.2, 0.3, 0.3] if current else
                                  [0.3, 0.3, 0.2, 0.1, 0.1])
    d["cat_slight"] = rng.choice(cats, n, p=[0.28, 0.32, 0.2, 0.1, 0.1] if current else
                                 [0.3, 0.3, 0.2, 0.1, 0.1])
    new = np.array(["x", "y", "z", "new"], dtype=object)
    d["cat_new"] = rng.choice(new, n, p=[0.4, 0.3, 0.2, 0.1] if current else [0.45, 0.35, 0.2, 0.0])
    d["flag"] = rng.choice(np.array(["yes", "no"], dtype=object), n, p=[0.52, 0.48] if current
                           else [0.5, 0.5])
    d["cat_many"] = rng.integers(0, 40, n).astype(str).astype(object)
    return pd.DataFrame(d)


# -- children: one measurement each, in a fresh process ---------------------------------------
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(tool: str, folder: str) -> None:
    import pandas as pd

    ref = pd.read_parquet(Path(folder) / "reference.parquet")
    cur = pd.read_parquet(Path(folder) / "current.parquet")
    for frame in (ref, cur):  # plain object strings, as users' frames mostly are
        for c in frame.columns:
            if frame[c].dtype != float:
                frame[c] = frame[c].astype(object)
    verdicts: dict[str, bool] = {}
    tests: dict[str, str] = {}
    start = time.perf_counter()
    if tool == "cellops":
        import cellops

        cellops.drift(ref.head(50), cur.head(50))
        start = time.perf_counter()  # after a warm-up: imports are not counted
        report = cellops.drift(ref, cur)
        seconds = time.perf_counter() - start
        for rec in report.columns.itertuples():
            verdicts[rec.column], tests[rec.column] = bool(rec.drifted), rec.test
    elif tool.startswith("evidently"):
        from evidently import Report
        from evidently.presets import DataDriftPreset

        preset = DataDriftPreset(num_method="ks") if tool == "evidently-ks" else DataDriftPreset()
        Report([DataDriftPreset()]).run(current_data=cur.head(50), reference_data=ref.head(50))
        start = time.perf_counter()  # after a warm-up: imports and caches are not counted
        snap = Report([preset]).run(current_data=cur, reference_data=ref)
        seconds = time.perf_counter() - start
        for m in snap.dict()["metrics"]:
            cfg = m.get("config", {})
            if cfg.get("type", "").endswith("ValueDrift"):
                method, limit, value = cfg["method"], cfg["threshold"], float(m["value"])
                p_value = "p_value" in method or "p-value" in method
                verdicts[cfg["column"]] = value <= limit if "K-S" in method else (
                    value < limit if p_value else value >= limit)
                tests[cfg["column"]] = method
    elif tool == "scipy-ks":
        from scipy.stats import ks_2samp

        start = time.perf_counter()
        for c in ref.columns:
            if ref[c].dtype == float:
                verdicts[c] = bool(ks_2samp(ref[c].dropna(), cur[c].dropna())[1] <= 0.05)
        seconds = time.perf_counter() - start
    else:
        raise SystemExit(f"unknown tool {tool}")
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "verdicts": verdicts,
                      "tests": tests}))


def measure(python: str, tool: str, folder: str) -> dict | None:
    proc = subprocess.run([python, __file__, "--child", tool, folder], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(f"  {tool}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[1000, 100_000, 1_000_000])
    ap.add_argument("--evidently-python", default=os.environ.get("BENCH_EVIDENTLY_PYTHON"),
                    help="a Python with evidently 0.7 installed (its own virtual environment)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    if not args.evidently_python:
        print("Pass --evidently-python (a Python with evidently 0.7; see this file's docstring). "
              "Measuring cellops and scipy alone.", file=sys.stderr)
    print(f"{'rows':>9}  {'tool':<13} {'seconds':>8} {'peak MB':>8} {'vs cellops':>10}  verdicts")
    disagreements = 0
    for n in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            make(n, 1, False).to_parquet(Path(folder) / "reference.parquet")
            make(n, 2, True).to_parquet(Path(folder) / "current.parquet")
            ours = measure(sys.executable, "cellops", folder)
            assert ours is not None
            rows = [("cellops", ours), ("scipy-ks", measure(sys.executable, "scipy-ks", folder))]
            if args.evidently_python:
                rows.append(("evidently", measure(args.evidently_python, "evidently", folder)))
                if n >= 100_000:
                    rows.append(("evidently-ks", measure(args.evidently_python, "evidently-ks",
                                                         folder)))
            for tool, got in rows:
                if got is None:
                    continue
                ratio = got["seconds"] / ours["seconds"]
                verdict = ""
                if tool == "evidently":
                    differ = [c for c, v in got["verdicts"].items() if ours["verdicts"].get(c) != v]
                    disagreements += len(differ)
                    verdict = (f"same on {len(got['verdicts']) - len(differ)}/{len(got['verdicts'])}"
                               + (f"; differ: {', '.join(differ)}" if differ else ""))
                elif tool == "cellops":
                    verdict = (f"{sum(ours['verdicts'].values())} drifted: "
                               + ", ".join(c for c, v in ours["verdicts"].items() if v))
                print(f"{n:>9,}  {tool:<13} {got['seconds']:>8.3f} {got['peak_mb']:>8.0f} "
                      f"{ratio:>9.1f}x  {verdict}")
            if args.evidently_python and rows[2][1]:
                tests = ours["tests"]
                ev = rows[2][1]["tests"]
                print("           tests (cellops / evidently): "
                      + "; ".join(f"{c} {tests[c]}/{ev.get(c)}" for c in list(tests)[:4]) + " ...")
    if args.evidently_python:
        print(f"per-column verdicts that differ from Evidently's: {disagreements}")


if __name__ == "__main__":
    main()
