"""``cellops models``, ``cellops audit`` and ``cellops ci``: the registry area's commands.

A model is named ``NAME`` (its latest version), ``NAME/VERSION`` or ``NAME@ALIAS``; a run
is an id (or unique prefix), ``runs:/RUN_ID/PATH`` or ``pipeline:PIPELINE/STEP`` (that
step's run in the newest run of the pipeline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click_default_group import DefaultGroup

import cellops
from cellops.display import format_bytes, format_number

from .base import INT64_MAX, Command, cli, echo_json, fmt, run_ref, table


def model_ref(text: str) -> tuple[str, int | str]:
    """``NAME`` -> (NAME, "latest"); ``NAME/3`` -> (NAME, 3); ``NAME@champion``."""
    if "@" in text:
        name, _, alias = text.rpartition("@")
        return name, alias
    name, slash, version = text.rpartition("/")
    if slash and version.isascii() and version.isdigit():
        return name, int(version)
    return text, "latest"


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{what} takes KEY=VALUE, not {item!r}.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _version_line(v: Any) -> list[Any]:
    return [v.name, v.version, ", ".join(v.aliases), (v.run_id or "")[:8], v.created_by,
            v.created_at, format_bytes(v.size)]


@cli.group()
def models() -> None:
    """Registered models: versions, aliases, approvals, model cards."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_list(as_json: bool) -> None:
    """List registered models with their latest version and aliases."""
    found = cellops.list_models()
    if as_json:
        echo_json([m.__dict__ for m in found])
        return
    if not found:
        click.echo("No registered models yet. Register one with "
                   "`cellops models register RUN NAME`.")
        return
    click.echo(table(["model", "versions", "latest", "aliases", "updated by"],
                     [[m.name, m.version_count, m.latest_version,
                       ", ".join(f"{a}->v{v}" for a, v in m.aliases.items()), m.created_by]
                      for m in found]))


@models.command("show")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_show(model: str, as_json: bool) -> None:
    """Show a version: MODEL is NAME (latest), NAME/VERSION or NAME@ALIAS."""
    v = cellops.get_model_version(*model_ref(model))
    if as_json:
        echo_json(v.to_dict())
        return
    lines = [f"{v.name} version {v.version}  {v.uri}",
             f"  aliases     {', '.join(v.aliases) or '-'}",
             f"  run         {v.run_id or '- (registered from an estimator)'}",
             f"  file        {v.artifact_path or '-'}  {format_bytes(v.size)}  sha256 {v.sha256[:16]}",
             f"  registered  {fmt(v.created_at)} by {v.created_by}"]
    if v.description:
        lines.append(f"  description {v.description}")
    if v.signature and v.signature.get("inputs"):
        lines.append(f"  inputs      {', '.join(i['name'] for i in v.signature['inputs'][:12])}"
                     + (" ..." if len(v.signature["inputs"]) > 12 else ""))
    if v.tags:
        lines.append("  tags        " + ", ".join(f"{k}={t}" for k, t in sorted(v.tags.items())))
    click.echo("\n".join(lines))


@models.command("register")
@click.argument("source")
@click.argument("name")
@click.option("--artifact", metavar="PATH", help="Which model file of the run (default: the one "
                                                 "%%track captured, or its only .skops file).")
@click.option("--description", help="What the model is for (shown on its model card).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the version (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_register(source: str, name: str, artifact: str | None, description: str | None,
                    tags: tuple[str, ...], as_json: bool) -> None:
    """Register the model of SOURCE as the next version of NAME.

    SOURCE is a run id (or prefix), runs:/RUN_ID/PATH or pipeline:PIPELINE/STEP.
    """
    v = cellops.register_model(run_ref(source), name, artifact=artifact, description=description,
                               tags=_pairs(tags, "--tag"))
    if as_json:
        echo_json(v.to_dict())
        return
    click.echo(f"Registered {v.name} version {v.version} ({v.uri}) from run {(v.run_id or '')[:8]}")


