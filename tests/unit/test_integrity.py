"""Integrity without a database: canonical bytes, the chain locator, checkpoints and keys.

The stored rows come from an in-memory ledger (the library's POPO recorder holds exactly
the bytes a database would); tampering edits those rows the way a superuser would edit
the table, and ``verify_rows`` must name the first bad event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest

from ledger.application import Ledger
from ledger.canonical import GENESIS, canonical_event, canonical_stored, digest, event_hash
from ledger.checkpoint import Checkpoint, new_signing_key, parse_public_key
from ledger.errors import InvalidInput
from ledger.importing import parse_record
from ledger.merkle import inclusion_proof, leaf_hash, merkle_root
from ledger.proofs import _audit_path, _tree_levels
from ledger.referral import LedgerEvent
from ledger.subject import directory_id
from ledger.values import referral_id, subject_id
from ledger.verification import Finding, Verification, verify_rows
from tests.conftest import EXAMPLES

Row = list[Any]

#: a third referral for the event types the worked example does not use
EXTRA = [
    {
        "type": "received",
        "referral": "R-2024-0999",
        "occurred_at": "2024-05-01T09:00:00Z",
        "recorded_at": "2024-05-01T09:05:00Z",
        "actor": {"person": "P-201", "role": "registry-officer", "unit": "U-INTAKE"},
        "originator": "X-TEST",
        "channel": "email",
        "custodian_unit": "U-INTAKE",
    },
    {"type": "ownership_offered", "to_unit": "U-OPS1", "at": "10"},
    {"type": "offer_withdrawn", "reason": "sent to the wrong unit", "at": "11"},
    {"type": "closed", "reason": "duplicate of R-2024-0311", "at": "12"},
    {"type": "reopened", "reason": "not a duplicate after all", "at": "13"},
]


#: a fourth referral for corrections, retractions and attestations, of the referral and of a subject
_BY = {"person": "P-203", "role": "supervisor", "unit": "U-INTAKE"}
AMENDMENTS: list[dict[str, Any]] = [
    {**EXTRA[0], "referral": "R-2024-0998"},
    {
        "type": "note_added",
        "text": "typed late",
        "occurred_at": "2024-05-01T10:00:00Z",
        "recorded_at": "2024-05-03T10:00:00Z",
        "late_reason": "backlog",
    },
    {
        "type": "subject_extracted",
        "subject": "SUBJ-X",
        "category": "suspect",
        "occurred_at": "2024-05-01T11:00:00Z",
        "recorded_at": "2024-05-01T11:05:00Z",
    },
    {
        "type": "subject_triaged",
        "subject": "SUBJ-X",
        "risk_tool": "RPT",
        "risk_tool_version": "1",
        "band": "LOW",
        "occurred_at": "2024-05-01T12:00:00Z",
        "recorded_at": "2024-05-03T12:00:00Z",
        "late_reason": "backlog",
    },
    {"type": "entry_corrected", "version": 1, "fields": {"originator": "X-OTHER"}, "reason": "misread", "at": "2024-05-04T09:00:00Z"},
    {"type": "entry_attested", "version": 2, "statement": "seen the notebook", "at": "2024-05-04T09:10:00Z"},
    {"type": "entry_retracted", "version": 2, "reason": "wrong referral", "at": "2024-05-04T09:20:00Z"},
    {
        "type": "entry_corrected",
        "subject": "SUBJ-X",
        "version": 2,
        "fields": {"band": "HIGH"},
        "reason": "re-read",
        "at": "2024-05-04T09:30:00Z",
    },
    {"type": "entry_attested", "subject": "SUBJ-X", "version": 2, "statement": "seen", "at": "2024-05-04T09:40:00Z"},
    {"type": "entry_retracted", "subject": "SUBJ-X", "version": 2, "reason": "duplicate", "at": "2024-05-04T09:50:00Z"},
]


def _amendment_records() -> Iterator[dict[str, Any]]:
    yield AMENDMENTS[0]
    for record in AMENDMENTS[1:]:
        at = record.get("at")
        clocks = {"occurred_at": at, "recorded_at": at} if at else {}
        yield {**{k: v for k, v in record.items() if k != "at"}, **clocks, "referral": "R-2024-0998", "actor": _BY}


def _extra_records() -> Iterator[dict[str, Any]]:
    yield EXTRA[0]
    for record in EXTRA[1:]:
        hour = record["at"]
        yield {
            **{k: v for k, v in record.items() if k != "at"},
            "referral": "R-2024-0999",
            "occurred_at": f"2024-05-01T{hour}:00:00Z",
            "recorded_at": f"2024-05-01T{hour}:10:00Z",
            "actor": {"person": "P-202", "role": "team-manager", "unit": "U-INTAKE"},
        }


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    """The worked example plus R-2024-0999, recorded as a historical import records them."""
    recorded = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
    lines = [json.loads(line) for line in (EXAMPLES / "cybertip.jsonl").read_text(encoding="utf-8").splitlines()]
    for number, record in enumerate([*lines, *_extra_records(), *_amendment_records()], start=1):
        parse_record(record, historical=True, source={"file": "example", "line": number}).run(recorded)
    yield recorded
    recorded.close()


@pytest.fixture
def rows(ledger: Ledger) -> list[Row]:
    """A fresh copy of the stored rows, in log order, to tamper with."""
    return [
        [n.id, str(n.originator_id), n.originator_version, n.topic, n.state]
        for n in ledger.recorder.select_notifications(start=1, limit=10_000)
    ]


def leaf_of(row: Row) -> bytes:
    return leaf_hash(bytes.fromhex(digest(canonical_stored(UUID(row[1]), row[2], row[3], row[4]))))


def checkpoint_of(rows: list[Row]) -> Checkpoint:
    """The checkpoint an auditor would have kept of these rows."""
    leaves = [leaf_of(row) for row in rows]
    first = digest(canonical_stored(UUID(rows[0][1]), rows[0][2], rows[0][3], rows[0][4]))
    return Checkpoint(len(rows), merkle_root(leaves).hex(), "2024-07-01T00:00:00Z", first)


def leaf_file(rows: list[Row]) -> bytes:
    return b"".join(leaf_of(row) for row in rows)


def verify(rows: list[Row], **options: Any) -> Verification:
    return verify_rows([[tuple(row) for row in rows]], **options)


def index_of(rows: list[Row], reference: str, version: int, subject: str | None = None) -> int:
    stream = str(subject_id(reference, subject) if subject else referral_id(reference))
    return next(i for i, row in enumerate(rows) if row[1] == stream and row[2] == version)


def edit(row: Row, change: Callable[[dict[str, Any]], None]) -> None:
    state = orjson.loads(row[4])
    change(state)
    row[4] = orjson.dumps(state)


def rechain(rows: list[Row], start: int) -> None:
    """What a careful forger does after editing rows[start]: recompute every later link of
    its stream, so that the chain holds again."""
    stream = rows[start][1]
    previous = rows[start]
    for row in rows[start + 1 :]:
        if row[1] == stream:
            link = digest(canonical_stored(UUID(previous[1]), previous[2], previous[3], previous[4]))
            edit(row, lambda state, link=link: state.update(prev_hash=link))
            previous = row


def located(finding: Finding | None) -> tuple[Any, ...]:
    assert finding is not None
    return (finding.kind, finding.referral, finding.subject, finding.version, finding.position)


# --- canonical encoding ------------------------------------------------------------


def _concrete_event_classes(base: type) -> set[type]:
    found: set[type] = set()
    for cls in base.__subclasses__():
        found |= _concrete_event_classes(cls) if cls.__subclasses__() else {cls}
    return found


def _staff_ledger() -> Ledger:
    """The worked example's staff directory (every directory event type), put in force."""
    from ledger.values import Actor, Stamp

    staff = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
    for line in (EXAMPLES / "staff.jsonl").read_text(encoding="utf-8").splitlines():
        parse_record(json.loads(line), historical=True).run(staff)
    parse_record(
        {
            "type": "unit_renamed",
            "occurred_at": "2024-06-01T09:00:00Z",
            "recorded_at": "2024-06-01T09:00:00Z",
            "actor": {"person": "P-900", "role": "hr-officer", "unit": "U-HR"},
            "unit": "U-OPS2",
            "name": "Operations South",
        },
        historical=True,
    ).run(staff)
    parse_record(
        {
            "type": "unit_closed",
            "occurred_at": "2024-06-02T09:00:00Z",
            "recorded_at": "2024-06-02T09:00:00Z",
            "actor": {"person": "P-900", "role": "hr-officer", "unit": "U-HR"},
            "unit": "U-OPS2",
        },
        historical=True,
    ).run(staff)
    for kind, fields in (("key_registered", {}), ("key_revoked", {"reason": "Laptop lost."})):
        parse_record(
            {
                "type": kind,
                "occurred_at": "2024-06-03T09:00:00Z",
                "recorded_at": "2024-06-03T09:00:00Z",
                "actor": {"person": "P-900", "role": "hr-officer", "unit": "U-HR"},
                "person": "P-900",
                "public_key": "8a0ac23da6138e4de4b3bdb25c7fa8e26d31aa3a252f067ba2106c40b3f0209d",
                **fields,
            },
            historical=True,
        ).run(staff)
    staff.enforce_directory(Stamp(Actor("P-900", "hr-officer", "U-HR")), datetime(2024, 7, 1, tzinfo=UTC))
    return staff


