"""The layers of docs/architecture.md, enforced: front ends use the public API only.

Front ends (the magics and widgets, the CLI and its demo, the server extension) may import
``cellops``, the documented public submodules (names in their ``__all__``), and their own
modules — never the domain's or the store's internals, never another front end. Outside
``cellops/tracking/`` nothing touches a run's private attributes.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import cellops
from cellops.tracking.run import Run

SRC = Path(cellops.__file__).parent
ROOT = SRC.parents[1]

# Documented in docs/architecture.md ("Public modules").
PUBLIC = ["cellops", "cellops.charts", "cellops.display", "cellops.errors", "cellops.execution", "cellops.jsonable",
          "cellops.monitoring", "cellops.pipelines", "cellops.registry", "cellops.serving", "cellops.tracking.autolog",
          "cellops.tracking.notebook"]

# Each front end: the modules it is made of (it may import its own freely).
FRONT_ENDS = {
    "notebook": ["cellops.magics", "cellops.widgets"],
    "cli": ["cellops.cli", "cellops.demo"],
    "server": ["cellops.server"],
    "scoring server": ["cellops.serving.http"],
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def front_end_files() -> list[tuple[str, Path]]:
    out = []
    for end, prefixes in FRONT_ENDS.items():
        for prefix in prefixes:
            base = SRC.parent / Path(*prefix.split("."))
            files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
            out += [(end, f) for f in files]
    return out


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) of every import in a file."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [a.name for a in node.names], node.lineno))
    return found


def owner(module: str) -> str | None:
    for end, prefixes in FRONT_ENDS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return end
    return None


@pytest.mark.parametrize("end, path", front_end_files(), ids=lambda v: str(v).split("src/")[-1])
def test_front_ends_import_only_the_public_api(end, path):
    for module, names, line in imports(path):
        if module != "cellops" and not module.startswith("cellops."):
            continue  # the standard library and third parties
        where = f"{path.relative_to(ROOT)}:{line}"
        other = owner(module)
        if other is not None:
            assert other == end, f"{where} reaches into another front end: {module}"
            continue
        if module == "cellops" and names:
            public_submodules = {m.split(".", 1)[1] for m in PUBLIC if m.count(".") == 1}
            for name in names:
                assert name in cellops.__all__ or name in public_submodules, \
                    f"{where}: cellops.{name} is not public API"
            continue
        assert module in PUBLIC, f"{where} imports {module}, which is not public API"
        exported = getattr(importlib.import_module(module), "__all__", None)
        assert exported is not None, f"{module} must declare __all__"
        for name in names:
            assert name in exported or importlib.util.find_spec(f"{module}.{name}"), \
                f"{where}: {module}.{name} is not in its __all__"


def test_public_modules_declare_their_names_and_are_documented():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for module in PUBLIC:
        assert hasattr(importlib.import_module(module), "__all__"), f"{module} lacks __all__"
        assert f"`{module}`" in doc, f"docs/architecture.md does not list {module}"


RUN_PRIVATE = sorted(
    {name for name in vars(Run) if name.startswith("_") and not name.startswith("__")}
    | {"_ws", "_row", "_cache", "_created_here", "_owned"})


def test_nothing_outside_tracking_touches_a_runs_private_attributes():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if (SRC / "tracking") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in RUN_PRIVATE:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_the_layer_check_catches_a_front_end_reaching_into_the_store(tmp_path, monkeypatch):
    """The checks above would fail on code that breaks the rules (they are not vacuous)."""
    bad = SRC / "magics" / "_layer_probe.py"
    bad.write_text("from cellops.store.runs import RunTable\nfrom cellops.cli import cli\n")
    try:
        with pytest.raises(AssertionError, match="not public API"):
            test_front_ends_import_only_the_public_api("notebook", bad)
        bad.write_text("from cellops.cli import cli\n")
        with pytest.raises(AssertionError, match="another front end"):
            test_front_ends_import_only_the_public_api("notebook", bad)
        bad.write_text("def f(run):\n    return run._ws\n")
        with pytest.raises(AssertionError):
            test_nothing_outside_tracking_touches_a_runs_private_attributes()
    finally:
        bad.unlink()