@models.command("versions")
@click.argument("name", required=False)
@click.option("-f", "--filter", "filter_", metavar="FILTER",
              help="e.g. \"alias = 'champion'\" or \"metrics.auc > 0.9 and tags.stage = 'prod'\".")
@click.option("-o", "--order-by", multiple=True, metavar="KEY", help="e.g. 'version DESC'.")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=INT64_MAX), default=100,
              show_default=True, help="Show at most this many versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_versions(name: str | None, filter_: str | None, order_by: tuple[str, ...], limit: int,
                    as_json: bool) -> None:
    """List versions (of NAME, or matching --filter), newest first."""
    flt = filter_
    if name:
        quoted = name.replace("'", "''")
        flt = f"name = '{quoted}'" + (f" AND ({filter_})" if filter_ else "")
    found = cellops.search_model_versions(flt, order_by=list(order_by) or None, max_results=limit)
    if as_json:
        echo_json([v.to_dict() for v in found])
        return
    if not found:
        click.echo("No versions match." if filter_ else "No versions yet.")
        return
    click.echo(table(["model", "version", "aliases", "run", "by", "registered", "size"],
                     [_version_line(v) for v in found]))


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False, default="latest")
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the version the alias points at, or the promotion request opened.")
def models_alias(name: str, alias: str, version: str, delete: bool, as_json: bool) -> None:
    """Point ALIAS of NAME at VERSION (a number or 'latest', the default).

    A protected alias does not move: a promotion request is opened for its approvers.
    """
    if delete:
        cellops.delete_alias(name, alias)
        if as_json:
            echo_json({"deleted": f"{name}@{alias}"})
        else:
            click.echo(f"Removed {name}@{alias}.")
        return
    result = cellops.set_alias(name, alias, version)
    if as_json:
        echo_json({"request": _request_dict(result)} if isinstance(result, cellops.PromotionRequest)
                  else {"version": result.to_dict()})
        return
    if isinstance(result, cellops.PromotionRequest):
        click.echo(f"{name}@{alias} is protected: opened {result}")
        if result.gate_passed is False:
            click.echo(f"The gate failed: {(result.gate_result or {}).get('verdict') or result.gate}")
    else:
        click.echo(f"{name}@{alias} -> version {result.version}")


@models.command("protect")
@click.argument("name")
@click.argument("alias")
@click.option("--approver", "approvers", multiple=True, metavar="USER",
              help="A user who may approve moving the alias (repeatable).")
@click.option("--min", "min_approvals", type=click.IntRange(min=1, max=1000), default=1,
              show_default=True, help="Approvals needed to move it.")
@click.option("--gate", metavar="EXPR", help="A condition the version's run must meet, e.g. "
                                            "\"metrics.auc >= 0.95\".")
@click.option("--if-missing", is_flag=True, help="Leave an existing protection as it is (for CI).")
@click.option("--remove", is_flag=True, help="Remove the protection (approvers only).")
def models_protect(name: str, alias: str, approvers: tuple[str, ...], min_approvals: int,
                   gate: str | None, if_missing: bool, remove: bool) -> None:
    """Make moving ALIAS of NAME need approvals (a promotion request)."""
    if remove:
        cellops.unprotect_alias(name, alias)
        click.echo(f"{name}@{alias} is no longer protected.")
        return
    if if_missing and cellops.alias_protection(name, alias) is not None:
        click.echo(f"{name}@{alias} is already protected; left as it is.")
        return
    if not approvers:
        raise click.UsageError("Name at least one --approver.")
    cellops.protect_alias(name, alias, list(approvers), min_approvals, gate=gate)
    click.echo(f"{name}@{alias} now needs {min_approvals} approval(s) from "
               f"{', '.join(approvers)}" + (f"; gate: {gate}" if gate else "") + ".")