def _migration_ledger() -> Ledger:
    """A migration: one historical import, then closed."""
    from ledger.importing import import_lines
    from ledger.values import Actor, Stamp

    migrated = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
    data = (EXAMPLES / "staff.jsonl").read_bytes()
    import_lines(migrated, data.splitlines(), historical=True, file_sha256="ab" * 32)
    migrated.close_migration(Stamp(Actor("P-900", "hr-officer", "U-HR")))
    return migrated


def _records_ledger() -> Ledger:
    """A sealed ledger: a referral closed, held, released, disposed of, and read under a consultation log."""
    from ledger.sealing import MemoryKeyStore, Seals
    from ledger.values import Actor, Stamp

    kept = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2031, 7, 1, tzinfo=UTC))
    kept.seals = Seals(MemoryKeyStore(), bytes(32), "test key")
    kept.consultation_log = True
    clerk, records = Actor("P-1", "analyst", "U-A"), Actor("P-2", "records-manager", "U-RM")
    kept.receive("R-1", Stamp(clerk), originator="X", channel="liaison", custodian_unit="U-A")
    kept.close_referral("R-1", Stamp(clerk), reason="Done with Mr Example")
    kept.place_hold("R-1", Stamp(records), reason="Inquiry")
    kept.release_hold("R-1", Stamp(records), reason="Inquiry over")
    kept.read_free_text("R-1", [kept.referral_events("R-1")], clerk, "timeline")
    kept.dispose("R-1", Stamp(records), reason="Review")
    return kept


