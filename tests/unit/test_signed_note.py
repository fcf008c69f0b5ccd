"""The C2SP formats without a database: signed notes, vkeys, cosignatures, checkpoint bodies, proofs, the witness."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import InvalidInput
from ledger.merkle import consistency_proof, leaf_hash, merkle_root
from ledger.signed_note import (
    COSIGNATURE,
    ED25519,
    CheckpointBody,
    VerifierKey,
    check_signature,
    cosign,
    format_consistency_proof,
    parse_checkpoint_body,
    parse_consistency_proof,
    parse_note,
    sign_note,
)
from ledger.transparency import Cosigned, WitnessRefused, witness_cosign

# The example of c2sp.org/signed-note ("Verifier keys", "Example"): a vkey and the note it verifies.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_specs_example_note_verifies_with_the_specs_vkey() -> None:
    key = VerifierKey.parse(SPEC_VKEY)
    assert key.encode() == SPEC_VKEY
    # the key ID is SHA-256(name || 0x0A || 0x01 || key)[:4], computed here from the spec's words
    assert key.key_id == hashlib.sha256(b"example.com/foo\n\x01" + key.public_key).digest()[:4] == bytes.fromhex("530d903a")
    note = parse_note(SPEC_NOTE.encode())
    assert note.text == "This is an example message.\n"
    assert check_signature(note, key).status == "valid"
    assert note.encode() == SPEC_NOTE.encode()
    altered = parse_note(SPEC_NOTE.replace("example message", "exemplary message").encode())
    assert check_signature(altered, key).status == "invalid"


def test_a_signature_by_another_key_of_the_same_name_is_absent_not_invalid() -> None:
    other = VerifierKey("example.com/foo", ED25519, bytes(32))
    assert check_signature(parse_note(SPEC_NOTE.encode()), other).status == "absent"


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_a_cosignature_is_timestamped_and_signs_the_checkpoint_text() -> None:
    log, witness = key(), key()
    note = sign_note(CheckpointBody("example.com/log", 3, bytes(32)).text(), "example.com/log", log)
    line = cosign(note, "audit.example/w", witness, 1_700_000_000)
    cosigned = parse_note(note.with_signature(line).encode())
    vkey = VerifierKey("audit.example/w", COSIGNATURE, public(witness))
    found = check_signature(cosigned, vkey)
    assert (found.status, found.timestamp) == ("valid", 1_700_000_000)
    assert base64.b64decode(line.line().split(" ")[2])[4:12] == (1_700_000_000).to_bytes(8, "big")
    # the same key as a plain Ed25519 key has another key ID, so it is not mistaken for the cosignature
    assert check_signature(cosigned, VerifierKey("audit.example/w", ED25519, public(witness))).status == "absent"
    stamp = bytearray(line.signature)
    stamp[7] ^= 1
    forged = note.with_signature(type(line)(line.name, line.key_id, bytes(stamp)))
    assert check_signature(forged, vkey).status == "invalid"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"text\n", "no blank line"),
        (b"text\n\n", "no signature lines"),
        (b"text\n\n- name AAAA\n", "em dash"),
        ("text\n\n\u2014 name !!!!\n".encode(), "not base64"),
        ("text\n\n\u2014 name AAAA\n".encode(), "too short"),
        ("text\n\n\u2014 na+me AAAAAAAA\n".encode(), "key name"),
        ("te\x07xt\n\n\u2014 name AAAAAAAA\n".encode(), "control characters"),
        ("text\n\n\u2014 name AAAAAAAA".encode(), "newline"),
    ],
)
def test_a_malformed_note_is_one_line_refusal(data: bytes, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as raised:
        parse_note(data)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("origin\n12\n", "origin, a size and a root"),
        ("origin\n012\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeros"),
        ("origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("origin\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "not 32"),
        ("origin\n1\nnot base64\n", "not base64"),
        ("origin\n" + "9" * 30 + "\n" + base64.b64encode(bytes(32)).decode() + "\n", "out of range"),
    ],
)
def test_a_malformed_checkpoint_body_is_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_checkpoint_body(text)


def test_checkpoint_body_and_proof_lines_round_trip() -> None:
    body = CheckpointBody("example.com/log", 20852163, bytes(range(32)), ("ext",))
    assert parse_checkpoint_body(body.text()) == body
    hashes = [bytes([n]) * 32 for n in range(5)]
    assert parse_consistency_proof(format_consistency_proof(7, hashes)) == (7, hashes)
    for bad in (b"", b"old 7", b"new 7\n", b"old 07\n", b"old 7\nAAAA\n", b"old 1\n" + b"A" * 44 + b"\n" * 1):
        with pytest.raises(InvalidInput):
            parse_consistency_proof(bad)


class Log:
    """A log of our own for the witness: leaves, an Ed25519 key, checkpoints and proofs."""

    def __init__(self, origin: str = "example.com/log") -> None:
        self.origin, self.key, self.leaves = origin, key(), [leaf_hash(b"%d" % n) for n in range(40)]

    def checkpoint(self, size: int, leaves: list[bytes] | None = None) -> bytes:
        tree = (leaves or self.leaves)[:size]
        return sign_note(CheckpointBody(self.origin, size, merkle_root(tree)).text(), self.origin, self.key).encode()

    def proof(self, old: int, new: int) -> bytes:
        return format_consistency_proof(old, consistency_proof(self.leaves, old, new))


def pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_a_witness_cosigns_growth_and_refuses_rollback_split_view_and_bad_proofs(tmp_path: Path) -> None:
    log, witness = Log(), pem(key())
    state = tmp_path / "state"

    def cosign_it(note: bytes, proof: bytes | None = None, now: int = 1_700_000_000) -> Cosigned:
        return witness_cosign(note, "cp", witness, "audit.example/w", state, public(log.key), proof, now)

    first = cosign_it(log.checkpoint(10))
    assert first.old_size == 0
    assert cosign_it(log.checkpoint(10)).old_size == 10  # the same checkpoint again
    assert cosign_it(log.checkpoint(25), log.proof(10, 25)).old_size == 10
    kept = next(state.glob("*.checkpoint")).read_bytes()
    forked = [leaf_hash(b"x"), *log.leaves[1:]]
    with pytest.raises(WitnessRefused, match="split view"):
        cosign_it(log.checkpoint(25, forked))
    with pytest.raises(WitnessRefused, match="roll it back"):
        cosign_it(log.checkpoint(20))
    with pytest.raises(WitnessRefused, match="does not verify"):
        cosign_it(log.checkpoint(30, forked), log.proof(25, 30))
    with pytest.raises(InvalidInput, match="starts from 10"):
        cosign_it(log.checkpoint(30), log.proof(10, 30))
    with pytest.raises(InvalidInput, match="give --proof"):
        cosign_it(log.checkpoint(30))
    with pytest.raises(WitnessRefused, match="log's signature"):
        witness_cosign(log.checkpoint(30), "cp", witness, "audit.example/w", state, public(key()), log.proof(25, 30))
    assert next(state.glob("*.checkpoint")).read_bytes() == kept
    # a state file changed by hand is noticed: it is the log's own signed checkpoint
    next(state.glob("*.checkpoint")).write_bytes(kept.replace(b"\n25\n", b"\n24\n"))
    with pytest.raises(WitnessRefused, match="not signed by the log key"):
        cosign_it(log.checkpoint(30), log.proof(25, 30))