@models.command("requests")
@click.argument("name", required=False)
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "cancelled", "all"]),
              default="pending", show_default=True, help="Which requests.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_requests(name: str | None, status: str, as_json: bool) -> None:
    """List promotion requests (pending ones by default)."""
    found = cellops.promotion_requests(None if status == "all" else status, name)
    if as_json:
        echo_json([_request_dict(r) for r in found])
        return
    if not found:
        click.echo(f"No {'' if status == 'all' else status + ' '}promotion requests.")
        return
    click.echo(table(["id", "alias", "version", "status", "requested by", "when", "gate", "waiting on"],
                     [[r.id, f"{r.name}@{r.alias}", r.version, r.status, r.requested_by,
                       r.requested_at, "-" if r.gate_passed is None else
                       ("passed" if r.gate_passed else "FAILED"),
                       f"{r.approvals_needed} of {', '.join(r.approvers)}" if r.status == "PENDING"
                       else ""] for r in found]))


def _request_dict(r: Any) -> dict[str, Any]:
    return {**r.__dict__, "approvals_needed": r.approvals_needed}


def _decide(request_id: int, comment: str | None, approve: bool, as_json: bool,
            override_gate: bool = False) -> None:
    result = (cellops.approve(request_id, comment=comment, override_gate=override_gate) if approve
              else cellops.reject(request_id, comment=comment))
    if as_json:
        echo_json(_request_dict(result))
    else:
        click.echo(str(result))


@models.command("approve")
@click.argument("request_id", type=click.IntRange(min=1, max=INT64_MAX))
@click.option("--comment", help="Why (kept in the audit log).")
@click.option("--override-gate", is_flag=True,
              help="Approve although the version failed its gate (needs --comment; recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as it now is, as JSON.")
def models_approve(request_id: int, comment: str | None, override_gate: bool, as_json: bool) -> None:
    """Approve a promotion request as the current user ($CELLOPS_USER or the OS user)."""
    _decide(request_id, comment, True, as_json, override_gate)


@models.command("reject")
@click.argument("request_id", type=click.IntRange(min=1, max=INT64_MAX))
@click.option("--comment", help="Why (kept in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as it now is, as JSON.")
def models_reject(request_id: int, comment: str | None, as_json: bool) -> None:
    """Reject a promotion request as the current user ($CELLOPS_USER or the OS user)."""
    _decide(request_id, comment, False, as_json)


@models.command("card")
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the card here "
                                                                      "(Markdown) instead of printing it.")
def models_card(model: str, output: str | None) -> None:
    """The model card of MODEL (NAME, NAME/VERSION or NAME@ALIAS), as Markdown."""
    card = cellops.model_card(*model_ref(model))
    if output:
        click.echo(str(card.save(output)))
    else:
        click.echo(card.markdown)


@models.command("load-check")
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_load_check(uri: str, as_json: bool) -> None:
    """Load the model at URI as serving would (sha256 checked, trusted types only).

    URI: models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH. Exit 1 when it
    does not load.
    """
    model = cellops.load_model(uri)
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    info = {"uri": uri, "type": kind, "n_features_in": getattr(model, "n_features_in_", None),
            "classes": [format_number(c) for c in getattr(model, "classes_", [])][:20]}
    if as_json:
        echo_json(info)
        return
    click.echo(f"OK: {uri} loads as {kind}"
               + (f" ({info['n_features_in']} features)" if info["n_features_in"] else ""))


@cli.group(cls=DefaultGroup, default="log", default_if_no_args=True)
def audit() -> None:
    """The registry's audit log: who changed what, when (`cellops audit` is `cellops audit log`:
    `cellops audit -n 5` works too)."""


audit.command_class = Command  # a DefaultGroup: its commands are cellops commands all the same


@audit.command("log")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=100_000), default=50,
              show_default=True, help="Show the latest this many entries.")
