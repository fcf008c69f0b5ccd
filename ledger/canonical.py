"""Canonical event encoding and hashes: the basis of the per-stream hash chain.

An event's canonical form is sorted-key JSON of its stream id, version, topic and every
field it stores (domain fields, both clocks, actor, provenance and the predecessor's hash),
with instants written as ISO 8601 (Z for UTC, microseconds when there are any). The same bytes are produced from a
domain event object (when it is recorded) and from the stored record (when it is verified),
so verification never trusts the decoding of the record it is checking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from ledger.transcoder import untag

#: the "predecessor hash" of the first event of every stream.
GENESIS = "0" * 64

#: not part of the canonical bytes: the stream and version (written as such), and the person's
#: signature, which is made over the event's hash (ledger.identity)
_NOT_FIELDS = frozenset({"originator_id", "originator_version", "signature"})
# instants as ISO 8601 with Z; orjson writes microseconds whenever there are any
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def _instant(value: Any) -> Any:
    # datetime subclasses (test clocks) are written as the plain instant they stand for
    # (as text: constructing a datetime here would loop when the class itself is patched)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def canonical_bytes(stream_id: UUID, version: int, topic: str, fields: Mapping[str, Any]) -> bytes:
    """Sorted-key JSON of the stream id, version, topic and fields (``fields`` holds
    instants as datetime objects)."""
    own = dict(fields)
    for key in _NOT_FIELDS:
        own.pop(key, None)
    document = {"stream": str(stream_id), "version": version, "topic": topic, "fields": own}
    return orjson.dumps(document, default=_instant, option=_OPTIONS)


def canonical_event(event: Any) -> bytes:
    """The canonical bytes of a domain event object."""
    return canonical_bytes(event.originator_id, event.originator_version, type(event).TOPIC, vars(event))


def canonical_stored(stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of a stored record (its state as the library wrote it)."""
    return canonical_bytes(stream_id, version, topic, untag(orjson.loads(state)))


def digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def event_hash(event: Any) -> str:
    return digest(canonical_event(event))


#: topics of the streams whose events carry ``prev_hash``: every stream the ledger writes
#: (referrals, subjects, each referral's subject directory, and the staff directory with
#: its units, people and index, the migration, and each referral's records file and
#: consultation log).
CHAINED_TOPIC_PREFIXES = (
    "refledger:Referral.",
    "refledger:Subject.",
    "refledger:SubjectDirectory.",
    "refledger:Unit.",
    "refledger:Person.",
    "refledger:StaffDirectory.",
    "refledger:StaffIndex.",
    "refledger:Migration.",
    "refledger:Records.",
    "refledger:Consultation.",
)


def head_bytes(stream: str, version: int, head: str) -> bytes:
    """One leaf of a checkpoint's tree of chain heads: sorted-key JSON of the stream id (as
    text), its number of events at the checkpoint and the hash of the last of them."""
    return orjson.dumps({"hash": head, "stream": stream, "version": version}, option=orjson.OPT_SORT_KEYS)
