"""The recording commands and import as a user runs them: answers, errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.values import iso
from tests.conftest import EXAMPLES, count_events, synthetic_lines

INTAKE = "P-01:registry-officer@U-INTAKE"
NOW = datetime.now(UTC)


def ago(hours: float) -> str:
    return iso(NOW - timedelta(hours=hours))


LATE = ["--late-reason", "Back-filled from the paper file"]


def run(database_url: str, *args: str, actor: str | None = INTAKE) -> Result:
    options = ["--db", database_url] + (["--as", actor] if actor else [])
    return CliRunner().invoke(main, [*options, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def refused(result: Result, message: str) -> None:
    """One line on stderr, 'Error: …', exit 1, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def received(database_url: str) -> str:
    ok(
        run(
            database_url,
            "receive",
            "R-1",
            "--originator",
            "X-FORCE",
            "--channel",
            "liaison",
            "--custodian-unit",
            "U-INTAKE",
            "--at",
            ago(48),
            *LATE,
        )
    )
    ok(run(database_url, "offer", "R-1", "--to-unit", "U-OPS1", "--at", ago(47), *LATE))
    return database_url


def test_a_referral_is_recorded_step_by_step(received: str) -> None:
    ok(run(received, "accept", "R-1", "--at", ago(46), *LATE, actor="P-07:team-manager@U-OPS1"))
    result = ok(run(received, "--json", "note", "R-1", "--text", "Chased the originator", actor="P-07:team-manager@U-OPS1"))
    assert json.loads(result.output) == {"recorded": "note_added", "referral": "R-1", "subject": None}
    assert count_events(received) == 4


