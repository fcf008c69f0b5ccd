"""Authenticated identity on PostgreSQL, with real logins: two recorders and a reader, created
and dropped here. The database itself records who inserted each event and refuses what a
login may not do: a forged actor, an UPDATE, a DELETE, a TRUNCATE, a reader's insert."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.storage import connect_postgres, resolve_database

pytestmark = pytest.mark.postgres

SETUP = ("--at", "2024-01-02", "--late-reason", "setting up the directory")
RECEIVE = ("--originator", "X-ESP", "--channel", "portal", "--custodian-unit", "U-OPS1")


@dataclass(frozen=True)
class Team:
    url: str  # the DBA's URL (the server's superuser)
    prefix: str
    alice: str
    bob: str
    carol: str

    def as_login(self, login: str) -> str:
        return self.url.replace("postgresql://postgres@", f"postgresql://{login}@", 1)


def cli(url: str, *args: str, actor: str | None = None) -> Result:
    env = {"REFLEDGER_ACTOR": actor} if actor else {}
    return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False, env=env)


def ok(url: str, *args: str, actor: str | None = None) -> str:
    result = cli(url, *args, actor=actor)
    assert result.exit_code == 0, result.output
    return result.stdout


def one_line_error(url: str, *args: str, actor: str | None = None) -> str:
    result = cli(url, *args, actor=actor)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def team(postgres_schema_url: str) -> Iterator[Team]:
    if not postgres_schema_url.startswith("postgresql://postgres@"):
        pytest.fail("these tests create logins, as the server's superuser postgres")
    tag = "t" + uuid.uuid4().hex[:10]
    found = Team(postgres_schema_url, f"{tag}_rl", f"{tag}_alice", f"{tag}_bob", f"{tag}_carol")
    database = resolve_database(postgres_schema_url)
    logins = (found.alice, found.bob, found.carol)
    with connect_postgres(database) as connection:
        for login in logins:
            connection.execute(f'CREATE ROLE "{login}" LOGIN')
    hr = "P-900:hr-officer@U-HR"
    url = found.url
    ok(url, "unit", "add", "U-HR", "--name", "HR", "--kind", "agency-unit", *SETUP, actor=hr)
    ok(url, "unit", "add", "U-OPS1", "--name", "Operations 1", "--kind", "agency-unit", *SETUP, actor=hr)
    ok(url, "person", "add", "P-900", "--employer", "NCA", *SETUP, actor=hr)
    ok(url, "role", "assign", "P-900", "--role", "hr-officer", "--unit", "U-HR", *SETUP, actor=hr)
    for person, login in (("P-101", found.alice), ("P-102", found.bob)):
        ok(url, "person", "add", person, "--employer", "NCA", "--login", login, *SETUP, actor=hr)
        ok(url, "role", "assign", person, "--role", "analyst", "--unit", "U-OPS1", *SETUP, actor=hr)
    ok(url, "directory", "enforce", "--from", "2024-01-03T00:00:00Z", actor=hr)
    granted = ok(url, "db", "grant", "--prefix", found.prefix, "--recorder", found.alice, "--recorder", found.bob, "--reader", found.carol)
    assert f"granted {found.prefix}_recorder to {found.alice}" in granted
    try:
        yield found
    finally:
        schema = database.schema
        with connect_postgres(database) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in (*logins, *(f"{found.prefix}_{kind}" for kind in ("owner", "recorder", "reader", "auditor"))):
                connection.execute(f'DROP OWNED BY "{role}" CASCADE')
                connection.execute(f'DROP ROLE "{role}"')


def test_each_event_carries_the_login_that_inserted_it_and_the_timeline_shows_it(team: Team) -> None:
    ok(team.as_login(team.alice), "receive", "R-1", *RECEIVE, actor="P-101:analyst@U-OPS1")
    ok(team.as_login(team.bob), "note", "R-1", "--text", "checked the package", actor="P-102:analyst@U-OPS1")
    rows = json.loads(ok(team.as_login(team.carol), "timeline", "R-1", "--json"))["events"]
    assert [(row["actor"]["person"], row["login"]) for row in rows] == [("P-101", team.alice), ("P-102", team.bob)]
    table = ok(team.as_login(team.carol), "timeline", "R-1")
    assert team.alice in table and team.bob in table
    assert json.loads(ok(team.as_login(team.carol), "verify", "--json"))["ok"] is True


def test_a_recorder_cannot_record_as_the_person_registered_with_another_login(team: Team) -> None:
    line = one_line_error(team.as_login(team.alice), "receive", "R-2", *RECEIVE, actor="P-102:analyst@U-OPS1")
    assert "actor-login" in line and team.bob in line and team.alice in line


def test_the_database_refuses_a_hand_written_row_that_names_another_login(team: Team) -> None:
    ok(team.as_login(team.alice), "receive", "R-3", *RECEIVE, actor="P-101:analyst@U-OPS1")
    database = resolve_database(team.as_login(team.alice))
    table = f'"{database.schema}".ledger_events'
    with connect_postgres(database) as connection:
        state = connection.execute(f"SELECT state FROM {table} ORDER BY notification_id DESC LIMIT 1").fetchone()[0]
        document = json.loads(bytes(state))
        forged = {**document, "inserted_by": team.bob}
        with pytest.raises(psycopg.Error, match="inserted-by-login"):
            connection.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s, 99, 'refledger:Referral.NoteAdded', %s)",
                (str(uuid.uuid4()), json.dumps(forged).encode()),
            )
        as_other = {**document, "actor": {"person": "P-102", "role": "analyst", "unit": "U-OPS1"}}
        with pytest.raises(psycopg.Error, match="actor-login"):
            connection.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s, 99, 'refledger:Referral.NoteAdded', %s)",
                (str(uuid.uuid4()), json.dumps(as_other).encode()),
            )


def _insert_many(connection: psycopg.Connection[object], table: str, rows: list[tuple[str, dict[str, object]]]) -> None:
    """One INSERT statement of several rows (topic, state), as an import's chunk is."""
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list[object] = []
    for version, (topic, state) in enumerate(rows, start=1):
        params += [str(uuid.uuid4()), version, topic, json.dumps(state).encode()]
    connection.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES {values}", params)


