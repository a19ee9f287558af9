"""The layering rules of docs/architecture.md, as functions over an import graph and a file list.

Each rule takes plain data (what imports what, how long each file is) and returns readable
problems, so a test can feed it a small made-up case; `import_graph` reads the real one from the
source with `ast` (function-level and TYPE_CHECKING imports included: both are dependencies).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT_PACKAGE = "modelcycle"
# The adapters: the only packages that may use a web, CLI or orchestration framework.
ADAPTERS = frozenset({"cli", "serving", "orchestration"})
ADAPTER_FRAMEWORKS = frozenset({"typer", "fastapi", "starlette", "dagster"})
# Who may import the CLI: itself and the `python -m modelcycle` entry point.
CLI_IMPORTERS = frozenset({"cli", "__main__"})
# The API serves verified ONNX versions; it never trains.
FORBIDDEN_EDGES = frozenset({("serving", "training")})
MAX_MODULE_LINES = 400


@dataclass(frozen=True)
class Import:
    """`module` (dotted, e.g. modelcycle.serving.app) imports `target` at `file`:`line`."""

    module: str
    target: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def package_of(module: str) -> str:
    """The first-level part of a modelcycle module: `serving` for modelcycle.serving.app,
    `settings` for modelcycle.settings; the root itself is `modelcycle`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(path: Path, source_root: Path) -> str:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return [".".join([*base, node.module] if node.module else base)]


def import_graph(source_root: Path, package: str = ROOT_PACKAGE) -> list[Import]:
    """Every import statement in `source_root/package`, at any depth of the code."""
    imports = []
    for path in sorted((source_root / package).rglob("*.py")):
        module = _module_name(path, source_root)
        tree = ast.parse(path.read_text(), filename=str(path))
        shown = str(path.relative_to(source_root))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, module, path.name == "__init__.py"):
                    imports.append(Import(module, target, shown, node.lineno))
    return imports


def _internal(imports: Iterable[Import]) -> list[tuple[str, str, Import]]:
    """(importing package, imported package, the import) for imports between two packages."""
    edges = []
    for item in imports:
        if item.target.split(".")[0] != ROOT_PACKAGE:
            continue
        source, target = package_of(item.module), package_of(item.target)
        if source != target:
            edges.append((source, target, item))
    return edges


def package_cycles(imports: Iterable[Import]) -> list[str]:
    """One message per set of packages that import each other, naming an import of each step."""
    evidence: dict[tuple[str, str], Import] = {}
    graph: dict[str, set[str]] = {}
    for source, target, item in _internal(imports):
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
        evidence.setdefault((source, target), item)
    problems = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        cycle = _cycle_through(sorted(component)[0], component, graph)
        steps = "; ".join(
            f"{evidence[(a, b)].where} imports {evidence[(a, b)].target}"
            for a, b in itertools.pairwise(cycle)
        )
        problems.append(f"import cycle between packages {' -> '.join(cycle)} ({steps})")
    return problems


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative enough for a graph of a few dozen packages."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_through(start: str, component: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest path start -> … -> start inside the component (breadth first)."""
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for successor in sorted(graph[path[-1]] & component):
            if successor == start:
                return [*path, start]
            if successor not in seen:
                seen.add(successor)
                paths.append([*path, successor])
    raise AssertionError(f"{start} is in a cycle but no path returns to it")


def frameworks_in_core(imports: Iterable[Import]) -> list[str]:
    """A core package (not an adapter) importing typer, FastAPI, Starlette or Dagster."""
    problems = []
    for item in imports:
        framework = item.target.split(".")[0]
        if framework.startswith("dagster"):
            framework = "dagster"  # dagster_postgres, dagster_webserver, …
        package = package_of(item.module)
        if framework in ADAPTER_FRAMEWORKS and package not in ADAPTERS:
            problems.append(
                f"{item.where}: core package `{package}` imports {item.target}; only the "
                f"adapters ({', '.join(sorted(ADAPTERS))}) may use "
                f"{', '.join(sorted(ADAPTER_FRAMEWORKS))}"
            )
    return problems


def forbidden_imports(imports: Iterable[Import]) -> list[str]:
    """`serving` importing `training`, and anything but the CLI's own entry points importing
    the CLI."""
    problems = []
    for source, target, item in _internal(imports):
        if (source, target) in FORBIDDEN_EDGES:
            problems.append(
                f"{item.where}: `{source}` imports {item.target}; `{source}` must not depend on "
                f"`{target}`"
            )
        if target == "cli" and source not in CLI_IMPORTERS:
            problems.append(
                f"{item.where}: `{source}` imports {item.target}; only the CLI itself and "
                "`__main__` may import `cli` (it is the outermost adapter)"
            )
    return problems


def oversized(line_counts: Mapping[str, int], limit: int = MAX_MODULE_LINES) -> list[str]:
    """Modules longer than `limit` lines, longest first."""
    return [
        f"{name} has {count} lines (over {limit}): split it by concern"
        for name, count in sorted(line_counts.items(), key=lambda item: (-item[1], item[0]))
        if count > limit
    ]


def line_counts(folders: Iterable[Path], relative_to: Path) -> dict[str, int]:
    """Lines of every Python file under `folders`."""
    return {
        str(path.relative_to(relative_to)): len(path.read_text().splitlines())
        for folder in folders
        for path in sorted(folder.rglob("*.py"))
    }
