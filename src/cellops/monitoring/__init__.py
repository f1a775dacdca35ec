"""Monitoring: drift and performance of a model's inputs and outputs, monitors that check
them window by window, and the alerts and actions they open.

- :mod:`.stats` the drift statistics and their registry; :mod:`.drift` ``drift()`` and
  its report; :mod:`.performance` realised and estimated (CBPE) performance;
- :mod:`.spec` monitor specs and ``monitors.yaml``; :mod:`.monitors` stored monitors
  (create, apply, list, delete); :mod:`.windows` their reference and windows;
  :mod:`.evaluation` evaluating windows (``run_monitors``); :mod:`.checks` the checks of
  one window; :mod:`.results` what they found; :mod:`.watching` the loop;
  :mod:`.report` a monitor's HTML and charts; :mod:`.alerting` alerts and webhooks;
  :mod:`.actions` retraining.
"""

from .alerting import Alert, ack_alert, alerts, get_alert, resolve_alert
from .drift import DriftReport, drift
from .evaluation import run_monitors
from .monitors import (
           Monitor,
           apply_monitors,
           create_monitor,
           delete_monitor,
           get_monitor,
           monitors,
)
from .performance import CBPE, Estimate, performance
from .results import MonitorResult, monitor_history, monitor_results
from .spec import MonitorSpecError
from .stats import register_drift_test
from .watching import watch

__all__ = ["Alert", "CBPE", "DriftReport", "Estimate", "Monitor", "MonitorResult",
           "MonitorSpecError", "ack_alert", "alerts", "apply_monitors", "create_monitor",
           "delete_monitor", "drift", "get_alert", "get_monitor", "monitor_history", "monitor_results", "monitors",
           "performance", "register_drift_test", "resolve_alert", "run_monitors", "watch"]
