"""The one place that builds the application for a database: URL → Ledger + Database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ledger.application import Ledger
from ledger.errors import StorageError
from ledger.storage import (
    OPEN_ERRORS,
    Database,
    NoLedger,
    create_schema,
    database_login,
    events_table_exists,
    first_line,
    install_append_only_guards,
    read_streams,
    resolve_database,
)
from ledger.values import utcnow


def open_ledger(
    url: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    *,
    create: bool = True,
    data_key: Path | None = None,
    sealed_fields: tuple[str, ...] = (),
) -> tuple[Ledger, Database]:
    """Open the ledger at ``url`` with its append-only guards and its sealing (``data_key``:
    the ledger data key file, if given; ``sealed_fields``: the policy's extra sealed fields).

    ``create``: make a new, empty ledger where there is none (commands that record, and
    ``init``). Without it a missing ledger is a NoLedger error and nothing is created: no
    directory, no file, no schema. A ledger that cannot be written (``read_only``) is
    opened for reading, without reinstalling its guards.
    """
    database = resolve_database(url)
    env = dict(database.env)
    if events_table_exists(database):
        # the library would re-run CREATE … IF NOT EXISTS, which on PostgreSQL queues
        # behind an import's table lock: a reader must not wait for a writer
        env["CREATE_TABLE"] = "no"
    elif database.read_only:
        raise NoLedger(f"no ledger at {database.location} (and it cannot be written)")
    elif not create:
        raise NoLedger(f"no ledger at {database.location} (create one with 'refledger init', or by recording an event)")
    elif database.schema:
        create_schema(database)
    elif database.backend == "sqlite":
        Path(database.location).parent.mkdir(parents=True, exist_ok=True)
    if create and database.read_only:
        raise StorageError(f"the ledger at {database.location} is read-only: nothing can be recorded in it")
    try:
        ledger = Ledger(env=env, clock=clock, stream_reader=read_streams)
        if not database.read_only:
            install_append_only_guards(ledger, database)
        ledger.login = database_login(ledger, database) or ledger.login
    except OPEN_ERRORS as error:
        raise StorageError(f"cannot open the ledger at {database.location}: {first_line(error)}") from None
    try:
        attach_seals(ledger, database, data_key, sealed_fields)
    except BaseException:
        ledger.close()
        raise
    return ledger, database


def attach_seals(ledger: Ledger, database: Database, data_key: Path | None, sealed_fields: tuple[str, ...] = ()) -> None:
    """Give the ledger its sealing: the key table, and the ledger data key if one is given
    (``ledger.sealing``; a wrong key is a one-line error naming the file)."""
    from ledger.sealing import Seals, load_data_key
    from ledger.storage_keys import SqlKeyStore

    key = None if data_key is None else load_data_key(data_key)
    try:
        store = SqlKeyStore(ledger, database)
    except OPEN_ERRORS as error:
        raise StorageError(f"cannot open the key table of {database.location}: {first_line(error)}") from None
    ledger.seals = Seals(store, key, str(data_key), sealed_fields)
