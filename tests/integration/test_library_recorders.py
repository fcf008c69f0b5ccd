"""The library's own recorder test cases against the recorders this ledger opens, on each backend.

The recorders come from ``open_ledger`` (the wiring a user gets): on PostgreSQL our
chunked ``ChunkedPostgresApplicationRecorder``, on SQLite the library's recorder with our settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("Crypto", reason="eventsourcing.tests needs pycryptodome (the test extra)")

import eventsourcing.tests.persistence as library

from ledger.wiring import open_ledger


class _OurRecorders:
    url: str
    opened: list[Any]

    def create_recorder(self) -> Any:
        ledger, _ = open_ledger(self.url)
        self.opened.append(ledger)
        return ledger.recorder


class TestSQLiteApplicationRecorder(_OurRecorders, library.ApplicationRecorderTestCase):  # type: ignore[misc]
    @pytest.fixture(autouse=True)
    def _ledger_file(self, tmp_path: Path) -> Iterator[None]:
        self.url, self.opened = str(tmp_path / "ledger.sqlite"), []
        yield
        for ledger in self.opened:
            ledger.close()


@pytest.mark.postgres
class TestPostgresApplicationRecorder(_OurRecorders, library.ApplicationRecorderTestCase):  # type: ignore[misc]
    @pytest.fixture(autouse=True)
    def _schema(self, postgres_schema_url: str) -> Iterator[None]:
        self.url, self.opened = postgres_schema_url, []
        yield
        for ledger in self.opened:
            ledger.close()
