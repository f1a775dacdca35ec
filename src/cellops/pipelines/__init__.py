"""Pipelines: parameterized notebooks run by papermill as cached, reproducible steps."""

from .executors import register_executor
from .runner import PipelineResult, StepResult, pipeline_status, run_pipeline
from .spec import Pipeline, PipelineSpecError, Step, load_pipeline

__all__ = ["Pipeline", "PipelineResult", "PipelineSpecError", "Step", "StepResult",
           "load_pipeline", "pipeline_status", "register_executor", "run_pipeline"]
