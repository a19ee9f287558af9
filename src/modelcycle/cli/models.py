"""`modelcycle models`: what the registry holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelcycle.cli.context import settings_from, stdout

if TYPE_CHECKING:
    from modelcycle.registry.catalog import ModelVersionRecord

models_app = typer.Typer(help="List and inspect registered model versions.", no_args_is_help=True)

_HEADLINE_METRICS = ("accuracy", "f1", "roc_auc", "pr_auc")


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Only this model (repeatable).")
    ] = None,
    old_name: Annotated[
        list[str] | None, typer.Option("--name", hidden=True, help="The old name of --model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Every version of every registered model: aliases, metrics, created time, source."""
    name = [*(model or ()), *(old_name or ())]
    from modelcycle.registry.catalog import list_versions
    from modelcycle.registry.connection import connect_tracking, mask_uri

    tracking = connect_tracking(settings_from(ctx))
    records = list_versions(tracking.client, name or None)
    if as_json:
        stdout.print_json(data=[r.to_dict() for r in records])
        return
    if not records:
        shown = mask_uri(tracking.tracking_uri)
        stdout.print(f"no registered models in {shown}: run `modelcycle train`")
        return
    table = Table(title=f"models in {mask_uri(tracking.tracking_uri)}")
    for column in ("name", "version", "aliases", "created", *_HEADLINE_METRICS):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.name,
            r.version,
            ", ".join(r.aliases),
            r.created_at,
            *(_metric(r, k) for k in _HEADLINE_METRICS),
        )
    stdout.print(table)


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version number; default the newest.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """One version: aliases, metrics, params, tags, created time and artifact location."""
    from modelcycle.registry.catalog import show_version
    from modelcycle.registry.connection import connect_tracking

    tracking = connect_tracking(settings_from(ctx))
    record = show_version(tracking.client, name, version)
    if as_json:
        stdout.print_json(data=record.to_dict())
        return
    table = Table(title=f"{record.name} version {record.version}", show_header=False)
    table.add_row("aliases", ", ".join(record.aliases) or "-")
    table.add_row("created", record.created_at)
    table.add_row("source", record.source)
    table.add_row("run", record.run_id)
    for key, value in sorted(record.metrics.items()):
        table.add_row(f"metric {key}", f"{value:.4g}")
    for key, text in sorted(record.params.items()):
        table.add_row(f"param {key}", text)
    for key, text in sorted(record.tags.items()):
        table.add_row(f"tag {key}", text)
    stdout.print(table)


def _metric(record: ModelVersionRecord, key: str) -> str:
    value = record.metrics.get(key)
    return "-" if value is None else f"{value:.3f}"
