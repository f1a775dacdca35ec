"""The docs keep up with the code: every command, option and public name is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import cellops
from cellops.cli import cli, command_paths

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
API_DOC = "".join((ROOT / "docs" / page).read_text()
                  for page in ("tracking.md", "pipelines.md", "registry.md", "serving.md",
                               "monitoring.md", "features.md", "fairness.md", "automl.md",
                               "team.md"))
README = (ROOT / "README.md").read_text()


def _command(path: str):
    cmd = cli
    for part in path.split():
        cmd = cmd.commands[part]
    return cmd


@pytest.mark.parametrize("path", command_paths(cli))
def test_every_cli_command_has_help_and_a_docs_entry(path):
    cmd = _command(path)
    assert cmd.help and len(cmd.help) > 20, f"`cellops {path}` needs help text"
    assert f"### cellops {path}\n" in CLI_DOC, f"docs/cli.md lacks '### cellops {path}'"
    section = CLI_DOC.split(f"### cellops {path}\n", 1)[1].split("\n### ", 1)[0]
    for param in cmd.params:
        if param.param_type_name == "option":
            assert any(o in section for o in param.opts), \
                f"{param.opts} of `cellops {path}` is undocumented in docs/cli.md"


def test_every_option_has_help_text():
    for path in command_paths(cli):
        for param in _command(path).params:
            if param.param_type_name == "option":
                assert param.help, f"option {param.opts} of `cellops {path}` has no help"


PUBLIC_CALLABLES = sorted(
    n for n in cellops.__all__
    if inspect.isfunction(getattr(cellops, n))
)


@pytest.mark.parametrize("name", PUBLIC_CALLABLES)
def test_every_public_function_is_in_the_api_reference_and_has_a_docstring(name):
    assert re.search(rf"### `{name}\(", API_DOC) or re.search(rf"`{name}\(", API_DOC), \
        f"the API reference (docs/tracking.md, pipelines.md, registry.md, serving.md) lacks {name}"
    fn = getattr(cellops, name)
    assert fn.__doc__ or name.startswith(("log_", "set_tag")), f"{name} has no docstring"


@pytest.mark.parametrize("name", [n for n in cellops.__all__ if n.endswith("Error")])
def test_every_error_is_in_the_reference(name):
    assert f"`{name}`" in API_DOC


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    assert "pip install . && cellops demo" in README
    test_cmd = ('(command -v chromium && command -v pg_ctlcluster || (apt-get update && '
                'apt-get install -y chromium postgresql)) && (command -v azurite-blob || '
                'npm install -g azurite@3) && python -m pip install -e ".[test]" && '
                'python -m pytest -n 2 --dist loadfile')
    assert test_cmd in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci and "set -euo pipefail" in ci


def test_docs_pages_exist():
    for page in ("quickstart.md", "tracking.md", "cli.md", "architecture.md", "changelog.md",
                 "notebooks.md", "magics.md", "pipelines.md", "sidebar.md", "rest-api.md",
                 "registry.md", "serving.md", "monitoring.md", "features.md", "fairness.md", "automl.md"):
        assert (ROOT / "docs" / page).stat().st_size > 500


def test_every_image_the_docs_show_is_there():
    """Screenshots are the browser tests' (test-artifacts/), copied to docs/images/."""
    import re

    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}, which is missing"


MAGICS_DOC = (ROOT / "docs" / "magics.md").read_text()


def _magics():
    from cellops.magics.monitoring import Monitoring
    from cellops.magics.registry import Registry
    from cellops.magics.serving import Serving
    from cellops.magics.tracking import Cellops

    return [(Cellops, n) for n in ("experiment", "track", "params", "runs", "compare")] + \
        [(Registry, "register"), (Serving, "serve"), (Monitoring, "drift"), (Monitoring, "monitor")]


@pytest.mark.parametrize("owner, name", _magics(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_magic_and_its_options_are_in_the_magics_reference(owner, name):
    assert f"## %{name}" in MAGICS_DOC or f"## %%{name}" in MAGICS_DOC
    fn = getattr(owner, name)
    for action in fn.parser._actions:
        opts = [o for o in action.option_strings if o not in ("-h", "--help")]
        if opts:
            assert any(o in MAGICS_DOC for o in opts), f"{opts} of %{name} is not in docs/magics.md"


def test_every_config_option_is_documented():
    from cellops.magics.tracking import Cellops

    for trait in Cellops.class_traits(config=True):
        assert f"`{trait}`" in MAGICS_DOC, f"Cellops.{trait} is not in docs/magics.md"


def test_every_rest_route_is_in_the_rest_reference():
    import importlib
    import pkgutil

    import cellops.server

    doc = (ROOT / "docs" / "rest-api.md").read_text()
    listed = 0
    for info in pkgutil.iter_modules(cellops.server.__path__):
        module = importlib.import_module(f"cellops.server.{info.name}")
        if not hasattr(module, "ROUTES"):
            continue
        for line in module.__doc__.splitlines():
            parts = line.split()
            if parts and parts[0] in ("GET", "POST"):
                listed += 1
                route = parts[1].split("?")[0]
                assert f"{parts[0]} /cellops/api/v1/{route}" in doc, \
                    f"{parts[0]} {route} is not documented"
    assert listed >= len(cellops.server.routes())  # every route is in its module's docstring


def test_links_point_at_files_in_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert ROOT in path.parents and path.exists(), f"{page.name} links to {target}"


def test_no_page_claims_a_feature_that_is_not_built_yet():
    """The feature store and AutoML are planned: no page may say cellops has them (the
    architecture page says where they will go, marked as planned)."""
    claims = re.compile(r"(feature store|automl)\b.*\b(is|are) (built|available)|"
                        r"cellops (has|offers) (a feature store|automl)", re.I)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if page.name in ("architecture.md", "changelog.md"):
            continue
        for line in page.read_text().splitlines():
            if claims.search(line):
                assert "not in this version" in line or "being built" in line, \
                    f"{page.name}: {line.strip()}"
