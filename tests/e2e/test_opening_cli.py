"""Opening a ledger: only recording (and `init`) creates one; a missing ledger or a bad URL is one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.conftest import count_events, schema_url

INTAKE = "P-01:registry-officer@U-INTAKE"

#: commands that only read, each with the arguments it needs
READERS = [
    ["info"],
    ["owner", "R-2024-0001"],
    ["history", "R-2024-0001"],
    ["timeline", "R-2024-0001"],
    ["obligations", "R-2024-0001"],
    ["verify"],
    ["backlog"],
    ["audit", "gaps"],
    ["audit", "late-entries"],
    ["report", "R-2024-0001", "--out", "-"],
    ["projections", "status"],
    ["subjects", "list", "R-2024-0001"],
]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env={"REFLEDGER_ACTOR": None, "REFLEDGER_DATABASE_URL": None})


def one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    for word in words:
        assert word in result.output


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c))
def test_a_reading_command_on_a_missing_sqlite_path_says_so_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    # Given a path whose directory does not exist
    path = tmp_path / "typo" / "ledger.sqlite"
    # When a command that only reads is run on it
    result = run("--db", str(path), *command)
    # Then it says there is no ledger there, and nothing was created
    one_line_error(result, "no ledger at", str(path))
    assert not path.parent.exists()


@pytest.mark.postgres
def test_a_reading_command_on_a_missing_schema_creates_no_schema(postgres_url: str) -> None:
    from ledger.storage import connect_postgres, resolve_database

    schema = "t_absent_" + uuid.uuid4().hex[:8]
    url = schema_url(postgres_url, schema)
    for command in (["info"], ["owner", "R-2024-0001"], ["verify"], ["backlog"]):
        one_line_error(run("--db", url, *command), "no ledger at")
    with connect_postgres(resolve_database(url)) as connection:
        found = connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert found is None


def test_init_creates_an_empty_ledger_once(database_url: str) -> None:
    one_line_error(run("--db", database_url, "info"), "no ledger at")
    first = run("--db", database_url, "init")
    assert first.exit_code == 0 and "Created an empty ledger" in first.output
    again = run("--db", database_url, "init")
    assert again.exit_code == 0 and "already exists" in again.output and "nothing changed" in again.output
    info = run("--db", database_url, "info")
    assert info.exit_code == 0 and "events: 0" in info.output


def test_recording_a_receipt_creates_the_ledger_but_other_records_do_not(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.sqlite"
    # a record that needs a referral cannot start a ledger
    one_line_error(run("--db", str(path), "--as", INTAKE, "note", "R-2024-0001", "--text", "hello"), "no ledger at")
    assert not path.parent.exists()
    # a receipt can
    received = run(
        "--db",
        str(path),
        "--as",
        INTAKE,
        "receive",
        "R-2024-0001",
        "--originator",
        "X",
        "--channel",
        "post",
        "--custodian-unit",
        "U-INTAKE",
    )
    assert received.exit_code == 0, received.output
    assert count_events(str(path)) == 1


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://x/y", ["unknown database URL scheme 'mysql'"]),
        ("postgresql://postgres@127.0.0.1:99999/x", ["bad PostgreSQL URL", "Port out of range"]),
        ("postgresql://postgres@127.0.0.1:abc/x", ["bad PostgreSQL URL", "abc"]),
        ("postgresql://[::1/x", ["bad PostgreSQL URL", "IPv6"]),
        ('postgresql://postgres@127.0.0.1/x?schema=a"b', ["bad PostgreSQL URL", "schema"]),
        ("postgresql://postgres@127.0.0.1/x?schema=pg_catalog", ["bad PostgreSQL URL", "belongs to the server"]),
        ("postgresql://postgres@127.0.0.1/x?schema=information_schema", ["bad PostgreSQL URL", "belongs to the server"]),
    ],
)
def test_a_bad_database_url_is_one_line_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, words: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["info"], ["init"], ["--as", INTAKE, "import", "x.jsonl"]):
        (tmp_path / "x.jsonl").write_text('{"type": "received"}\n')
        one_line_error(run("--db", url, *command), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_demo_refuses_a_folder_that_holds_a_ledger_unless_forced(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    assert run("demo", "--dir", str(folder)).exit_code == 0
    db = folder / "ledger.sqlite"
    events = count_events(str(db))
    key = (folder / "auditor.key").read_bytes()
    # a second demo in the same folder would replace the ledger and its key: refused
    one_line_error(run("demo", "--dir", str(folder)), "already holds a ledger", "--force")
    assert count_events(str(db)) == events and (folder / "auditor.key").read_bytes() == key
    # with --force it starts afresh
    assert run("demo", "--dir", str(folder), "--force").exit_code == 0
    assert count_events(str(db)) == events
