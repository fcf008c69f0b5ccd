"""Checkpoints and proofs on each backend: the stored frontier, refusals, proof export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import ledger.storage
from ledger.application import Ledger
from ledger.checkpoint import new_signing_key, parse_public_key
from ledger.checkpointing import latest_checkpoint, make_checkpoint
from ledger.errors import InvalidInput, LedgerTampered, NotFound
from ledger.importing import import_file
from ledger.proofs import export_proof, verify_proof
from ledger.storage import resolve_database
from ledger.subject import directory_id
from ledger.values import Actor, Stamp, referral_id, subject_id
from ledger.verification import verify_ledger
from tests.conftest import EXAMPLES, Clock, count_events, raw_execute, synthetic_lines


@pytest.fixture
def example(ledger: Ledger, clock: Clock) -> Ledger:
    clock.set("2024-07-01T09:00:00+00:00")
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    return ledger


def add_synthetic(ledger: Ledger, tmp_path: Path, referrals: int) -> int:
    path = tmp_path / f"synthetic-{referrals}.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(referrals, notes_per_referral=2)) + b"\n")
    return import_file(ledger, path).events


def test_a_checkpoint_recomputes_the_tree_from_the_events(
    example: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = resolve_database(database_url)
    first = make_checkpoint(example, database)
    assert (first.new_events, first.checkpoint.size) == (49, 49)
    added = add_synthetic(example, tmp_path, 3)
    reads: list[int] = []
    original = ledger.storage.read_event_rows

    def watched(database: Any, after: int = 0, **options: Any) -> Any:
        reads.append(after)
        return original(database, after, **options)

    monkeypatch.setattr(ledger.storage, "read_event_rows", watched)
    second = make_checkpoint(example, database)
    assert reads == [0]  # every event is read and hashed again: nothing stored is trusted
    assert (second.new_events, second.checkpoint.size) == (added, 49 + added)
    assert second.checkpoint.ledger == first.checkpoint.ledger
    monkeypatch.undo()
    full = verify_ledger(example, database)
    assert full.sound and full.root == second.checkpoint.root and full.stored_matching == 2
    stored = latest_checkpoint(example, database)
    assert stored is not None and stored.checkpoint == second.checkpoint and stored.frontier.size == 49 + added
    assert second.checkpoint.streams == full.streams and second.checkpoint.heads is not None


def test_an_edited_stored_frontier_is_not_signed(example: Ledger, database_url: str, tmp_path: Path) -> None:
    """Issue 16, finding 4: the next checkpoint once extended whatever frontier the table held."""
    database = resolve_database(database_url)
    make_checkpoint(example, database)
    forged = orjson.dumps({"size": 49, "hashes": ["ab" * 32 for _ in range(bin(49).count("1"))]}).decode()
    if database.backend == "sqlite":
        raw_execute(database_url, "DROP TRIGGER integrity_checkpoints_no_update")
    else:
        raw_execute(database_url, "ALTER TABLE integrity_checkpoints DISABLE TRIGGER ALL")
    raw_execute(database_url, f"UPDATE integrity_checkpoints SET frontier = '{forged}'")
    add_synthetic(example, tmp_path, 1)
    made = make_checkpoint(example, database)
    result = verify_ledger(example, database, made.checkpoint)
    assert result.root == made.checkpoint.root  # the root the ledger really has
    assert result.sound and result.checkpoint is not None and result.checkpoint.extends


def test_a_checkpoint_is_refused_when_checkpointed_events_were_removed(example: Ledger, database_url: str) -> None:
    database = resolve_database(database_url)
    make_checkpoint(example, database)
    position = "rowid" if database.backend == "sqlite" else "notification_id"
    guard = "DROP TRIGGER stored_events_no_delete" if database.backend == "sqlite" else "ALTER TABLE ledger_events DISABLE TRIGGER ALL"
    raw_execute(database_url, guard)
    raw_execute(database_url, f"DELETE FROM {database.events_table} WHERE {position} = 10")
    with pytest.raises(LedgerTampered, match="49 events were checkpointed but 48 are there now"):
        make_checkpoint(example, database)


def test_a_checkpoint_is_refused_when_the_last_checkpointed_event_changed(example: Ledger, database_url: str) -> None:
    database = resolve_database(database_url)
    make_checkpoint(example, database)
    position = "rowid" if database.backend == "sqlite" else "notification_id"
    guard = "DROP TRIGGER stored_events_no_update" if database.backend == "sqlite" else "ALTER TABLE ledger_events DISABLE TRIGGER ALL"
    raw_execute(database_url, guard)
    raw_execute(database_url, f"UPDATE {database.events_table} SET topic = topic || 'x' WHERE {position} = 49")
    with pytest.raises(LedgerTampered, match="the first 49 events no longer hash to the newest stored checkpoint"):
        make_checkpoint(example, database)


def test_an_empty_ledger_has_nothing_to_checkpoint(ledger: Ledger, database_url: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        make_checkpoint(ledger, resolve_database(database_url))
    assert verify_ledger(ledger, resolve_database(database_url)).sound


def test_stored_checkpoints_are_append_only(example: Ledger, database_url: str) -> None:
    make_checkpoint(example, resolve_database(database_url))
    with pytest.raises(Exception, match="append-only"):
        raw_execute(database_url, "UPDATE integrity_checkpoints SET root = 'x'")


@pytest.mark.postgres
def test_gaps_in_notification_ids_are_not_leaves(ledger: Ledger, clock: Clock, postgres_schema_url: str, tmp_path: Path) -> None:
    """A rolled-back insert leaves a permanent gap in the ids; the tree skips it."""
    from ledger.wiring import open_ledger

    gapped, database = open_ledger(postgres_schema_url, clock=clock)
    try:
        clock.set("2024-07-01T09:00:00+00:00")
        import_file(gapped, EXAMPLES / "cybertip.jsonl", historical=True)
        raw_execute(
            postgres_schema_url, "SELECT nextval(pg_get_serial_sequence('ledger_events', 'notification_id')) FROM generate_series(1, 5)"
        )
        added = add_synthetic(gapped, tmp_path, 2)
        assert raw_execute(postgres_schema_url, "SELECT max(notification_id) FROM ledger_events")[0][0] == 49 + 5 + added
        made = make_checkpoint(gapped, database)
        assert made.checkpoint.size == count_events(postgres_schema_url) == 49 + added
        result = verify_ledger(gapped, database)
        assert result.sound and result.events == 49 + added and result.last_position == 49 + 5 + added
        proof = export_proof(gapped, database, "R-SYN-000001")
        assert proof["events"] and all(e["leaf"] == e["position"] - 6 for e in proof["events"])  # 5 ids burned
        assert verify_proof(proof).sound
    finally:
        gapped.close()


# --- proofs ------------------------------------------------------------------------


def test_a_referral_proof_verifies_offline(example: Ledger, database_url: str, tmp_path: Path) -> None:
    database = resolve_database(database_url)
    private, public_pem, _ = new_signing_key()
    made = make_checkpoint(example, database, private)
    add_synthetic(example, tmp_path, 1)
    example.add_note("R-2024-0402", Stamp(Actor("P-1", "analyst", "U-OPS1")), text="recorded after the checkpoint")
    proof = export_proof(example, database, "R-2024-0402")
    assert proof["checkpoint"] == made.checkpoint.as_dict()
    topics = {event["topic"].split(".")[0] for event in proof["events"]}
    assert topics == {"refledger:Referral", "refledger:Subject", "refledger:SubjectDirectory"}
    assert len(proof["events"]) == 32 and proof["events_after_checkpoint"] == 1
    checked = verify_proof(orjson.loads(orjson.dumps(proof)), parse_public_key(public_pem))
    assert checked.sound and checked.signature == "valid" and checked.events == 32


def test_a_tampered_proof_fails(example: Ledger, database_url: str) -> None:
    database = resolve_database(database_url)
    make_checkpoint(example, database)
    proof = export_proof(example, database, "R-2024-0311")
    edited = orjson.loads(orjson.dumps(proof))
    edited["events"][2]["canonical"] = edited["events"][2]["canonical"].replace("U-OPS1", "U-OPS9")
    assert [f.split(":")[1] for f in verify_proof(edited).findings][:2] == [
        " its content does not hash to the hash it names",
        " its inclusion proof does not lead to the checkpoint's root",
    ]
    skipped = orjson.loads(orjson.dumps(proof))
    del skipped["events"][3]
    assert "skips from version 3 to 5" in verify_proof(skipped).findings[0]
    moved = orjson.loads(orjson.dumps(proof))
    moved["checkpoint"]["root"] = "00" * 32
    assert not verify_proof(moved).sound


def test_a_proof_needs_a_checkpoint_and_a_covered_referral(example: Ledger, database_url: str) -> None:
    database = resolve_database(database_url)
    with pytest.raises(InvalidInput, match="no checkpoint yet"):
        export_proof(example, database, "R-2024-0311")
    make_checkpoint(example, database)
    with pytest.raises(NotFound, match="R-1999-0001"):
        export_proof(example, database, "R-1999-0001")


# --- complete bundles (issue 16, finding 3) -------------------------------------------


@pytest.fixture
def bundle(example: Ledger, database_url: str) -> dict[str, Any]:
    make_checkpoint(example, resolve_database(database_url))
    proof = export_proof(example, resolve_database(database_url), "R-2024-0402")
    assert verify_proof(proof).sound and len(proof["events"]) == 32
    return orjson.loads(orjson.dumps(proof))


def test_a_bundle_without_the_referrals_last_event_fails(bundle: dict[str, Any]) -> None:
    referral = str(referral_id("R-2024-0402"))
    last = max((e for e in bundle["events"] if e["stream"] == referral), key=lambda e: e["version"])
    bundle["events"].remove(last)
    findings = verify_proof(bundle).findings
    assert any("events were left out" in f and referral in f for f in findings), findings


def test_a_bundle_with_most_events_removed_fails(bundle: dict[str, Any]) -> None:
    bundle["events"] = bundle["events"][:10]
    assert not verify_proof(bundle).sound


def test_an_empty_bundle_fails(bundle: dict[str, Any]) -> None:
    bundle["events"] = []
    assert not verify_proof(bundle).sound
    bundle["streams"] = []
    findings = verify_proof(bundle).findings
    assert any("leaves out stream" in f for f in findings)


def test_a_bundle_relabelled_as_another_referral_fails(bundle: dict[str, Any]) -> None:
    bundle["referral"] = "R-2024-0311"
    findings = verify_proof(bundle).findings
    assert any(f"leaves out stream {referral_id('R-2024-0311')}" in f for f in findings), findings


def test_a_bundle_without_one_subjects_stream_fails(bundle: dict[str, Any]) -> None:
    dropped = str(subject_id("R-2024-0402", "SUBJ-02"))
    bundle["events"] = [e for e in bundle["events"] if e["stream"] != dropped]
    bundle["streams"] = [s for s in bundle["streams"] if s["stream"] != dropped]
    findings = verify_proof(bundle).findings
    assert any(f"leaves out stream {dropped}" in f for f in findings), findings
    # nor can it be passed off as a stream the ledger never had
    bundle["streams"].append({"stream": dropped, "head": None, "before": None, "after": None})
    assert any("do not prove it" in f for f in verify_proof(bundle).findings)


def test_a_referral_without_subjects_proves_it_has_no_directory(example: Ledger, database_url: str) -> None:
    make_checkpoint(example, resolve_database(database_url))
    proof = export_proof(example, resolve_database(database_url), "R-2024-0311")
    absent = [s for s in proof["streams"] if s["head"] is None]
    assert [s["stream"] for s in absent] == [str(directory_id("R-2024-0311"))]
    assert verify_proof(proof).sound


def test_an_older_bundle_is_refused_with_one_line(bundle: dict[str, Any]) -> None:
    bundle["format"] = "refledger-proof/1"
    with pytest.raises(InvalidInput, match="older format"):
        verify_proof(bundle)
