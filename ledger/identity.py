"""Who recorded an event: the login that inserted it, and the person's signature.

- **Login** (``inserted_by``, a field of every event, in its canonical bytes): PostgreSQL's
  ``session_user`` (the storage layer asks the database, and a trigger refuses a row that
  names another), or on SQLite, which has no logins, the operating-system account.
- **Signature** (``signature``, stored with the event but outside its canonical bytes): an
  Ed25519 signature by the actor's registered key over ``SIGNED_PREFIX`` and the event's
  hash. Keys are registered and revoked by events of the person's stream
  (``Person.KeyRegistered`` / ``Person.KeyRevoked``); ``KeyRing`` folds them in log order.

Nothing here reads the ledger or a database.
"""

from __future__ import annotations

import base64
import getpass
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.checkpoint import load_private_key
from ledger.errors import InvalidInput

#: what a person's key signs: these bytes, then the event's hash (64 lower-case hex digits)
SIGNED_PREFIX = b"referral-ledger event\n"
#: the stored field that holds the signature (base64 of the 64-byte Ed25519 signature)
SIGNATURE_FIELD = "signature"


def os_login() -> str | None:
    """The operating-system account running this process (None if it cannot be told)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def signed_message(event_hash: str) -> bytes:
    return SIGNED_PREFIX + event_hash.encode("ascii")


def checked_public_key(text: str) -> str:
    """An Ed25519 public key as 64 lower-case hex digits (InvalidInput otherwise)."""
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput("a public key is 64 hex digits (the raw Ed25519 key; keygen prints it)")
    return value


@dataclass(frozen=True)
class Signer:
    """A person's private key, loaded once: signs the hashes of the events they record."""

    key: Any
    public_key: str  # hex of the raw 32 bytes

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        from cryptography.hazmat.primitives import serialization

        key = load_private_key(pem)
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        return cls(key, public)

    def sign(self, event_hash: str) -> str:
        return base64.b64encode(self.key.sign(signed_message(event_hash))).decode("ascii")


def signature_holds(public_key_hex: str, signature: object, event_hash: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(signature, str):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            base64.b64decode(signature, validate=True), signed_message(event_hash)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class KeyRing:
    """Each person's keys in force, as registrations and revocations are met in log order."""

    keys: dict[str, set[str]] = field(default_factory=dict)

    def register(self, person: str, public_key: str) -> None:
        self.keys.setdefault(person, set()).add(public_key)

    def revoke(self, person: str, public_key: str) -> None:
        self.keys.get(person, set()).discard(public_key)

    def in_force(self, person: str) -> set[str]:
        return self.keys.get(person, set())

    def holds(self, person: str, signature: object, event_hash: str) -> bool:
        """Whether ``signature`` verifies with one of the person's keys in force now."""
        return any(signature_holds(key, signature, event_hash) for key in self.in_force(person))


def key_refusal(person: str, keys_in_force: Iterable[str], public_key: str) -> tuple[str, str] | None:
    """(rule id, reason) if ``public_key`` cannot sign for ``person`` now."""
    if public_key not in set(keys_in_force):
        return ("signing-key-registered", f"the signing key {public_key[:16]}… is not a key of {person} in force")
    return None


def unsigned_events(batches: Iterable[Iterable[tuple[int, str, int, str, bytes]]], topics: frozenset[str]) -> list[dict[str, Any]]:
    """Every stored event of ``topics`` that carries no signature, in log order (whether a
    signature that is there verifies is ``verify``'s question)."""
    import orjson

    found = []
    for batch in batches:
        for position, stream, version, topic, state in batch:
            if topic not in topics:
                continue
            try:
                fields = orjson.loads(state)
            except orjson.JSONDecodeError:
                continue  # verify names an undecodable row
            if not isinstance(fields, dict) or fields.get(SIGNATURE_FIELD) is not None:
                continue
            actor = fields.get("actor")
            if not isinstance(actor, dict):
                actor = {}
            found.append(
                {
                    "position": position,
                    "stream": str(stream),
                    "version": version,
                    "topic": topic.removeprefix("refledger:"),
                    "person": actor.get("person"),
                    "historical": fields.get("source_recorded_at") is not None,
                    "login": fields.get("inserted_by"),
                }
            )
    return found