def test_the_check_reads_a_statement_of_many_rows_in_order_and_refuses_it_whole(team: Team) -> None:
    ok(team.as_login(team.alice), "receive", "R-6", *RECEIVE, actor="P-101:analyst@U-OPS1")
    database = resolve_database(team.as_login(team.alice))
    table = f'"{database.schema}".ledger_events'
    note = "refledger:Referral.NoteAdded"
    with connect_postgres(database) as connection:
        state = connection.execute(f"SELECT state FROM {table} ORDER BY notification_id DESC LIMIT 1").fetchone()[0]
        document = json.loads(bytes(state))
        before = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        forged = {**document, "inserted_by": team.bob}
        with pytest.raises(psycopg.Error, match=f"inserted-by-login: the event says it is inserted by {team.bob}"):
            _insert_many(connection, table, [(note, document)] * 3 + [(note, forged)] + [(note, document)])
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before  # not one row of it is kept

        def registered(person: str) -> dict[str, object]:
            return {"person": person, "login": team.bob, "inserted_by": team.alice, "prev_hash": "0" * 64}

        def acting(person: str) -> dict[str, object]:
            return {**document, "actor": {"person": person, "role": "analyst", "unit": "U-OPS1"}}

        # a registration is in effect from its own row on, as it is between statements
        _insert_many(connection, table, [(note, acting("P-103")), ("refledger:Person.Registered", registered("P-103"))])
        with pytest.raises(psycopg.Error, match=f"actor-login: P-104 is registered with the login {team.bob}"):
            _insert_many(connection, table, [("refledger:Person.Registered", registered("P-104")), (note, acting("P-104"))])


