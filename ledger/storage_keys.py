"""The key table: wrapped data keys by key id, beside the events and outside every hash.

It is the one mutable table of a ledger, on purpose: disposal deletes a referral's row, and
the deletion must really erase the bytes. SQLite: ``secure_delete`` overwrites the freed
content, and a TRUNCATE checkpoint empties the write-ahead log, so neither the database file
nor its WAL keeps the wrapped key. PostgreSQL: the row is deleted and the table vacuumed,
so its pages no longer hold it (what the server's own WAL archive and backups keep is the
deployment's retention, see README "Sealed free text").
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from ledger.storage import Database, _qualified, _query

KEYS_TABLE = "refledger_data_keys"


class SqlKeyStore:
    """``ledger.sealing.KeyStore`` over the ledger's own datastore (and so its transactions)."""

    def __init__(self, ledger: Application[Any], database: Database) -> None:
        self.ledger = ledger
        self.database = database
        self.table = _qualified(database, KEYS_TABLE)
        self.exists = self._exists()

    def _exists(self) -> bool:
        if self.database.backend == "sqlite":
            found = _query(self.ledger, self.database, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (KEYS_TABLE,))
            return bool(found)
        return _query(self.ledger, self.database, "SELECT to_regclass(?)", (self.table,))[0][0] is not None

    def _create(self) -> None:
        kind = "BLOB" if self.database.backend == "sqlite" else "bytea"
        _query(
            self.ledger,
            self.database,
            f"CREATE TABLE IF NOT EXISTS {self.table} (key_id text PRIMARY KEY, wrapped {kind} NOT NULL)",
            (),
            fetch=False,
        )
        self.exists = True

    def get(self, key_id: str) -> bytes | None:
        if not self.exists:
            return None
        rows = _query(self.ledger, self.database, f"SELECT wrapped FROM {self.table} WHERE key_id = ?", (key_id,))
        return bytes(rows[0][0]) if rows else None

    def put(self, key_id: str, wrapped: bytes) -> None:
        if not self.exists:
            self._create()
        _query(self.ledger, self.database, f"INSERT INTO {self.table} (key_id, wrapped) VALUES (?, ?)", (key_id, wrapped), fetch=False)

    def destroy(self, key_id: str) -> None:
        if not self.exists:
            return
        datastore: Any = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        if self.database.backend == "sqlite":
            with datastore.get_connection(commit=True) as connection:
                cursor = connection.cursor()
                cursor.execute("PRAGMA secure_delete = ON")
                with connection.transaction(commit=True) as inner:
                    inner.execute(f"DELETE FROM {self.table} WHERE key_id = ?", (key_id,))
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        with datastore.get_connection() as connection:
            connection.execute(f"DELETE FROM {self.table} WHERE key_id = %s", (key_id,))
            connection.commit()
            connection.autocommit = True
            try:
                connection.execute(f"VACUUM {self.table}")
            finally:
                connection.autocommit = False