def test_canonical_event_and_canonical_stored_agree_for_every_event_type(ledger: Ledger) -> None:
    seen: set[str] = set()
    for recorded in (ledger, _staff_ledger(), _migration_ledger(), _records_ledger()):
        for stored in recorded.recorder.select_notifications(start=1, limit=10_000):
            event = recorded.mapper.to_domain_event(stored)
            assert canonical_event(event) == canonical_stored(stored.originator_id, stored.originator_version, stored.topic, stored.state)
            seen.add(stored.topic)
    every_type = {cls.TOPIC for cls in _concrete_event_classes(LedgerEvent)}
    assert every_type - seen == set(), "add a record of each new event type to this test"


def test_every_event_carries_the_hash_of_its_predecessor(ledger: Ledger) -> None:
    for reference in ("R-2024-0311", "R-2024-0402", "R-2024-0999"):
        events = ledger.referral_events(reference)
        assert events[0].prev_hash == GENESIS
        assert [e.prev_hash for e in events[1:]] == [event_hash(e) for e in events[:-1]]


# --- the untampered ledger -----------------------------------------------------------


def test_an_untampered_ledger_is_sound_and_says_what_it_could_not_see(rows: list[Row]) -> None:
    result = verify(rows)
    assert result.sound, [f.describe() for f in result.findings]
    assert (result.events, result.streams) == (len(rows), 11)  # 4 referrals, 5 subjects, 2 directories
    assert result.root == checkpoint_of(rows).root
    assert any("No checkpoint file given" in note for note in result.notes)


