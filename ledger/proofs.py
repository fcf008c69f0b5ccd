"""Proofs for one referral: its events with inclusion proofs against the newest stored
checkpoint, exported as one file and checked offline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.canonical import CHAINED_TOPIC_PREFIXES, GENESIS, canonical_bytes, head_bytes
from ledger.checkpoint import SIGNATURE_PROBLEMS, Checkpoint
from ledger.checkpointing import head_leaves, heads_root, latest_checkpoint
from ledger.errors import InvalidInput, LedgerTampered, NotFound
from ledger.merkle import leaf_hash, merkle_root, node_hash, verify_inclusion
from ledger.transcoder import untag

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.storage import Database

#: version 2 commits to the referral's streams and their lengths (through the checkpoint's
#: tree of chain heads); version 1 bundles, which did not, are refused
PROOF_FORMAT = "refledger-proof/2"


def export_proof(ledger: Ledger, database: Database, reference: str) -> dict[str, Any]:
    """One referral's events (its stream, its subjects' streams, its subject directory) with
    inclusion proofs against the newest stored checkpoint, checkable offline."""
    from ledger.storage import read_event_rows
    from ledger.subject import directory_id
    from ledger.values import referral_id

    latest = latest_checkpoint(ledger, database)
    if latest is None:
        raise InvalidInput("there is no checkpoint yet: run refledger checkpoint first")
    if latest.checkpoint.heads is None:
        raise InvalidInput("the newest checkpoint predates stream heads, which a proof needs: run refledger checkpoint again")
    size = latest.size
    heads: dict[str, tuple[int, str]] = {}
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
            heads[str(stream or raw_id)] = (version, event_digest.hex())
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
    if heads_root(heads).hex() != latest.checkpoint.heads:
        raise LedgerTampered("the stored events' stream heads no longer match the newest checkpoint; run refledger verify")
    if referral_id(reference) not in ids.values() or not any(e["stream"] == str(referral_id(reference)) for e in selected):
        raise NotFound(f"referral {reference} has no events covered by the newest checkpoint (size {size})")
    levels = _tree_levels(leaves)
    for event in selected:
        event["inclusion_proof"] = [h.hex() for h in _audit_path(levels, event["leaf"])]
    order = sorted(heads)
    head_levels = _tree_levels(head_leaves(heads))
    streams = [_stream_entry(stream, heads, order, head_levels) for stream in sorted(wanted_streams(reference, selected))]
    return {
        "format": PROOF_FORMAT,
        "referral": reference,
        "checkpoint": latest.checkpoint.as_dict(),
        "streams": streams,
        "events": selected,
        "events_after_checkpoint": later,
    }


def wanted_streams(reference: str, events: list[dict[str, Any]]) -> set[str]:
    """The streams a referral's bundle must account for: the referral's, its subject
    directory's, and one per subject the directory lists (ids as text)."""
    from ledger.subject import directory_id
    from ledger.values import referral_id, subject_id

    wanted = {str(referral_id(reference)), str(directory_id(reference))}
    directory = str(directory_id(reference))
    for event in events:
        if event.get("stream") != directory:
            continue
        try:
            fields = orjson.loads(event["canonical"]).get("fields", {})
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            continue
        if isinstance(fields, dict) and isinstance(fields.get("subject"), str):
            wanted.add(str(subject_id(reference, fields["subject"])))
    return wanted


def _head(stream: str, heads: dict[str, tuple[int, str]], order: list[str], levels: list[list[bytes]]) -> dict[str, Any]:
    index = order.index(stream)
    version, head = heads[stream]
    return {"index": index, "stream": stream, "version": version, "hash": head, "proof": [h.hex() for h in _audit_path(levels, index)]}


