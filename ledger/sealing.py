"""Sealed free text: each referral's words under its own data key, that key under the ledger's.

What is sealed (one rule, ``sealed_field``): the free-text fields of referral and subject
events (``FREE_TEXT_FIELDS``) and any field the policy's ``[records] sealed_fields`` lists,
also inside a correction's ``corrected`` values. A sealed value is a string of the form
``sealed:1:<key id>:<base64url(nonce ‖ AES-GCM ciphertext ‖ tag)>``; the key id is the
referral's stream id (hex) and the associated data is ``<key id>:<field name>``, so a
sealed value moved to another field or referral does not open. The event stores that
string: its canonical bytes, the chains, the Merkle tree, checkpoints and proofs all cover
the ciphertext, and they verify whether or not the key still exists.

Keys: a referral's 256-bit data key is wrapped (RFC 3394 AES key wrap) by the ledger data
key and kept in a key table outside the hashed events (``KeyStore``: ``ledger.storage_keys``
on each backend), so that disposal can destroy it. A ``ledger`` row holds a check value
wrapped by the ledger key: it marks a ledger whose free text is sealed, and tells a wrong
ledger key from the right one before anything is read or written.

Reading (``Seals.opened``) gives copies of events with plaintext in place of the sealed
values; without the ledger key a sealed value reads ``WITHHELD``, after the referral's
disposal ``[disposed <date> by <actor>]``. Never garbage: a value that does not open is an
error naming the key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ledger.errors import LedgerError, RuleViolation

#: the free-text fields of referral and subject events (notes, rationales, review progress,
#: request summaries, reasons, issues, statements, force actions, and corrections' reasons)
FREE_TEXT_FIELDS = frozenset({"text", "rationale", "progress", "summary", "reason", "issue", "statement", "action"})
#: fields that can never be sealed: what the folds and the chain read
NEVER_SEALED = frozenset(
    {
        "occurred_at",
        "actor",
        "source_recorded_at",
        "source",
        "prev_hash",
        "timestamp",
        "originator_id",
        "originator_version",
        "reference",
        "referral",
        "subject",
        "target_version",
        "corrected",
        "late_reason",
    }
)
PREFIX = "sealed:1:"
WITHHELD = "[withheld: no data key]"
LEDGER_KEY_ROW = "ledger"
KEY_FILE_HEADER = "refledger-data-key-1"
_CHECK = hashlib.sha256(b"refledger ledger data key check").digest()
_NONCE = 12


class DataKeyError(LedgerError):
    """The ledger data key is missing, unreadable or not this ledger's."""


class KeyStore(Protocol):
    """Wrapped keys by key id, outside the hashed events."""

    def get(self, key_id: str) -> bytes | None: ...

    def put(self, key_id: str, wrapped: bytes) -> None: ...

    def destroy(self, key_id: str) -> None: ...


