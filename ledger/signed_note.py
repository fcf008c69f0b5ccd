"""C2SP signed notes, checkpoints and cosignatures: the text formats transparency logs share.

Pure formats, no storage: ``c2sp.org/signed-note`` (text, a blank line, then lines
``— <key name> base64(key ID || signature)``), ``c2sp.org/tlog-checkpoint`` (the note text
``origin\\nsize\\nbase64(root)\\n``), ``c2sp.org/tlog-cosignature`` (Ed25519 cosignatures,
signature type 0x04, over ``cosignature/v1\\ntime <t>\\n`` + the checkpoint text) and the
consistency proof lines of ``c2sp.org/tlog-witness`` (``old <size>`` and one base64 hash a
line). The formats are written out in docs/FORMAT.md §6.

Key IDs follow the spec: SHA-256(key name || 0x0A || signature type || public key)[:4].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInput

#: signature type of plain Ed25519 note signatures (what a log signs its checkpoints with)
ED25519 = 0x01
#: signature type of timestamped Ed25519 checkpoint cosignatures (what a witness adds)
COSIGNATURE = 0x04
_TYPES = {ED25519: "Ed25519", COSIGNATURE: "Ed25519 cosignature/v1"}
_DASH = "\u2014 "
#: the signed-note spec asks verifiers to accept at least 16; a witnessed checkpoint rarely has more than a few
MAX_SIGNATURES = 64
#: tlog-witness: a client must not send more than 63 consistency proof lines
MAX_PROOF_HASHES = 63
_SPACE = re.compile(r"\s")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInput(f"{what} is not base64") from None


def check_key_name(name: str) -> str:
    """A key name is non-empty, with no Unicode space and no plus sign."""
    if not name or _SPACE.search(name) or "+" in name or any(ord(c) < 0x20 for c in name):
        raise InvalidInput(f"a key name must be non-empty, without spaces or '+': {name!r}")
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A public key as a note verifier knows it: name, signature type and the Ed25519 key."""

    name: str
    signature_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.signature_type, self.public_key)

    def encode(self) -> str:
        """The vkey text: ``<name>+<hex key ID>+base64(type || public key)``."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self.signature_type]) + self.public_key)}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read a vkey; InvalidInput unless it is a well-formed Ed25519 or cosignature key."""
        parts = text.strip().split("+", 2)  # base64 may hold '+' too
        if len(parts) != 3:
            raise InvalidInput("not a verifier key: expected NAME+KEYID+BASE64 (as `checkpoint` and `witness cosign` print)")
        name, hex_id, material = parts
        check_key_name(name)
        raw = _unb64(material, "the verifier key's key material")
        if len(raw) != 33 or raw[0] not in _TYPES:
            raise InvalidInput("the verifier key is not an Ed25519 key (type 0x01) or Ed25519 cosignature key (type 0x04)")
        found = cls(name, raw[0], raw[1:])
        if hex_id.lower() != found.key_id.hex():
            raise InvalidInput(f"the verifier key's ID {hex_id} does not match its name and key (expected {found.key_id.hex()})")
        return found


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class SignedNote:
    """A note's text (ending in a newline) and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signature(self, signature: NoteSignature) -> SignedNote:
        return SignedNote(self.text, (*self.signatures, signature))

    def signed_by(self, key: VerifierKey) -> list[NoteSignature]:
        """The signature lines whose key name and ID are the key's (others are ignored, as the spec says)."""
        return [s for s in self.signatures if s.name == key.name and s.key_id == key.key_id]


