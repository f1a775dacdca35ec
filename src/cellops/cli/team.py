"""``cellops migrate`` and ``cellops roles``: moving a workspace between engines, and who
may do what in a shared one."""

from __future__ import annotations

import click

import cellops

from .base import cli, echo_json, fmt, table


@cli.command("migrate")
@click.argument("target", type=click.Path(file_okay=False))
@click.option("--store", "store", metavar="URL", default=None,
              help="Where the copy's metadata goes: postgresql://user@host:5432/db (an empty "
                   "database). Default: the embedded SQLite file in TARGET.")
@click.option("--artifacts", "artifacts", metavar="URL", default=None,
              help="Where the copy's blobs go: s3://bucket/prefix, gs://..., az://... Default: "
                   "TARGET's own artifacts folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate(target: str, store: str | None, artifacts: str | None, as_json: bool) -> None:
    """Copy this workspace into a new one at TARGET: into PostgreSQL and object storage
    (--store, --artifacts) for a team, or back into a SQLite workspace.

    Ids, history and the audit chain are kept (the copy's chain is verified); every blob is
    checked against its sha256. A target that already holds data is refused. The source is
    left as it was.
    """
    last = {"table": None}

    def progress(name: str, rows: int) -> None:
        if not as_json and name != last["table"]:
            last["table"] = name
            click.echo(f"  copying {name} ...", err=True)

    report = cellops.migrate_workspace(target, store=store, artifacts=artifacts,
                                       progress=progress)
    if as_json:
        echo_json(report)
    else:
        rows = report["rows"]
        click.echo(f"Copied into {report['workspace']}")
        click.echo(f"  store:     {report['store']}")
        click.echo(f"  artifacts: {report['artifacts']}")
        click.echo(f"  rows:      {sum(rows.values()):,} ({rows.get('runs', 0):,} runs, "
                   f"{rows.get('metrics', 0):,} metric points, "
                   f"{rows.get('model_versions', 0):,} model versions)")
        click.echo(f"  blobs:     {report['blobs_copied']:,} copied "
                   f"({report['bytes_copied']:,} bytes), {report['blobs_present']:,} already there")
        click.echo(f"  {report['audit']}")
        if store or artifacts:
            click.echo("Team members join it with: cellops init"
                       + (f" --store {store}" if store else "")
                       + (f" --artifacts {artifacts}" if artifacts else ""))
    if not report["audit_ok"]:
        raise click.ClickException("The copy's audit log does not verify: " + report["audit"])


@cli.group("roles")
def roles_group() -> None:
    """Who may do what in a shared workspace: viewer, editor, approver, admin.

    With no role granted a workspace is open to everyone who can reach it. Once roles
    exist, writes check the acting user's role (CELLOPS_USER, Jupyter's user, or the OS
    user); someone without a role is a viewer.
    """


@roles_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def roles_list(as_json: bool) -> None:
    """Every granted role, and yours."""
    roles = cellops.workspace_roles()
    if as_json:
        echo_json({"roles": roles, "you": cellops.current_user(), "your_role": cellops.role_of()})
        return
    if not roles:
        click.echo("No roles granted: this workspace is open to everyone who can reach it. "
                   f"Start with `cellops roles grant {cellops.current_user()} admin`.")
        return
    click.echo(table(["user", "role", "granted by", "granted at"],
                     [[r["user"], r["role"], r["granted_by"] or "", fmt(_time(r["granted_at"]))]
                      for r in roles]))
    click.echo(f"\nYou ({cellops.current_user()}): {cellops.role_of()}")


def _time(ms: int | None):  # noqa: ANN202 - a pandas Timestamp or None
    import pandas as pd

    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


@roles_group.command("grant")
@click.argument("user")
@click.argument("role", type=click.Choice(["viewer", "editor", "approver", "admin"]))
def roles_grant(user: str, role: str) -> None:
    """Give USER a ROLE (each role includes the ones before it). Admins only, once roles
    exist; the first grant must make you an admin."""
    done = cellops.grant_role(user, role)
    before = f" (was {done['before']})" if done["before"] else ""
    click.echo(f"{user} is now {role}{before}.")


@roles_group.command("revoke")
@click.argument("user")
def roles_revoke(user: str) -> None:
    """Take USER's role away (they become a viewer). Admins only."""
    done = cellops.revoke_role(user)
    click.echo(f"{user} is no longer {done['before']}.")


