"""Insight into models: why they predict what they do (:mod:`.explanations`) and whom they
fail (:mod:`.fairness_metrics`). Reports are logged to the active run and are sections of the
model card; fairness gaps are run metrics a protected alias can gate on."""

from .explanations import Explanation, explain
from .fairness_metrics import FairnessReport, fairness

__all__ = ["Explanation", "FairnessReport", "explain", "fairness"]
