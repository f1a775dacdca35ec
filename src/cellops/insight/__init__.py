"""Insight into models: why they predict what they do (:mod:`.explanations`) and whom they
fail (:mod:`.fairness_metrics`). Reports are logged to the active run and are sections of the
model card; fairness gaps are run metrics a protected alias can gate on."""

from .card import version_insights
from .explanations import Explanation, explain
from .fairness_metrics import DEFINITIONS, FairnessReport, fairness

__all__ = ["DEFINITIONS", "Explanation", "FairnessReport", "explain", "fairness", "version_insights"]
