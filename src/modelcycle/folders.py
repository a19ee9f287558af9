"""Whether a folder can exist at a path, asked before any work rather than found out half-way."""

from __future__ import annotations

import os
from pathlib import Path


def file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing path at or above `folder` when it is not a folder, else None.

    os.path answers False where Path.exists raises (a parent we may not list).
    """
    for path in (folder, *folder.parents):
        if os.path.exists(path):  # noqa: PTH110
            return None if os.path.isdir(path) else path  # noqa: PTH112
    return None


def not_a_folder_reason(folder: Path) -> str | None:
    """`FOLDER is not a folder` / `FOLDER is under FILE, which is not a folder`, or None."""
    blocker = file_in_the_way(folder)
    if blocker is None:
        return None
    where = "is" if blocker == folder else f"is under {blocker}, which is"
    return f"{folder} {where} not a folder"
