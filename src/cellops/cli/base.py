"""What every ``cellops`` command shares: the group, the workspace option, bounded number
types, JSON and table output."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

import click

import cellops
from cellops.display import format_number
from cellops.errors import CellopsError
from cellops.jsonable import to_jsonable

# Bounds on numeric options: anything beyond is a mistake, refused with click's message
# (never an overflow deep inside SQLite or a process pool).
INT64_MAX = 2**63 - 1
MAX_WORKERS = 1024
MAX_SECONDS = 10**7


class Seconds(click.FloatRange):
    """A number of seconds from ``min`` to ``MAX_SECONDS``; NaN is refused (FloatRange lets
    it through, since every comparison with NaN is false)."""

    name = "seconds"

    def __init__(self, min: float = 0, min_open: bool = False) -> None:  # noqa: A002
        super().__init__(min=min, max=MAX_SECONDS, min_open=min_open)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not in the range {self._describe_range()}.", param, ctx)
        return number


# Commands that may start a workspace where there is none: the rest read or change one that
# exists, and a typo of a folder must not leave an empty workspace behind.
CREATES_WORKSPACE = {"init", "demo", "pipeline", "sweep", "ci", "drift"}


class Command(click.Command):
    """A ``cellops`` command: refuses to run where there is no workspace (unless its
    top-level name is in ``CREATES_WORKSPACE``), after its arguments were parsed, so that
    ``--help`` and usage errors come first."""

    def invoke(self, ctx: click.Context) -> Any:
        top = ctx.find_root().invoked_subcommand
        if top not in CREATES_WORKSPACE and cellops.find_workspace(existing=True) is None:
            home = os.environ.get("CELLOPS_HOME")
            raise click.ClickException(
                f"No cellops workspace at {home or os.getcwd()}"
                + ("" if home else " or in a folder above it")
                + ". Create one with `cellops init` (here) or `cellops demo` (with example "
                "runs), or name one with -w PATH or CELLOPS_HOME.")
        return super().invoke(ctx)


class _Group(click.Group):
    """Turns cellops errors into one-line messages and exit code 1. Its commands are
    :class:`Command`, its sub-groups ``_Group``."""

    command_class = Command
    group_class = type  # sub-groups are of this class too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CellopsError as exc:
            raise click.ClickException(str(exc)) from None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False))


def fmt(value: Any) -> str:
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:  # NaT
            return ""
    return format_number(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    """Plain aligned columns (readable in any terminal and in CI logs)."""
    cells = [[fmt(v) for v in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


@click.group(cls=_Group)
@click.version_option(cellops.__version__, prog_name="cellops")
@click.option("-w", "--workspace", "workspace_path", metavar="PATH", envvar="CELLOPS_HOME",
              help="Workspace to use: its .cellops folder, or a project folder holding one "
                   "(default: the .cellops/ found from the current directory; also "
                   "$CELLOPS_HOME). It must exist, except for `cellops init`.")
@click.pass_context
def cli(ctx: click.Context, workspace_path: str | None) -> None:
    """cellops: notebook-native MLOps on an embedded SQLite workspace."""
    if not workspace_path:
        return
    path = os.path.abspath(os.path.expanduser(workspace_path))
    from_flag = ctx.get_parameter_source("workspace_path") == click.core.ParameterSource.COMMANDLINE
    if from_flag and ctx.invoked_subcommand != "init":
        path = _existing_workspace(path)
    os.environ["CELLOPS_HOME"] = path


def _existing_workspace(path: str) -> str:
    """The workspace folder ``-w PATH`` names; a typo must not create a new, empty one."""
    found = cellops.workspace_folder(path)
    if found is None:
        raise click.BadParameter(
            f"no cellops workspace at {path} (no database there or in .cellops/ inside it). "
            f"Check the path, or create one with `cellops init {path}`.",
            param_hint="'-w' / '--workspace'")
    return str(found)


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--store", "store", metavar="URL", default=None,
              help="Keep the metadata in PostgreSQL: postgresql://user@host:5432/db (a team's "
                   "workspace; the password goes in PGPASSWORD or ~/.pgpass, never here). "
                   "Default: the embedded SQLite file .cellops/cellops.db.")
@click.option("--artifacts", "artifacts", metavar="URL", default=None,
              help="Keep artifact blobs in object storage: s3://bucket/prefix, gs://..., az://... "
                   "(credentials from the backend's own environment). Default: .cellops/artifacts.")
def init(path: str | None, store: str | None, artifacts: str | None) -> None:
    """Create a workspace (.cellops/) in PATH (default: the current directory).

    With --store and --artifacts it is a team's workspace: both are checked (connected to,
    the schema created, a probe blob written) before they are saved in .cellops/config.json.
    """
    if path is None and os.environ.get("CELLOPS_HOME"):
        ws = cellops.init_workspace(store=store, artifacts=artifacts)
    else:
        ws = cellops.init_workspace(path or os.getcwd(), store=store, artifacts=artifacts)
    click.echo(f"Workspace ready at {ws.path}")
    click.echo(f"  store:     {ws.store.where if ws.store_url else ws.db_path}")
    click.echo(f"  artifacts: {ws.artifact_root}")


def run_ref(text: str) -> str:
    """A run id, a ``runs:/`` URI (kept), or ``pipeline:NAME/STEP`` resolved to its run id."""
    if text.startswith("pipeline:"):
        from cellops.pipelines import step_run

        pipeline, _, step = text[len("pipeline:"):].rpartition("/")
        if not pipeline or not step:
            raise click.BadParameter(f"{text!r}: write pipeline:PIPELINE/STEP.")
        return step_run(pipeline, step)
    return text
