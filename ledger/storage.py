"""Turns a database URL or path into a ready Ledger, and guards the stored events.

The only module of the domain that knows database drivers. SQLite is the embedded default
(a file at a per-user data location); ``postgresql://`` URLs use eventsourcing's PostgreSQL
persistence with psycopg 3 and its default insert path, whose table lock keeps
notification order equal to commit order.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import PersistenceError

from ledger.application import Ledger
from ledger.errors import StorageError
from ledger.values import utcnow

DATABASE_ENV = "REFLEDGER_DATABASE_URL"
#: seconds to wait for the events table lock (PostgreSQL) or a busy database (SQLite).
LOCK_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5

_REFUSE = "stored events are append-only"


def default_database_path() -> Path:
    """The embedded default: ``$XDG_DATA_HOME/refledger/ledger.sqlite`` (or ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "refledger" / "ledger.sqlite"


@dataclass(frozen=True)
class Database:
    """Where the ledger lives: a backend name, a printable location and the library env."""

    backend: str
    location: str
    env: dict[str, str]
    schema: str | None = None

    @property
    def events_table(self) -> str:
        return "stored_events" if self.backend == "sqlite" else "ledger_events"


def resolve_database(url: str | None) -> Database:
    """``--db`` value (or $REFLEDGER_DATABASE_URL, or the default file) → Database."""
    url = url or os.environ.get(DATABASE_ENV) or str(default_database_path())
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://")).expanduser()
    if path.is_dir():
        raise StorageError(f"{path} is a directory, not a database file")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
    }
    return Database("sqlite", str(path), env)


def _postgres(url: str) -> Database:
    parsed = urlparse(url)
    options = parse_qs(parsed.query)
    schema = options.get("schema", [None])[0]
    # a socket directory may come as ?host=/path (as libpq allows)
    host = parsed.hostname or options.get("host", ["127.0.0.1"])[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "4",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    location = f"postgresql://{host}:{parsed.port or 5432}/{env['POSTGRES_DBNAME']}"
    if schema:
        location += f"?schema={schema}"
    return Database("postgres", location, env, schema)


def open_ledger(url: str | None = None, clock: Callable[[], datetime] = utcnow) -> tuple[Ledger, Database]:
    """Open (creating on first use) the ledger at ``url`` with its append-only guards."""
    database = resolve_database(url)
    if database.schema:
        _create_schema(database)
    try:
        ledger = Ledger(env=database.env, clock=clock)
        install_append_only_guards(ledger, database)
    except (PersistenceError, OSError, sqlite3.Error) as error:
        raise StorageError(f"cannot open the ledger at {database.location}: {_first_line(error)}") from None
    return ledger, database


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _create_schema(database: Database) -> None:
    with connect_postgres(database) as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"')


def connect_postgres(database: Database, **kwargs: Any) -> Any:
    """A plain psycopg connection (autocommit) to the ledger's PostgreSQL database."""
    import psycopg

    env = database.env
    try:
        return psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            autocommit=True,
            **kwargs,
        )
    except psycopg.Error as error:
        raise StorageError(f"cannot connect to PostgreSQL at {database.location}: {_first_line(error)}") from None


def execute_sql(ledger: Ledger, statements: list[str]) -> None:
    """Run DDL through the ledger's own datastore (one transaction)."""
    datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        for statement in statements:
            cursor.execute(statement)


def append_only_statements(database: Database) -> list[str]:
    table = database.events_table
    if database.backend == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}: UPDATE refused'); END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}: DELETE refused'); END",
        ]
    schema = f'"{database.schema or "public"}"'
    function = f"{schema}.refledger_refuse_change"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{_REFUSE}: % refused', TG_OP; END $$",
        f"CREATE OR REPLACE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {schema}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {schema}.{table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def install_append_only_guards(ledger: Ledger, database: Database) -> None:
    """Database triggers that refuse UPDATE, DELETE (and TRUNCATE) of stored events.

    They stop honest mistakes and casual edits; a superuser can drop them, which is what
    the hash chains and signed checkpoints are for.
    """
    execute_sql(ledger, append_only_statements(database))
