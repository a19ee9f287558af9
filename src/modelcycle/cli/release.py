"""`modelcycle release`: the requests that move `champion`, their decisions, and rollback.

Deciding commands act as `--as NAME` (default MODELCYCLE_USER; see docs/access.md); the decision
and the registry's alias move happen together or not at all (docs/release.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelcycle.cli.context import settings_from, stdout
from modelcycle.cli.users import ActingAs, AsJson, acting_as, store_session

if TYPE_CHECKING:
    from modelcycle.access.identity import Identity
    from modelcycle.release.rules import DecisionRecord, ReleaseRecord
    from modelcycle.settings import Settings

release_app = typer.Typer(
    help="Release requests: list, compare, approve, reject, roll back, promote, and history.",
    no_args_is_help=True,
)

Comment = Annotated[
    str | None, typer.Option("--comment", "-m", help="Why (kept in the audit trail; ≤ 2000 chars).")
]
ModelName = Annotated[str, typer.Argument(help="Registered model name.")]
RequestId = Annotated[int, typer.Argument(help="Release request id (see `release list`).")]


def _actor(settings: Settings, name: str | None) -> Identity:
    with store_session(settings) as session:
        return acting_as(settings, session, name)


def _short(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _gates_cell(record: ReleaseRecord) -> str:
    failed = [g.name for g in record.gates if not g.passed]
    if not record.gate_results:
        return "none"
    return "passed" if not failed else "failed: " + ", ".join(failed)


@release_app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this model's requests.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="pending, approved, rejected, superseded or rolled_back."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Release requests of this environment, newest first."""
    from modelcycle.release.service import open_releases

    with open_releases(settings_from(ctx)) as releases:
        records = releases.requests(name, state)
    if as_json:
        stdout.print_json(data=[r.to_dict() for r in records])
        return
    if not records:
        stdout.print("no release requests")
        return
    table = Table(title="release requests (times in UTC)")
    for column in ("id", "model", "version", "state", "gates", "requested by", "opened"):
        table.add_column(column)
    for r in records:
        table.add_row(
            str(r.id),
            r.model,
            r.version,
            r.state,
            _gates_cell(r),
            r.requested_by,
            _short(r.opened_at),
        )
    stdout.print(table)


@release_app.command("show")
def show(ctx: typer.Context, request_id: RequestId, as_json: AsJson = False) -> None:
    """One request: its gate results, lineage and every decision on it."""
    from modelcycle.release.service import open_releases

    with open_releases(settings_from(ctx)) as releases:
        record, trail = releases.get(request_id)
    if as_json:
        stdout.print_json(data={**record.to_dict(), "decisions": [d.to_dict() for d in trail]})
        return
    table = Table(title=f"release {record.id}: {record.model} version {record.version}")
    table.add_column("")
    table.add_column("")
    table.show_header = False
    table.add_row("state", record.state)
    table.add_row("environment", record.environment)
    table.add_row("requested by", f"{record.requested_by} at {_short(record.opened_at)} UTC")
    for gate in record.gates:
        verdict = "passed" if gate.passed else "FAILED"
        table.add_row(f"gate {gate.name}", escape(f"{verdict} {gate.detail}".strip()))
    for key, value in sorted(record.lineage.items()):
        table.add_row(f"lineage {key}", escape(str(value)))
    stdout.print(table)
    _print_trail(trail)


def _print_trail(trail: list[DecisionRecord], *, title: str = "decisions") -> None:
    table = Table(title=f"{title} (times in UTC)")
    for column in ("at", "release", "version", "action", "by", "champion", "comment"):
        table.add_column(column, overflow="fold")
    for d in trail:
        move = f"{d.alias_from or '-'} → {d.alias_to}" if d.alias_to else ""
        comment = d.comment + (f" (override: {d.override_reason})" if d.override_reason else "")
        table.add_row(_short(d.at), str(d.request_id), d.version, d.action, d.actor, move, comment)
    stdout.print(table)


@release_app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: RequestId,
    comment: Comment = None,
    override: Annotated[
        str | None,
        typer.Option("--override", help="Admins: approve despite failed gates, for this reason."),
    ] = None,
    acting: ActingAs = None,
    as_json: AsJson = False,
) -> None:
    """Approve a pending request: `champion` moves to its version, the old one to `previous`."""
    from modelcycle.release.service import open_releases

    settings = settings_from(ctx)
    actor = _actor(settings, acting)
    with open_releases(settings) as releases:
        decision = releases.approve(
            request_id, actor=actor, comment=comment, override_reason=override
        )
    _print_decision(decision, as_json)


