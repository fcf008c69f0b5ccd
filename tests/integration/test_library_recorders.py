"""The library's own recorder test cases against the recorders this ledger opens, on each backend.

The recorders come from ``open_ledger`` (the wiring a user gets): on PostgreSQL our
chunked ``ChunkedPostgresApplicationRecorder``, on SQLite the library's recorder with our settings.
"""

from __future__ import annotations

import threading
import time
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
        ledger, database = open_ledger(self.url)
        self.opened.append(ledger)
        if database.backend == "postgres":
            # the library's cases store states that are not ledger events (b"state1"), which
            # the login trigger refuses by design (every row must name its inserting login);
            # what they test here is the recorder, so they run without that one trigger
            from ledger.storage import execute_sql

            execute_sql(ledger, [f'DROP TRIGGER IF EXISTS ledger_events_login ON "{database.schema}".ledger_events'])
        return ledger.recorder


def _join_threads_started_since(before: set[threading.Thread]) -> None:
    """The library's concurrency case tells its reader threads to stop but does not wait for
    them; closing a SQLite connection under a thread still inside a query crashes the process."""
    deadline = time.monotonic() + 10  # a reader stops within one of its short sleeps
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon:  # (connection pool workers are daemons and live on until the close)
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class TestSQLiteApplicationRecorder(_OurRecorders, library.ApplicationRecorderTestCase):  # type: ignore[misc]
    @pytest.fixture(autouse=True)
    def _ledger_file(self, tmp_path: Path) -> Iterator[None]:
        self.url, self.opened = str(tmp_path / "ledger.sqlite"), []
        before = set(threading.enumerate())
        yield
        _join_threads_started_since(before)
        for ledger in self.opened:
            ledger.close()


@pytest.mark.postgres
class TestPostgresApplicationRecorder(_OurRecorders, library.ApplicationRecorderTestCase):  # type: ignore[misc]
    @pytest.fixture(autouse=True)
    def _schema(self, postgres_schema_url: str) -> Iterator[None]:
        self.url, self.opened = postgres_schema_url, []
        before = set(threading.enumerate())
        yield
        _join_threads_started_since(before)
        for ledger in self.opened:
            ledger.close()
