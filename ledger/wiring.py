"""The one place that builds the application for a database: URL → Ledger + Database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ledger.application import Ledger
from ledger.errors import StorageError
from ledger.storage import (
    OPEN_ERRORS,
    Database,
    create_schema,
    events_table_exists,
    first_line,
    install_append_only_guards,
    read_streams,
    resolve_database,
)
from ledger.values import utcnow


def open_ledger(url: str | None = None, clock: Callable[[], datetime] = utcnow) -> tuple[Ledger, Database]:
    """Open (creating on first use) the ledger at ``url`` with its append-only guards."""
    database = resolve_database(url)
    env = dict(database.env)
    if events_table_exists(database):
        # the library would re-run CREATE … IF NOT EXISTS, which on PostgreSQL queues
        # behind an import's table lock: a reader must not wait for a writer
        env["CREATE_TABLE"] = "no"
    elif database.schema:
        create_schema(database)
    try:
        ledger = Ledger(env=env, clock=clock, stream_reader=read_streams)
        install_append_only_guards(ledger, database)
    except OPEN_ERRORS as error:
        raise StorageError(f"cannot open the ledger at {database.location}: {first_line(error)}") from None
    return ledger, database