class MemoryKeyStore:
    """A ``KeyStore`` in memory (a ledger in memory: tests, benchmarks)."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}

    def get(self, key_id: str) -> bytes | None:
        return self.rows.get(key_id)

    def put(self, key_id: str, wrapped: bytes) -> None:
        self.rows[key_id] = wrapped

    def destroy(self, key_id: str) -> None:
        self.rows.pop(key_id, None)


def new_data_key_text() -> str:
    """The contents of a new ledger data key file (256 random bits)."""
    return f"{KEY_FILE_HEADER} {base64.b64encode(os.urandom(32)).decode()}\n"


def load_data_key(path: Path) -> bytes:
    """The 32 bytes of a data key file (``keygen --data-key``); one-line errors naming the file."""
    try:
        text = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a data key file"
        raise DataKeyError(f"cannot read the data key {path}: {reason}") from None
    header, _, body = text.partition(" ")
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if header != KEY_FILE_HEADER or len(key) != 32:
        raise DataKeyError(f"{path} is not a data key file (make one with 'refledger keygen --data-key --out FILE')")
    return key


def key_id(stream_id: UUID) -> str:
    return stream_id.hex


def sealed_field(name: str, extra: frozenset[str]) -> bool:
    """The rule: is this event field stored sealed?"""
    return name not in NEVER_SEALED and (name in FREE_TEXT_FIELDS or name in extra)


def is_sealed(value: Any) -> bool:
    return type(value) is str and value.startswith(PREFIX)


class Seals:
    """The sealing of one opened ledger: its key store, the ledger key if given, the fields."""

    def __init__(self, store: KeyStore | None, ledger_key: bytes | None, key_source: str, extra_fields: Iterable[str] = ()) -> None:
        self.store = store
        self.ledger_key = ledger_key
        self.key_source = key_source
        self.extra_fields = frozenset(extra_fields)
        #: the field names ``seal_fields`` looks at (``sealed_field``, and a correction's values)
        self._sealable = frozenset(name for name in FREE_TEXT_FIELDS | self.extra_fields if sealed_field(name, self.extra_fields)) | {
            "corrected"
        }
        self._keys: dict[str, AESGCM | None] = {}
        self._marker_pending = False
        marker = None if store is None else store.get(LEDGER_KEY_ROW)
        #: whether this ledger's free text is sealed (its first event was recorded with a key)
        self.sealed_ledger = marker is not None
        if marker is not None and ledger_key is not None and self._unwrap(marker) != _CHECK:
            raise DataKeyError(f"the data key {key_source} is not this ledger's key")

    def _unwrap(self, wrapped: bytes) -> bytes:
        assert self.ledger_key is not None
        try:
            return aes_key_unwrap(self.ledger_key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise DataKeyError(f"the data key {self.key_source} is not this ledger's key") from None

    # --- recording -----------------------------------------------------------------

    def before_recording(self, ledger_is_empty: bool) -> None:
        """The rule ``data-key-required``: a sealed ledger records only with its key; a
        ledger started without one stays unsealed."""
        if self.sealed_ledger and self.ledger_key is None:
            raise RuleViolation(
                "data-key-required", "this ledger seals its free text: give its data key (--data-key FILE or REFLEDGER_DATA_KEY)"
            )
        if self.ledger_key is not None and not self.sealed_ledger:
            if not ledger_is_empty:
                raise RuleViolation(
                    "data-key-from-start",
                    f"this ledger's first event was recorded without a data key; its free text is not sealed (leave out {self.key_source})",
                )
            if self.store is None:
                raise DataKeyError("this ledger has no key table and cannot be written")
            self.sealed_ledger = self._marker_pending = True

    def before_saving(self) -> None:
        """Mark the ledger as sealed with its first saved event (a refused command writes nothing)."""
        if self._marker_pending and self.store is not None and self.ledger_key is not None:
            self.store.put(LEDGER_KEY_ROW, aes_key_wrap(self.ledger_key, _CHECK))
            self._marker_pending = False

    def seal_fields(self, stream_id: UUID, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` with every sealed field's text sealed under the referral's key."""
        if not self.sealed_ledger:
            return fields
        wanted = fields.keys() & self._sealable
        if not wanted:
            return fields
        out = dict(fields)
        for name in wanted:
            value = fields[name]
            if name == "corrected":
                if isinstance(value, dict):
                    out[name] = {k: self._seal(stream_id, k, v) if sealed_field(k, self.extra_fields) else v for k, v in value.items()}
            else:
                out[name] = self._seal(stream_id, name, value)
        return out

    def _seal(self, stream_id: UUID, name: str, value: Any) -> Any:
        if type(value) is not str or not value:
            return value
        kid = key_id(stream_id)
        cipher = self._cipher(kid, create=True)
        assert cipher is not None
        nonce = os.urandom(_NONCE)
        body = cipher.encrypt(nonce, value.encode("utf-8"), f"{kid}:{name}".encode())
        return PREFIX + kid + ":" + base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")

    def _cipher(self, kid: str, *, create: bool = False) -> AESGCM | None:
        """The referral's cipher (None: its key was destroyed, or there is no ledger key)."""
        if kid in self._keys:
            return self._keys[kid]
        if self.ledger_key is None or self.store is None:
            return None
        wrapped = self.store.get(kid)
        if wrapped is None and create:
            wrapped = aes_key_wrap(self.ledger_key, os.urandom(32))
            self.store.put(kid, wrapped)
        cipher = None if wrapped is None else AESGCM(self._unwrap(wrapped))
        self._keys[kid] = cipher
        return cipher

    def forget(self) -> None:
        """Drop the keys read or made so far (after a rolled-back transaction that wrote some)."""
        self._keys.clear()
        self.sealed_ledger = self.store is not None and self.store.get(LEDGER_KEY_ROW) is not None
        self._marker_pending = False

    def destroy(self, stream_id: UUID) -> None:
        """Destroy the referral's data key: its sealed text can never be read again."""
        if self.store is None:
            raise DataKeyError("this ledger has no key table and cannot be written")
        kid = key_id(stream_id)
        self.store.destroy(kid)
        self._keys[kid] = None

    # --- reading ---------------------------------------------------------------------

    def open_value(self, name: str, value: Any, disposed: str | None) -> Any:
        if not is_sealed(value):
            return value
        if disposed is not None:
            return disposed
        kid, _, body = value[len(PREFIX) :].partition(":")
        cipher = self._cipher(kid)
        if cipher is None:
            return WITHHELD if self.ledger_key is None else "[key destroyed]"
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], f"{kid}:{name}".encode()).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            raise DataKeyError(f"a sealed {name} does not open with the data key {self.key_source}") from None

    def opened(self, events: Iterable[Any], disposed: str | None = None) -> list[Any]:
        """Copies of ``events`` whose sealed values read as plaintext (or withheld, or disposed)."""
        out = []
        for event in events:
            state: Mapping[str, Any] = vars(event)
            if not any(is_sealed(v) or (k == "corrected" and isinstance(v, dict)) for k, v in state.items()):
                out.append(event)
                continue
            copy = object.__new__(type(event))
            opened = dict(state)
            for name, value in state.items():
                if name == "corrected" and isinstance(value, dict):
                    opened[name] = {k: self.open_value(k, v, disposed) for k, v in value.items()}
                else:
                    opened[name] = self.open_value(name, value, disposed)
            object.__setattr__(copy, "__dict__", opened)
            out.append(copy)
        return out