def test_an_untampered_ledger_extends_its_checkpoint(rows: list[Row]) -> None:
    kept = checkpoint_of(rows[:30])
    result = verify(rows, checkpoint=kept, leaves=leaf_file(rows[:30]))
    assert result.sound and result.checkpoint is not None and result.checkpoint.extends
    assert result.checkpoint.signature == "unsigned"


# --- the chains name the first bad event -----------------------------------------------


def test_an_edited_payload_is_named_where_it_was_edited(rows: list[Row]) -> None:
    target = index_of(rows, "R-2024-0311", 2)
    edit(rows[target], lambda state: state.update(risk_band="LOW"))
    assert located(verify(rows).first_bad) == ("content-edited", "R-2024-0311", None, 2, rows[target][0])


def test_an_edited_link_names_the_event_that_carries_it(rows: list[Row]) -> None:
    target = index_of(rows, "R-2024-0402", 3)
    edit(rows[target], lambda state: state.update(prev_hash="ab" * 32))
    result = verify(rows)
    assert located(result.first_bad) == ("altered", "R-2024-0402", None, 3, rows[target][0])
    assert result.findings_total == 1


def test_a_deleted_event_is_named_at_its_successor(rows: list[Row]) -> None:
    target = index_of(rows, "R-2024-0402", 4, subject="SUBJ-02")
    successor = rows[index_of(rows, "R-2024-0402", 5, subject="SUBJ-02")][0]
    del rows[target]
    result = verify(rows)
    assert located(result.first_bad) == ("version-gap", "R-2024-0402", "SUBJ-02", 5, successor)
    assert result.first_bad is not None and "version 4 not found" in result.first_bad.problem


def test_a_deleted_first_event_is_named_from_what_remains(rows: list[Row]) -> None:
    del rows[index_of(rows, "R-2024-0402", 1, subject="SUBJ-03")]
    result = verify(rows)
    assert located(result.first_bad)[:4] == ("first-event-missing", "R-2024-0402", "SUBJ-03", 2)


def test_swapped_contents_name_the_earlier_event(rows: list[Row]) -> None:
    one, two = index_of(rows, "R-2024-0311", 3), index_of(rows, "R-2024-0311", 4)
    rows[one][3:], rows[two][3:] = rows[two][3:], rows[one][3:]
    assert located(verify(rows).first_bad)[:4] == ("inserted", "R-2024-0311", None, 3)


def test_contents_swapped_between_referrals_name_the_earlier_event(rows: list[Row]) -> None:
    one, two = index_of(rows, "R-2024-0311", 5), index_of(rows, "R-2024-0402", 5)
    rows[one][3:], rows[two][3:] = rows[two][3:], rows[one][3:]
    first, reference = (one, "R-2024-0311") if one < two else (two, "R-2024-0402")
    assert located(verify(rows).first_bad) == ("altered", reference, None, 5, rows[first][0])


def test_a_forged_event_inserted_mid_stream_is_named(rows: list[Row]) -> None:
    """The forger renumbers the later versions and gives the forgery a correct link."""
    target = index_of(rows, "R-2024-0311", 6)
    stream = rows[target][1]
    forged = list(rows[target])
    before = rows[index_of(rows, "R-2024-0311", 5)]
    edit(forged, lambda state: state.update(prev_hash=digest(canonical_stored(UUID(stream), 5, before[3], before[4])), reason="forged"))
    for row in rows:
        if row[1] == stream and row[2] >= 6:
            row[2] += 1
    rows.insert(target, forged)
    for number, row in enumerate(rows, start=1):
        row[0] = number  # the forger shifted the log positions to make room
    assert located(verify(rows).first_bad) == ("inserted", "R-2024-0311", None, 6, target + 1)


def test_an_event_appended_out_of_order_is_found(rows: list[Row]) -> None:
    moved = rows.pop(index_of(rows, "R-2024-0402", 2))
    successor = rows[index_of(rows, "R-2024-0402", 3)][0]
    rows.append([rows[-1][0] + 1, *moved[1:]])
    result = verify(rows)
    # moved, not deleted: both ends of the move say so
    assert located(result.first_bad) == ("reordered", "R-2024-0402", None, 3, successor)
    assert [f.kind for f in result.findings if f.referral == "R-2024-0402"] == ["reordered", "reordered"]


