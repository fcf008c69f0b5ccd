"""Read-only audits: an auditor's snapshot on a read-only mount, and a SELECT-only PostgreSQL login.

Every query, `verify` and `report` give the same answer as on the writable ledger, and the
audits say they were computed without stored read models.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli import main
from commands.demo import REFERENCE, story
from ledger.importing import import_lines
from ledger.storage import connect_postgres, resolve_database
from ledger.wiring import open_ledger
from tests.conftest import schema_url

AT = "2014-06-01T00:00:00Z"
QUERIES = [
    ["info", "--json"],
    ["audit", "gaps", "--as-known-at", AT, "--json"],
    ["audit", "overdue", "--at", AT, "--json"],
    ["audit", "late-entries", "--json"],
    ["backlog", "--at", AT, "--json"],
    ["owner", REFERENCE, "--at", AT, "--json"],
    ["history", REFERENCE, "--at", AT, "--json"],
    ["timeline", REFERENCE, "--as-known-at", AT, "--json"],
    ["obligations", REFERENCE, "--at", AT, "--json"],
    ["package", "R-2013-1130", "--at", AT, "--json"],
    ["verify", "--json"],
    ["report", REFERENCE, "--at", AT, "--format", "md", "--out", "-"],
]
AUDITS = {"audit", "backlog"}
NOTE = "computed without stored read models"


def _fill(url: str) -> None:
    data = b"".join(orjson.dumps(record) + b"\n" for record in story())
    ledger, _ = open_ledger(url)
    try:
        import_lines(ledger, data.splitlines(), historical=True, file_sha256=hashlib.sha256(data).hexdigest())
    finally:
        ledger.close()


def _cli(url: str, args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False, env={"REFLEDGER_ACTOR": None})
    return result.exit_code, result.stdout, result.stderr


def _answers(run: object, url: str) -> dict[str, tuple[int, str, str]]:
    return {" ".join(args): run(url, args) for args in QUERIES}  # type: ignore[operator]


def _same_answers(writable: dict[str, tuple[int, str, str]], read_only: dict[str, tuple[int, str, str]]) -> None:
    for command, (code, out, err) in read_only.items():
        assert code == writable[command][0] == 0, f"{command}: {err}"
        if not command.startswith("info"):  # info names the database, which differs
            assert _undated(out) == _undated(writable[command][1]), command
        if command.split()[0] in AUDITS:
            assert NOTE in err, command


def _undated(text: str) -> str:
    """The case file says when it was made: the only instant after the story's years."""
    return re.sub(r"20[2-9]\d-\d\d-\d\dT[\d:.]+Z", "(made)", text)


def _can_unshare() -> bool:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -m for a read-only bind mount")
def test_an_auditors_snapshot_on_a_read_only_mount_answers_every_query(tmp_path: Path) -> None:
    # Given a ledger, and a copy of it (without read models) made available on a read-only mount
    ledger_dir, mount = tmp_path / "ledger", tmp_path / "mnt"
    ledger_dir.mkdir()
    mount.mkdir()
    _fill(str(ledger_dir / "ledger.sqlite"))
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    shutil.copy(ledger_dir / "ledger.sqlite", snapshot / "ledger.sqlite")
    before = (snapshot / "ledger.sqlite").read_bytes()
    # When every query is asked there, as root (for whom file modes are no obstacle)
    script = (
        "import sys, json, subprocess\n"
        "out = {}\n"
        f"for args in {QUERIES!r}:\n"
        f"    p = subprocess.run([sys.executable, '-m', 'cli', '--db', {str(mount / 'ledger.sqlite')!r}, *args], capture_output=True, text=True)\n"
        "    out[' '.join(args)] = (p.returncode, p.stdout, p.stderr)\n"
        "print(json.dumps(out))\n"
    )
    command = f'mount --bind {snapshot} {mount} && mount -o remount,bind,ro {mount} && exec {sys.executable} -c "$0"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command, script], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], check=True
    )
    read_only = {k: tuple(v) for k, v in orjson.loads(done.stdout).items()}
    # Then the answers are those of the writable ledger, the audits say how they were computed,
    # and the snapshot is unchanged (no -wal, no -shm, no read-model tables)
    _same_answers(_answers(_cli, str(ledger_dir / "ledger.sqlite")), read_only)  # type: ignore[arg-type]
    assert sorted(p.name for p in snapshot.iterdir()) == ["ledger.sqlite"]
    assert (snapshot / "ledger.sqlite").read_bytes() == before


@pytest.mark.postgres
def test_a_select_only_login_answers_every_query(postgres_url: str) -> None:
    # Given a ledger in its own schema, and a login that may only SELECT from it
    schema, role = "t_" + uuid.uuid4().hex[:12], "ro_" + uuid.uuid4().hex[:12]
    owner_url = schema_url(postgres_url, schema)
    _fill(owner_url)
    base = resolve_database(postgres_url)
    auditor_url = schema_url(
        f"postgresql://{role}@{base.env['POSTGRES_HOST']}:{base.env['POSTGRES_PORT']}/{base.env['POSTGRES_DBNAME']}", schema
    )
    with connect_postgres(base) as connection:
        connection.execute(f'CREATE ROLE "{role}" LOGIN')
        connection.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        connection.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    try:
        # When every query is asked through it, Then the answers are the owner's
        read_only = _answers(_cli, auditor_url)
        with connect_postgres(base) as connection:
            tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
        assert not any(name.startswith("rm_") for name in tables)  # nothing was stored through it
        _same_answers(_answers(_cli, owner_url), read_only)
    finally:
        with connect_postgres(base) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.execute(f'DROP OWNED BY "{role}"')
            connection.execute(f'DROP ROLE "{role}"')
