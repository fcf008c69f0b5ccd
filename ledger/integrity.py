"""Canonical event encoding and hashes: the basis of the per-stream hash chain.

An event's canonical form is sorted-key JSON of its stream id, version, topic and every
field it stores (domain fields, both clocks, actor, provenance and the predecessor's hash),
with instants written as ISO 8601 UTC with microseconds. The same bytes are produced from a
domain event object (when it is recorded) and from the stored record (when it is verified),
so verification never trusts the decoding of the record it is checking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

#: the "predecessor hash" of the first event of every stream.
GENESIS = "0" * 64

_NOT_FIELDS = ("originator_id", "originator_version")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dict):
        if value.keys() == {"_type_", "_data_"} and value["_type_"] == "datetime_iso":
            # the stored (transcoded) form of a datetime
            return _plain(datetime.fromisoformat(value["_data_"]))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return value


def canonical_bytes(stream_id: UUID, version: int, topic: str, fields: Mapping[str, Any]) -> bytes:
    document = {
        "stream": str(stream_id),
        "version": version,
        "topic": topic,
        "fields": {k: _plain(v) for k, v in fields.items() if k not in _NOT_FIELDS},
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def canonical_event(event: Any) -> bytes:
    """The canonical bytes of a domain event object."""
    return canonical_bytes(event.originator_id, event.originator_version, type(event).TOPIC, vars(event))


def canonical_stored(stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of a stored record (its state as the library wrote it)."""
    return canonical_bytes(stream_id, version, topic, orjson.loads(state))


def digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def event_hash(event: Any) -> str:
    return digest(canonical_event(event))
