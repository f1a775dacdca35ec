"""Pipelines: parameterized notebooks run by papermill as cached, reproducible steps.

Executing a notebook (kernels, executors, cache keys) is :mod:`cellops.execution`;
this package decides what to run: pipeline files (:mod:`.spec`), the runner and its
cache (:mod:`.runner`), sweeps (:mod:`.sweep`), reproduction (:mod:`.reproduction`) and
gates (:mod:`.gating`). The modules are not named after the functions they export
(``gate``, ``reproduce``), so ``cellops.pipelines.gate`` is only ever the function.
"""

from ..execution.executors import register_executor
from .gating import GateResult, gate
from .reproduction import ReproduceResult, reproduce
from .runner import (
    PipelineResult,
    StepResult,
    pipeline_runs,
    pipeline_status,
    run_pipeline,
    step_run,
)
from .spec import Pipeline, PipelineSpecError, Step, load_pipeline
from .sweep import SweepResult, run_sweep

__all__ = ["GateResult", "Pipeline", "PipelineResult", "PipelineSpecError", "ReproduceResult",
           "Step", "StepResult", "SweepResult", "gate", "load_pipeline", "pipeline_runs",
           "pipeline_status", "register_executor", "reproduce", "run_pipeline", "run_sweep",
           "step_run"]
