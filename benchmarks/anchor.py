"""What the benchmarks share: the MLflow they are measured against, in this interpreter or
in another one (its own virtual environment, when its pins clash with ours)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def add_mlflow_python(ap: argparse.ArgumentParser, help: str) -> None:  # noqa: A002
    """The ``--mlflow-python`` option (default ``$BENCH_MLFLOW_PYTHON``, else this Python)."""
    ap.add_argument("--mlflow-python", default=os.environ.get("BENCH_MLFLOW_PYTHON", sys.executable),
                    help=help)


def mlflow_missing(python: str) -> bool:
    """True (having said how to fix it) when ``python`` cannot import mlflow."""
    if subprocess.run([python, "-c", "import mlflow"], capture_output=True).returncode == 0:
        return False
    print(f"mlflow is not importable by {python}. Install it with "
          "`pip install \".[bench]\"` or pass --mlflow-python.", file=sys.stderr)
    return True


def time_search(fn) -> tuple[float, int]:
    """Median seconds of five calls of ``fn`` (a search returning a frame) after one
    warm-up call (plans, imports), and the rows it returned."""
    import statistics
    import time

    fn()
    times, rows = [], 0
    for _ in range(5):
        t = time.perf_counter()
        df = fn()
        times.append(time.perf_counter() - t)
        rows = len(df)
    return statistics.median(times), rows
