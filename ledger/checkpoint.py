"""A checkpoint (a signed tree head: the ledger's size and Merkle root at a time) and its
Ed25519 keys and signature. Nothing here reads the ledger."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ledger.errors import InvalidInput, first_words
from ledger.values import parse_instant

CHECKPOINT_FIELDS = ("size", "root", "time", "ledger", "signature", "public_key")
#: what a checkpoint says of the streams at its size: how many, and the root of the tree of
#: their chain heads (see ledger.canonical.head_bytes); absent from checkpoints made before
HEADS_FIELDS = ("streams", "heads")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the ledger's size and Merkle root at a time (an STH)."""

    size: int
    root: str
    time: str
    ledger: str | None
    signature: str | None = None
    public_key: str | None = None
    streams: int | None = None
    heads: str | None = None

    def _fields(self) -> tuple[str, ...]:
        return CHECKPOINT_FIELDS + HEADS_FIELDS if self.heads is not None else CHECKPOINT_FIELDS

    def signed_bytes(self) -> bytes:
        """What the signature covers: sorted-key JSON of every other field."""
        fields = {name: getattr(self, name) for name in self._fields() if name != "signature"}
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields()}

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        """Read a checkpoint as written by ``checkpoint --out``; InvalidInput if malformed."""
        if not isinstance(data, dict) or set(data) not in (set(CHECKPOINT_FIELDS), set(CHECKPOINT_FIELDS + HEADS_FIELDS)):
            raise InvalidInput(f"not a checkpoint: expected exactly the fields {', '.join(CHECKPOINT_FIELDS + HEADS_FIELDS)}")
        streams, heads = data.get("streams"), data.get("heads")
        if "heads" in data and (not isinstance(streams, int) or isinstance(streams, bool) or streams < 0 or not _is_hex_hash(heads)):
            raise InvalidInput("checkpoint streams must be a non-negative integer and heads 64 hex characters")
        size, root, time, ledger = data["size"], data["root"], data["time"], data["ledger"]
        signature, public_key = data["signature"], data["public_key"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("checkpoint size must be a non-negative integer")
        if not _is_hex_hash(root):
            raise InvalidInput("checkpoint root must be 64 hex characters")
        if not isinstance(time, str):
            raise InvalidInput("checkpoint time must be an ISO 8601 text")
        parse_instant(time, "checkpoint time")
        if ledger is not None and not _is_hex_hash(ledger):
            raise InvalidInput("checkpoint ledger id must be 64 hex characters or null")
        if signature is not None and not isinstance(signature, str):
            raise InvalidInput("checkpoint signature must be base64 text or null")
        if public_key is not None and not _is_hex_hash(public_key):
            raise InvalidInput("checkpoint public_key must be 64 hex characters or null")
        return cls(size, root, time, ledger, signature, public_key, streams, heads)

    @classmethod
    def from_json(cls, text: bytes | str, source: str) -> Checkpoint:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidInput(f"{source} is not JSON") from None
        try:
            return cls.from_dict(data)
        except InvalidInput as error:
            raise InvalidInput(f"{source}: {error}") from None

    def signed_with(self, private_key_pem: bytes) -> Checkpoint:
        """This checkpoint with ``public_key`` set and signed by the given Ed25519 key."""
        from cryptography.hazmat.primitives import serialization

        key = load_private_key(private_key_pem)
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        unsigned = replace(self, public_key=public, signature=None)
        return replace(unsigned, signature=base64.b64encode(key.sign(unsigned.signed_bytes())).decode())

    def signature_status(self, pinned_key: bytes | None) -> str:
        """valid · not-pinned (valid for the key it names, none given) · unsigned · invalid · wrong-key."""
        if self.signature is None:
            return "unsigned"
        if self.public_key is None:
            return "invalid"
        named = bytes.fromhex(self.public_key)
        if pinned_key is not None and pinned_key != named:
            return "wrong-key"
        if not _signature_holds(named, self.signature, self.signed_bytes()):
            return "invalid"
        return "valid" if pinned_key is not None else "not-pinned"


def _is_hex_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"not an unencrypted PEM private key ({first_words(error)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the key is not an Ed25519 key")
    return key


def _signature_holds(public_key: bytes, signature: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_signing_key() -> tuple[bytes, bytes, str]:
    """A fresh Ed25519 key: (private PEM (PKCS 8), public PEM, public key as hex)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key()
    public_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public_pem, public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_key(text: bytes) -> bytes:
    """An Ed25519 public key from a PEM file's content or 64 hex characters → 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    stripped = text.strip()
    if _is_hex_hash(stripped.decode("ascii", "replace").lower()):
        return bytes.fromhex(stripped.decode("ascii"))
    try:
        key = serialization.load_pem_public_key(stripped)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"not a PEM public key or 64 hex characters ({first_words(error)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


SIGNATURE_PROBLEMS = {
    "invalid": "the checkpoint's signature does not verify: the checkpoint was altered, or signed by another key than it names",
    "wrong-key": "the checkpoint is signed by another key than the public key given",
    "unsigned": "a public key was given but the checkpoint is not signed",
}
