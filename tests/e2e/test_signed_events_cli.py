"""Signed events through the CLI, on each backend: keys issued with ``keygen --person`` and
registered in the directory, events signed with REFLEDGER_SIGNING_KEY, ``verify`` checking
every signature against the key in force for that person then, and the policy's
``[signatures]`` requirement (live refused, history recorded and audited)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from cli import main
from ledger.canonical import canonical_stored, digest
from ledger.identity import signed_message
from ledger.storage import connect_postgres, resolve_database

HR = "P-900:hr-officer@U-HR"
ANALYST = "P-101:analyst@U-OPS1"
SETUP = ("--at", "2024-01-02", "--late-reason", "setting up the directory")
RECEIVE = ("--originator", "X-ESP", "--channel", "portal", "--custodian-unit", "U-OPS1")


def run(db: str, *args: str, key: Path | None = None, policy: Path | None = None) -> Result:
    env = {"REFLEDGER_ACTOR": HR}
    if key is not None:
        env["REFLEDGER_SIGNING_KEY"] = str(key)
    if policy is not None:
        env["REFLEDGER_POLICY"] = str(policy)
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False, env=env)


def ok(db: str, *args: str, **options: Any) -> str:
    result = run(db, *args, **options)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(db: str, *args: str, **options: Any) -> str:
    result = run(db, *args, **options)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> str:
    ok(database_url, "unit", "add", "U-HR", "--name", "HR", "--kind", "agency-unit", *SETUP)
    ok(database_url, "unit", "add", "U-OPS1", "--name", "Operations 1", "--kind", "agency-unit", *SETUP)
    for person in ("P-900", "P-101", "P-102"):
        ok(database_url, "person", "add", person, "--employer", "NCA", *SETUP)
    ok(database_url, "role", "assign", "P-900", "--role", "hr-officer", "--unit", "U-HR", *SETUP)
    for person in ("P-101", "P-102"):
        ok(database_url, "role", "assign", person, "--role", "analyst", "--unit", "U-OPS1", *SETUP)
    for person, name in (("P-101", "p101.pem"), ("P-102", "p102.pem")):
        assert "registered it in the directory" in ok(database_url, "keygen", "--person", person, "--out", str(tmp_path / name))
    return database_url


def rows(db: str) -> list[tuple[int, str, int, str, bytes]]:
    from ledger.storage import read_event_rows

    return [row for batch in read_event_rows(resolve_database(db)) for row in batch]


def rewrite_state(db: str, position: int, state: bytes) -> None:
    """What a database administrator can do: switch the guards off and change a stored row."""
    database = resolve_database(db)
    if database.backend == "sqlite":
        import sqlite3

        connection = sqlite3.connect(database.location)
        connection.execute("DROP TRIGGER stored_events_no_update")
        connection.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, position))
        connection.commit()
        connection.close()
        return
    table = f'"{database.schema}".ledger_events'
    with connect_postgres(database) as connection:
        connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        connection.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (state, position))


def verify(db: str) -> tuple[int, dict[str, Any]]:
    result = run(db, "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_a_signed_ledger_verifies(db: str, tmp_path: Path) -> None:
    ok(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, key=tmp_path / "p101.pem")
    ok(db, "note", "R-1", "--text", "checked", "--as", ANALYST, key=tmp_path / "p101.pem")
    code, answer = verify(db)
    assert code == 0 and answer["ok"] is True
    assert answer["signed_events"] == 2
    shown = json.loads(ok(db, "show", "R-1", "--json"))
    assert [row["signed"] for row in shown["events"]] == [True, True]


def test_a_key_signs_only_for_its_own_person(db: str, tmp_path: Path) -> None:
    line = refused(db, "receive", "R-1", *RECEIVE, "--as", "P-102:analyst@U-OPS1", key=tmp_path / "p101.pem")
    assert "(rule: signing-key-registered)" in line


def test_changing_a_signed_field_makes_verify_fail_naming_the_event(db: str, tmp_path: Path) -> None:
    ok(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, key=tmp_path / "p101.pem")
    position, _, version, _, state = rows(db)[-1]
    document = orjson.loads(state)
    document["channel"] = "telephone"
    rewrite_state(db, position, orjson.dumps(document))
    code, answer = verify(db)
    assert code == 3
    assert (answer["first_bad"]["referral"], answer["first_bad"]["version"]) == ("R-1", version)
    assert "event-signature" in {finding["kind"] for finding in answer["findings"]}


def test_a_signature_by_another_persons_key_makes_verify_fail_naming_the_event(db: str, tmp_path: Path) -> None:
    ok(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, key=tmp_path / "p101.pem")
    position, stream, version, topic, state = rows(db)[-1]
    event_hash = digest(canonical_stored(UUID(stream), version, topic, bytes(state)))
    other = serialization.load_pem_private_key((tmp_path / "p102.pem").read_bytes(), password=None)
    document = orjson.loads(state)
    document["signature"] = base64.b64encode(other.sign(signed_message(event_hash))).decode()  # type: ignore[union-attr, call-arg]
    rewrite_state(db, position, orjson.dumps(document))
    code, answer = verify(db)
    assert code == 3
    bad = answer["first_bad"]
    assert (bad["kind"], bad["referral"], bad["version"]) == ("event-signature", "R-1", version)
    assert "P-101's key" in bad["problem"]
    # the same signature by the right key verifies again
    mine = serialization.load_pem_private_key((tmp_path / "p101.pem").read_bytes(), password=None)
    document["signature"] = base64.b64encode(mine.sign(signed_message(event_hash))).decode()  # type: ignore[union-attr, call-arg]
    rewrite_state(db, position, orjson.dumps(document))
    assert verify(db)[0] == 0


def test_a_revoked_key_signs_nothing_more_and_what_it_signed_stays_valid(db: str, tmp_path: Path) -> None:
    key = tmp_path / "p101.pem"
    ok(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, key=key)
    public_hex = serialization.load_pem_public_key((tmp_path / "p101.pem.pub").read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    ok(db, "person", "revoke-key", "P-101", "--public-key", public_hex.hex(), "--reason", "laptop lost")
    assert "(rule: signing-key-registered)" in refused(db, "note", "R-1", "--text", "again", "--as", ANALYST, key=key)
    assert verify(db)[0] == 0


def test_the_policy_requires_signatures_live(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[signatures]\nrequired = ["note_added"]\n', encoding="utf-8")
    ok(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, policy=policy)
    line = refused(db, "note", "R-1", "--text", "unsigned", "--as", ANALYST, policy=policy)
    assert "(rule: signature-required)" in line
    ok(db, "note", "R-1", "--text", "signed", "--as", ANALYST, policy=policy, key=tmp_path / "p101.pem")
    assert json.loads(ok(db, "audit", "signatures", "--json", policy=policy))["rows"] == []


def test_history_without_signatures_is_recorded_and_audited(database_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[signatures]\nrequired = ["note_added"]\n', encoding="utf-8")
    actor = {"person": "P-102", "role": "analyst", "unit": "U-OPS1"}
    lines = [
        {
            "type": "received",
            "referral": "R-1",
            "occurred_at": "2024-02-01T09:00:00Z",
            "recorded_at": "2024-02-01T09:05:00Z",
            "actor": actor,
            "originator": "X-ESP",
            "channel": "portal",
            "custodian_unit": "U-OPS1",
        },
        {
            "type": "note_added",
            "referral": "R-1",
            "occurred_at": "2024-02-01T10:00:00Z",
            "recorded_at": "2024-02-01T10:05:00Z",
            "actor": actor,
            "text": "from the old system",
        },
    ]
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    ok(database_url, "import", "--historical", str(history), policy=policy)
    found = json.loads(ok(database_url, "audit", "signatures", "--json", policy=policy))["rows"]
    assert [(row["topic"], row["person"], row["historical"]) for row in found] == [("Referral.NoteAdded", "P-102", True)]
    assert run(database_url, "audit", "signatures", "--fail-on-findings", policy=policy).exit_code == 3
    assert json.loads(ok(database_url, "audit", "signatures", "--json"))["rows"] == []  # the default policy requires none


def test_unknown_event_types_in_the_policy_are_one_line(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[signatures]\nrequired = ["ownership_acepted"]\n', encoding="utf-8")
    assert "ownership_acepted" in refused(db, "receive", "R-1", *RECEIVE, "--as", ANALYST, policy=policy)