@pytest.mark.parametrize(
    ("args", "actor", "message"),
    [
        (["note", "R-404", "--text", "x"], INTAKE, "referral R-404 is not in the ledger"),
        (["accept", "R-1", "--at", ago(47.5), *LATE], "P-07:tm@U-OPS1", "no offer of ownership was open"),
        (["accept", "R-1"], "P-08:tm@U-OPS2", "the open offer is to U-OPS1; U-OPS2 cannot answer it"),
        (["note", "R-1", "--text", "x", "--at", "2099-01-01T00:00:00Z"], INTAKE, "is after its recording time"),
        (["note", "R-1", "--text", "x", "--at", ago(50), *LATE], INTAKE, "is before receipt"),
        (["note", "R-1", "--text", "x", "--at", ago(30)], INTAKE, "recorded more than 24 h after it occurred"),
        (["decide", "R-1", "--outcome", "DEFER", "--rationale", "wait"], INTAKE, "(rule: defer-needs-revisit)"),
        (["note", "R-1", "--text", "x"], None, "give --as PERSON:ROLE@UNIT or set REFLEDGER_ACTOR"),
        (["note", "R-1", "--text", "x"], "not-an-actor", "is not of the form PERSON:ROLE@UNIT"),
        (["note", "R-1", "--text", "x", "--at", "yesterday"], INTAKE, "is not an ISO 8601 time"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(received: str, args: list[str], actor: str | None, message: str) -> None:
    before = count_events(received)
    refused(run(received, *args, actor=actor), message)
    assert count_events(received) == before


def test_an_unknown_event_type_in_an_import_is_refused(received: str, tmp_path: Path) -> None:
    path = tmp_path / "typo.jsonl"
    record = {
        "type": "ownership_acepted",
        "referral": "R-1",
        "occurred_at": ago(1),
        "actor": {"person": "P", "role": "r", "unit": "U-OPS1"},
    }
    path.write_text(json.dumps(record) + "\n")
    refused(run(received, "import", str(path)), "line 1: unknown type 'ownership_acepted'")
    assert count_events(received) == 2


def test_an_unknown_field_in_an_import_is_refused(received: str, tmp_path: Path) -> None:
    path = tmp_path / "field.jsonl"
    record = {
        "type": "note_added",
        "referral": "R-1",
        "occurred_at": ago(1),
        "actor": {"person": "P", "role": "r", "unit": "U"},
        "txt": "typo",
    }
    path.write_text(json.dumps(record) + "\n")
    refused(run(received, "import", str(path)), "line 1: unknown field 'txt' for type note_added")


def test_malformed_json_on_line_17_keeps_nothing(database_url: str, tmp_path: Path) -> None:
    lines = synthetic_lines(10, notes_per_referral=7)
    lines[16] = b'{"type": "note_added", "referral": '
    path = tmp_path / "hundred.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    refused(run(database_url, "import", str(path)), "line 17: malformed JSON")
    assert count_events(database_url) == 0


def test_text_in_square_brackets_survives_a_human_table(received: str) -> None:
    ok(run(received, "note", "R-1", "--text", "Minutes [draft] of the [tasking] meeting"))
    result = ok(run(received, "timeline", "R-1"))
    assert "[draft]" in result.output and "[tasking]" in result.output


def test_the_worked_example_imports_once(database_url: str) -> None:
    result = ok(run(database_url, "--json", "import", "--historical", str(EXAMPLES / "cybertip.jsonl")))
    assert json.loads(result.output)["events"] == 45
    refused(run(database_url, "import", "--historical", str(EXAMPLES / "cybertip.jsonl")), "was already imported")
    assert count_events(database_url) == 49


def test_recorded_at_needs_historical(database_url: str) -> None:
    refused(
        run(database_url, "import", str(EXAMPLES / "cybertip.jsonl")),
        "line 1: unknown field 'recorded_at' for type received (recorded_at needs --historical)",
    )


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    refused(run(str(tmp_path / "l.sqlite"), "import", str(tmp_path / "nope.jsonl")), "does not exist")


def test_an_unreachable_postgresql_is_a_clear_error() -> None:
    refused(run("postgresql://postgres@127.0.0.1:1/test", "info"), "cannot connect to PostgreSQL at postgresql://127.0.0.1:1/test: ")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "l.sqlite"), "offer", "R-1"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "Missing option '--to-unit'" in result.output


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    runner = CliRunner()

    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        import click

        assert isinstance(group, click.Group)
        found = []
        for name, command in group.commands.items():
            found.append([*prefix, name])
            if isinstance(command, click.Group):
                found += walk(command, [*prefix, name])
        return found

    for path in walk(main, []):
        result = runner.invoke(main, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "Example" in result.output, f"{' '.join(path)} --help has no example"
        assert f"refledger {' '.join(path)}" in readme, f"README does not show 'refledger {' '.join(path)}'"


def test_the_installed_command_runs(tmp_path: Path) -> None:
    """The console script a user gets from pip, run as a separate process."""
    executable = shutil.which("refledger", path=str(Path(sys.executable).parent))
    assert executable, "refledger is not installed next to this Python (pip install -e .)"
    env = os.environ | {"REFLEDGER_ACTOR": "P-01:registry@U-INTAKE", "REFLEDGER_DATABASE_URL": str(tmp_path / "l.sqlite")}
    done = subprocess.run(
        [executable, "receive", "R-9", "--originator", "X", "--channel", "post", "--custodian-unit", "U-INTAKE"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run([executable, "accept", "R-9"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: R-9: no offer of ownership was open")


# --- whole numbers stay within 0 … 2^53-1 (issue 14, item 5) -----------------------------

RECEIVE = ["--originator", "X-FORCE", "--channel", "liaison", "--custodian-unit", "U-INTAKE"]


@pytest.mark.parametrize("count", ["9007199254740992", "9007199254740993", str(2**64), "-1", "twelve"])
def test_a_whole_number_beyond_2_53_is_refused_in_one_line(database_url: str, count: str) -> None:
    refused(run(database_url, "receive", "R-9", *RECEIVE, "--claimed-subject-count", count), "from 0 to 9007199254740991")
    assert count_events(database_url) == 0


def test_the_largest_whole_number_is_recorded_and_its_canonical_form_is_rfc_8785(database_url: str) -> None:
    from ledger.canonical import canonical_stored
    from ledger.storage import read_event_rows, resolve_database

    ok(run(database_url, "receive", "R-9", *RECEIVE, "--claimed-subject-count", str(2**53 - 1)))
    ((_, stream, version, topic, state),) = [row for batch in read_event_rows(resolve_database(database_url)) for row in batch]
    from uuid import UUID

    canonical = canonical_stored(UUID(stream), version, topic, state)
    # RFC 8785 writes integers up to 2^53-1 as their plain decimal digits
    assert b'"claimed_subject_count":9007199254740991,' in canonical


@pytest.mark.parametrize("count", [2**53, 2**64, -1])
def test_an_import_line_beyond_2_53_is_refused_in_one_line(database_url: str, tmp_path: Path, count: int) -> None:
    line = {
        "type": "received",
        "referral": "R-9",
        "occurred_at": "2024-03-11T08:40:00Z",
        "actor": {"person": "P-101", "role": "registry-officer", "unit": "U-INTAKE"},
        "reference": "R-9",
        "originator": "X",
        "channel": "c",
        "custodian_unit": "U-INTAKE",
        "claimed_subject_count": count,
    }
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(line) + "\n")
    result = run(database_url, "import", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert count_events(database_url) == 0