@release_app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: RequestId,
    comment: Comment = None,
    acting: ActingAs = None,
    as_json: AsJson = False,
) -> None:
    """Reject a pending request; `champion` stays where it is."""
    from modelcycle.release.service import open_releases

    settings = settings_from(ctx)
    actor = _actor(settings, acting)
    with open_releases(settings) as releases:
        decision = releases.reject(request_id, actor=actor, comment=comment)
    _print_decision(decision, as_json)


@release_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: ModelName,
    comment: Comment = None,
    acting: ActingAs = None,
    as_json: AsJson = False,
) -> None:
    """Admins: return `champion` to the version the current one replaced, in one step."""
    from modelcycle.release.service import open_releases

    settings = settings_from(ctx)
    actor = _actor(settings, acting)
    with open_releases(settings) as releases:
        decision = releases.rollback(name, actor=actor, comment=comment)
    _print_decision(decision, as_json)


def _print_decision(decision: DecisionRecord, as_json: bool) -> None:
    if as_json:
        stdout.print_json(data=decision.to_dict())
        return
    done = {"approve": "approved", "reject": "rejected", "rollback": "rolled back"}
    line = f"{done[decision.action]} release {decision.request_id} ({decision.model} "
    line += f"version {decision.version}) as {decision.actor}"
    if decision.alias_to is not None:
        line += f": champion {decision.alias_from or '-'} → {decision.alias_to}"
    stdout.print(line, highlight=False)


@release_app.command("promote")
def promote(
    ctx: typer.Context,
    name: ModelName,
    version: Annotated[str, typer.Argument(help="The version approved in this environment.")],
    to: Annotated[
        str, typer.Option("--to", help="Target environment (its profile names its registry).")
    ],
    comment: Comment = None,
    acting: ActingAs = None,
    as_json: AsJson = False,
) -> None:
    """Operators: copy an approved version into the target environment's registry, with its
    lineage, as its `challenger` and a release request that waits for the target's approver."""
    from modelcycle.release.promotion import open_promotion
    from modelcycle.release.promotion import promote as promote_version

    settings = settings_from(ctx)
    actor = _actor(settings, acting)
    with open_promotion(settings, to) as (source, target):
        done = promote_version(
            source, target, model=name, version=version, actor=actor, comment=comment
        )
    if as_json:
        stdout.print_json(data=done.to_dict())
        return
    verb = "promoted" if done.created else "already promoted"
    stdout.print(
        f"{verb} {name} version {version} ({done.source_environment}) to {done.environment} "
        f"version {done.version}: release {done.request.id} is {done.request.state}",
        highlight=False,
    )


@release_app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this model's decisions.")] = None,
    as_json: AsJson = False,
) -> None:
    """The audit trail: every decision, oldest first, with who, when, why and the alias move."""
    from modelcycle.release.service import open_releases

    with open_releases(settings_from(ctx)) as releases:
        trail = releases.history(name)
    if as_json:
        stdout.print_json(data=[d.to_dict() for d in trail])
        return
    if not trail:
        stdout.print("no release decisions")
        return
    _print_trail(trail, title=f"release history of {name}" if name else "release history")


@release_app.command("compare")
def compare(
    ctx: typer.Context,
    name: ModelName,
    first: Annotated[str, typer.Argument(help="A version, e.g. the champion's.")],
    second: Annotated[str, typer.Argument(help="Another version, e.g. the challenger's.")],
    as_json: AsJson = False,
) -> None:
    """Two versions side by side: metrics and deltas, confusion matrices, params, training data,
    gate results, their evaluations on the same days, and live traffic when one shadowed the
    other (MODELCYCLE_SERVING_SHADOW)."""
    from modelcycle.release.compare import with_history
    from modelcycle.release.service import open_releases

    with open_releases(settings_from(ctx)) as releases:
        comparison = with_history(releases.compare(name, first, second), releases.store)
    if as_json:
        stdout.print_json(data=comparison)
        return
    print_comparison(comparison)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return escape(text[:12] + "…" if len(text) > 20 and " " not in text else text)


