"""The dependency rules that keep the layers visible (docs/ARCHITECTURE.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ("psycopg", "sqlite3", "psycopg_pool")
STORAGE = ("storage.py", "storage_postgres.py")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", sorted((ROOT / "ledger").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_no_read_side_no_cli_and_no_driver(path: Path) -> None:
    tops = {top(name) for name in imported(path)}
    assert not tops & {"projections", "commands", "cli"}, path.name
    if path.name not in STORAGE:
        assert not tops & set(DRIVERS), f"{path.name} imports a database driver"


@pytest.mark.parametrize("path", sorted((ROOT / "projections").glob("*.py")), ids=lambda p: p.name)
def test_the_read_side_never_imports_the_cli(path: Path) -> None:
    assert not {top(name) for name in imported(path)} & {"commands", "cli"}, path.name


def ledger_import_graph() -> dict[str, set[str]]:
    """Module → the ledger modules it imports, anywhere in the file (inside functions and
    ``if TYPE_CHECKING:`` blocks too: a lazy import hides a circle, it does not remove it)."""
    modules = {path.stem: path for path in (ROOT / "ledger").glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "ledger":
                found.update(alias.name for alias in node.names if alias.name in modules)
            for imported_name in imported_names(node):
                parts = imported_name.split(".")
                if parts[0] == "ledger" and len(parts) > 1 and parts[1] in modules:
                    found.add(parts[1])
        graph[name] = found - {name}
    return graph


def imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for child in sorted(graph.get(name, ())):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_the_domain_has_no_import_circles() -> None:
    graph = ledger_import_graph()
    assert graph["referral"] and "canonical" in graph["referral"]  # the graph is really read
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_circle_through_a_lazy_import() -> None:
    graph = {"application": {"referral"}, "referral": {"canonical"}, "canonical": set(), "storage": {"application"}}
    assert find_cycle(graph) is None
    graph["application"].add("storage")  # a function-level import of storage inside application
    assert find_cycle(graph) == ["application", "storage", "application"]


def test_the_canonical_encoding_sits_at_the_bottom() -> None:
    """The hashing the aggregates use imports nothing of the ledger above values and errors."""
    graph = ledger_import_graph()
    assert graph["canonical"] <= {"errors", "values", "transcoder"}
    assert graph["merkle"] == set()
    assert "application" not in graph["storage"], "storage must not build the application: that is ledger/wiring.py"
