"""The requirements table of docs/architecture.md names tests that exist, for every requirement.

A row marked *planned* may name a path that is still being built (another branch's files); every
other path must exist, and every `file::function` that exists must define that function.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
SECTION = "## Requirements and where they are served"
REQUIREMENTS = (
    "versioned storage",
    "daily training",
    "accuracy over time",
    "stale-model and accuracy alerts",
    "prediction api",
    "customer dashboard",
    "human-in-the-loop release",
    "environments",
    "eu-only data",
    "security of model files",
)
PATH = re.compile(r"`((?:tests|docs)/[^`\s]*)`")


@dataclass(frozen=True)
class Row:
    requirement: str
    paths: tuple[str, ...]
    planned: bool


def parse_rows(page: str) -> list[Row]:
    """The table's rows after its heading; the paths come from the tests column."""
    if SECTION not in page:
        raise AssertionError(f"docs/architecture.md has no section {SECTION!r}")
    lines = page.split(SECTION, 1)[1].splitlines()
    table = [line for line in lines if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    tests, status = header.index("tests"), header.index("status")
    rows = []
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), f"a row of the table has {len(cells)} cells: {line}"
        rows.append(
            Row(
                requirement=cells[0],
                paths=tuple(PATH.findall(cells[tests])),
                planned=cells[status].startswith("planned"),
            )
        )
    return rows


def missing_reason(path: str) -> str | None:
    """Why `path` (`file`, `folder/` or `file::function`) does not exist, or None."""
    file, _, function = path.partition("::")
    target = ROOT / file
    if not target.exists():
        return f"{file} does not exist"
    if function:
        tree = ast.parse(target.read_text(), filename=file)
        defined = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if function not in defined:
            return f"{file} defines no function {function}"
    return None


def broken_paths(rows: list[Row]) -> list[str]:
    problems = []
    for row in rows:
        for path in row.paths:
            reason = missing_reason(path)
            if reason is None:
                continue
            if row.planned and "defines no function" not in reason:
                continue  # still being built: accepted while the row says so
            problems.append(f"{row.requirement}: {reason}")
    return problems


def test_every_requirement_has_a_row_with_tests() -> None:
    rows = parse_rows(PAGE.read_text())
    for requirement in REQUIREMENTS:
        row = next((r for r in rows if requirement in r.requirement.lower()), None)
        assert row is not None, f"no row for {requirement!r}"
        assert any("::" in path for path in row.paths), f"{requirement!r} names no test"


def test_every_test_the_table_names_exists() -> None:
    assert broken_paths(parse_rows(PAGE.read_text())) == []


@pytest.mark.parametrize(
    ("cell", "status", "problem"),
    [
        ("`tests/serving/test_api.py::test_no_such_test`", "in place", "defines no function"),
        ("`tests/no_such_folder/`", "in place", "does not exist"),
        ("`tests/serving/test_api.py::test_no_such_test`", "planned", "defines no function"),
    ],
)
def test_a_wrong_path_is_named(cell: str, status: str, problem: str) -> None:
    (found,) = broken_paths(parse_rows(_one_row_table(cell, status)))
    assert problem in found


def _one_row_table(cell: str, status: str) -> str:
    return (
        f"{SECTION}\n\n| requirement | tests | status |\n|---|---|---|\n| x | {cell} | {status} |\n"
    )


def test_a_planned_row_may_name_a_path_still_being_built() -> None:
    assert broken_paths(parse_rows(_one_row_table("`tests/later/`", "planned"))) == []
