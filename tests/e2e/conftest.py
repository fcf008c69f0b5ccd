"""Fixtures the end-to-end tests share."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli import main


@pytest.fixture
def staffed(tmp_path: Path) -> str:
    """The demo's ledger: its staff directory first, then the story (subjects included)."""
    from commands.demo import staff, story

    source, url = tmp_path / "staffed.jsonl", str(tmp_path / "staffed.sqlite")
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in [*staff(), *story()]))
    result = CliRunner().invoke(main, ["--db", url, "import", "--historical", str(source)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return url
