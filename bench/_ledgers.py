"""Benchmark set-up shared by the scripts: filling a PostgreSQL ledger quickly, a fresh data key."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.sealing import new_data_key_text
from ledger.storage import Database, connect_postgres, read_event_rows


def fresh_data_key() -> Path:
    """A new ledger data key (what ``--data-key`` names) in a private temporary directory,
    removed with the key when the benchmark exits."""
    directory = Path(tempfile.mkdtemp(prefix="refledger-bench-key-"))
    atexit.register(shutil.rmtree, directory, True)
    key = directory / "ledger-data.key"
    key.write_text(new_data_key_text())
    return key


def copy_sqlite_events_to_postgres(source: Database, target: Database) -> None:
    """Every stored event of a SQLite ledger into an empty PostgreSQL ledger, in log order.

    The rows are the bytes the import wrote (same transcoder), so the benchmarks that read
    them do the same work; a binary COPY loads a million in seconds, where importing the same
    file takes minutes (bench/ingest.py measures imports). The table is analysed afterwards,
    as autovacuum would do soon, so stream reads use the index.
    """
    table = f'"{target.schema or "public"}"."{target.events_table}"'
    statement = f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
    with connect_postgres(target) as connection:
        with connection.transaction(), connection.cursor().copy(statement) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for rows in read_event_rows(source):
                for _, originator_id, version, topic, state in rows:
                    copy.write_row((UUID(originator_id), version, topic, state))
        connection.execute(f"ANALYZE {table}")
