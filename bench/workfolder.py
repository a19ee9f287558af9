"""What the reference-scale benchmarks share: fleet-size and work-folder options, and the work
folder itself (temporary, or kept with --keep and reused with --reuse so only the timed part runs
again)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SETUP_FILE = "setup.json"  # what a --keep run's setup measured, for a later --reuse


def add_work_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument(
        "--work", type=Path, default=None, help="Work folder (default: a temporary one)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work folder afterwards.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="With --work: reuse the setup a --keep run left there; only the timed steps run.",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="Print the section, do not write docs/benchmarks.md."
    )


@contextmanager
def work_folder(args: argparse.Namespace, bench: str) -> Iterator[tuple[Path, bool]]:
    """The work folder with `home/` and `logs/`, and whether its setup is reused; removed
    afterwards unless --keep."""
    work = args.work or Path(tempfile.mkdtemp(prefix=f"modelcycle-bench-{bench}-"))
    reuse = args.reuse and args.work is not None and (work / SETUP_FILE).exists()
    if args.work is not None and not reuse:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    (work / "home").mkdir(exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    try:
        yield work, reuse
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