def test_a_large_save_is_checked_row_by_row_and_refused_whole(team: Team) -> None:
    """A save of several chunks (COPY statements) meets the same check as a single INSERT."""
    from eventsourcing.persistence import StoredEvent

    from ledger.storage_postgres import CHUNK
    from ledger.wiring import open_ledger

    ok(team.as_login(team.alice), "receive", "R-9", *RECEIVE, actor="P-101:analyst@U-OPS1")
    ledger, _ = open_ledger(team.as_login(team.alice))
    try:
        received = ledger.recorder.select_notifications(start=None, limit=1000)[-1]  # P-101's receipt of R-9
        as_other = {**json.loads(received.state), "actor": {"person": "P-102", "role": "analyst", "unit": "U-OPS1"}}
        rows = [StoredEvent(uuid.uuid4(), 1, received.topic, received.state) for _ in range(2 * CHUNK + 10)]
        rows[-5] = StoredEvent(uuid.uuid4(), 1, received.topic, json.dumps(as_other).encode())
        before = ledger.recorder.max_notification_id()
        with pytest.raises(Exception, match=f"actor-login: P-102 is registered with the login {team.bob}"):
            ledger.recorder.insert_events(rows)
        assert ledger.recorder.max_notification_id() == before
        assert len(ledger.recorder.insert_events(rows[:-5])) == 2 * CHUNK + 5  # without the forged row, all of it
    finally:
        ledger.close()


def test_a_ledger_with_the_check_of_every_row_gets_the_check_of_every_statement_when_opened(team: Team) -> None:
    database = resolve_database(team.url)
    schema = f'"{database.schema}"'
    with connect_postgres(database) as connection:
        connection.execute(
            f"CREATE FUNCTION {schema}.refledger_check_login() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
        connection.execute(
            f"CREATE OR REPLACE TRIGGER ledger_events_login BEFORE INSERT ON {schema}.ledger_events "
            f"FOR EACH ROW EXECUTE FUNCTION {schema}.refledger_check_login()"
        )
    ok(team.as_login(team.alice), "receive", "R-7", *RECEIVE, actor="P-101:analyst@U-OPS1")  # a recorder cannot change triggers
    ok(team.url, "receive", "R-8", *RECEIVE, actor="P-900:hr-officer@U-HR")  # the owner opens it: the check is replaced
    with connect_postgres(database) as connection:
        found = connection.execute(
            "SELECT p.proname, t.tgtype FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = to_regclass(%s) AND t.tgname = 'ledger_events_login'",
            (f"{schema}.ledger_events",),
        ).fetchall()
        assert found == [("refledger_check_logins", 4)]  # AFTER (4), once per statement (no ROW bit 1)
        assert connection.execute("SELECT to_regprocedure(%s)", (f"{schema}.refledger_check_login()",)).fetchone()[0] is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET topic = topic",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
        "ALTER TABLE {table} DISABLE TRIGGER USER",
        "DROP TRIGGER ledger_events_login ON {table}",
    ],
)
def test_a_recorder_cannot_change_or_unguard_the_events(team: Team, statement: str) -> None:
    ok(team.as_login(team.alice), "receive", "R-4", *RECEIVE, actor="P-101:analyst@U-OPS1")
    database = resolve_database(team.as_login(team.alice))
    with connect_postgres(database) as connection, pytest.raises(psycopg.Error, match=r"permission denied|must be owner"):
        connection.execute(statement.format(table=f'"{database.schema}".ledger_events'))
    assert json.loads(ok(team.as_login(team.carol), "verify", "--json"))["ok"] is True


def test_a_reader_cannot_record_and_gets_one_line(team: Team) -> None:
    line = one_line_error(team.as_login(team.carol), "receive", "R-5", *RECEIVE, actor="P-101:analyst@U-OPS1")
    assert "permission denied" in line
    database = resolve_database(team.as_login(team.carol))
    with connect_postgres(database) as connection, pytest.raises(psycopg.Error, match="permission denied"):
        connection.execute(f'SELECT "{database.schema}".refledger_lock_events()')


def test_grant_runs_again_without_change_and_is_refused_on_sqlite(team: Team, tmp_path: object) -> None:
    again = ok(team.url, "db", "grant", "--prefix", team.prefix)
    assert f"role {team.prefix}_owner exists" in again
    line = one_line_error(f"{tmp_path}/ledger.sqlite", "db", "grant")
    assert "PostgreSQL" in line
