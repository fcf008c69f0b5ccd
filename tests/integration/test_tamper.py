"""The tamper matrix, on SQLite and PostgreSQL: a database superuser edits the stored events
(after dropping or disabling the append-only triggers) and ``verify`` names the first bad
event exactly: referral/subject, version and log position.

Each case starts from the worked example (49 stored events) and a checkpoint with its leaf
file, as an auditor would have kept them outside the organisation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import pytest

from ledger.application import Ledger
from ledger.canonical import canonical_stored, digest
from ledger.checkpoint import Checkpoint
from ledger.checkpointing import checkpoint_leaves, make_checkpoint
from ledger.importing import import_file
from ledger.storage import Database, append_only_guard_state, connect_postgres, resolve_database
from ledger.subject import directory_id
from ledger.values import referral_id, subject_id
from ledger.verification import Finding, Verification, verify_ledger
from tests.conftest import EXAMPLES, Clock

Row = tuple[int, str, int, str, bytes]


class Superuser:
    """Someone with full access to the database: guards off, then plain SQL on the events."""

    def __init__(self, database: Database) -> None:
        self.database = database
        if database.backend == "sqlite":
            self.sqlite = sqlite3.connect(database.location, isolation_level=None)
            self.table, self.position, self.mark = "stored_events", "rowid", "?"
            for trigger in ("stored_events_no_update", "stored_events_no_delete"):
                self.sqlite.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        else:
            self.postgres = connect_postgres(database)
            schema = f'"{database.schema}"'
            self.table, self.position, self.mark = f"{schema}.ledger_events", "notification_id", "%s"
            self.postgres.execute(f"ALTER TABLE {self.table} DISABLE TRIGGER ALL")

    def run(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        statement = statement.format(table=self.table, position=self.position).replace("?", self.mark)
        if self.database.backend == "sqlite":
            return self.sqlite.execute(statement, params).fetchall()
        cursor = self.postgres.execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    def rows(self) -> list[Row]:
        stream = "originator_id" if self.database.backend == "sqlite" else "originator_id::text"
        found = self.run(f"SELECT {{position}}, {stream}, originator_version, topic, state FROM {{table}} ORDER BY {{position}}")
        return [(p, str(UUID(s)), v, t, bytes(b)) for p, s, v, t, b in found]

    def stream_id(self, stream: str) -> Any:
        return UUID(stream).hex if self.database.backend == "sqlite" else UUID(stream)

    def set_state(self, position: int, state: bytes) -> None:
        self.run("UPDATE {table} SET state = ? WHERE {position} = ?", state, position)

    def edit(self, position: int, change: Callable[[dict[str, Any]], None]) -> None:
        (state,) = self.run("SELECT state FROM {table} WHERE {position} = ?", position)[0]
        decoded = orjson.loads(bytes(state))
        change(decoded)
        self.set_state(position, orjson.dumps(decoded))

    def remove_stored_checkpoints(self) -> None:
        """What a thorough attacker does: the ledger's own checkpoints would give them away."""
        if self.database.backend == "sqlite":
            for trigger in ("integrity_checkpoints_no_update", "integrity_checkpoints_no_delete"):
                self.sqlite.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            self.sqlite.execute("DELETE FROM integrity_checkpoints")
        else:
            table = f'"{self.database.schema}".integrity_checkpoints'
            self.postgres.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            self.postgres.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        (self.sqlite if self.database.backend == "sqlite" else self.postgres).close()


@dataclass
class World:
    """The ledger under attack, what the auditor kept, and the attacker."""

    ledger: Ledger
    database: Database
    checkpoint: Checkpoint
    leaves: bytes
    attacker: Superuser

    def verify(self, with_checkpoint: bool = True, with_leaves: bool = True) -> Verification:
        checkpoint = self.checkpoint if with_checkpoint else None
        leaves = self.leaves if with_checkpoint and with_leaves else None
        return verify_ledger(self.ledger, self.database, checkpoint, None, leaves, append_only_guard_state(self.database))

    def last_version(self, reference: str, directory: bool = False) -> int:
        stream = directory_id(reference) if directory else referral_id(reference)
        return int(
            self.attacker.run("SELECT max(originator_version) FROM {table} WHERE originator_id = ?", self.attacker.stream_id(str(stream)))[
                0
            ][0]
        )

    def position_of(self, reference: str, version: int, subject: str | None = None, directory: bool = False) -> int:
        stream = directory_id(reference) if directory else subject_id(reference, subject) if subject else referral_id(reference)
        return int(
            self.attacker.run(
                "SELECT {position} FROM {table} WHERE originator_id = ? AND originator_version = ?",
                self.attacker.stream_id(str(stream)),
                version,
            )[0][0]
        )


