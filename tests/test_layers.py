"""The layers of docs/architecture.md, enforced on the source.

- Front ends (the magics and widgets, the CLI and its demo, the server extension, the
  scoring server) import ``cellops``, the documented public submodules (names in their
  ``__all__``) and their own modules — never the domain's or the store's internals, never
  another front end — and hold no SQL (no ``sqlite3``, no SQL text).
- Only ``store/`` touches the database connection (``.store.conn``, ``.conn.execute``).
- A private attribute (``obj._name``) is used only inside the area (package) whose
  classes define it; a private name is imported only inside its own area.

Each rule is a function of a file's path and text, so the probes at the end show every
rule failing on code that breaks it without writing anything into ``src/``.
"""

from __future__ import annotations

import ast
import importlib
import re
from functools import lru_cache
from pathlib import Path

import pytest

import cellops

SRC = Path(cellops.__file__).parent
ROOT = SRC.parents[1]

# Documented in docs/architecture.md ("Public modules").
PUBLIC = ["cellops", "cellops.charts", "cellops.display", "cellops.errors", "cellops.execution", "cellops.features", "cellops.insight", "cellops.jsonable", "cellops.modelsearch",
          "cellops.monitoring", "cellops.pipelines", "cellops.registry", "cellops.serving", "cellops.tracking.autolog",
          "cellops.tracking.notebook"]

# Each front end: the modules it is made of (it may import its own freely).
FRONT_ENDS = {
    "notebook": ["cellops.magics", "cellops.widgets"],
    "cli": ["cellops.cli", "cellops.demo"],
    "server": ["cellops.server"],
    "scoring server": ["cellops.serving.http"],
}
SQL_TEXT = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|"
                      r"DELETE\s+FROM|CREATE\s+(TABLE|INDEX|VIEW)|DROP\s+TABLE|PRAGMA\s+\w+)", re.S)
# Protocol hooks spelled with one underscore (_repr_html_, _ipython_display_, ...): public.
PROTOCOL = re.compile(r"^_[a-z_]+_$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def area(module: str) -> str:
    """The area a module belongs to: its package under cellops (``cellops.registry.card``
    -> ``registry``), or the top-level module itself (``cellops.charts`` -> ``charts``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def owner(module: str) -> str | None:
    for end, prefixes in FRONT_ENDS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return end
    return None


def front_end_files() -> list[tuple[str, Path]]:
    out = []
    for end, prefixes in FRONT_ENDS.items():
        for prefix in prefixes:
            base = SRC.parent / Path(*prefix.split("."))
            files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
            out += [(end, f) for f in files]
    return out


def source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def imports(module: str, is_package: bool, text: str) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) of every import in a file's text."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, [a.name for a in node.names], node.lineno))
    return found


# -- the rules: (module, text) -> problems ---------------------------------------------------
def public_api_problems(end: str, module: str, is_package: bool, text: str) -> list[str]:
    problems = []
    for mod, names, line in imports(module, is_package, text):
        where = f"{module}:{line}"
        if mod == "sqlite3":
            problems.append(f"{where} imports sqlite3: a front end speaks SQL through nothing")
        if mod != "cellops" and not mod.startswith("cellops."):
            continue  # the standard library and third parties
        other = owner(mod)
        if other is not None:
            if other != end:
                problems.append(f"{where} reaches into another front end: {mod}")
            continue
        if mod == "cellops" and names:
            public_submodules = {m.split(".", 1)[1] for m in PUBLIC if m.count(".") == 1}
            problems += [f"{where}: cellops.{n} is not public API" for n in names
                         if n not in cellops.__all__ and n not in public_submodules]
            continue
        if mod not in PUBLIC:
            problems.append(f"{where} imports {mod}, which is not public API")
            continue
        exported = getattr(importlib.import_module(mod), "__all__", None)
        if exported is None:
            problems.append(f"{mod} must declare __all__")
            continue
        problems += [f"{where}: {mod}.{n} is not in its __all__" for n in names
                     if n not in exported and not importlib.util.find_spec(f"{mod}.{n}")]
    return problems


def sql_text_problems(module: str, text: str) -> list[str]:
    return [f"{module}:{node.lineno} holds SQL text: {node.value.strip()[:40]!r}"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and SQL_TEXT.search(node.value)]


def connection_problems(module: str, text: str) -> list[str]:
    """``x.store.conn`` and ``x.conn.execute(...)``: the connection is the store's."""
    problems = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if node.attr == "conn" and isinstance(value, ast.Attribute) and value.attr == "store":
            problems.append(f"{module}:{node.lineno} uses {ast.unparse(node)}")
        if node.attr in ("execute", "executemany", "executescript") and \
                isinstance(value, ast.Attribute) and value.attr == "conn":
            problems.append(f"{module}:{node.lineno} runs SQL: {ast.unparse(node)}")
    return problems


@lru_cache(maxsize=None)
def private_attributes(area_name: str) -> frozenset[str]:
    """The private attributes the classes of an area define: ``self._x = ...`` in their
    methods, and private methods and class attributes."""
    base = SRC / area_name
    files = sorted(base.rglob("*.py")) if base.is_dir() else [SRC / f"{area_name}.py"]
    names: set[str] = set()
    for path in files:
        for cls in [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]:
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                        node.value.id in ("self", "cls") and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Assign) and node in cls.body:
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
                elif isinstance(node, ast.AnnAssign) and node in cls.body and \
                        isinstance(node.target, ast.Name):
                    names.add(node.target.id)
    return frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))


