"""Import as a user runs it: standard input, dry run, a byte order mark, an empty file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.conftest import EXAMPLES, count_events

EXAMPLE = EXAMPLES / "cybertip.jsonl"


def run(database_url: str, *args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", database_url, *args], input=stdin, catch_exceptions=False, env={"REFLEDGER_ACTOR": None})


def test_import_reads_standard_input(database_url: str) -> None:
    # Given the worked example piped in, When it is imported from "-", Then it is recorded like the file
    result = run(database_url, "import", "--historical", "-", stdin=EXAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    assert "Imported 45 events on 2 referrals from standard input." in result.output
    recorded = count_events(database_url)
    assert recorded >= 45  # with the subject directory's entries
    # and the same bytes from the file are the same file: refused as a re-import
    again = run(database_url, "import", "--historical", str(EXAMPLE))
    assert again.exit_code == 1 and "already imported" in again.output
    assert count_events(database_url) == recorded


def test_a_dry_run_checks_every_line_against_the_ledger_and_records_nothing(database_url: str, tmp_path: Path) -> None:
    # Given no ledger yet, When the example is dry-run, Then it is checked and nothing is created
    checked = run(database_url, "import", "--historical", "--dry-run", str(EXAMPLE))
    assert checked.exit_code == 0, checked.output
    assert "Checked 45 events on 2 referrals" in checked.output and "nothing was" in checked.output
    assert "no ledger" in run(database_url, "info").output
    # Given the example recorded
    assert run(database_url, "import", "--historical", str(EXAMPLE)).exit_code == 0
    recorded = count_events(database_url)
    # When a file whose lines break a rule only against the ledger is dry-run (a second receipt)
    first = EXAMPLE.read_bytes().splitlines()[0]
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(first + b"\n")
    refused = run(database_url, "import", "--historical", "--dry-run", str(twice))
    # Then it is refused by line, as the import would be, and nothing changes
    assert (
        refused.exit_code == 1
        and refused.output.startswith("Error: line 1: ")
        and ("already received" in refused.output or "already in the ledger" in refused.output)
    )
    # and a re-import is found by a dry run too
    assert "already imported" in run(database_url, "import", "--historical", "--dry-run", str(EXAMPLE)).output
    assert count_events(database_url) == recorded


def test_a_utf8_byte_order_mark_is_accepted(database_url: str, tmp_path: Path) -> None:
    marked = tmp_path / "bom.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    result = run(database_url, "import", "--historical", str(marked))
    assert result.exit_code == 0, result.output
    assert "Imported 45 events" in result.output


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"], ids=["empty", "blank", "bom-only"])
def test_an_empty_file_is_an_error(database_url: str, tmp_path: Path, content: bytes) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(content)
    for source, stdin in ((str(empty), None), ("-", content)):
        result = run(database_url, "import", source, stdin=stdin)
        assert result.exit_code == 1
        assert result.output == "Error: the file holds no events (it is empty or blank)\n"
    assert count_events(database_url) == 0


def test_a_bad_line_late_in_a_long_file_is_named_and_nothing_is_recorded(database_url: str, tmp_path: Path) -> None:
    # more lines than one step, so the error comes after earlier steps were run in the batch
    from ledger.importing import STEP_LINES
    from tests.conftest import synthetic_lines

    lines = list(synthetic_lines(STEP_LINES // 11 + 50))
    bad = len(lines) - 3
    lines[bad - 1] = b'{"type": "received"}'
    source = tmp_path / "long.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = run(database_url, "import", str(source))
    assert result.exit_code == 1 and result.output.startswith(f"Error: line {bad}: "), result.output
    assert count_events(database_url) == 0