@pytest.fixture
def world(ledger: Ledger, clock: Clock, database_url: str) -> Iterator[World]:
    clock.set("2024-07-01T09:00:00+00:00")
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    database = resolve_database(database_url)
    made = make_checkpoint(ledger, database)
    attacker = Superuser(database)
    yield World(ledger, database, made.checkpoint, checkpoint_leaves(database, made.checkpoint), attacker)
    attacker.close()


def where(finding: Finding | None) -> tuple[Any, ...]:
    assert finding is not None, "nothing was found"
    return (finding.kind, finding.referral, finding.subject, finding.version, finding.position)


def test_the_untampered_ledger_verifies(world: World) -> None:
    result = world.verify()
    assert result.sound, [f.describe() for f in result.findings]
    assert result.checkpoint is not None and result.checkpoint.extends
    assert (result.events, result.stored_checked, result.stored_matching) == (49, 1, 1)


def test_edited_bytes_of_one_payload(world: World) -> None:
    position = world.position_of("R-2024-0311", 2)
    (state,) = world.attacker.run("SELECT state FROM {table} WHERE {position} = ?", position)[0]
    world.attacker.set_state(position, bytes(state).replace(b'"VERY_HIGH"', b'"LOW"'))
    result = world.verify(with_checkpoint=False)
    assert where(result.first_bad) == ("content-edited", "R-2024-0311", None, 2, position)
    assert where(world.verify().first_bad) == ("content-edited", "R-2024-0311", None, 2, position)


def test_one_deleted_event(world: World) -> None:
    deleted = world.position_of("R-2024-0402", 3, subject="SUBJ-02")
    successor = world.position_of("R-2024-0402", 4, subject="SUBJ-02")
    world.attacker.run("DELETE FROM {table} WHERE {position} = ?", deleted)
    result = world.verify(with_checkpoint=False)
    assert where(result.first_bad) == ("version-gap", "R-2024-0402", "SUBJ-02", 4, successor)
    assert result.first_bad is not None and "version 3 not found" in result.first_bad.problem


def test_two_events_with_their_contents_swapped(world: World) -> None:
    one, two = world.position_of("R-2024-0311", 3), world.position_of("R-2024-0311", 4)
    (first,), (second,) = (world.attacker.run("SELECT state FROM {table} WHERE {position} = ?", p)[0] for p in (one, two))
    world.attacker.set_state(one, bytes(second))
    world.attacker.set_state(two, bytes(first))
    assert where(world.verify(with_checkpoint=False).first_bad) == ("inserted", "R-2024-0311", None, 3, one)


def test_a_truncated_tail_is_caught_against_an_earlier_checkpoint(world: World) -> None:
    last_kept = world.attacker.rows()[-4][0]
    world.attacker.run("DELETE FROM {table} WHERE {position} > ?", last_kept)
    result = world.verify()
    truncated = next(f for f in result.findings if f.kind == "checkpoint-truncated")
    assert truncated.leaf == 46
    assert f"the last 3 were removed after log position {last_kept}" in truncated.problem
    # the checkpoint stored in the database says the same, unless the attacker removes it too
    stored = world.verify(with_checkpoint=False)
    assert any((f.kind, f.leaf) == ("stored-checkpoint-truncated", 46) for f in stored.findings)
    world.attacker.remove_stored_checkpoints()
    # the tail held subject directory entries: the subjects they listed are named as hidden
    alone = world.verify(with_checkpoint=False)
    assert {f.kind for f in alone.findings} == {"directory-entry-missing"}


