"""docs/FORMAT.md's worked example, recomputed from the document's own text: the hashes, the
leaves, the root, the tree of heads and the signature it shows are what the rules it states
give, and what the ledger's code gives."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import canonical_bytes, head_bytes
from ledger.checkpoint import Checkpoint
from ledger.values import referral_id

DOCUMENT = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text(encoding="utf-8")


def block(name: str) -> str:
    """The fenced block after ``<!-- example:NAME -->``."""
    found = re.search(rf"<!-- example:{name} -->\n```\n(.*?)\n```", DOCUMENT, re.S)
    assert found, name
    return found.group(1)


def value(name: str) -> str:
    found = re.search(rf"<!-- example:{name} -->`([0-9a-f]+)`", DOCUMENT)
    assert found, name
    return found.group(1)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("number", [1, 2])
def test_each_events_hash_and_leaf_follow_from_its_canonical_bytes(number: int) -> None:
    canonical = block(f"event-{number}").encode()
    assert sha(canonical).hex() == value(f"hash-{number}")
    assert sha(b"\x00" + sha(canonical)).hex() == value(f"leaf-{number - 1}")


@pytest.mark.parametrize("number", [1, 2])
def test_the_canonical_bytes_are_what_the_ledger_writes_for_those_fields(number: int) -> None:
    text = block(f"event-{number}")
    document = orjson.loads(text)
    assert set(document) == {"fields", "stream", "topic", "version"}
    assert canonical_bytes(UUID(document["stream"]), document["version"], document["topic"], document["fields"]) == text.encode()
    assert document["stream"] == str(referral_id(document["fields"].get("reference", "R-2024-0311")))


def test_the_chain_links_event_2_to_event_1() -> None:
    first, second = orjson.loads(block("event-1")), orjson.loads(block("event-2"))
    assert first["fields"]["prev_hash"] == "0" * 64
    assert second["fields"]["prev_hash"] == value("hash-1")


def test_the_root_is_rfc_6962_of_the_two_leaves() -> None:
    leaves = bytes.fromhex(value("leaf-0")) + bytes.fromhex(value("leaf-1"))
    assert sha(b"\x01" + leaves).hex() == value("root")


def test_the_heads_root_is_the_one_leaf_tree_of_the_head() -> None:
    head = block("head")
    fields = orjson.loads(head)
    assert head_bytes(fields["stream"], fields["version"], fields["hash"]) == head.encode()
    assert fields["hash"] == value("hash-2") and fields["version"] == 2
    assert sha(b"\x00" + sha(head.encode())).hex() == value("heads")


def test_the_signature_covers_the_signed_bytes_shown() -> None:
    signed = block("signed").encode()
    fields = orjson.loads(signed)
    assert (fields["root"], fields["heads"], fields["ledger"]) == (value("root"), value("heads"), value("hash-1"))
    key = serialization.load_pem_public_key(block("public-key").encode())
    assert isinstance(key, Ed25519PublicKey)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == fields["public_key"]
    key.verify(base64.b64decode(block("signature")), signed)  # raises if it does not hold
    checkpoint = Checkpoint.from_dict({**fields, "signature": block("signature")})
    assert checkpoint.signed_bytes() == signed and checkpoint.signature_status(raw) == "valid"


def test_the_document_keeps_a_place_for_signed_notes() -> None:
    assert "## 6. Checkpoints as signed notes, consistency proofs, witnesses" in DOCUMENT