@click.option("--object", "obj", metavar="NAME[@ALIAS]", help="Only entries about this model.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_log(limit: int = 50, obj: str | None = None, as_json: bool = False) -> None:
    """List audit entries, newest first."""
    entries = cellops.audit_log(limit, object=obj)
    if as_json:
        echo_json([e.__dict__ for e in entries])
        return
    if not entries:
        click.echo("The audit log is empty.")
        return
    click.echo(table(["#", "when", "who", "action", "object", "details"],
                     [[e.seq, e.at, e.actor, e.action, e.object,
                       ", ".join(f"{k}={v}" for k, v in e.details.items())] for e in entries],
                     max_width=60))


@audit.command("verify")
@click.option("--head", metavar="HASH", help="A head exported earlier (`cellops audit head`: "
                                             "'SEQ HASH', or the hash alone): check the log "
                                             "still contains it.")
def audit_verify(head: str | None) -> None:
    """Check the audit log's hash chain; exit 1 at the first altered, removed or reordered entry."""
    if head is not None and head.split():
        head = head.split()[-1]  # `cellops audit head` prints "SEQ HASH"
    report = cellops.verify_audit(head=head)
    click.echo(str(report))
    if not report.ok:
        raise SystemExit(1)


@audit.command("head")
def audit_head() -> None:
    """Print the hash of the last audit entry, to keep outside the workspace (e.g. in git)."""
    head = cellops.audit_head()
    click.echo(f"{head['seq']} {head['hash']}")


@cli.group()
def ci() -> None:
    """Continuous integration: a workflow that runs, gates, registers and requests promotion."""


@ci.command("init")
@click.option("--github", "github", is_flag=True, default=True, help="Write GitHub Actions YAML "
                                                                     "(the only kind, for now).")
@click.option("--pipeline", "pipeline_file", default="pipeline.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The pipeline file to run.")
@click.option("--train-step", default="train", show_default=True, help="The step that logs the model.")
@click.option("--eval-step", default="evaluate", show_default=True,
              help="The step whose metrics the gate checks.")
@click.option("--gate", default="metrics.roc_auc >= 0.9", show_default=True, metavar="EXPR",
              help="The condition the evaluation must meet.")
@click.option("--model", default=None, help="Registered model name (default: the pipeline's name).")
@click.option("--alias", default="production", show_default=True, help="The protected alias.")
@click.option("--approver", "approvers", multiple=True, required=True, metavar="USER",
              help="Who may approve the promotion (repeatable).")
@click.option("-o", "--output", default=".github/workflows/cellops.yml", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the workflow.")
@click.option("--install", default=None, metavar="CMD",
              help="How the job installs the project (default: its requirements.txt and the "
                   "project itself when it is a package, plus cellops unless they bring it).")
@click.option("--force", is_flag=True, help="Replace an existing workflow file.")
def ci_init(github: bool, pipeline_file: str, train_step: str, eval_step: str, gate: str,
            model: str | None, alias: str, approvers: tuple[str, ...], output: str,
            install: str | None, force: bool) -> None:
    """Write a CI workflow for the pipeline: run it, gate it, register, request promotion."""
    from cellops.pipelines import load_pipeline
    from cellops.registry import CiSettings, default_install, github_workflow

    if not Path(pipeline_file).is_file():
        raise click.BadParameter(f"{pipeline_file} does not exist here; run `cellops ci init` in "
                                 "the project's root or name the file with --pipeline FILE.",
                                 param_hint="--pipeline")
    pipeline = load_pipeline(pipeline_file)
    for step in (train_step, eval_step):
        if step not in pipeline.steps:
            raise click.BadParameter(f"the pipeline has no step {step!r}; steps: "
                                     f"{', '.join(pipeline.steps)}")
    target = Path(output)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to replace it.")
    text = github_workflow(CiSettings(
        pipeline=pipeline_file, pipeline_name=pipeline.name, train_step=train_step,
        eval_step=eval_step, gate=gate, model=model or pipeline.name, alias=alias,
        approvers=list(approvers), install=install or default_install(".")))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    click.echo(f"Wrote {target}. Set the repository variable CELLOPS_HOME to your shared "
               "workspace so approvers see the promotion requests.")
