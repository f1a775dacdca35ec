"""Pipeline overheads, side by side with their anchors (issue #4).

    python benchmarks/bench_pipelines.py

1. per-step overhead of `cellops pipeline run` against calling
   papermill.execute_notebook directly on the same notebooks, parameters and
   working directory, one after another (target: <= 10% more);
2. a fully cached re-run of the example pipeline (target: <= 1 s, no kernel started);
3. a sweep of 8 trials on 2 workers against the same 8 trials one after another
   (target: >= 1.8x faster, issue #23; medians of two interleaved rounds).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_notebooks" / "pipeline"
SWEEP_NB = """{"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "n = 100\\nseed = 0", "outputs": [], "execution_count": null},
{"cell_type": "code", "metadata": {}, "source": "import cellops\\nfrom sklearn.datasets import load_breast_cancer\\nfrom sklearn.ensemble import RandomForestClassifier\\nX, y = load_breast_cancer(return_X_y=True)\\ncellops.log_metric('acc', RandomForestClassifier(n_estimators=n, random_state=seed).fit(X, y).score(X, y))", "outputs": [], "execution_count": null}],
"metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}"""


def papermill_direct(project: Path) -> float:
    import papermill as pm

    from cellops.pipelines import load_pipeline

    pipeline = load_pipeline(project / "pipeline.yaml")
    t = time.perf_counter()
    for step in pipeline.steps.values():
        pm.execute_notebook(str(step.notebook), str(project / f"direct-{step.name}.ipynb"),
                            parameters=pipeline.step_parameters(step), cwd=str(project),
                            progress_bar=False, kernel_name="python3")
    return time.perf_counter() - t


def cellops_run(project: Path, **kw) -> float:
    from cellops.pipelines import run_pipeline

    t = time.perf_counter()
    result = run_pipeline(project / "pipeline.yaml", progress=None, **kw)
    elapsed = time.perf_counter() - t
    assert result.ok, result
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        os.environ["CELLOPS_HOME"] = str(Path(tmp) / "ws")
        project = Path(tmp) / "pipeline"
        shutil.copytree(EXAMPLE, project)
        cellops_run(project)  # warm-up: imports, first kernel start, workspace creation
        direct, piped = [], []
        for _ in range(3):  # interleaved, medians
            direct.append(papermill_direct(project))
            piped.append(cellops_run(project, force=True))
        d, p = statistics.median(direct), statistics.median(piped)

        import cellops

        steps_before = len(cellops.search_runs(filter="attributes.kind = 'step'"))
        cached_api = statistics.median([cellops_run(project) for _ in range(5)])
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "cellops.cli", "pipeline", "run", "pipeline.yaml"],
                             cwd=project, capture_output=True, text=True)
        cached_cli = time.perf_counter() - t
        assert "3 cached" in res.stdout, res.stdout + res.stderr
        kernels = len(cellops.search_runs(filter="attributes.kind = 'step'")) - steps_before

        nb = Path(tmp) / "sweep.ipynb"
        nb.write_text(SWEEP_NB)
        json.loads(SWEEP_NB)
        from cellops.pipelines import run_sweep

        grid = ["n=20,40,60,80", "seed=0,1"]
        seqs, pars = [], []
        for _ in range(2):  # interleaved, medians; the first pool also starts the fork server
            t = time.perf_counter()
            run_sweep(nb, grid, workers=1, progress=None, cwd=tmp)
            seqs.append(time.perf_counter() - t)
            t = time.perf_counter()
            run_sweep(nb, grid, workers=2, progress=None, cwd=tmp)
            pars.append(time.perf_counter() - t)
        seq, par = statistics.median(seqs), statistics.median(pars)
        first_par = pars[0]

    print(f"{'measure':<52}{'cellops':>10}{'anchor':>10}{'ratio':>9}  target")
    print("-" * 96)
    print(f"{'3-step pipeline, forced (s) vs papermill direct':<52}{p:>10.2f}{d:>10.2f}"
          f"{p / d:>8.2f}x  <= 1.10x  {'yes' if p / d <= 1.10 else 'NO'}")
    print(f"{'  per step overhead (s)':<52}{(p - d) / 3:>10.3f}")
    print(f"{'fully cached re-run, API (s)':<52}{cached_api:>10.3f}{'':>10}{'':>9}  <= 1 s    "
          f"{'yes' if cached_api <= 1 else 'NO'}")
    print(f"{'fully cached re-run, CLI process (s)':<52}{cached_cli:>10.3f}{'':>10}{'':>9}  <= 1 s    "
          f"{'yes' if cached_cli <= 1 else 'NO'}  kernels started: {kernels}")
    print(f"{'sweep of 8 trials, 2 workers vs 1 (s)':<52}{par:>10.2f}{seq:>10.2f}{seq / par:>8.2f}x  "
          f">= 1.8x   {'yes' if seq / par >= 1.8 else 'NO'}")
    print(f"{'  first sweep of the session, 2 workers (s)':<52}{first_par:>10.2f}{seq:>10.2f}"
          f"{seq / first_par:>8.2f}x  (starts the fork server)")
    print(f"(on {os.cpu_count()} CPUs: trials are CPU-bound, so 2 workers cannot pass 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