def test_a_forged_event_inserted_mid_stream(world: World) -> None:
    """The forger makes room in the log and in the stream and gives the forgery a true link."""
    attacker = world.attacker
    place = world.position_of("R-2024-0311", 6)
    stream = str(referral_id("R-2024-0311"))
    (_, _, _, topic5, state5) = next(r for r in attacker.rows() if r[1] == stream and r[2] == 5)
    (_, _, _, topic6, state6) = next(r for r in attacker.rows() if r[1] == stream and r[2] == 6)
    forged = orjson.loads(state6)
    forged.update(prev_hash=digest(canonical_stored(UUID(stream), 5, topic5, state5)), reason="forged: accepted on the phone")
    attacker.run(
        "UPDATE {table} SET originator_version = -originator_version WHERE originator_id = ? AND originator_version >= 6",
        attacker.stream_id(stream),
    )
    attacker.run(
        "UPDATE {table} SET originator_version = 1 - originator_version WHERE originator_id = ? AND originator_version < 0",
        attacker.stream_id(stream),
    )
    attacker.run("UPDATE {table} SET {position} = -{position} WHERE {position} >= ?", place)
    attacker.run("UPDATE {table} SET {position} = 1 - {position} WHERE {position} < 0")
    attacker.run(
        "INSERT INTO {table} ({position}, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        place,
        attacker.stream_id(stream),
        6,
        topic6,
        orjson.dumps(forged),
    )
    result = world.verify(with_checkpoint=False)
    assert where(result.first_bad) == ("inserted", "R-2024-0311", None, 6, place)
    assert where(world.verify().first_bad) == ("inserted", "R-2024-0311", None, 6, place)


def test_a_consistent_rewrite_is_caught_only_against_an_earlier_checkpoint(world: World) -> None:
    """Edit one event, recompute every later link of its stream, remove the stored checkpoints."""
    attacker = world.attacker
    stream = str(referral_id("R-2024-0311"))
    edited = world.position_of("R-2024-0311", 4)
    attacker.edit(edited, lambda state: state.update(reason="U-OPS2 had no capacity"))
    previous = next(r for r in attacker.rows() if r[0] == edited)
    for row in [r for r in attacker.rows() if r[1] == stream and r[2] > 4]:
        link = digest(canonical_stored(UUID(stream), previous[2], previous[3], previous[4]))
        attacker.edit(row[0], lambda state, link=link: state.update(prev_hash=link))
        previous = next(r for r in attacker.rows() if r[0] == row[0])
    attacker.remove_stored_checkpoints()
    assert world.verify(with_checkpoint=False).sound
    bounded = world.verify(with_leaves=False)
    assert bounded.first_bad is not None and (bounded.first_bad.kind, bounded.first_bad.leaf_range) == ("checkpoint-root-mismatch", (0, 49))
    assert where(world.verify().first_bad) == ("checkpoint-leaf-differs", "R-2024-0311", None, 4, edited)


def test_an_edit_to_a_streams_last_event_is_caught_against_the_checkpoint(world: World) -> None:
    last = world.last_version("R-2024-0311")
    edited = world.position_of("R-2024-0311", last)
    world.attacker.edit(edited, lambda state: state.update(reason="edited afterwards"))
    assert not world.verify(with_checkpoint=False).sound  # the checkpoint stored in the database still holds
    assert where(world.verify().first_bad) == ("checkpoint-leaf-differs", "R-2024-0311", None, last, edited)


# --- the subject directory is chained and cross-checked (issue 16, finding 2) ---------------


def test_a_removed_last_directory_entry_is_found_without_any_checkpoint(world: World) -> None:
    """The entry is the last of its stream, so no chain link sees it go; the subject it listed
    is still in the ledger and is named as hidden."""
    last = world.last_version("R-2024-0402", directory=True)
    position = world.position_of("R-2024-0402", last, directory=True)
    (state,) = world.attacker.run("SELECT state FROM {table} WHERE {position} = ?", position)[0]
    hidden = orjson.loads(bytes(state))["subject"]
    world.attacker.run("DELETE FROM {table} WHERE {position} = ?", position)
    world.attacker.remove_stored_checkpoints()
    result = world.verify(with_checkpoint=False)
    assert not result.sound
    extracted = world.position_of("R-2024-0402", 1, subject=hidden)
    assert where(result.first_bad) == ("directory-entry-missing", "R-2024-0402", hidden, 1, extracted)


