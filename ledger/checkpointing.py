"""Checkpoints as the ledger keeps them: made from the stored events (extending the stored
Merkle frontier), recorded in the checkpoint table, read back, and their leaf files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.canonical import canonical_stored
from ledger.checkpoint import Checkpoint, load_private_key
from ledger.errors import InvalidInput, LedgerTampered, first_words
from ledger.merkle import InvalidFrontierError, MerkleFrontier, leaf_hash
from ledger.values import iso

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.storage import Database, EventRow


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as the ledger keeps it: with its Merkle frontier and last log position."""

    checkpoint: Checkpoint
    position: int
    last_leaf: str | None
    frontier: MerkleFrontier

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> str:
        return self.checkpoint.root

    @property
    def time(self) -> str:
        return self.checkpoint.time


def _ensure_checkpoint_table(ledger: Ledger, database: Database) -> None:
    from ledger.storage import checkpoint_table_statements, execute_sql

    execute_sql(ledger, checkpoint_table_statements(database))


def _stored_from_row(row: Sequence[Any]) -> StoredCheckpoint:
    size, position, _root, last_leaf, frontier, checkpoint = row
    try:
        restored = MerkleFrontier.from_dict(orjson.loads(frontier))
    except (orjson.JSONDecodeError, InvalidFrontierError) as error:
        raise LedgerTampered(f"the stored checkpoint of size {size} is damaged ({first_words(error)}); run refledger verify") from None
    return StoredCheckpoint(Checkpoint.from_json(checkpoint, f"the stored checkpoint of size {size}"), int(position), last_leaf, restored)


def stored_checkpoints(ledger: Ledger, database: Database) -> list[StoredCheckpoint]:
    from ledger.storage import select_checkpoint_rows

    _ensure_checkpoint_table(ledger, database)
    return [_stored_from_row(row) for row in select_checkpoint_rows(ledger, database)]


def latest_checkpoint(ledger: Ledger, database: Database) -> StoredCheckpoint | None:
    """The newest checkpoint recorded in the ledger's database, if any."""
    from ledger.storage import select_checkpoint_rows

    _ensure_checkpoint_table(ledger, database)
    rows = select_checkpoint_rows(ledger, database, latest_only=True)
    return _stored_from_row(rows[0]) if rows else None


@dataclass(frozen=True)
class CheckpointMade:
    checkpoint: Checkpoint
    new_events: int


def make_checkpoint(ledger: Ledger, database: Database, private_key_pem: bytes | None = None) -> CheckpointMade:
    """Extend the stored Merkle frontier by the events since the last checkpoint, record a
    new checkpoint in the database and return it (signed when a key is given).

    Only the new events are hashed. Two cheap checks first refuse to extend a frontier whose
    events were removed, inserted or (the newest of them) changed since: those are for
    ``verify`` to locate, and a checkpoint must not bless them.
    """
    from ledger.storage import count_events_through, insert_checkpoint_row, read_event_rows

    if private_key_pem is not None:
        load_private_key(private_key_pem)  # a bad key fails before the work, not after
    latest = latest_checkpoint(ledger, database)
    frontier = latest.frontier.copy() if latest else MerkleFrontier()
    position = latest.position if latest else 0
    ledger_id = latest.checkpoint.ledger if latest else None
    last_leaf = latest.last_leaf if latest else None
    if latest is not None and latest.size:
        counted = count_events_through(ledger, database, latest.position)
        if counted != latest.size:
            raise LedgerTampered(
                f"{latest.size} events were checkpointed up to log position {latest.position}, but {counted} are there now: "
                "events were removed or inserted; run refledger verify --checkpoint with your last checkpoint file"
            )
        rows = [row for batch in read_event_rows(database, after=latest.position - 1, limit=1) for row in batch]
        if not rows or rows[0][0] != latest.position or _leaf_of_row(rows[0]).hex() != latest.last_leaf:
            raise LedgerTampered(
                f"the event at log position {latest.position}, the last one checkpointed, was changed or removed since; run refledger verify"
            )
    added = 0
    for batch in read_event_rows(database, after=position):
        for row in batch:
            leaf, digest_hex = _leaf_and_digest(row)
            if frontier.size == 0:
                ledger_id = digest_hex
            frontier.append(leaf)
            position, last_leaf = row[0], leaf.hex()
            added += 1
    if frontier.size == 0:
        raise InvalidInput("the ledger is empty: there is nothing to checkpoint yet")
    checkpoint = Checkpoint(frontier.size, frontier.root().hex(), iso(ledger.clock()), ledger_id)
    if private_key_pem is not None:
        checkpoint = checkpoint.signed_with(private_key_pem)
    insert_checkpoint_row(
        ledger,
        database,
        (
            checkpoint.size,
            position,
            checkpoint.root,
            last_leaf,
            orjson.dumps(frontier.to_dict()).decode(),
            orjson.dumps(checkpoint.as_dict()).decode(),
        ),
    )
    return CheckpointMade(checkpoint, added)


def _leaf_and_digest(row: EventRow) -> tuple[bytes, str]:
    """The Merkle leaf hash and hex digest of one stored row (as the scan computes them)."""
    _position, raw_id, version, topic, state = row
    try:
        canonical = canonical_stored(UUID(raw_id), version, topic, state)
    except (ValueError, TypeError, AttributeError):
        canonical = b"undecodable\x00" + bytes(state)
    event_digest = hashlib.sha256(canonical).digest()
    return leaf_hash(event_digest), event_digest.hex()


def _leaf_of_row(row: EventRow) -> bytes:
    return _leaf_and_digest(row)[0]


def checkpoint_leaves(database: Database, checkpoint: Checkpoint) -> bytes:
    """The leaf hashes of the checkpoint's first ``size`` events (32 bytes each), for an
    auditor to keep beside the checkpoint. Reads the whole ledger; refuses when the events
    no longer hash to the checkpoint's root."""
    from ledger.storage import read_event_rows

    leaves = bytearray()
    frontier = MerkleFrontier()
    for batch in read_event_rows(database):
        for row in batch:
            if frontier.size == checkpoint.size:
                break
            leaf = _leaf_of_row(row)
            frontier.append(leaf)
            leaves += leaf
        if frontier.size == checkpoint.size:
            break
    if frontier.size != checkpoint.size or frontier.root().hex() != checkpoint.root:
        raise LedgerTampered("the stored events no longer hash to the checkpoint's root; run refledger verify")
    return bytes(leaves)
