"""Imported first by the processes cellops starts to run notebooks (the pool workers and
the fork server they come from): see :func:`~cellops.execution.environment.skip_unused_format_checkers`."""

from __future__ import annotations

from .environment import skip_unused_format_checkers

skip_unused_format_checkers()
