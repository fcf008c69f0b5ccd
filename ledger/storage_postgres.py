"""The PostgreSQL side of storage: the library's application recorder, safe for large saves.

Reads: a stream is read in binary, so stored state arrives as raw bytes, not hex text.

Writes: the library sends a save as one ``INSERT … FROM unnest(%s)`` in psycopg's pipeline mode. With
some thousands of events in one save (an import is one save) that stalls: the server waits
for the rest of the query while the client waits for results. A large save here runs the
very same statements (table lock, notify, the library's INSERT) in chunks, in one ordinary
transaction without pipelining: still one transaction, still the table lock that keeps
notification order equal to commit order. Small saves keep the library's path unchanged.

Loaded only for ``postgresql://`` ledgers (through the library's APPLICATION_RECORDER_TOPIC),
so SQLite users never import psycopg.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

#: events per INSERT statement in a large save (a few MB of stored state at most)
CHUNK = 2_000


class ChunkedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL application recorder, with large saves inserted in chunks and
    streams read in binary."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the table lock through the ledger's function (its owner's right to lock), so a
        # recorder needs no UPDATE, DELETE or TRUNCATE privilege on the events table
        self.lock_table_statements = [
            self.lock_table_statements[0],
            SQL("SELECT {}.refledger_lock_events()").format(Identifier(self.datastore.schema)),
        ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        # The library's query and options, read as binary tuples: a stream's state arrives as
        # raw bytes rather than hex text, which made reading a 500-event referral 3x faster.
        statement: Composed = SQL("SELECT originator_version, topic, state FROM {}.{} WHERE originator_id = %s").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        params: list[Any] = [originator_id]
        if gt is not None:
            params.append(gt)
            statement += SQL(" AND originator_version > %s")
        if lte is not None:
            params.append(lte)
            statement += SQL(" AND originator_version <= %s")
        statement += SQL(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
        if limit is not None:
            params.append(limit)
            statement += SQL(" LIMIT %s")
        with self.datastore.get_connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, params, prepare=True, binary=True)
            return [StoredEvent(originator_id, version, topic, bytes(state)) for version, topic, state in cursor.fetchall()]

    def select_streams(self, stream_ids: Sequence[UUID]) -> list[tuple[UUID, int, str, bytes]]:
        """The events of many streams in one query, as (stream, version, topic, state) rows, in binary."""
        statement = SQL("SELECT originator_id, originator_version, topic, state FROM {}.{} WHERE originator_id = ANY(%s)").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, [list(stream_ids)], binary=True)
            return [(stream_id, version, topic, bytes(state)) for stream_id, version, topic, state in cursor.fetchall()]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if len(stored_events) <= CHUNK:
            small: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return small
        notification_ids: list[int] = []
        with self.datastore.get_connection() as connection, connection.transaction(), connection.cursor() as cursor:
            self._lock_table(cursor)
            self._notify_channel(cursor)
            for start in range(0, len(stored_events), CHUNK):
                chunk = stored_events[start : start + CHUNK]
                rows = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state) for e in chunk]
                cursor.execute(self.insert_events_statement, (rows,))
                notification_ids += [row["notification_id"] for row in cursor.fetchall()]
        # fresh statistics, so the planner uses the stream index for reads straight after an
        # import into a new ledger (without them a stream read scans the whole table); an
        # import saving in steps refreshes them each time it has inserted eight times as
        # many (the planner scales them with the table's size in between)
        self._inserted = getattr(self, "_inserted", 0) + len(stored_events)
        if self._inserted >= getattr(self, "_analyze_at", 0):
            self._analyze_at = 8 * self._inserted
            with self.datastore.get_connection() as connection, connection.cursor() as cursor:
                cursor.execute(SQL("ANALYZE {}.{}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name)))
        return notification_ids