def _stream_entry(stream: str, heads: dict[str, tuple[int, str]], order: list[str], levels: list[list[bytes]]) -> dict[str, Any]:
    """A stream's head with its inclusion proof in the checkpoint's tree of heads; for a
    stream the ledger does not have (a referral without subjects has no directory), the
    two neighbouring heads in stream id order, which prove it absent."""
    if stream in heads:
        return {"stream": stream, "head": _head(stream, heads, order, levels)}
    from bisect import bisect_left

    at = bisect_left(order, stream)
    return {
        "stream": stream,
        "head": None,
        "before": _head(order[at - 1], heads, order, levels) if at > 0 else None,
        "after": _head(order[at], heads, order, levels) if at < len(order) else None,
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
    if isinstance(document, dict) and document.get("format") == "refledger-proof/1":
        raise InvalidInput(
            "this proof file is of the older format, which does not prove it is complete: export it again with refledger proof"
        )
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise InvalidInput(f"not a proof file (its format is not {PROOF_FORMAT})")
    checkpoint = Checkpoint.from_dict(document.get("checkpoint"))
    events = document.get("events")
    if not isinstance(events, list):
        raise InvalidInput("a proof file holds a list of events")
    if not isinstance(document.get("referral"), str) or not isinstance(document.get("streams"), list):
        raise InvalidInput("a proof file names its referral and lists its streams")
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
    reference = document["referral"]
    findings += _completeness(reference, checkpoint, document["streams"], [e for e in events if isinstance(e, dict)], heads)
    return ProofCheck(str(reference), checkpoint, status, len(events), tuple(findings))


def _completeness(
    reference: str, checkpoint: Checkpoint, streams: list[Any], events: list[dict[str, Any]], seen: dict[str, tuple[int, str]]
) -> list[str]:
    """Every stream of the referral is in the bundle up to the head the checkpoint committed
    to, and no stream is left out: a dropped event, a dropped stream or a relabelled bundle
    fails here."""
    if checkpoint.heads is None or checkpoint.streams is None:
        return ["the checkpoint commits to no stream heads: the bundle cannot show it is complete"]
    findings: list[str] = []
    root, count = bytes.fromhex(checkpoint.heads), checkpoint.streams
    given = {entry["stream"]: entry for entry in streams if isinstance(entry, dict) and isinstance(entry.get("stream"), str)}
    for stream in sorted(wanted_streams(reference, events)):
        entry = given.get(stream)
        if entry is None:
            findings.append(f"the bundle leaves out stream {stream} of referral {reference}, which it must account for")
            continue
        head = entry.get("head")
        if head is None:
            before, after = entry.get("before"), entry.get("after")
            if not _absent(stream, before, after, count, root):
                findings.append(f"stream {stream} of referral {reference} is said to be absent, but its neighbours do not prove it")
            elif stream in seen:
                findings.append(f"stream {stream} of referral {reference} is said to be absent, but the bundle holds events of it")
            continue
        if not _head_holds(head, count, root) or head.get("stream") != stream:
            findings.append(f"the head of stream {stream} of referral {reference} is not in the checkpoint's tree of heads")
            continue
        if seen.get(stream) != (head["version"], head["hash"]):
            have = seen.get(stream, (0, GENESIS))[0]
            findings.append(
                f"stream {stream} of referral {reference} had {head['version']} events at the checkpoint, "
                f"but the bundle proves {have} of them ending at its head: events were left out"
            )
    return findings


def _head_holds(head: object, count: int, root: bytes) -> bool:
    if not isinstance(head, dict):
        return False
    stream, version, value, index, proof = (head.get(k) for k in ("stream", "version", "hash", "index", "proof"))
    if not (isinstance(stream, str) and isinstance(version, int) and isinstance(value, str) and isinstance(index, int)):
        return False
    try:
        path = [bytes.fromhex(h) for h in proof] if isinstance(proof, list) else None
    except (ValueError, TypeError):
        return False
    leaf = leaf_hash(hashlib.sha256(head_bytes(stream, version, value)).digest())
    return path is not None and 0 <= index < count and verify_inclusion(leaf, index, count, path, root)


def _absent(stream: str, before: Any, after: Any, count: int, root: bytes) -> bool:
    """Neighbouring heads in stream id order, both proven, bracket the stream: it has none."""
    if before is not None and not (_head_holds(before, count, root) and before["stream"] < stream):
        return False
    if after is not None and not (_head_holds(after, count, root) and after["stream"] > stream):
        return False
    low = before["index"] if before is not None else -1
    high = after["index"] if after is not None else count
    return high == low + 1 and (before is not None or high == 0) and (after is not None or low == count - 1)
