"""Proofs for one referral: its events with inclusion proofs against the newest stored
checkpoint, exported as one file and checked offline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.canonical import CHAINED_TOPIC_PREFIXES, GENESIS, canonical_bytes
from ledger.checkpoint import SIGNATURE_PROBLEMS, Checkpoint
from ledger.checkpointing import latest_checkpoint
from ledger.errors import InvalidInput, LedgerTampered, NotFound
from ledger.merkle import leaf_hash, merkle_root, node_hash, verify_inclusion
from ledger.transcoder import untag

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.storage import Database

PROOF_FORMAT = "refledger-proof/1"


def export_proof(ledger: Ledger, database: Database, reference: str) -> dict[str, Any]:
    """One referral's events (its stream, its subjects' streams, its subject directory) with
    inclusion proofs against the newest stored checkpoint, checkable offline."""
    from ledger.storage import read_event_rows
    from ledger.subject import directory_id
    from ledger.values import referral_id

    latest = latest_checkpoint(ledger, database)
    if latest is None:
        raise InvalidInput("there is no checkpoint yet: run refledger checkpoint first")
    size = latest.size
    wanted = {referral_id(reference), directory_id(reference)}
    ids: dict[str, UUID | None] = {}
    selected: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    later = 0
    for batch in read_event_rows(database):
        for position, raw_id, version, topic, state in batch:
            if raw_id not in ids:
                ids[raw_id] = _uuid_or_none(raw_id)
            stream = ids[raw_id]
            if len(leaves) >= size:
                if version == 1 and topic.startswith("refledger:Subject.") and _names_referral(state, reference):
                    wanted.add(stream)  # type: ignore[arg-type]
                later += stream in wanted
                continue
            try:
                fields = untag(orjson.loads(state))
                canonical = canonical_bytes(stream or raw_id, version, topic, fields)  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError):
                fields, canonical = None, b"undecodable\x00" + bytes(state)
            event_digest = hashlib.sha256(canonical).digest()
            leaves.append(leaf_hash(event_digest))
            if version == 1 and topic.startswith("refledger:Subject.") and isinstance(fields, dict) and fields.get("referral") == reference:
                wanted.add(stream)  # type: ignore[arg-type]
            if stream in wanted:
                selected.append(
                    {
                        "leaf": len(leaves) - 1,
                        "position": position,
                        "stream": str(stream),
                        "version": version,
                        "topic": topic,
                        "hash": event_digest.hex(),
                        # the exact bytes that were hashed, so any tool can check them
                        "canonical": canonical.decode(),
                    }
                )
    if len(leaves) < size or merkle_root(leaves).hex() != latest.root:
        raise LedgerTampered("the stored events no longer hash to the newest checkpoint's root; run refledger verify")
    if not selected:
        raise NotFound(f"referral {reference} has no events covered by the newest checkpoint (size {size})")
    levels = _tree_levels(leaves)
    for event in selected:
        event["inclusion_proof"] = [h.hex() for h in _audit_path(levels, event["leaf"])]
    return {
        "format": PROOF_FORMAT,
        "referral": reference,
        "checkpoint": latest.checkpoint.as_dict(),
        "events": selected,
        "events_after_checkpoint": later,
    }


def _names_referral(state: bytes, reference: str) -> bool:
    try:
        fields = orjson.loads(state)
    except orjson.JSONDecodeError:
        return False
    return isinstance(fields, dict) and fields.get("referral") == reference


def _uuid_or_none(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


def _tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 6962 tree, leaves first (an odd last node is promoted)."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            parents.append(level[-1])
        levels.append(parents)
    return levels


def _audit_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """PATH(index) from prebuilt levels: the same hashes as merkle.inclusion_proof, in
    O(log n) instead of O(n) per proof."""
    path: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


@dataclass(frozen=True)
class ProofCheck:
    """The outcome of checking an exported proof file offline."""

    referral: str
    checkpoint: Checkpoint
    signature: str
    events: int
    findings: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.sound,
            "referral": self.referral,
            "events": self.events,
            "checkpoint": self.checkpoint.as_dict(),
            "signature_status": self.signature,
            "findings": list(self.findings),
        }


def verify_proof(document: object, public_key: bytes | None = None) -> ProofCheck:
    """Check a proof file: every event hashes to the leaf its inclusion proof places under
    the checkpoint's root, its stream's chain links hold, and the signature (if any)."""
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise InvalidInput(f"not a proof file (its format is not {PROOF_FORMAT})")
    checkpoint = Checkpoint.from_dict(document.get("checkpoint"))
    events = document.get("events")
    if not isinstance(events, list):
        raise InvalidInput("a proof file holds a list of events")
    findings: list[str] = []
    status = checkpoint.signature_status(public_key)
    if status in ("invalid", "wrong-key") or (status == "unsigned" and public_key is not None):
        findings.append(SIGNATURE_PROBLEMS[status])
    root = bytes.fromhex(checkpoint.root)
    heads: dict[str, tuple[int, str]] = {}
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            findings.append(f"event {number} is not an object")
            continue
        text = event.get("canonical")
        where = f"event {number} (stream {event.get('stream')}, version {event.get('version')}, leaf {event.get('leaf')})"
        try:
            canonical = text.encode() if isinstance(text, str) else b""
            canonical_doc = orjson.loads(canonical)
        except orjson.JSONDecodeError:
            canonical_doc = None
        if not isinstance(canonical_doc, dict):
            findings.append(f"{where}: it carries no canonical form")
            continue
        event_digest = hashlib.sha256(canonical).digest()
        if event_digest.hex() != event.get("hash"):
            findings.append(f"{where}: its content does not hash to the hash it names")
        proof = event.get("inclusion_proof")
        leaf = event.get("leaf")
        try:
            path = [bytes.fromhex(h) for h in proof] if isinstance(proof, list) else None
        except (ValueError, TypeError):
            path = None
        if path is None or not isinstance(leaf, int) or not verify_inclusion(leaf_hash(event_digest), leaf, checkpoint.size, path, root):
            findings.append(f"{where}: its inclusion proof does not lead to the checkpoint's root")
        stream, version = canonical_doc.get("stream"), canonical_doc.get("version")
        if (stream, version) != (event.get("stream"), event.get("version")):
            findings.append(f"{where}: the stream or version it names differs from its canonical form")
        fields = canonical_doc.get("fields")
        topic = canonical_doc.get("topic")
        if isinstance(stream, str) and isinstance(version, int) and isinstance(topic, str) and topic.startswith(CHAINED_TOPIC_PREFIXES):
            prev = fields.get("prev_hash") if isinstance(fields, dict) else None
            expected = heads.get(stream, (0, GENESIS))
            if version != expected[0] + 1:
                findings.append(f"{where}: the proof skips from version {expected[0]} to {version} of this stream")
            elif prev != expected[1]:
                findings.append(f"{where}: its prev_hash does not match the hash of version {expected[0]}")
            heads[stream] = (version, event_digest.hex())
    reference = document.get("referral")
    return ProofCheck(str(reference), checkpoint, status, len(events), tuple(findings))
