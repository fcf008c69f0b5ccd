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
