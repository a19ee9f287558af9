"""modelcycle's own records: evaluations, scores, drift, training runs and alerts.

MLflow keeps models and runs; this store keeps what happens to them afterwards. The schema is
owned by the Alembic migrations next to this module; these classes describe the newest revision.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Evaluation(Base):
    """One model version's metrics on one day's labelled windows; re-running replaces it."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("model", "day", "role", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))  # champion | challenger
    source: Mapped[str] = mapped_column(String(20))  # batch | online
    day: Mapped[date] = mapped_column(Date, index=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    n_positive: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    precision: Mapped[float] = mapped_column(Float)
    recall: Mapped[float] = mapped_column(Float)
    f1: Mapped[float] = mapped_column(Float)
    roc_auc: Mapped[float | None] = mapped_column(Float)
    pr_auc: Mapped[float | None] = mapped_column(Float)
    # the confusion matrix at the version's threshold; NULL for rows before migration 0004
    true_positives: Mapped[int | None] = mapped_column(Integer)
    false_positives: Mapped[int | None] = mapped_column(Integer)
    false_negatives: Mapped[int | None] = mapped_column(Integer)
    true_negatives: Mapped[int | None] = mapped_column(Integer)
    labels_known_at: Mapped[datetime]
    evaluated_at: Mapped[datetime]


class ScoreRun(Base):
    """A batch scoring of one day by one model version (the scores are in the lake)."""

    __tablename__ = "score_runs"
    __table_args__ = (UniqueConstraint("model", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date, index=True)
    n_windows: Mapped[int] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(Text)
    scored_at: Mapped[datetime]


class DriftSummary(Base):
    """How much one day's features moved from the model's training data, in one line."""

    __tablename__ = "drift_summaries"
    __table_args__ = (UniqueConstraint("model", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date, index=True)
    method: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[float] = mapped_column(Float)
    n_features: Mapped[int] = mapped_column(Integer)
    n_drifted: Mapped[int] = mapped_column(Integer)
    share_drifted: Mapped[float] = mapped_column(Float)
    max_value: Mapped[float] = mapped_column(Float)
    max_feature: Mapped[str] = mapped_column(String(200))
    computed_at: Mapped[datetime]


class DriftResult(Base):
    """One feature's drift on one day."""

    __tablename__ = "drift_results"
    __table_args__ = (UniqueConstraint("model", "day", "feature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date, index=True)
    feature: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool]


class TrainingRun(Base):
    """A daily training as the scheduler saw it: when, how it ended, and why it failed."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed | timed_out
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(40), default="cli")


class AlertState(Base):
    """The current state of one alert, by its deduplication key."""

    __tablename__ = "alert_states"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    rule: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)  # firing | resolved
    severity: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    customer_id: Mapped[str | None] = mapped_column(String(100))
    first_fired_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    last_notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class AlertEvent(Base):
    """The alert history: every firing, reminder and resolution, in order."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    rule: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(20))  # firing | reminder | resolved
    severity: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    customer_id: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime]


class Delivery(Base):
    """One event to one channel: pending until sent or given up on (an outbox, so a crash
    between deciding and sending neither loses nor repeats a message)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id"), index=True)
    channel: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


# --- access (issue 14): people, roles and their API keys -------------------------------------


class User(Base):
    """A person or service that may act; removal is soft, so the audit trail keeps naming them
    and the name is never given to anybody else."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # viewer | operator | approver | admin
    customer_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # person | service
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id (access/passwords.py)
    password_set_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class ApiKey(Base):
    """A user's API key, by its sha256 only: the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


# --- release (issue 14): requests to move `champion`, and the decisions on them ---------------


class ReleaseRequest(Base):
    """A registered challenger asking to become `champion`, with the gate results it came with.

    `state` is the request's current state; it only ever changes in the transaction that appends
    the `ReleaseDecision` saying why, so the decisions are the trail and `state` their summary.
    """

    __tablename__ = "release_requests"
    __table_args__ = (UniqueConstraint("model", "version", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(40))
    requested_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime]
    # pending | approved | rejected | superseded | rolled_back
    state: Mapped[str] = mapped_column(String(20), index=True)
    gate_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    environment: Mapped[str] = mapped_column(String(20))
    lineage: Mapped[dict[str, Any]]


class ReleaseDecision(Base):
    """One decision on a release request: append-only, never updated or deleted."""

    __tablename__ = "release_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"), index=True)
    # open | approve | reject | supersede | rollback
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(20))  # person | service | system
    at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text)
    gate_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    alias_from: Mapped[str | None] = mapped_column(String(40))  # champion's version before
    alias_to: Mapped[str | None] = mapped_column(String(40))  # and after
    override_reason: Mapped[str | None] = mapped_column(Text)
