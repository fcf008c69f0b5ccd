"""``keygen``, ``checkpoint``, ``verify``, ``proof`` and ``verify-proof`` as an auditor runs them."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from ledger.storage import resolve_database
from tests.conftest import EXAMPLES, raw_execute

Run = Callable[..., Result]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


@pytest.fixture
def run(database_url: str) -> Run:
    """Run refledger on the worked example's ledger; asserts the exit code (0 unless told)."""
    runner = CliRunner()

    def invoke(*args: str, exit_code: int = 0) -> Result:
        result = runner.invoke(main, ["--db", database_url, *args], catch_exceptions=False, env={"REFLEDGER_CHECKPOINT_KEY": None})
        assert result.exit_code == exit_code, result.output
        return result

    invoke("import", "--historical", str(EXAMPLES / "cybertip.jsonl"))
    return invoke


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    result = CliRunner().invoke(main, ["keygen", "--out", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def tamper(database_url: str, statement: str) -> None:
    """Turn the append-only guards off and change the events, as a superuser would."""
    database = resolve_database(database_url)
    guard = "DROP TRIGGER stored_events_no_update" if database.backend == "sqlite" else "ALTER TABLE ledger_events DISABLE TRIGGER ALL"
    raw_execute(database_url, guard)
    position = "rowid" if database.backend == "sqlite" else "notification_id"
    raw_execute(database_url, statement.format(table=database.events_table, position=position))


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "signing.pem"
    result = runner.invoke(main, ["keygen", "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer = as_json(result)
    assert answer["private_key"] == str(out) and answer["public_key_file"] == str(out) + ".pub"
    assert re.fullmatch(r"[0-9a-f]{64}", answer["public_key"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (tmp_path / "signing.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = runner.invoke(main, ["keygen", "--out", str(out)], catch_exceptions=False)
    assert again.exit_code == 1 and "already exists" in again.stderr, again.output


def test_a_signed_checkpoint_kept_outside_verifies(run: Run, key: Path, tmp_path: Path) -> None:
    out, leaves = tmp_path / "cp.json", tmp_path / "cp.leaves"
    made = as_json(run("checkpoint", "--key", str(key), "--out", str(out), "--leaves", str(leaves), "--json"))
    checkpoint = made["checkpoint"]
    assert set(checkpoint) == {"size", "root", "time", "ledger", "signature", "public_key", "streams", "heads"}
    assert (made["new_events"], checkpoint["size"], made["out"], made["leaves"]) == (50, 50, str(out), str(leaves))
    assert ISO.match(checkpoint["time"]) and checkpoint["signature"]
    assert json.loads(out.read_text()) == checkpoint
    assert leaves.stat().st_size == 50 * 32
    answer = as_json(run("verify", "--checkpoint", str(out), "--public-key", f"{key}.pub", "--leaves", str(leaves), "--json"))
    assert (answer["ok"], answer["events"], answer["root"], answer["first_bad"], answer["findings"]) == (
        True,
        50,
        checkpoint["root"],
        None,
        [],
    )
    assert answer["checkpoint"] == {**checkpoint, "source": "file", "signature_status": "valid", "extends": True}
    assert answer["stored_checkpoints"] == {"checked": 1, "matching": 1}
    assert set(answer) == {
        "ok", "events", "streams", "root", "ledger", "last_position", "checkpoint", "other_checkpoints", "stored_checkpoints",
        "guards", "first_bad", "findings", "findings_total", "signed_events", "notes",
    }  # fmt: skip
    again = as_json(run("checkpoint", "--json"))
    assert (again["new_events"], again["checkpoint"]["signature"], again["out"]) == (0, None, None)


def test_verify_names_the_first_bad_event_and_exits_3(run: Run, key: Path, tmp_path: Path, database_url: str) -> None:
    out = tmp_path / "cp.json"
    run("checkpoint", "--key", str(key), "--out", str(out))
    tamper(database_url, "UPDATE {table} SET state = CAST(replace(CAST(state AS TEXT), 'VERY_HIGH', 'LOW') AS BLOB) WHERE {position} = 2"
           if resolve_database(database_url).backend == "sqlite" else
           "UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'), 'VERY_HIGH', 'LOW'), 'UTF8') WHERE {position} = 2")  # fmt: skip
    result = run("verify", "--checkpoint", str(out), "--public-key", f"{key}.pub", "--json", exit_code=3)
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["checkpoint"]["extends"] is False
    assert answer["first_bad"] == {
        "kind": "content-edited",
        "referral": "R-2024-0311",
        "subject": None,
        "version": 2,
        "position": 2,
        "leaf": 1,
        "stream": answer["first_bad"]["stream"],
        "topic": "refledger:Referral.Assessed",
        "problem": "it was changed after it was recorded: its hash does not match the prev_hash that version 3 (log position 3) carries",
        "leaf_range": None,
    }
    assert result.stderr.startswith(
        "Verification failed: referral R-2024-0311, version 2 (Referral.Assessed), log position 2, leaf 1: it was changed"
    )
    text = run("verify", "--checkpoint", str(out), exit_code=3)
    assert "NOT SOUND" in text.stdout and "the ledger does NOT extend it" in text.stdout


def test_verify_without_a_checkpoint_says_what_it_cannot_see(run: Run) -> None:
    result = run("verify")
    assert result.stdout.startswith("Sound: 50 events in 8 streams; every hash chain holds.")
    assert "Note: No checkpoint file given" in result.stdout


def test_bad_inputs_are_user_errors(run: Run, key: Path, tmp_path: Path) -> None:
    not_a_key = tmp_path / "bad.pem"
    not_a_key.write_text("hello")
    assert "Error: not an unencrypted PEM private key" in run("checkpoint", "--key", str(not_a_key), exit_code=1).stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert f"Error: {broken} is not JSON" in run("verify", "--checkpoint", str(broken), exit_code=1).stderr
    out = tmp_path / "cp.json"
    run("checkpoint", "--out", str(out))
    assert "Error: not a PEM public key" in run("verify", "--checkpoint", str(out), "--public-key", "nonsense", exit_code=1).stderr
    assert "already exists" in run("checkpoint", "--out", str(out), exit_code=1).stderr


def test_a_checkpoint_signed_with_another_key_fails(run: Run, key: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    CliRunner().invoke(main, ["keygen", "--out", str(other)], catch_exceptions=False)
    out = tmp_path / "cp.json"
    run("checkpoint", "--key", str(key), "--out", str(out))
    answer = as_json(run("verify", "--checkpoint", str(out), "--public-key", f"{other}.pub", "--json", exit_code=3))
    assert answer["checkpoint"]["signature_status"] == "wrong-key"
    assert [f["kind"] for f in answer["findings"]] == ["signature"]


def test_a_referral_proof_round_trip(run: Run, key: Path, tmp_path: Path) -> None:
    run("checkpoint", "--key", str(key))
    out = tmp_path / "R-2024-0402.proof.json"
    written = as_json(run("proof", "R-2024-0402", "--out", str(out), "--json"))
    assert written == {"referral": "R-2024-0402", "events": 32, "events_after_checkpoint": 0, "checkpoint_size": 50, "out": str(out)}
    assert as_json(run("proof", "R-2024-0402")) == json.loads(out.read_text())
    checked = as_json(run("verify-proof", str(out), "--public-key", f"{key}.pub", "--json"))
    assert (checked["ok"], checked["events"], checked["signature_status"], checked["findings"]) == (True, 32, "valid", [])
    document = json.loads(out.read_text())
    document["events"][0]["canonical"] = document["events"][0]["canonical"].replace("U-INTAKE", "U-OTHER")
    out.write_text(json.dumps(document))
    failed = run("verify-proof", str(out), exit_code=3)
    assert failed.stderr.startswith("Proof failed: event 1 (stream")


@pytest.mark.parametrize("command", ["keygen", "checkpoint", "verify", "proof", "verify-proof"])
def test_every_integrity_command_ends_its_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"Example:\n +refledger ", result.output), result.output


def test_no_checkpoint_is_recorded_when_its_file_cannot_be_written(run: Run, tmp_path: Path) -> None:
    """Issue 16, finding 4: the row used to be stored before the --out file was written."""
    before = as_json(run("verify", "--json"))["stored_checkpoints"]["checked"]
    result = run("checkpoint", "--out", str(tmp_path / "no-such-folder" / "cp.json"), exit_code=1)
    assert result.stderr.startswith("Error: cannot write") and result.stderr.count("\n") == 1
    assert as_json(run("verify", "--json"))["stored_checkpoints"]["checked"] == before
    leaves = tmp_path / "cp.leaves"
    result = run("checkpoint", "--out", str(tmp_path / "cp.json"), "--leaves", str(tmp_path / "missing" / "x"), exit_code=1)
    assert not (tmp_path / "cp.json").exists() and not leaves.exists()  # the file written first is taken back
    assert as_json(run("verify", "--json"))["stored_checkpoints"]["checked"] == before
    run("checkpoint", "--out", str(tmp_path / "cp.json"))
    assert as_json(run("verify", "--json"))["stored_checkpoints"]["checked"] == before + 1