def test_an_edited_directory_entry_breaks_the_directory_chain(world: World) -> None:
    position = world.position_of("R-2024-0402", 1, directory=True)
    world.attacker.edit(position, lambda state: state.update(subject="SUBJ-99"))
    world.attacker.remove_stored_checkpoints()
    found = {(f.kind, f.referral, f.version, f.position) for f in world.verify(with_checkpoint=False).findings}
    assert ("content-edited", "R-2024-0402", 1, position) in found
    assert ("directory-entry-unknown", "R-2024-0402", 1, position) in found


def test_directory_entries_carry_the_chain_link(world: World) -> None:
    stream = str(directory_id("R-2024-0402"))
    rows = [r for r in world.attacker.rows() if r[1] == stream]
    assert len(rows) >= 2
    previous = "0" * 64
    for _position, _stream, version, topic, state in rows:
        assert orjson.loads(state)["prev_hash"] == previous
        previous = digest(canonical_stored(UUID(stream), version, topic, state))


# --- findings that name the right thing (issue 16, finding 10) ----------------------------


def test_a_reorder_is_reported_as_a_reorder_not_a_deletion(world: World) -> None:
    one, two = world.position_of("R-2024-0311", 3), world.position_of("R-2024-0311", 4)
    world.attacker.run("UPDATE {table} SET {position} = -1 WHERE {position} = ?", one)
    world.attacker.run("UPDATE {table} SET {position} = ? WHERE {position} = ?", one, two)
    world.attacker.run("UPDATE {table} SET {position} = ? WHERE {position} = -1", two)
    result = world.verify(with_checkpoint=False)
    kinds = {f.kind for f in result.findings}
    assert "version-gap" not in kinds and "out-of-order" not in kinds
    assert where(result.first_bad) == ("reordered", "R-2024-0311", None, 4, one)
    assert result.first_bad is not None and "not deleted" in result.first_bad.problem


def test_a_deleted_first_event_is_named_as_a_referral(world: World) -> None:
    deleted = world.position_of("R-2024-0402", 1)
    world.attacker.run("DELETE FROM {table} WHERE {position} = ?", deleted)
    result = world.verify(with_checkpoint=False)
    first = next(f for f in result.findings if f.kind == "first-event-missing")
    assert (first.referral, first.version) == ("R-2024-0402", 2)


def test_a_deleted_first_event_of_a_referral_without_subjects_says_it_is_a_referral(world: World) -> None:
    world.attacker.run("DELETE FROM {table} WHERE {position} = ?", world.position_of("R-2024-0311", 1))
    first = next(f for f in world.verify(with_checkpoint=False).findings if f.kind == "first-event-missing")
    assert first.describe().startswith(f"referral stream {referral_id('R-2024-0311')}, version 2")


def test_after_a_deletion_the_leaf_file_names_the_removed_leaf_not_the_next_event(world: World) -> None:
    last = world.last_version("R-2024-0311")
    deleted = world.position_of("R-2024-0311", last)
    leaf = [r[0] for r in world.attacker.rows()].index(deleted)
    world.attacker.run("DELETE FROM {table} WHERE {position} = ?", deleted)
    result = world.verify()
    assert result.first_bad is not None
    assert (result.first_bad.kind, result.first_bad.leaf, result.first_bad.position) == ("checkpoint-leaf-removed", leaf, None)
    assert f"committed to at leaf {leaf} was removed" in result.first_bad.problem
    truncated = next(f for f in result.findings if f.kind == "checkpoint-truncated")
    assert "the last" not in truncated.problem  # the tail is intact: one event in the middle is gone


def test_guards_off_and_nothing_changed_verifies_and_says_so(world: World) -> None:
    result = world.verify()
    assert result.sound
    expected = "missing" if world.database.backend == "sqlite" else "disabled"
    assert set(result.guards.values()) == {expected}
    assert any("Append-only guards were not in force" in note for note in result.notes)
