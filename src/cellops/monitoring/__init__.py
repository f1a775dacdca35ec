"""Monitoring: drift and performance of a model's inputs and outputs, monitors that check
them window by window, and the alerts and actions they open."""

from .drift import DriftReport, drift
from .stats import register_drift_test

__all__ = ["DriftReport", "drift", "register_drift_test"]