def private_problems(module: str, is_package: bool, text: str) -> list[str]:
    """``obj._name`` outside the area whose classes define ``_name``; ``from other_area
    import _name``."""
    mine = area(module)
    own = private_attributes(mine)
    problems = []
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                not node.attr.startswith("__") and not PROTOCOL.match(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if node.attr not in own:
                problems.append(f"{module}:{node.lineno} uses a private attribute of another "
                                f"area's object: {ast.unparse(node)}")
    for mod, names, line in imports(module, is_package, text):
        if mod.startswith("cellops.") and area(mod) != mine:
            problems += [f"{module}:{line} imports {mod}.{n}, private to another area"
                         for n in names if n.startswith("_") and not n.startswith("__")]
    return problems


# -- the rules, on every file ----------------------------------------------------------------
@pytest.mark.parametrize("end, path", front_end_files(), ids=lambda v: str(v).split("src/")[-1])
def test_front_ends_use_the_public_api_and_hold_no_sql(end, path):
    module, text = module_name(path), path.read_text()
    assert public_api_problems(end, module, path.name == "__init__.py", text) == []
    assert sql_text_problems(module, text) == []


def test_only_the_store_touches_the_connection():
    problems = []
    for path in source_files():
        if (SRC / "store") not in path.parents:
            problems += connection_problems(module_name(path), path.read_text())
    assert problems == []


def test_private_attributes_and_names_stay_in_their_area():
    problems = []
    for path in source_files():
        problems += private_problems(module_name(path), path.name == "__init__.py", path.read_text())
    assert problems == []


def test_public_modules_declare_their_names_and_are_documented():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for module in PUBLIC:
        assert hasattr(importlib.import_module(module), "__all__"), f"{module} lacks __all__"
        assert f"`{module}`" in doc, f"docs/architecture.md does not list {module}"


# -- the probes: each rule fails on code that breaks it (nothing is written to src/) --------
@pytest.mark.parametrize("text, message", [
    ("from cellops.store.runs import RunTable\n", "not public API"),
    ("from cellops.cli import cli\n", "another front end"),
    ("import sqlite3\n", "imports sqlite3"),
    ("from cellops import _LAZY\n", "is not public API"),
    ("from cellops.registry import _decide\n", "not in its __all__"),
])
def test_the_public_api_rule_catches(text, message):
    problems = public_api_problems("notebook", "cellops.magics.probe", False, text)
    assert any(message in p for p in problems), problems


def test_the_sql_rule_catches_sql_text_in_a_front_end():
    text = 'rows = ws.query("SELECT id FROM runs WHERE status = ?")\n'
    assert sql_text_problems("cellops.cli.probe", text)
    assert sql_text_problems("cellops.cli.probe", 'q = """\nDELETE FROM runs\n"""\n')
    assert not sql_text_problems("cellops.cli.probe", 'print("Select a run from the list")\n')


@pytest.mark.parametrize("text", [
    "def f(ws):\n    return ws.store.conn\n",
    "def f(store):\n    store.conn.execute('x')\n",
    "def f(self):\n    self.db.conn.executemany('x', [])\n",
])
def test_the_connection_rule_catches(text):
    assert connection_problems("cellops.monitoring.probe", text)


@pytest.mark.parametrize("module, text", [
    ("cellops.magics.probe", "def f(run):\n    return run._ws\n"),
    ("cellops.registry.probe", "def f(run):\n    return run._owned\n"),
    ("cellops.serving.probe", "def f(v):\n    return v._lineage_cache\n"),
    ("cellops.monitoring.probe", "from cellops import charts\nx = charts._COLOURS\n"),
    ("cellops.registry.probe", "from cellops.tracking.values import _private\n"),
    ("cellops.serving.probe", "from ..registry.versions import _check_name\n"),
    ("cellops.monitoring.probe", "from ..datasets import _describe_frame\n"),
])
def test_the_private_rule_catches(module, text):
    assert private_problems(module, False, text), text


def test_the_private_rule_lets_an_area_use_its_own_and_protocols():
    assert not private_problems("cellops.tracking.probe", False, "def f(run):\n    return run._ws\n")
    assert not private_problems("cellops.widgets.probe", False,
                                "def f(w):\n    return w._repr_mimebundle_()\n")
    assert not private_problems("cellops.registry.probe", False,
                                "from .versions import _check_name\n")


# -- no import cycles between modules --------------------------------------------------------
def import_graph(texts: dict[str, tuple[bool, str]]) -> dict[str, set[str]]:
    """Module -> the cellops modules it imports anywhere (functions included; not under
    ``if TYPE_CHECKING``), from ``{module: (is_package, text)}``."""
    graph: dict[str, set[str]] = {m: set() for m in texts}
    for module, (is_package, text) in texts.items():
        tree = ast.parse(text)
        hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                  and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in hidden or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            graph[module] |= {t for t in targets if t in texts and t != module
                              and not module.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, found = set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_two_modules_import_each_other():
    texts = {module_name(p): (p.name == "__init__.py", p.read_text()) for p in source_files()}
    assert cycles(import_graph(texts)) == []


def test_the_cycle_check_finds_one_through_a_function_level_import():
    texts = {"cellops.a": (False, "from .b import x\n"),
             "cellops.b": (False, "def f():\n    from .c import y\n"),
             "cellops.c": (False, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from .a import z\nfrom .a import w\n"),
             "cellops.d": (False, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from .a import z\n")}
    assert cycles(import_graph(texts)) == [["cellops.a", "cellops.b", "cellops.c"]]
