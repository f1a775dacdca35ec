"""Gate on a run's metrics, params and tags (for CI): ``cellops gate RUN EXPR``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgumentError
from ..store.filter import Comparison, Field, Logical, parse_filter
from ..tracking.api import get_run


@dataclass
class GateResult:
    run_id: str
    expression: str
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)  # condition, value, passed

    def __str__(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'}: run {self.run_id[:8]} "
                 f"{'meets' if self.passed else 'does not meet'} {self.expression!r}"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c['passed'] else 'x '}] {c['condition']}   "
                         f"(actual: {c['value']})")
        return "\n".join(lines)


def _leaves(node: Any) -> list[Comparison]:
    if isinstance(node, Logical):
        return [leaf for item in node.items for leaf in _leaves(item)]
    return [node]


def _describe(c: Comparison) -> str:
    value = "(" + ", ".join(map(repr, c.value)) + ")" if isinstance(c.value, tuple) else \
        ("" if c.value is None else repr(c.value))
    return f"{c.field} {c.op} {value}".rstrip()


def gate(run_id: str, expression: str) -> GateResult:
    """Whether a run's metrics/params/tags satisfy ``expression`` (the search grammar)."""
    node = parse_filter(expression)
    if node is None:
        raise InvalidArgumentError("gate needs a condition such as \"metrics.acc >= 0.9\".")
    run = get_run(run_id)
    store = run.workspace.store
    this = Comparison(Field("attributes", "run_id"), "=", run.id)

    def holds(n: Any) -> bool:
        return bool(store.search.rows(None, Logical("AND", (this, n)), [], 1))

    values = {"metrics": run.metrics, "params": run.params, "tags": run.tags}
    checks = []
    for leaf in _leaves(node):
        actual = values.get(leaf.field.entity, {}).get(leaf.field.key, run.info.get(leaf.field.key))
        if isinstance(actual, float) and math.isnan(actual):
            actual = "NaN"
        checks.append({"condition": _describe(leaf), "value": "missing" if actual is None else actual,
                       "passed": holds(leaf)})
    return GateResult(run.id, expression, holds(node), checks)
