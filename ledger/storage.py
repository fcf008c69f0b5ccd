"""Turns a database URL or path into the library's environment, and guards the stored events.

The only module of the domain that knows database drivers. SQLite is the embedded default
(a file at a per-user data location); ``postgresql://`` URLs use eventsourcing's PostgreSQL
persistence with psycopg 3 and its default insert path, whose table lock keeps
notification order equal to commit order.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import PersistenceError, StoredEvent

from ledger.errors import StorageError

DATABASE_ENV = "REFLEDGER_DATABASE_URL"
#: seconds to wait for the events table lock (PostgreSQL) or a busy database (SQLite).
LOCK_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5
#: seconds a held transaction (an import saving in steps) may sit idle between statements
HELD_IDLE_SECONDS = 300

_REFUSE = "stored events are append-only"
#: what opening a ledger may raise when the database cannot be opened or set up
OPEN_ERRORS: tuple[type[BaseException], ...] = (PersistenceError, OSError, sqlite3.Error)


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
    #: the ledger cannot be written here (a SQLite file on a read-only mount or without write
    #: permission); a SELECT-only PostgreSQL login is found out only when a write is refused
    read_only: bool = False

    @property
    def events_table(self) -> str:
        return "stored_events" if self.backend == "sqlite" else "ledger_events"


def resolve_database(url: str | None) -> Database:
    """``--db`` value (or $REFLEDGER_DATABASE_URL, or the default file) → Database."""
    url = url or os.environ.get(DATABASE_ENV) or str(default_database_path())
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() != "sqlite":
        raise StorageError(
            f"unknown database URL scheme {scheme.group(1)!r}: give a SQLite file path, sqlite:///PATH or postgresql://HOST/DBNAME"
        )
    path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://")).expanduser()
    if path.is_dir():
        raise StorageError(f"{path} is a directory, not a database file")
    read_only = path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        # the library opens SQLITE_DBNAME as a URI: a read-only file is opened read-only
        "SQLITE_DBNAME": sqlite_read_uri(path) if read_only else str(path),
        "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
    }
    return Database("sqlite", str(path), env, read_only=read_only)


def sqlite_read_uri(path: Path) -> str:
    """A URI that opens ``path`` for reading only, without writing beside it.

    A WAL database opened read-only still needs its shared-memory file; in a folder that
    cannot be written (an auditor's read-only snapshot) nobody can change the file either,
    so it is opened as immutable.
    """
    writable_folder = os.access(path.resolve().parent, os.W_OK)
    return path.resolve().as_uri() + ("?mode=ro" if writable_folder else "?immutable=1")


#: ``scheme://`` at the start of a --db value (a Windows drive letter is one character)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
#: a schema name the ledger may use: a plain identifier, not one of the server's own schemas
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _postgres(url: str) -> Database:
    try:
        parsed = urlparse(url)
        port = parsed.port or 5432
    except ValueError as error:  # a bad port ("abc", 99999) or an unclosed IPv6 bracket
        raise StorageError(f"bad PostgreSQL URL: {error}") from None
    options = parse_qs(parsed.query)
    schema = options.get("schema", [None])[0]
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise StorageError(f"bad PostgreSQL URL: schema {schema!r} must be letters, digits and _ (not starting with a digit)")
        if schema.lower().startswith("pg_") or schema.lower() == "information_schema":
            raise StorageError(f"bad PostgreSQL URL: schema {schema!r} belongs to the server; choose another name")
    # a socket directory may come as ?host=/path (as libpq allows)
    host = parsed.hostname or options.get("host", ["127.0.0.1"])[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "4",
        # the library's recorder, with large saves (imports) inserted in chunks
        "APPLICATION_RECORDER_TOPIC": "ledger.storage_postgres:ChunkedPostgresApplicationRecorder",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    location = f"postgresql://{host}:{port}/{env['POSTGRES_DBNAME']}"
    if schema:
        location += f"?schema={schema}"
    return Database("postgres", location, env, schema)


class NoLedger(StorageError):
    """The path or database holds no ledger, and the command would not create one."""


def holds_ledger(url: str | None) -> bool:
    """Whether ``url`` (a path or database URL) already holds a ledger; creates nothing."""
    return events_table_exists(resolve_database(url))


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def events_table_exists(database: Database) -> bool:
    if database.backend == "sqlite":
        path = Path(database.location)
        if not path.exists() or path.stat().st_size == 0:
            return False
        try:
            connection = sqlite3.connect(sqlite_read_uri(path), uri=True)
        except sqlite3.Error:
            return False  # let the library report what is wrong with the file
        try:
            return (
                connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (database.events_table,)).fetchone()
                is not None
            )
        except sqlite3.DatabaseError:
            return False
        finally:
            connection.close()
    with connect_postgres(database) as connection:
        return connection.execute("SELECT to_regclass(%s)", (_qualified(database, database.events_table),)).fetchone()[0] is not None


def create_schema(database: Database) -> None:
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
        raise StorageError(f"cannot connect to PostgreSQL at {database.location}: {first_line(error)}") from None


def execute_sql(ledger: Application[Any], statements: list[str]) -> None:
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


#: the tables the identity trigger keeps from the events it sees: who is registered with
#: which login, and since when the directory is in force (written by the trigger only)
LOGINS_TABLE = "refledger_logins"
DIRECTORY_STATE_TABLE = "refledger_directory_state"
#: the function of the login trigger (``identity_statements``)
LOGIN_CHECK = "refledger_check_logins"


def identity_statements(database: Database) -> list[str]:
    """PostgreSQL: the login of every inserted event is the database's own, and (once the
    directory is in force) a live event's actor is the person registered with that login.

    An AFTER INSERT trigger, once per statement, reads the statement's rows in the order
    they were inserted. It refuses the statement if a row's ``inserted_by`` differs from
    session_user (rule ``inserted-by-login``) or if, from the directory's ``in_force_from``,
    a live row (no ``source_recorded_at``) has an actor registered with another login (rule
    ``actor-login``). Person and directory events keep its two tables up to date, each in
    effect from its own row on, as one trigger call per row would have them. Once per
    statement because an import inserts thousands of rows per statement: a call per row
    cost about twice as much server time. The functions run as their owner (SECURITY
    DEFINER), so a recorder who may only INSERT events can neither write those tables nor
    lock the events table except through them.
    """
    schema = f'"{database.schema or "public"}"'
    table = f"{schema}.{database.events_table}"
    logins, state = f"{schema}.{LOGINS_TABLE}", f"{schema}.{DIRECTORY_STATE_TABLE}"
    return [
        f"CREATE TABLE IF NOT EXISTS {logins} (person text PRIMARY KEY, login text)",
        f"CREATE TABLE IF NOT EXISTS {state} (in_force_from timestamptz NOT NULL)",
        f"INSERT INTO {logins} (person, login) SELECT s->>'person', s->>'login' FROM "
        f"(SELECT convert_from(state, 'UTF8')::jsonb AS s FROM {table} WHERE topic = 'refledger:Person.Registered') AS r "
        "ON CONFLICT DO NOTHING",
        f"INSERT INTO {state} (in_force_from) SELECT (convert_from(state, 'UTF8')::jsonb->'in_force_from'->>'_data_')::timestamptz "
        f"FROM {table} WHERE topic = 'refledger:StaffDirectory.Enforced' AND NOT EXISTS (SELECT 1 FROM {state})",
        f"CREATE OR REPLACE FUNCTION {schema}.{LOGIN_CHECK}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog AS $$ "
        "DECLARE r record; since timestamptz; registered text; "
        "BEGIN "
        f"SELECT min(in_force_from) INTO since FROM {state}; "
        "FOR r IN SELECT topic, convert_from(state, 'UTF8')::jsonb AS s FROM inserted ORDER BY notification_id LOOP "
        "IF r.s->>'inserted_by' IS DISTINCT FROM session_user THEN "
        "RAISE EXCEPTION 'inserted-by-login: the event says it is inserted by %, but the database login is %', "
        "coalesce(r.s->>'inserted_by', '(nobody)'), session_user; END IF; "
        "IF r.topic = 'refledger:Person.Registered' THEN "
        f"INSERT INTO {logins} (person, login) VALUES (r.s->>'person', r.s->>'login') ON CONFLICT DO NOTHING; "
        "ELSIF r.topic = 'refledger:StaffDirectory.Enforced' THEN "
        f"INSERT INTO {state} (in_force_from) VALUES ((r.s->'in_force_from'->>'_data_')::timestamptz); "
        f"SELECT min(in_force_from) INTO since FROM {state}; END IF; "
        "IF since IS NOT NULL AND r.s ? 'actor' AND jsonb_typeof(r.s->'source_recorded_at') IS DISTINCT FROM 'string' "
        "AND jsonb_typeof(r.s->'source_recorded_at') IS DISTINCT FROM 'object' "
        "AND (r.s->'timestamp'->>'_data_')::timestamptz >= since THEN "
        f"SELECT login INTO registered FROM {logins} WHERE person = r.s->'actor'->>'person'; "
        "IF registered IS NOT NULL AND registered <> session_user THEN "
        "RAISE EXCEPTION 'actor-login: % is registered with the login %; this database login is %', "
        "r.s->'actor'->>'person', registered, session_user; END IF; END IF; "
        "END LOOP; RETURN NULL; END $$",
        f"CREATE OR REPLACE TRIGGER {database.events_table}_login AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{LOGIN_CHECK}()",
        # ledgers made before the check ran once per statement called it once per row
        f"DROP FUNCTION IF EXISTS {schema}.refledger_check_login()",
        f"CREATE OR REPLACE FUNCTION {schema}.refledger_lock_events() RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
        f"SET search_path = pg_catalog AS $$ BEGIN LOCK TABLE {table} IN EXCLUSIVE MODE; END $$",
    ]


def database_login(ledger: Application[Any], database: Database) -> str | None:
    """The login the database itself says this connection has (PostgreSQL's session_user);
    None on SQLite, which has no logins."""
    if database.backend == "sqlite":
        return None
    return str(_query(ledger, database, "SELECT session_user", ())[0][0])


def install_append_only_guards(ledger: Application[Any], database: Database) -> None:
    """Database triggers that refuse UPDATE, DELETE (and TRUNCATE) of stored events.

    They stop honest mistakes and casual edits; a superuser can drop them, which is what
    the hash chains and signed checkpoints are for.
    """
    in_force, current, may_change = _guards(ledger, database)
    if current or (in_force and not may_change):
        # an older version of a guard still guards; the table's owner replaces it on opening
        return
    execute_sql(ledger, append_only_statements(database) + ([] if database.backend == "sqlite" else identity_statements(database)))


def guard_names(database: Database) -> list[str]:
    """The names of the append-only triggers of the events table."""
    table = database.events_table
    if database.backend == "sqlite":
        return [f"{table}_no_update", f"{table}_no_delete"]
    return [f"{table}_no_update_delete", f"{table}_no_truncate", f"{table}_login"]


def _guards(ledger: Application[Any], database: Database) -> tuple[bool, bool, bool]:
    """Whether every guard exists and is enabled; whether each is also this version's (then
    opening changes nothing); whether this login may change them (it owns the table).

    Creating a trigger takes a lock that conflicts with an import's table lock on
    PostgreSQL, so a reader must not do it when there is nothing to do.
    """
    datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
    expected = set(guard_names(database))
    with datastore.transaction(commit=False) as cursor:
        if database.backend == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (database.events_table,))
            in_force = expected <= {row[0] for row in cursor.fetchall()}
            return in_force, in_force, True
        table = _qualified(database, database.events_table)
        cursor.execute(
            "SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal AND t.tgenabled <> 'D'",
            (table,),
        )
        enabled = {row["tgname"]: row["proname"] for row in cursor.fetchall()}
        cursor.execute("SELECT pg_has_role(session_user, relowner, 'USAGE') AS owner FROM pg_class WHERE oid = to_regclass(%s)", (table,))
        owner = cursor.fetchone()
    in_force = expected <= set(enabled)
    return in_force, in_force and enabled[f"{database.events_table}_login"] == LOGIN_CHECK, bool(owner and owner["owner"])


@contextmanager
def held_transaction(ledger: Application[Any]) -> Iterator[None]:
    """Until the block ends, every read and write of the ledger's recorder runs in ONE
    database transaction, committed at the end (rolled back on an error, or by the server
    when the process is killed).

    A long import saves in steps inside it, so memory stays bounded while the import stays
    all or nothing; its reads (the streams of the next step) see what the earlier steps
    saved. SQLite: the library's datastore hands every caller the one open cursor.
    PostgreSQL: every caller gets the one connection; the library's own transactions nest
    in it as savepoints. Other recorders (in memory) are left as they are.
    """
    datastore: Any = getattr(ledger.recorder, "datastore", None)
    module = type(datastore).__module__
    if module == "eventsourcing.sqlite":
        with datastore.transaction(commit=True) as cursor:

            @contextmanager
            def same_cursor(*, commit: bool) -> Iterator[Any]:
                yield cursor

            datastore.transaction = same_cursor
            try:
                yield
            finally:
                del datastore.transaction
    elif module == "eventsourcing.postgres":
        with datastore.get_connection() as connection, connection.transaction():
            # the library's connections end a transaction idle for 5 s; between two steps
            # this one is idle while the client checks a step's lines (longer on a busy
            # machine or in a garbage collection): allow that, for this transaction only
            connection.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{HELD_IDLE_SECONDS}s'")

            @contextmanager
            def same_connection() -> Iterator[Any]:
                yield connection

            datastore.get_connection = same_connection
            try:
                yield
            finally:
                del datastore.get_connection
    else:
        yield


#: streams per SQLite query (its default limit on bound parameters is 32,766; older builds 999).
_STREAMS_PER_QUERY = 900


def read_streams(ledger: Application[Any], stream_ids: Sequence[UUID]) -> dict[UUID, list[DomainEventProtocol[UUID]]]:
    """The events of many streams (each in version order), read in one query, not one per stream.

    A bulk package has thousands of subject streams: a round trip each made reading one
    package on PostgreSQL cost most of a second. Other recorders (the in-memory one of the
    unit tests) are read stream by stream.
    """
    recorder = ledger.recorder
    module = type(recorder).__module__
    rows: list[tuple[UUID, int, str, bytes]] = []
    if module == "eventsourcing.sqlite":
        from eventsourcing.sqlite import SQLiteAggregateRecorder

        if isinstance(recorder, SQLiteAggregateRecorder):
            with recorder.datastore.transaction(commit=False) as cursor:
                for start in range(0, len(stream_ids), _STREAMS_PER_QUERY):
                    chunk = [i.hex for i in stream_ids[start : start + _STREAMS_PER_QUERY]]
                    cursor.execute(
                        f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
                        f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                    rows += [(UUID(r["originator_id"]), r["originator_version"], r["topic"], r["state"]) for r in cursor.fetchall()]
    elif callable(select_streams := getattr(recorder, "select_streams", None)):
        rows = select_streams(stream_ids)  # the PostgreSQL recorder's one query (ledger.storage_postgres)
    else:
        return {i: list(ledger.events.get(i)) for i in stream_ids}
    found: dict[UUID, list[DomainEventProtocol[UUID]]] = {i: [] for i in stream_ids}
    for stream_id, version, topic, state in sorted(rows, key=lambda row: row[1]):
        found[stream_id].append(ledger.mapper.to_domain_event(StoredEvent(stream_id, version, topic, state)))
    return found


# --- integrity: raw reads for verification and the checkpoint table ----------------------

#: one stored event as verification reads it: (log position, stream id as stored, version, topic, state)
EventRow = tuple[int, str, int, str, bytes]
CHECKPOINTS_TABLE = "integrity_checkpoints"


def read_event_rows(database: Database, after: int = 0, batch_size: int = 20_000, limit: int | None = None) -> Iterator[list[EventRow]]:
    """The stored events after log position ``after``, in log order, in batches of raw rows.

    Verification reads the table on its own connection, in one snapshot, and decodes
    nothing through the library's mapper: the checker does not trust the code path it
    checks, and skipping the mapper is most of its speed.
    """
    bounded = f" LIMIT {int(limit)}" if limit is not None else ""
    if database.backend == "sqlite":
        try:
            connection = sqlite3.connect(sqlite_read_uri(Path(database.location)), uri=True)
        except sqlite3.Error as error:
            raise StorageError(f"cannot read the ledger at {database.location}: {first_line(error)}") from None
        try:
            cursor = connection.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {database.events_table} "
                f"WHERE rowid > ? ORDER BY rowid{bounded}",
                (after,),
            )
            while batch := cursor.fetchmany(batch_size):
                yield batch
        finally:
            connection.close()
        return
    statement = (
        f"SELECT notification_id, originator_id::text, originator_version, topic, state FROM {_qualified(database, database.events_table)} "
        f"WHERE notification_id > %s ORDER BY notification_id{bounded}"
    )
    # a named (server-side) cursor streams the table instead of loading it into memory
    with (
        connect_postgres(database) as connection,
        connection.transaction(),
        connection.cursor("refledger_event_rows", binary=True) as cursor,
    ):
        cursor.itersize = batch_size
        cursor.execute(statement, (after,))
        while batch := cursor.fetchmany(batch_size):
            yield batch


def checkpoint_table_statements(database: Database) -> list[str]:
    """The table of checkpoints (each with the Merkle frontier it extends), append-only too."""
    table = _qualified(database, CHECKPOINTS_TABLE)
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if database.backend == "sqlite" else "bigserial PRIMARY KEY"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} (id {key}, size bigint NOT NULL, position bigint NOT NULL, "
        "root text NOT NULL, last_leaf text, frontier text NOT NULL, checkpoint text NOT NULL)"
    ]
    if database.backend == "sqlite":
        return [
            *statements,
            f"CREATE TRIGGER IF NOT EXISTS {CHECKPOINTS_TABLE}_no_update BEFORE UPDATE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE refused'); END",
            f"CREATE TRIGGER IF NOT EXISTS {CHECKPOINTS_TABLE}_no_delete BEFORE DELETE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE refused'); END",
        ]
    function = _qualified(database, "refledger_refuse_checkpoint_change")
    return [
        *statements,
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'checkpoints are append-only: % refused', TG_OP; END $$",
        f"CREATE OR REPLACE TRIGGER {CHECKPOINTS_TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def ensure_checkpoint_table(ledger: Application[Any], database: Database) -> None:
    """Create the checkpoints table where it is missing; where it exists, write nothing
    (a read-only ledger or a SELECT-only login can still be verified)."""
    if _checkpoint_table_exists(ledger, database):
        return
    try:
        execute_sql(ledger, checkpoint_table_statements(database))
    except PersistenceError:
        if not database.read_only and _checkpoint_table_exists(ledger, database):
            raise  # lost a race
        # a SELECT-only login: there are no stored checkpoints to read, and none can be stored


def _checkpoint_table_exists(ledger: Application[Any], database: Database) -> bool:
    if database.backend == "sqlite":
        found = _query(ledger, database, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (CHECKPOINTS_TABLE,))
        return bool(found)
    return _query(ledger, database, "SELECT to_regclass(?)", (_qualified(database, CHECKPOINTS_TABLE),))[0][0] is not None


def insert_checkpoint_row(ledger: Application[Any], database: Database, row: tuple[int, int, str, str | None, str, str]) -> None:
    """Store (size, position, root, last_leaf, frontier JSON, checkpoint JSON)."""
    _query(
        ledger,
        database,
        f"INSERT INTO {_qualified(database, CHECKPOINTS_TABLE)} (size, position, root, last_leaf, frontier, checkpoint) VALUES (?, ?, ?, ?, ?, ?)",
        row,
        fetch=False,
    )


def select_checkpoint_rows(ledger: Application[Any], database: Database, latest_only: bool = False) -> list[tuple[Any, ...]]:
    """Stored checkpoints, oldest first: (size, position, root, last_leaf, frontier, checkpoint)."""
    order = "ORDER BY id DESC LIMIT 1" if latest_only else "ORDER BY id"
    if not _checkpoint_table_exists(ledger, database):
        return []  # a ledger read through a login that could not create the table
    return _query(
        ledger,
        database,
        f"SELECT size, position, root, last_leaf, frontier, checkpoint FROM {_qualified(database, CHECKPOINTS_TABLE)} {order}",
        (),
    )


def append_only_guard_state(database: Database) -> dict[str, str]:
    """Each append-only trigger of the events table: "enabled", "disabled" or "missing".

    Read on its own connection before the ledger is opened, because opening reinstalls
    (and re-enables) them. {} when the ledger does not exist yet.
    """
    table = database.events_table
    expected = guard_names(database)
    if database.backend == "sqlite":
        path = Path(database.location)
        if not path.exists():
            return {}
        connection = sqlite3.connect(sqlite_read_uri(path), uri=True)
        try:
            if not connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
                return {}
            found = {
                name: "enabled"
                for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))
            }
        finally:
            connection.close()
    else:
        with connect_postgres(database) as connection:
            relation = connection.execute("SELECT to_regclass(%s)", (_qualified(database, table),)).fetchone()[0]
            if relation is None:
                return {}
            rows = connection.execute(
                "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
                (_qualified(database, table),),
            ).fetchall()
            found = {name: "disabled" if enabled == "D" else "enabled" for name, enabled in rows}
    return {name: found.get(name, "missing") for name in expected}


def _qualified(database: Database, table: str) -> str:
    return table if database.backend == "sqlite" else f'"{database.schema or "public"}".{table}'


def _query(
    ledger: Application[Any], database: Database, statement: str, params: Sequence[Any], fetch: bool = True
) -> list[tuple[Any, ...]]:
    """One parameterised statement (``?`` placeholders) through the ledger's own datastore."""
    if database.backend != "sqlite":
        statement = statement.replace("?", "%s")
    datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=not fetch) as cursor:
        cursor.execute(statement, tuple(params))
        if not fetch:
            return []
        return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in cursor.fetchall()]


