"""Checkpoints as the ledger keeps them: made from the stored events (extending the stored
Merkle frontier), recorded in the checkpoint table, read back, and their leaf files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.canonical import canonical_stored, head_bytes
from ledger.checkpoint import Checkpoint, load_private_key
from ledger.errors import InvalidInput, LedgerTampered, first_words
from ledger.merkle import InvalidFrontierError, MerkleFrontier, leaf_hash, merkle_root
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
    from ledger.storage import ensure_checkpoint_table

    ensure_checkpoint_table(ledger, database)


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


@dataclass(frozen=True)
class PreparedCheckpoint:
    """A checkpoint computed from the stored events, not yet recorded in the database."""

    checkpoint: Checkpoint
    new_events: int
    position: int
    last_leaf: str
    frontier: MerkleFrontier


def prepare_checkpoint(ledger: Ledger, database: Database, private_key_pem: bytes | None = None) -> PreparedCheckpoint:
    """Recompute the Merkle tree and every stream's chain head from the stored events and
    return the checkpoint of them (signed when a key is given), without recording it.

    Nothing stored is trusted: the tree is rebuilt from the events (the stored frontier is
    not extended), and the newest stored checkpoint must be a prefix of it. Events removed,
    inserted or changed since are for ``verify`` to locate; a checkpoint must not bless them.
    """
    from ledger.storage import read_event_rows

    if private_key_pem is not None:
        load_private_key(private_key_pem)  # a bad key fails before the work, not after
    latest = latest_checkpoint(ledger, database)
    frontier = MerkleFrontier()
    ledger_id: str | None = None
    position, last_leaf = 0, ""
    heads: dict[str, tuple[int, str]] = {}
    texts: dict[str, str] = {}
    for batch in read_event_rows(database):
        for row in batch:
            leaf, digest_hex = _leaf_and_digest(row)
            if frontier.size == 0:
                ledger_id = digest_hex
            frontier.append(leaf)
            position, last_leaf = row[0], leaf.hex()
            raw = row[1]
            text = texts.get(raw)
            if text is None:
                text = texts[raw] = _stream_text(raw)
            heads[text] = (row[2], digest_hex)
            if latest is not None and frontier.size == latest.size:
                _check_prefix(latest, frontier, position)
    if latest is not None and frontier.size < latest.size:
        raise LedgerTampered(
            f"{latest.size} events were checkpointed but {frontier.size} are there now: events were removed; "
            "run refledger verify --checkpoint with your last checkpoint file"
        )
    if frontier.size == 0:
        raise InvalidInput("the ledger is empty: there is nothing to checkpoint yet")
    checkpoint = Checkpoint(
        frontier.size, frontier.root().hex(), iso(ledger.clock()), ledger_id, streams=len(heads), heads=heads_root(heads).hex()
    )
    if private_key_pem is not None:
        checkpoint = checkpoint.signed_with(private_key_pem)
    return PreparedCheckpoint(checkpoint, frontier.size - (latest.size if latest else 0), position, last_leaf, frontier)


def _check_prefix(latest: StoredCheckpoint, frontier: MerkleFrontier, position: int) -> None:
    if frontier.root().hex() != latest.root or position != latest.position:
        raise LedgerTampered(
            f"the first {latest.size} events no longer hash to the newest stored checkpoint's root: events checkpointed then "
            "were changed, removed, inserted or reordered since (or that checkpoint was altered); run refledger verify"
        )


def _stream_text(raw: str) -> str:
    try:
        return str(UUID(raw))  # the form canonical bytes write (SQLite stores bare hex)
    except ValueError:
        return raw


def heads_root(heads: dict[str, tuple[int, str]]) -> bytes:
    """The root of the tree of chain heads: one leaf per stream, in stream id order."""
    return merkle_root(head_leaves(heads))


def head_leaves(heads: dict[str, tuple[int, str]]) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(head_bytes(stream, *heads[stream])).digest()) for stream in sorted(heads)]


def record_checkpoint(ledger: Ledger, database: Database, prepared: PreparedCheckpoint) -> None:
    """Store a prepared checkpoint (with its frontier) in the checkpoint table."""
    from ledger.storage import insert_checkpoint_row

    checkpoint = prepared.checkpoint
    insert_checkpoint_row(
        ledger,
        database,
        (
            checkpoint.size,
            prepared.position,
            checkpoint.root,
            prepared.last_leaf,
            orjson.dumps(prepared.frontier.to_dict()).decode(),
            orjson.dumps(checkpoint.as_dict()).decode(),
        ),
    )


def make_checkpoint(ledger: Ledger, database: Database, private_key_pem: bytes | None = None) -> CheckpointMade:
    """Compute a checkpoint from the stored events, record it and return it."""
    prepared = prepare_checkpoint(ledger, database, private_key_pem)
    record_checkpoint(ledger, database, prepared)
    return CheckpointMade(prepared.checkpoint, prepared.new_events)


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