def parse_note(data: bytes, source: str = "the note") -> SignedNote:
    """Read a signed note; InvalidInput (one line) for anything the spec does not allow."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source} is not UTF-8 text, so not a signed note") from None
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InvalidInput(f"{source} holds control characters; a signed note may hold none but newlines")
    if not text.endswith("\n"):
        raise InvalidInput(f"{source} does not end in a newline, so it is not a signed note")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise InvalidInput(f"{source} has no blank line before its signatures, so it is not a signed note")
    body, lines = text[: cut + 1], text[cut + 2 :].splitlines()
    if not lines:
        raise InvalidInput(f"{source} has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidInput(f"{source} has {len(lines)} signatures; at most {MAX_SIGNATURES} are read")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise InvalidInput(f"{source}: signature line {number} does not start with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        check_key_name(name)
        raw = _unb64(encoded, f"{source}: signature line {number}")
        if len(raw) < 5:
            raise InvalidInput(f"{source}: signature line {number} is too short to hold a key ID and a signature")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return SignedNote(body, tuple(signatures))


# --- signing and checking ----------------------------------------------------------


def _raw_public(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def _holds(public_key: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signer_key(private_key: Any, name: str, signature_type: int = ED25519) -> VerifierKey:
    """The verifier key matching an Ed25519 private key (``cryptography`` object) under a name."""
    return VerifierKey(check_key_name(name), signature_type, _raw_public(private_key))


def sign_note(text: str, name: str, private_key: Any) -> SignedNote:
    """Sign ``text`` (which must end in a newline) with an Ed25519 key: a one-signature note."""
    if not text.endswith("\n"):
        raise InvalidInput("a note's text must end in a newline")
    key = signer_key(private_key, name)
    return SignedNote(text, (NoteSignature(name, key.key_id, private_key.sign(text.encode())),))


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs: ``cosignature/v1``, ``time <t>``, then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(note: SignedNote, name: str, private_key: Any, timestamp: int) -> NoteSignature:
    """A witness's cosignature line for the note's checkpoint text at ``timestamp`` (POSIX seconds)."""
    if not 0 < timestamp < 2**63:
        raise InvalidInput("a cosignature's time must be a positive POSIX timestamp below 2^63")
    key = signer_key(private_key, name, COSIGNATURE)
    signature = private_key.sign(cosignature_message(note.text, timestamp))
    return NoteSignature(name, key.key_id, struct.pack(">Q", timestamp) + signature)


@dataclass(frozen=True)
class SignatureCheck:
    """How a note stands against one verifier key: valid · absent · invalid (and a cosignature's time)."""

    key: VerifierKey
    status: str
    timestamp: int | None = None


def check_signature(note: SignedNote, key: VerifierKey) -> SignatureCheck:
    """Check the note's signatures by ``key``: every one of them must verify (none → absent)."""
    mine = note.signed_by(key)
    if not mine:
        return SignatureCheck(key, "absent")
    stamp = None
    for found in mine:
        if key.signature_type == COSIGNATURE:
            if len(found.signature) != 72:
                return SignatureCheck(key, "invalid")
            (stamp,) = struct.unpack(">Q", found.signature[:8])
            ok = stamp < 2**63 and _holds(key.public_key, found.signature[8:], cosignature_message(note.text, stamp))
        else:
            ok = _holds(key.public_key, found.signature, note.text.encode())
        if not ok:
            return SignatureCheck(key, "invalid")
    return SignatureCheck(key, "valid", stamp)


# --- checkpoints (tlog-checkpoint) and consistency proofs (tlog-witness lines) -------


@dataclass(frozen=True)
class CheckpointBody:
    """The three lines of a C2SP checkpoint (extension lines kept as they are)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), _b64(self.root), *self.extensions))


def parse_checkpoint_body(text: str, source: str = "the checkpoint") -> CheckpointBody:
    """Read a checkpoint note's text: origin, decimal size (no leading zeros), base64 32-byte root."""
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or any(not line for line in lines):
        raise InvalidInput(f"{source} is not a checkpoint: its text must be an origin, a size and a root hash, one a line")
    origin, size_text, root_text, *extensions = lines
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise InvalidInput(f"{source}: the size line {size_text[:30]!r} is not a decimal number without leading zeros")
    size = int(size_text)
    if size >= 2**63:
        raise InvalidInput(f"{source}: the size {size_text[:30]} is out of range")
    root = _unb64(root_text, f"{source}: the root hash line")
    if len(root) != 32:
        raise InvalidInput(f"{source}: the root hash is {len(root)} bytes, not 32")
    return CheckpointBody(origin, size, root, tuple(extensions))


def format_consistency_proof(old_size: int, hashes: list[bytes]) -> bytes:
    """The tlog-witness lines: ``old <size>`` then one base64 hash a line."""
    return (f"old {old_size}\n" + "".join(f"{_b64(h)}\n" for h in hashes)).encode()


def parse_consistency_proof(data: bytes, source: str = "the proof") -> tuple[int, list[bytes]]:
    """Read ``old <size>`` and the proof's hash lines; InvalidInput if malformed."""
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source} is not a consistency proof (not ASCII text)") from None
    if lines[-1] == "":
        lines.pop()
    else:
        raise InvalidInput(f"{source} is not a consistency proof: its last line does not end in a newline")
    head = lines[0] if lines else ""
    size_text = head.removeprefix("old ")
    if head == size_text or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise InvalidInput(f"{source} is not a consistency proof: it must start with a line 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_HASHES:
        raise InvalidInput(f"{source} holds {len(lines) - 1} hashes; a consistency proof has at most {MAX_PROOF_HASHES}")
    hashes = [_unb64(line, f"{source}: line {n}") for n, line in enumerate(lines[1:], start=2)]
    if any(len(h) != 32 for h in hashes):
        raise InvalidInput(f"{source}: every proof line must be a 32-byte hash in base64")
    return int(size_text), hashes
