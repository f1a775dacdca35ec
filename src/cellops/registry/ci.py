"""A CI/CD workflow for a project's pipeline: on every push, install, run the pipeline,
gate its result, register the model and ask for promotion of a protected alias.

:func:`github_workflow` writes GitHub Actions YAML; every step that is not a GitHub
action (checkout, setup-python) is one ``cellops`` command, so the same sequence runs
anywhere (a test executes it). The workspace the steps write to is ``CELLOPS_HOME``:
point it at a shared folder (or a workspace whose artifact root is object storage) so
that approvers see the request; by default it is ``.cellops`` in the checkout.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["CiSettings", "default_install", "github_workflow"]


@dataclass
class CiSettings:
    pipeline: str = "pipeline.yaml"  # relative to the repository root
    pipeline_name: str = ""  # the `name:` in the pipeline file
    train_step: str = "train"  # the step whose run logged the model
    eval_step: str = "evaluate"  # the step whose metrics the gate checks
    gate: str = "metrics.roc_auc >= 0.9"
    model: str = "model"
    alias: str = "production"
    approvers: list[str] = field(default_factory=list)
    install: str = "pip install cellops"
    python: str = "3.11"


def default_install(root: str | Path = ".") -> str:
    """How the job installs the project under test in ``root``: its requirements file, the
    project itself when it is a package (``pip install .``), and cellops unless one of
    those already brings it — so CI tests the checkout, not a release from PyPI."""
    root = Path(root)
    steps, brings_cellops = [], False
    requirements = root / "requirements.txt"
    if requirements.is_file():
        steps.append("pip install -r requirements.txt")
        brings_cellops |= bool(re.search(r"^\s*cellops\b", requirements.read_text(
            encoding="utf-8", errors="replace"), re.M | re.I))
    for name in ("pyproject.toml", "setup.cfg", "setup.py"):
        if (root / name).is_file():
            steps.append("pip install .")
            text = (root / name).read_text(encoding="utf-8", errors="replace")
            brings_cellops |= bool(re.search(r"""(^|["'\s])cellops([\s\[<>=!~;,"']|$)""", text,
                                             re.M | re.I))
            break
    if not brings_cellops:
        steps.append("pip install cellops")
    return " && ".join(steps)


def workflow_steps(s: CiSettings) -> list[dict[str, Any]]:
    """The steps, in order: GitHub actions (``uses``) and shell commands (``run``)."""
    q = shlex.quote
    ref_train = f"pipeline:{s.pipeline_name}/{s.train_step}"
    ref_eval = f"pipeline:{s.pipeline_name}/{s.eval_step}"
    approvers = " ".join(f"--approver {q(a)}" for a in s.approvers)
    return [
        {"name": "Check out", "uses": "actions/checkout@v4"},
        {"name": "Set up Python", "uses": "actions/setup-python@v5",
         "with": {"python-version": s.python}},
        {"name": "Install", "run": s.install},
        {"name": "Run the pipeline", "run": f"cellops pipeline run {q(s.pipeline)}"},
        {"name": "Gate the result", "run": f"cellops gate {q(ref_eval)} {q(s.gate)}"},
        {"name": "Register the model",
         "run": f"cellops models register {q(ref_train)} {q(s.model)} "
                f"--tag git_sha=${{GITHUB_SHA:-local}}"},
        # No --gate on the protection: the gate above already checked the evaluation step's
        # run (the job stops there when it fails), while a protection's gate reads the
        # metrics of the version's own run, the training step's.
        {"name": "Protect the alias (once)",
         "run": f"cellops models protect {q(s.model)} {q(s.alias)} {approvers} --if-missing"},
        {"name": "Request promotion",
         "run": f"cellops models alias {q(s.model)} {q(s.alias)} latest"},
    ]


def github_workflow(s: CiSettings) -> str:
    """The GitHub Actions workflow YAML for these settings."""
    import yaml

    from ..store.filter import parse_filter

    parse_filter(s.gate)  # a typo fails here, not in the first CI job
    if not s.approvers:
        raise InvalidArgumentError("The workflow needs at least one approver for the protected "
                                   "alias: --approver NAME (a user who may approve promotions).")
    doc = {
        "name": f"cellops: {s.pipeline_name}",
        "on": {"push": {"branches": ["main"]}, "workflow_dispatch": {}},
        "jobs": {"pipeline": {
            "runs-on": "ubuntu-latest",
            "env": {"CELLOPS_HOME": "${{ vars.CELLOPS_HOME || '.cellops' }}",
                    "CELLOPS_USER": "${{ github.actor }}"},
            "steps": workflow_steps(s),
        }},
    }
    header = ("# Written by `cellops ci init`. Each step after the two GitHub actions is a cellops\n"
              "# command: run the pipeline, gate its result, register the model, ask for\n"
              "# promotion. Set the repository variable CELLOPS_HOME to a shared workspace so\n"
              "# that approvers see the request (`cellops models requests`).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)
