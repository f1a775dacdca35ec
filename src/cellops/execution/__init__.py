"""Executing notebooks: everything between "run this notebook with these parameters" and
a report of what happened.

- :mod:`.environment`: :class:`KernelEnv`, the variables that tell a kernel which run
  and workspace it belongs to (the only place that names them), and
  :func:`skip_unused_format_checkers` for the processes cellops owns;
- :mod:`.worker`: one notebook through papermill in a fresh kernel, as a picklable task
  and a plain report (what local processes and Dask workers run);
- :mod:`.executors`: where tasks run — inline, a local process pool, a Dask cluster —
  looked up by scheme in a registry (:func:`register_executor`);
- :mod:`.cachekey`: what a step's result depends on (the notebook's cells, parameters,
  input hashes, upstream outputs, kernel), hashed into its cache key;
- :mod:`.engine`: the papermill engine that records plain ``papermill`` runs.

Pipelines, sweeps and reproduction (:mod:`cellops.pipelines`) are built on it. Importing
this package imports nothing heavy.
"""

from .environment import KernelEnv, skip_unused_format_checkers
from .worker import kernel_manager_class

__all__ = ["KernelEnv", "kernel_manager_class", "skip_unused_format_checkers"]
