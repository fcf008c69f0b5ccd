"""The staff directory through the CLI, on each backend: record commands, the CSV load, refusals, queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner, Result

from cli import main

HR = "P-900:hr-officer@U-HR"
SETUP = "--at", "2023-12-01", "--late-reason", "setting up the directory"


def run(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": HR})


def ok(db: str, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(db: str, *args: str) -> str:
    """The command fails with one line `Error: …`, exit 1, and nothing is written."""
    before = json.loads(ok(db, "info", "--json"))["events"]
    result = run(db, *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert json.loads(ok(db, "info", "--json"))["events"] == before
    return lines[0]


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> str:
    ok(database_url, "unit", "add", "U-HR", "--name", "HR", "--kind", "agency-unit", *SETUP)
    ok(database_url, "unit", "add", "U-OPS1", "--name", "Operations 1", "--kind", "agency-unit", "--parent", "U-HR", *SETUP)
    # on PostgreSQL the database refuses an event by a person registered with another login
    # than the one inserting it, so the HR officer is registered with the login this test uses
    login = (urlparse(database_url).username or "postgres") if database_url.startswith("postgresql") else "hr1"
    ok(database_url, "person", "add", "P-900", "--employer", "NCA", "--login", login, *SETUP)
    ok(database_url, "role", "assign", "P-900", "--role", "hr-officer", "--unit", "U-HR", *SETUP)
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "person,employer,role,unit,from,to,acting\n"
        "P-300,F-NORTH,team-manager,U-OPS1,2024-01-01,2024-03-01,no\n"
        "P-300,F-NORTH,head-of-unit,U-OPS1,2024-03-01,,yes\n"
        "P-301,NCA,analyst,U-OPS1,2024-02-01,,\n",
        encoding="utf-8",
    )
    assert "Recorded 6 directory events from 3 rows" in ok(database_url, "directory", "import", str(staff))
    return database_url


def test_the_csv_load_and_directory_show(db: str) -> None:
    shown = json.loads(ok(db, "directory", "show", "--at", "2024-03-02", "--json"))
    assert [(r["person"], r["role"], r["acting"]) for r in shown["roles"]] == [
        ("P-900", "hr-officer", False),
        ("P-301", "analyst", False),
        ("P-300", "head-of-unit", True),
    ]
    assert (
        ok(db, "directory", "show", "--at", "2024-02-15", "--csv").splitlines()[0] == "person,role,unit,since,acting,employer,seconded_to"
    )
    before = json.loads(ok(db, "directory", "show", "--at", "2024-02-15", "--json"))
    assert [r["role"] for r in before["roles"] if r["person"] == "P-300"] == ["team-manager"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("role", "end", "P-301", "--role", "analyst", "--unit", "U-OPS1", "--at", "2024-01-15", "--late-reason", "x"),
            "role-ends-after-start",
        ),
        (("role", "assign", "P-301", "--role", "analyst", "--unit", "U-OPS1"), "no-overlapping-holdings"),
        (("role", "assign", "P-404", "--role", "analyst", "--unit", "U-OPS1"), "person P-404 is not in the ledger"),
        (("role", "assign", "P-301", "--role", "analyst", "--unit", "U-NOPE"), "unit U-NOPE is not in the ledger"),
        (("role", "end", "P-301", "--role", "team-manager", "--unit", "U-OPS1"), "role-ended-was-held"),
        (("secondment", "start", "P-300", "--to-organisation", "F-NORTH"), "secondment-elsewhere"),
        (("unit", "add", "U-X", "--name", "X", "--kind", "squad"), "kind must be one of agency-unit, force, partner"),
    ],
)
def test_bad_directory_input_is_refused_in_one_line(db: str, args: tuple[str, ...], message: str) -> None:
    assert message in refused(db, *args)


def test_a_csv_with_an_unknown_column_or_a_missing_date_is_refused(db: str, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("person,employer,role,unit,from,colour\nP-1,NCA,analyst,U-OPS1,2024-01-01,red\n", encoding="utf-8")
    assert "unknown column 'colour'" in refused(db, "directory", "import", str(unknown))
    missing = tmp_path / "missing.csv"
    missing.write_text("person,employer,role,unit,from\nP-1,NCA,analyst,U-OPS1,2024-01-01\nP-2,NCA,analyst,U-OPS1,\n", encoding="utf-8")
    assert refused(db, "directory", "import", str(missing)) == "Error: line 3: missing from"


def test_once_in_force_actors_are_checked_and_a_refusal_names_the_rule(db: str) -> None:
    assert "in force from" in ok(db, "directory", "enforce", "--from", "2024-06-01T00:00:00Z")
    receive = ("receive", "R-1", "--originator", "X", "--channel", "portal", "--custodian-unit", "U-OPS1")
    line = refused(db, *receive, "--as", "P-666:analyst@U-OPS1")
    assert "P-666 is not a registered person (rule: actor-in-directory)" in line
    assert "(rule: actor-holds-role)" in refused(db, *receive, "--as", "P-301:head-of-unit@U-OPS1")
    ok(db, *receive, "--as", "P-301:analyst@U-OPS1")
    assert "(rule: enforced-once)" in refused(db, "directory", "enforce", "--from", "2024-07-01")
    assert json.loads(ok(db, "audit", "actors", "--json"))["rows"] == []
    # the directory's streams are hash-chained and in the Merkle tree like every other
    verified = json.loads(ok(db, "verify", "--json"))
    assert verified["ok"] is True, verified


def test_accountable_and_person(db: str) -> None:
    ok(db, "receive", "R-1", "--originator", "X", "--channel", "portal", "--custodian-unit", "U-OPS1", "--as", "P-301:analyst@U-OPS1")
    answer: dict[str, Any] = json.loads(ok(db, "accountable", "R-1", "--json"))
    assert answer["owner"] is None
    assert [(p["person"], p["role"], p["employer"]) for p in answer["answering_while_unowned"]] == [("P-300", "head-of-unit", "F-NORTH")]
    record = json.loads(ok(db, "person", "P-300", "--json"))
    assert [(r["role"], r["acting"], r["accountable"]) for r in record["roles"]] == [
        ("team-manager", False, True),
        ("head-of-unit", True, True),
    ]
    assert [(s["referral"], s["kind"]) for s in record["stretches"]] == [("R-1", "held")]
    # every event an officer recorded, on any referral, whether or not they answered for it
    analyst = json.loads(ok(db, "person", "P-301", "--json"))
    assert analyst["stretches"] == []
    assert [(e["referral"], e["type"], e["as"]) for e in analyst["events"]] == [("R-1", "received", "analyst@U-OPS1")]
    hr = json.loads(ok(db, "person", "P-900", "--json"))
    assert {e["type"] for e in hr["events"]} >= {"unit_registered", "person_registered", "role_assigned"}
    assert json.loads(ok(db, "person", "P-301", "--to", "2024-01-01", "--json"))["events"] == []
    assert refused(db, "person", "P-404") == "Error: person P-404 is not in the directory"