def test_an_unreadable_event_is_named(rows: list[Row]) -> None:
    target = index_of(rows, "R-2024-0402", 2)
    rows[target][4] = b"{not json"
    assert located(verify(rows).first_bad) == ("undecodable", "R-2024-0402", None, 2, rows[target][0])


# --- what only a checkpoint shows ----------------------------------------------------


def test_an_edit_to_a_streams_last_event_needs_a_checkpoint(rows: list[Row]) -> None:
    kept, leaves = checkpoint_of(rows), leaf_file(rows)
    target = max(i for i, row in enumerate(rows) if row[1] == str(referral_id("R-2024-0999")))
    edit(rows[target], lambda state: state.update(reason="edited"))
    assert verify(rows).sound  # nothing after it carries its hash
    bounded = verify(rows, checkpoint=kept)
    assert bounded.first_bad is not None and bounded.first_bad.kind == "checkpoint-root-mismatch"
    assert bounded.first_bad.leaf_range == (0, len(rows))
    exact = verify(rows, checkpoint=kept, leaves=leaves)
    assert located(exact.first_bad) == ("checkpoint-leaf-differs", "R-2024-0999", None, 5, rows[target][0])
    assert exact.first_bad is not None and exact.first_bad.leaf == target


def test_a_truncated_tail_is_caught_against_an_earlier_checkpoint(rows: list[Row]) -> None:
    kept = checkpoint_of(rows)
    last_kept = rows[-4][0]
    del rows[-3:]
    assert verify(rows).sound
    result = verify(rows, checkpoint=kept)
    assert result.first_bad is not None
    assert (result.first_bad.kind, result.first_bad.leaf) == ("checkpoint-truncated", len(rows))
    assert f"the last 3 were removed after log position {last_kept}" in result.first_bad.problem


def test_a_consistent_rewrite_is_caught_only_against_an_earlier_checkpoint(rows: list[Row]) -> None:
    kept, leaves = checkpoint_of(rows), leaf_file(rows)
    target = index_of(rows, "R-2024-0311", 4)
    edit(rows[target], lambda state: state.update(reason="nobody had capacity"))
    rechain(rows, target)
    assert verify(rows).sound
    assert not verify(rows, checkpoint=kept).sound
    exact = verify(rows, checkpoint=kept, leaves=leaves)
    assert located(exact.first_bad) == ("checkpoint-leaf-differs", "R-2024-0311", None, 4, rows[target][0])


def test_a_checkpoint_of_another_ledger_is_refused(rows: list[Row]) -> None:
    other = Checkpoint(3, "00" * 32, "2024-07-01T00:00:00Z", "11" * 32)
    result = verify(rows, checkpoint=other)
    assert result.checkpoint is not None and not result.checkpoint.extends
    assert located(result.first_bad) == ("checkpoint-other-ledger", "R-2024-0311", None, 1, 1)


def test_a_directory_event_is_covered_by_the_tree_and_named(rows: list[Row]) -> None:
    kept, leaves = checkpoint_of(rows), leaf_file(rows)
    target = next(i for i, row in enumerate(rows) if row[1] == str(directory_id("R-2024-0402")) and row[2] == 2)
    edit(rows[target], lambda state: state.update(subject="SUBJ-99"))
    result = verify(rows, checkpoint=kept, leaves=leaves)
    found = [located(f) for f in result.findings]
    assert ("checkpoint-leaf-differs", "R-2024-0402", None, 2, rows[target][0]) in found
    # and without the checkpoint: the directory chain and the cross-check with the subjects
    alone = [located(f) for f in verify(rows).findings]
    assert ("directory-entry-unknown", "R-2024-0402", "SUBJ-99", 2, rows[target][0]) in alone
    assert any(f[:3] == ("directory-entry-missing", "R-2024-0402", "SUBJ-02") for f in alone)


