"""Bad input and hostile text as a user would give them: one-line errors, safe output, private files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.conftest import count_events

INTAKE = "P-01:registry-officer@U-INTAKE"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env={"REFLEDGER_ACTOR": None, "REFLEDGER_DEBUG": None})


def one_line_error(result: Result, part: str = "") -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and part in lines[0], result.stderr


def receive(db: str, *extra: str) -> Result:
    from datetime import UTC, datetime, timedelta

    from ledger.values import iso

    when = ["--at", iso(datetime.now(UTC) - timedelta(hours=1))] if not extra else []
    options = ["--originator", "X", "--channel", "liaison", "--custodian-unit", "U-INTAKE", *when, *extra]
    return run("--db", db, "--as", INTAKE, "receive", "R-1", *options)


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z", "2200-01-01"])
def test_far_off_instants_are_one_line_errors(database_url: str, instant: str) -> None:
    one_line_error(receive(database_url, "--at", instant), "outside the years 1900–2199")
    assert count_events(database_url) == 0


@pytest.mark.parametrize(
    "record",
    [
        {"type": {}},
        {"type": ["received"]},
        {"type": "received", "referral": "R-1", "occurred_at": "0001-01-01T00:00:00+01:00", "recorded_at": "2024-01-01T00:00:00Z"},
    ],
)
def test_bad_import_lines_are_one_line_errors(database_url: str, tmp_path: Path, record: dict[str, object]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    one_line_error(run("--db", database_url, "import", "--historical", str(path)), "line 1")


def test_a_non_utf8_argument_is_a_one_line_error(tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite")
    one_line_error(receive(db, "--at", "2024-01-01T00:00:00Z\udcff"), "not valid UTF-8")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--db", db.encode(), "note", b"R-\xff", "--text", b"x", "--as", INTAKE.encode()],
        capture_output=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1 and b"Error:" in done.stderr, done.stderr


def test_a_long_public_key_is_a_one_line_error(tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite")
    assert receive(db).exit_code == 0
    assert run("--db", db, "verify", "--public-key", "a" * 300).exit_code == 1


def test_an_unexpected_error_exits_70_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.output

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise\nsecond line")

    db = str(tmp_path / "l.sqlite")
    assert receive(db).exit_code == 0
    monkeypatch.setattr(commands.output, "emit", broken)
    result = run("--db", db, "info")
    assert result.exit_code == 70
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Internal error (KeyError)"), result.stderr


def test_terminal_escapes_and_formulas_are_neutralised(database_url: str) -> None:
    assert receive(database_url).exit_code == 0
    hostile = '=HYPERLINK("http://x")\x1b[2J\x1b]0;owned\x07'
    assert run("--db", database_url, "--as", INTAKE, "note", "R-1", "--text", hostile).exit_code == 0
    table = run("--db", database_url, "timeline", "R-1")
    assert "\x1b" not in table.stdout and "\\u001b[2J" in table.stdout
    csv = run("--db", database_url, "timeline", "R-1", "--csv")
    assert "\x1b" in csv.stdout or "'=HYPERLINK" in csv.stdout  # CSV keeps the data, but never as a formula
    assert ",=HYPERLINK" not in csv.stdout and "\n=HYPERLINK" not in csv.stdout
    one_line_error(run("--db", database_url, "owner", "R-\x1b[31m\nX"), "\\u001b[31m\\nX")


def test_ledger_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "ledger.sqlite"
    assert receive(str(db)).exit_code == 0
    for path in [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert run("keygen", "--out", str(tmp_path / "k.pem")).exit_code == 0
    assert stat.S_IMODE((tmp_path / "k.pem.pub").stat().st_mode) == 0o600
    os.umask(0o022)


def test_the_markdown_case_file_escapes_html(tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite")
    assert receive(db).exit_code == 0
    hostile = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    assert run("--db", db, "--as", INTAKE, "note", "R-1", "--text", hostile).exit_code == 0
    time.sleep(1.1)  # the report's default instant is now, to the second: the note must be before it
    page = run("--db", db, "report", "R-1", "--format", "md", "--out", "-", "--no-verify").stdout
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page


def test_report_out_never_follows_a_symlink_and_needs_force_to_overwrite(tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite")
    assert receive(db).exit_code == 0
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    link = tmp_path / "case.md"
    link.symlink_to(target)
    one_line_error(run("--db", db, "report", "R-1", "--out", str(link), "--no-verify"), "symbolic link")
    one_line_error(run("--db", db, "report", "R-1", "--out", str(link), "--no-verify", "--force"), "symbolic link")
    assert target.read_text(encoding="utf-8") == "keep me"
    page = tmp_path / "page.md"
    assert run("--db", db, "report", "R-1", "--out", str(page), "--no-verify").exit_code == 0
    one_line_error(run("--db", db, "report", "R-1", "--out", str(page), "--no-verify"), "already exists")
    assert run("--db", db, "report", "R-1", "--out", str(page), "--no-verify", "--force").exit_code == 0
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
