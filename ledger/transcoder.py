"""The library's JSON stored format, written and read with orjson.

Stored state is exactly what eventsourcing's JSONTranscoder writes (instants tagged as
``{"_type_": "datetime_iso", "_data_": iso}``), so either transcoder reads what the other
wrote; orjson does it several times faster, which the import and verify paths need.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

_DATETIME = "datetime_iso"
_DECIMAL = "decimal_str"


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"_type_": _DATETIME, "_data_": value.isoformat()}
    if isinstance(value, Decimal):
        return {"_type_": _DECIMAL, "_data_": str(value)}
    raise TypeError(f"events carry primitive fields only, not {type(value).__name__}")


def untag(value: Any) -> Any:
    """Restore tagged values (in place for containers) in decoded stored state."""
    if isinstance(value, dict):
        kind = value.get("_type_")
        if kind is not None and len(value) == 2 and "_data_" in value:
            if kind == _DATETIME:
                return datetime.fromisoformat(value["_data_"])
            if kind == _DECIMAL:
                return Decimal(value["_data_"])
        for key, item in value.items():
            # most values are plain text: skip the slower isinstance for them (verify's hot path)
            if type(item) is not str and isinstance(item, dict | list):
                value[key] = untag(item)
        return value
    if isinstance(value, list):
        return [untag(item) if isinstance(item, dict | list) else item for item in value]
    return value


class OrjsonTranscoder(Transcoder):
    """Encodes and decodes event state in the library's JSON stored format."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_tag, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        return untag(orjson.loads(data))
