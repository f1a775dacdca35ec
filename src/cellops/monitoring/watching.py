"""The watch loop: :func:`run_monitors` every so often, and failed webhooks retried."""

from __future__ import annotations

import time
from typing import Callable

from .alerting import deliver_pending
from .evaluation import run_monitors
from .spec import parse_duration

__all__ = ["watch"]


def watch(name: str | None = None, *, every: str = "5m", iterations: int | None = None,
          progress: Callable[[str], None] | None = print) -> None:
    """:func:`run_monitors` every ``every`` (a duration), forever or ``iterations`` times;
    webhooks that failed are retried on each turn."""
    period = parse_duration(every, "every") / 1000
    turn = 0
    while iterations is None or turn < iterations:
        started = time.monotonic()
        run_monitors(name, progress=progress)
        deliver_pending(wait_s=min(10.0, period / 2))
        turn += 1
        if iterations is not None and turn >= iterations:
            break
        time.sleep(max(0.0, period - (time.monotonic() - started)))
