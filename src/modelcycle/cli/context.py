"""Wiring for CLI commands: settings read once, stores and MLflow built from them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from modelcycle.settings import Settings, load_settings
from modelcycle.storage.configured import lake_store, raw_store, store_for

__all__ = ["lake_store", "raw_store", "store_for"]  # the commands' way to the stores

# On a terminal rich wraps at its width; into a pipe or a file a line stays whole (soft wrap),
# rather than broken at rich's default 80 columns in the middle of a phrase.
stdout = Console(soft_wrap=not sys.stdout.isatty())
stderr = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


def settings_from(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    if not isinstance(settings, Settings):  # a command called without the app's callback
        settings = build_settings()
        ctx.obj = settings
    return settings


def build_settings() -> Settings:
    """The variables over the environment's profile (settings.load_settings), or one line."""
    return load_settings()


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar on stderr (silent when stderr is not a terminal)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        disable=not stderr.is_terminal,
    ) as progress:
        progress.add_task(description, total=total)
        yield progress


def advance(progress: Progress, steps: int = 1) -> None:
    progress.advance(progress.task_ids[0], steps)
