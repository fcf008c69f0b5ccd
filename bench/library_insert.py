"""The bare application's PostgreSQL recorder in bench/ingest.py: the library's own statements.

The library's recorder sends a save as one ``INSERT … FROM unnest(%s)`` in pipeline mode,
which stalls on a save of many thousands of events (see ledger/storage_postgres.py). The
bare application saves its million events in one save, so it runs the library's INSERT
statement in chunks, under the same table lock, in one transaction: what the library itself
would send, without the ledger's COPY.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.storage_postgres import CHUNK, ChunkedPostgresApplicationRecorder


class LibraryInsertRecorder(ChunkedPostgresApplicationRecorder):
    """Large saves through the library's INSERT statement, CHUNK events at a time."""

    def _insert_chunks(self, cursor: Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> list[int]:
        notification_ids: list[int] = []
        for start in range(0, len(stored_events), CHUNK):
            chunk = stored_events[start : start + CHUNK]
            rows = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state) for e in chunk]
            cursor.execute(self.insert_events_statement, (rows,))
            notification_ids += [row["notification_id"] for row in cursor.fetchall()]
        return notification_ids