def _heading(version: dict[str, Any]) -> str:
    aliases = f" ({', '.join(version['aliases'])})" if version["aliases"] else ""
    return f"v{version['version']}{aliases}"


def _side_table(comparison: dict[str, Any], title: str, *, delta: bool = False) -> Table:
    """Three columns (four with the delta) that fit 80 columns: long values fold."""
    made = Table(title=title, title_justify="left")
    made.add_column("", overflow="fold", max_width=24)
    made.add_column(_heading(comparison["a"]), overflow="fold")
    made.add_column(_heading(comparison["b"]), overflow="fold")
    if delta:
        made.add_column("delta", justify="right")
    return made


def print_comparison(comparison: dict[str, Any]) -> None:
    metrics = _side_table(comparison, f"{comparison['model']}: metrics", delta=True)
    for row in comparison["metrics"]:
        change = "-" if row["delta"] is None else f"{row['delta']:+.4g}"
        metrics.add_row(row["name"], _cell(row["a"]), _cell(row["b"]), change)
    training = _side_table(comparison, "training data and artifact")
    for row in comparison["lineage"]:
        training.add_row(row["name"], _cell(row["a"]), _cell(row["b"]))
    params = _side_table(comparison, "params (those that differ, and the threshold)")
    for row in comparison["params"]:
        if row["a"] != row["b"] or row["name"] == "decision_threshold":
            params.add_row(row["name"], _cell(row["a"]), _cell(row["b"]))
    gates = _side_table(comparison, "release and gates")
    if comparison["a"]["release"] or comparison["b"]["release"]:
        gates.add_row("release", *_release_cells(comparison["a"], comparison["b"]))
    for row in comparison["gates"]:
        gates.add_row(row["name"], _gate_cell(row["a"]), _gate_cell(row["b"]))
    parts = (metrics, _confusion(comparison), _history(comparison), _live(comparison))
    for part in (*parts, training, params, gates):
        if part.row_count:
            stdout.print(part)


CONFUSION_ROWS = (
    "threshold",
    "true_positives",
    "false_positives",
    "false_negatives",
    "true_negatives",
)


def _confusion(comparison: dict[str, Any]) -> Table:
    made = _side_table(comparison, "confusion matrix (held-out rows, own threshold)")
    cells = [comparison["confusion"][side] for side in ("a", "b")]
    if any(cells):
        for row in CONFUSION_ROWS:
            made.add_row(row, *(_cell(c[row] if c else None) for c in cells))
    return made


def _history(comparison: dict[str, Any]) -> Table:
    made = _side_table(comparison, "evaluated on the same days: accuracy / F1 / PR-AUC")
    for day in comparison.get("history", []):
        made.add_row(day["date"], _day_cell(day["a"]), _day_cell(day["b"]))
    return made


def _live(comparison: dict[str, Any]) -> Table:
    """Shadow scoring's rows: both versions on the same live requests (empty without them)."""
    live = comparison.get("live")
    made = Table(title="live traffic (shadow scoring)", title_justify="left")
    if live is None:
        return made
    made.add_column("", max_width=24)
    made.add_column("", overflow="fold")
    made.add_row("rows scored by both", f"{live['rows']} in {live['requests']} requests")
    made.add_row("between", f"{live['first']} and {live['last']}")
    made.add_row("same decision", f"{live['agreement']:.2%}")
    made.add_row("mean abs score difference", f"{live['mean_abs_difference']:.4g}")
    flagged, thresholds = live["flagged"], live["thresholds"]
    for side in ("a", "b"):
        made.add_row(
            f"flagged by {_heading(comparison[side])}",
            f"{flagged[side]} (score >= {thresholds[side]:.4g})",
        )
    return made


def _day_cell(evaluated: dict[str, Any]) -> str:
    numbers = " / ".join(_cell(evaluated[k]) for k in ("accuracy", "f1", "pr_auc"))
    return f"{numbers} ({evaluated['role']})"


def _release_cells(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [
        "-" if v["release"] is None else f"{v['release']['id']} {v['release']['state']}"
        for v in (a, b)
    ]


def _gate_cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    return escape(
        ("passed" if result["passed"] else "FAILED")
        + (f": {result['detail']}" if result["detail"] else "")
    )
