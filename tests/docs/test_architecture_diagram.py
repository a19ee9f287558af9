"""The architecture diagram is drawn from code: the script renders, the picture is in the docs."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "diagrams" / "architecture.py"
COMMITTED = ROOT / "docs" / "architecture.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _render(output: Path) -> Path:
    spec = importlib.util.spec_from_file_location("architecture_diagram", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: Path = module.render(output)
    return rendered


def test_the_diagram_renders_from_code(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz `dot` is missing: run `make tools` (Debian package graphviz)")
    rendered = _render(tmp_path / "architecture.png")
    assert rendered.read_bytes().startswith(PNG_SIGNATURE)
    assert not list(tmp_path.glob("architecture")), "the intermediate dot file is left behind"


def test_the_committed_diagram_is_shown_in_the_architecture_page() -> None:
    assert COMMITTED.read_bytes().startswith(PNG_SIGNATURE)
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert "](architecture.png)" in page
    assert "docs/diagrams/architecture.py" in page