# --- deployment: the group roles of a PostgreSQL ledger ----------------------------------

#: the group roles ``refledger db grant`` makes, by what they are for (names: PREFIX_KIND)
ROLE_KINDS = ("owner", "recorder", "reader", "auditor")


def grant_roles(database: Database, prefix: str, members: dict[str, list[str]]) -> list[str]:
    """Create (where missing) the deployment's group roles and grant them their rights on the
    ledger's schema; add existing logins to them (``members``: role kind → logins).

    - PREFIX_owner (NOLOGIN): owns the schema, its tables, sequences and functions; nobody
      logs in as it day to day, so no working login can drop a trigger.
    - PREFIX_recorder: SELECT and INSERT on the events (no UPDATE, DELETE or TRUNCATE), the
      table lock through the ledger's function, and the read models (derived tables it
      may create and rewrite).
    - PREFIX_reader: SELECT on every table (its read models live in a temporary store).
    - PREFIX_auditor: what a reader has, and INSERT on the checkpoints.

    One transaction; running it again changes nothing. Returns one line per thing done.
    """
    from psycopg.sql import SQL, Identifier

    if database.backend != "postgres":
        raise StorageError("database roles are a PostgreSQL matter: a SQLite ledger is one file, guarded by its file permissions")
    roles = {kind: f"{prefix}_{kind}" for kind in ROLE_KINDS}
    schema = database.schema or "public"
    done: list[str] = []
    with connect_postgres(database) as connection, connection.transaction():
        if connection.execute("SELECT to_regclass(%s)", (_qualified(database, database.events_table),)).fetchone()[0] is None:
            raise NoLedger(f"no ledger at {database.location} (create one with 'refledger init' first)")

        def run(statement: Any, *params: Any) -> Any:
            return connection.execute(statement, params or None)

        for kind, role in roles.items():
            if run("SELECT 1 FROM pg_roles WHERE rolname = %s", role).fetchone():
                done.append(f"role {role} exists")
            else:
                run(SQL("CREATE ROLE {} NOLOGIN").format(Identifier(role)))
                done.append(f"created role {role} (NOLOGIN, for {kind}s)")
        for statement in checkpoint_table_statements(database):
            run(statement)
        s, owner = Identifier(schema), Identifier(roles["owner"])
        recorder, reader, auditor = Identifier(roles["recorder"]), Identifier(roles["reader"]), Identifier(roles["auditor"])
        run(SQL("ALTER SCHEMA {} OWNER TO {}").format(s, owner))
        tables = [row[0] for row in run("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", schema).fetchall()]
        sequences = [row[0] for row in run("SELECT sequencename FROM pg_sequences WHERE schemaname = %s", schema).fetchall()]
        functions = run(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s", schema
        ).fetchall()
        for table in tables:
            run(SQL("ALTER TABLE {}.{} OWNER TO {}").format(s, Identifier(table), owner))
        for (function,) in functions:
            run(SQL("ALTER FUNCTION " + function + " OWNER TO {}").format(owner))
        done.append(
            f"schema {schema}: {len(tables)} tables, {len(sequences)} sequences, {len(functions)} functions owned by {roles['owner']}"
        )
        run(SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(s))
        run(SQL("GRANT USAGE ON SCHEMA {} TO {}, {}, {}").format(s, recorder, reader, auditor))
        run(SQL("GRANT CREATE ON SCHEMA {} TO {}").format(s, recorder))
        guarded = {database.events_table, CHECKPOINTS_TABLE, LOGINS_TABLE, DIRECTORY_STATE_TABLE}
        for table in tables:
            t = Identifier(table)
            run(SQL("REVOKE ALL ON {}.{} FROM PUBLIC").format(s, t))
            run(SQL("GRANT SELECT ON {}.{} TO {}, {}, {}").format(s, t, recorder, reader, auditor))
            if table not in guarded:  # a read model: derived, rebuilt from the events
                run(SQL("GRANT INSERT, UPDATE, DELETE ON {}.{} TO {}").format(s, t, recorder))
        run(SQL("GRANT INSERT ON {}.{} TO {}").format(s, Identifier(database.events_table), recorder))
        run(SQL("GRANT INSERT ON {}.{} TO {}").format(s, Identifier(CHECKPOINTS_TABLE), auditor))
        for sequence in sequences:
            run(SQL("GRANT USAGE ON SEQUENCE {}.{} TO {}, {}").format(s, Identifier(sequence), recorder, auditor))
        lock = SQL("{}.refledger_lock_events()").format(s)
        run(SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(lock))
        run(SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(lock, recorder))
        run(
            SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}, {}, {}").format(
                owner, s, recorder, reader, auditor
            )
        )
        done.append(
            f"granted {roles['recorder']}: SELECT, INSERT on {database.events_table} (no UPDATE, DELETE, TRUNCATE), the read models"
        )
        done.append(f"granted {roles['reader']}: SELECT")
        done.append(f"granted {roles['auditor']}: SELECT, INSERT on {CHECKPOINTS_TABLE}")
        for kind, logins in members.items():
            for login in logins:
                if not run("SELECT 1 FROM pg_roles WHERE rolname = %s AND rolcanlogin", login).fetchone():
                    raise StorageError(f"there is no login {login!r} on this server (create it first: CREATE ROLE … LOGIN)")
                run(SQL("GRANT {} TO {}").format(Identifier(roles[kind]), Identifier(login)))
                done.append(f"granted {roles[kind]} to {login}")
    return done
