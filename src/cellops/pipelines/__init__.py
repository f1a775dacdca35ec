"""Pipelines: parameterized notebooks run by papermill as cached, reproducible steps."""

from .executors import register_executor
from .reproduce import GateResult, ReproduceResult, gate, reproduce
from .runner import PipelineResult, StepResult, pipeline_runs, pipeline_status, run_pipeline
from .spec import Pipeline, PipelineSpecError, Step, load_pipeline
from .sweep import SweepResult, run_sweep

__all__ = ["GateResult", "Pipeline", "PipelineResult", "PipelineSpecError", "ReproduceResult",
           "Step", "StepResult", "SweepResult", "gate", "load_pipeline", "pipeline_runs", "pipeline_status",
           "register_executor", "reproduce", "run_pipeline", "run_sweep"]
