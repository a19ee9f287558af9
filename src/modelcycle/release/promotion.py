"""Promotion: an approved version of one environment (dev) copied into another's registry (prod).

The ONNX artifact is downloaded from the source registry, checked against the sha256 training
recorded, logged to a new run in the target's experiment, checked again there, and registered as
the target's `challenger` with its lineage as tags. The target then has a release request of its
own, opened by the promoter and never approved by policy: a target approver decides. Promoting the
same version again finds the target version by its `modelcycle.promoted_from` tag and returns it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import Identity, Role
from modelcycle.errors import (
    ConflictError,
    InvalidInputError,
    NotPermittedError,
    RegistryError,
)
from modelcycle.registry.connection import first_line, mask_uri
from modelcycle.registry.contract import SHA256_TAG
from modelcycle.registry.versions import CHALLENGER
from modelcycle.release.copying import Side, copy_version, run_id_of
from modelcycle.release.registry import REGISTRY_FAILURES, TAG_PREFIX, TAG_VALUE_MAX_CHARS
from modelcycle.release.rules import DecisionRecord, GateResult, ReleaseRecord, check_comment
from modelcycle.release.service import Releases, open_releases
from modelcycle.settings import Settings, settings_for

log = structlog.get_logger(__name__)

PROMOTED_FROM_TAG = "modelcycle.promoted_from"
LINEAGE_PREFIX = "modelcycle.promotion."
PROMOTION_GATE = "promotion"


@dataclass(frozen=True)
class Promotion:
    """What a promotion left in the target: its version and its pending (or decided) request."""

    model: str
    source_environment: str
    source_version: str
    environment: str
    version: str
    request: ReleaseRecord
    created: bool  # false: the version had been promoted before; nothing was written

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "from": {"environment": self.source_environment, "version": self.source_version},
            "to": {"environment": self.environment, "version": self.version},
            "created": self.created,
            "request": self.request.to_dict(),
        }


def source_side(releases: Releases, settings: Settings) -> Side:
    """This environment's end, on releases already open (the API's)."""
    return Side(releases, settings.resolved_tracking_uri, settings.experiment_name)


@contextmanager
def open_target(settings: Settings, to: str) -> Iterator[Side]:
    """The target environment's end, from its profile, with its own store for the block.

    Both registries' artifacts are reached through this process's S3 endpoint and credentials
    (`MODELCYCLE_S3_ENDPOINT_URL`, the AWS variables): the buckets differ, the endpoint does not.
    """
    if to == settings.environment:
        raise InvalidInputError(
            f"promotion to {to} from {settings.environment}: the target must be another environment"
        )
    target = settings_for(to, settings)
    with open_releases(target) as there:
        yield Side(
            # A promoted version always waits for a person of the target environment.
            replace(there, auto_approve=False),
            target.resolved_tracking_uri,
            target.experiment_name,
            target.artifact_url,
        )


@contextmanager
def open_promotion(settings: Settings, to: str) -> Iterator[tuple[Side, Side]]:
    """Both ends of a promotion from this environment to `to`, each with its own store."""
    with open_releases(settings) as here, open_target(settings, to) as there:
        yield source_side(here, settings), there


def promote(
    source: Side,
    target: Side,
    *,
    model: str,
    version: str,
    actor: Identity,
    comment: str | None = None,
) -> Promotion:
    """Copy an approved source version into the target registry and open its request there."""
    text = check_comment(comment)
    if not actor.may(Role.OPERATOR):
        raise NotPermittedError(
            f"promotion needs the operator role; {actor.name} is {actor.role.value}"
        )
    _check_distinct(source, target)
    if not version.isdigit():
        raise InvalidInputError(f"version {version!r}: a registered version is a number")
    tags = source.releases.registry.version_tags(model, version)  # unknown: DataNotFoundError
    request, approval = source_approval(source.releases, model, version)
    origin = f"{mask_uri(source.tracking_uri)}#/models/{model}/versions/{version}"
    found = _promoted_version(target.client, model, origin)
    opened = {r.version: r for r in target.releases.requests(model)}
    if found is not None and found in opened:
        return Promotion(
            model, source.environment, version, target.environment, found, opened[found], False
        )
    lineage = promotion_lineage(
        source, model=model, version=version, tags=tags, request=request, approval=approval
    )
    lineage.update(promoted_by=actor.name, promoted_at=_now(), promoted_from=origin)
    if found is None:
        found = copy_version(source, target, model, version, tags, version_tags(tags, lineage))
    _set_challenger(target.client, model, found)
    gate = GateResult(
        PROMOTION_GATE,
        True,
        f"approved in {source.environment} by {approval.actor}; artifact sha256 unchanged",
        {"source_request_id": request.id, "sha256": tags.get(SHA256_TAG, "")},
    )
    note = (
        f"promoted from {source.environment} ({model} version {version}, release "
        f"{request.id} approved by {approval.actor} at {_iso(approval.at)})"
    )
    record = target.releases.open(
        model=model,
        version=found,
        requested_by=actor,
        gates=[*request.gates, gate],
        lineage=lineage,
        comment=f"{note}: {text}" if text else note,
    )
    log.info(
        "version promoted",
        model=model,
        source=f"{source.environment} v{version}",
        target=f"{target.environment} v{found}",
        request=record.id,
        by=actor.name,
    )
    return Promotion(model, source.environment, version, target.environment, found, record, True)


def _check_distinct(source: Side, target: Side) -> None:
    if source.environment == target.environment:
        raise InvalidInputError(
            f"promotion to {target.environment} from {source.environment}: the target must be "
            "another environment"
        )
    if source.tracking_uri.rstrip("/") == target.tracking_uri.rstrip("/"):
        raise InvalidInputError(
            f"the {target.environment} profile points at this environment's MLflow "
            f"({mask_uri(source.tracking_uri)}): give it its own MODELCYCLE_TRACKING_URI"
        )


def source_approval(
    releases: Releases, model: str, version: str
) -> tuple[ReleaseRecord, DecisionRecord]:
    """The version's approved request in the source environment, and the approval decision.

    Only `approved` counts: a version that was rolled back was pulled for a reason, and one
    pending, rejected or superseded was never approved.
    """
    where = releases.environment
    found = [r for r in releases.requests(model) if r.version == version]
    if not found:
        raise ConflictError(
            f"{model} version {version} has no release request in {where}: it must be approved "
            f"in {where} before promotion"
        )
    request = found[0]
    if request.state != "approved":
        raise ConflictError(
            f"{model} version {version} is {request.state.replace('_', ' ')} in {where} "
            f"(release {request.id}): only an approved version can be promoted"
        )
    _, trail = releases.get(request.id)
    approvals = [d for d in trail if d.action == "approve"]
    if not approvals:  # an approved request always has its approval; the trail is append-only
        raise ConflictError(f"release {request.id} in {where} has no approval in its trail")
    return request, approvals[-1]


def promotion_lineage(
    source: Side,
    *,
    model: str,
    version: str,
    tags: dict[str, str],
    request: ReleaseRecord,
    approval: DecisionRecord,
) -> dict[str, Any]:
    """Where the version came from, as the target request's lineage (and the version's tags)."""
    window = f"{tags.get('modelcycle.window_start', '?')}..{tags.get('modelcycle.window_end', '?')}"
    return {
        "source_environment": source.environment,
        "source_model": model,
        "source_version": version,
        "source_run_id": run_id_of(source.client, model, version),
        "data_window": window,
        "data_hash": tags.get("modelcycle.data_hash", ""),
        "sha256": tags.get(SHA256_TAG, ""),
        "gates": request.gate_results,
        "source_request_id": request.id,
        "source_approved_by": approval.actor,
        "source_approved_at": _iso(approval.at),
    }


def version_tags(source_tags: dict[str, str], lineage: dict[str, Any]) -> dict[str, str]:
    """Training's tags (not the source's release decisions) plus the lineage, within limits."""
    tags = {k: v for k, v in source_tags.items() if not k.startswith(TAG_PREFIX)}
    for key, value in lineage.items():
        if key == "promoted_from":
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if key == "gates" and len(text) > TAG_VALUE_MAX_CHARS:  # the request keeps them whole
            text = json.dumps({g["name"]: bool(g["passed"]) for g in value}, sort_keys=True)
        tags[LINEAGE_PREFIX + key] = text[:TAG_VALUE_MAX_CHARS]
    tags[PROMOTED_FROM_TAG] = str(lineage["promoted_from"])
    return tags


def _set_challenger(client: MlflowClient, model: str, version: str) -> None:
    try:
        client.set_registered_model_alias(model, CHALLENGER, version)
    except REGISTRY_FAILURES as error:
        raise RegistryError(
            f"setting {model}@{CHALLENGER} to {version} failed: {first_line(error)}; "
            "promote again to retry"
        ) from error


def _promoted_version(client: MlflowClient, model: str, origin: str) -> str | None:
    """The target version already promoted from `origin`, if any (oldest first)."""
    try:
        versions = client.search_model_versions(f"name = '{model}'")
    except REGISTRY_FAILURES as error:
        if isinstance(error, MlflowException) and error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise RegistryError(f"reading {model} failed: {first_line(error)}") from error
    matches = sorted(
        int(v.version) for v in versions if (v.tags or {}).get(PROMOTED_FROM_TAG) == origin
    )
    return str(matches[0]) if matches else None


def _now() -> str:
    return _iso(datetime.now(UTC))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