def test_a_leaf_file_must_belong_to_its_checkpoint(rows: list[Row]) -> None:
    with pytest.raises(InvalidInput, match="holds 3 leaves"):
        verify(rows, checkpoint=checkpoint_of(rows), leaves=leaf_file(rows[:3]))
    with pytest.raises(InvalidInput, match="does not hash"):
        verify(rows, checkpoint=checkpoint_of(rows), leaves=leaf_file(list(reversed(rows))))
    with pytest.raises(InvalidInput, match="give the checkpoint"):
        verify(rows, leaves=leaf_file(rows))


# --- checkpoints and keys -------------------------------------------------------------


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes, str]:
    return new_signing_key()


def test_a_signed_checkpoint_verifies_only_as_signed(key_pair: tuple[bytes, bytes, str]) -> None:
    private, public_pem, public_hex = key_pair
    signed = Checkpoint(5, "ab" * 32, "2024-07-01T00:00:00Z", "cd" * 32).signed_with(private)
    pinned = parse_public_key(public_pem)
    assert signed.public_key == public_hex
    assert signed.signature_status(pinned) == "valid"
    assert signed.signature_status(None) == "not-pinned"
    assert signed.signature_status(parse_public_key(new_signing_key()[1])) == "wrong-key"
    assert Checkpoint(**{**signed.as_dict(), "size": 6}).signature_status(pinned) == "invalid"
    assert Checkpoint(5, "ab" * 32, "2024-07-01T00:00:00Z", None).signature_status(pinned) == "unsigned"
    assert Checkpoint.from_json(orjson.dumps(signed.as_dict()), "file") == signed


def test_signature_failures_fail_verification(rows: list[Row], key_pair: tuple[bytes, bytes, str]) -> None:
    private, public_pem, _ = key_pair
    signed = checkpoint_of(rows).signed_with(private)
    assert verify(rows, checkpoint=signed, public_key=parse_public_key(public_pem)).sound
    forged = Checkpoint(**{**signed.as_dict(), "time": "2024-07-02T00:00:00Z"})
    result = verify(rows, checkpoint=forged, public_key=parse_public_key(public_pem))
    assert [f.kind for f in result.findings] == ["signature"]
    assert not verify(rows, checkpoint=checkpoint_of(rows), public_key=parse_public_key(public_pem)).sound


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"size": 1}, "expected exactly the fields"),
        ({"size": -1, "root": "ab" * 32, "time": "2024-07-01T00:00:00Z", "ledger": None, "signature": None, "public_key": None}, "size"),
        ({"size": 1, "root": "xyz", "time": "2024-07-01T00:00:00Z", "ledger": None, "signature": None, "public_key": None}, "root"),
        ({"size": 1, "root": "ab" * 32, "time": "yesterday", "ledger": None, "signature": None, "public_key": None}, "time"),
        ({"size": 1, "root": "ab" * 32, "time": "2024-07-01T00:00:00Z", "ledger": None, "signature": 5, "public_key": None}, "signature"),
        ([], "expected exactly the fields"),
    ],
)
def test_checkpoint_files_are_read_strictly(document: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Checkpoint.from_json(orjson.dumps(document), "cp.json")
    with pytest.raises(InvalidInput, match="not JSON"):
        Checkpoint.from_json(b"{", "cp.json")


def test_public_keys_come_as_pem_or_hex(key_pair: tuple[bytes, bytes, str]) -> None:
    _, public_pem, public_hex = key_pair
    assert parse_public_key(public_pem) == parse_public_key(public_hex.encode()) == bytes.fromhex(public_hex)
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        parse_public_key(b"hello")
    with pytest.raises(InvalidInput):
        Checkpoint(1, "ab" * 32, "2024-07-01T00:00:00Z", None).signed_with(b"not a key")


# --- inclusion proofs ---------------------------------------------------------------


def test_audit_paths_from_prebuilt_levels_match_rfc6962_inclusion_proofs() -> None:
    leaves = [leaf_hash(hashlib.sha256(bytes([n])).digest()) for n in range(70)]
    for size in range(1, 70):
        levels = _tree_levels(leaves[:size])
        for index in range(size):
            assert _audit_path(levels, index) == inclusion_proof(leaves, index, size)
