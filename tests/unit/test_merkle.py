"""Tests for ledger.merkle against published RFC 6962 vectors, an independent
reference implementation, and hypothesis properties."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    InvalidFrontierError,
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# ---------------------------------------------------------------------------
# Published vectors. Copied from transparency-dev/merkle, proof/verify_test.go
# (`leaves`, `roots`, `inclusionProofs`, `consistencyProofs`); the same values are
# in google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc
# (`kInputs`, `kSHA256Roots`, `kSHA256Paths`, `kSHA256Proofs`). Those files
# number leaves from 1; the inclusion vectors below are converted to 0-based.
# ---------------------------------------------------------------------------

VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_LEAF_HASHES = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]

EMPTY_TREE_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# VECTOR_ROOTS[k] is the root of the tree of the first k + 1 leaves.
VECTOR_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def root_of_size(size: int) -> bytes:
    return VECTOR_ROOTS[size - 1]


# (0-based index, tree size, proof)
VECTOR_INCLUSION_PROOFS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, proof)
VECTOR_CONSISTENCY_PROOFS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# From the same Go file: a hash that is nobody's root.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def decode(proof: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def flip_bit(value: bytes, byte_index: int = 0, mask: int = 1) -> bytes:
    changed = bytearray(value)
    changed[byte_index] ^= mask
    return bytes(changed)


# ---------------------------------------------------------------------------
# Independent reference implementation: the recursive definitions of MTH, PATH
# and PROOF written straight from the RFC 6962 §2.1 text, over raw leaves,
# sharing no code with ledger.merkle.
# ---------------------------------------------------------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + leaves[0])
    k = _split(n)
    return _sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:]))


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_mth(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_mth(leaves[:k])]


def reference_subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [reference_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], complete), reference_mth(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_mth(leaves[:k])]


def reference_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return reference_subproof(m, leaves, True)


def distinct_leaves(count: int, salt: bytes = b"") -> list[bytes]:
    return [salt + index.to_bytes(4, "big") for index in range(count)]


# ---------------------------------------------------------------------------
# Hashing and roots
# ---------------------------------------------------------------------------


def test_empty_tree_root_is_the_hash_of_the_empty_string() -> None:
    assert EMPTY_ROOT.hex() == EMPTY_TREE_ROOT_HEX
    assert merkle_root([]) == EMPTY_ROOT
    assert MerkleFrontier().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_use_the_rfc_6962_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published_vectors(size: int) -> None:
    assert merkle_root(VECTOR_LEAF_HASHES[:size]) == root_of_size(size)
    frontier = MerkleFrontier.from_leaf_hashes(VECTOR_LEAF_HASHES[:size])
    assert frontier.root() == root_of_size(size)


def test_frontier_appended_leaf_by_leaf_matches_every_published_root() -> None:
    frontier = MerkleFrontier()
    for size, hashed in enumerate(VECTOR_LEAF_HASHES, start=1):
        frontier.append(hashed)
        assert frontier.size == size
        assert len(frontier.hashes) == size.bit_count()
        assert frontier.root() == root_of_size(size)


def test_roots_match_the_reference_implementation() -> None:
    leaves = distinct_leaves(130)
    hashed = [leaf_hash(leaf) for leaf in leaves]
    for size in range(131):
        assert merkle_root(hashed[:size]) == reference_mth(leaves[:size])


# ---------------------------------------------------------------------------
# Inclusion proofs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION_PROOFS)
def test_inclusion_proofs_match_published_vectors(index: int, size: int, proof: list[str]) -> None:
    expected = decode(proof)
    assert inclusion_proof(VECTOR_LEAF_HASHES, index, size) == expected
    assert verify_inclusion(VECTOR_LEAF_HASHES[index], index, size, expected, root_of_size(size))


def corrupted_inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, hashed: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """The mutations of transparency-dev/merkle's corruptInclusionProof."""
    probes = [
        ("index - 1", index - 1, size, proof, root, hashed),
        ("index + 1", index + 1, size, proof, root, hashed),
        ("index ^ 2", index ^ 2, size, proof, root, hashed),
        ("size * 2", index, size * 2, proof, root, hashed),
        ("size // 2", index, size // 2, proof, root, hashed),
        ("short wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("wrong leaf", index, size, proof, root, leaf_hash(b"WrongLeaf")),
        ("empty root", index, size, proof, EMPTY_ROOT, hashed),
        ("random root", index, size, proof, SOME_HASH, hashed),
        ("trailing garbage", index, size, [*proof, b""], root, hashed),
        ("trailing root", index, size, [*proof, root], root, hashed),
        ("preceding garbage", index, size, [b"", *proof], root, hashed),
        ("preceding root", index, size, [root, *proof], root, hashed),
    ]
    for position in range(len(proof)):
        wrong = list(proof)
        wrong[position] = flip_bit(wrong[position], mask=8)
        probes.append((f"modified proof[{position}]", index, size, wrong, root, hashed))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, hashed))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", index, size, inserted, root, hashed))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION_PROOFS)
def test_corrupted_published_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    probes = corrupted_inclusion_probes(index, size, decode(proof), root_of_size(size), VECTOR_LEAF_HASHES[index])
    wrongly_verified = [name for name, i, n, p, root, hashed in probes if verify_inclusion(hashed, i, n, p, root)]
    assert wrongly_verified == []


def test_inclusion_proofs_match_the_reference_implementation() -> None:
    leaves = distinct_leaves(70)
    hashed = [leaf_hash(leaf) for leaf in leaves]
    for size in range(1, 71):
        root = reference_mth(leaves[:size])
        for index in range(size):
            expected = reference_path(index, leaves[:size])
            assert inclusion_proof(hashed, index, size) == expected
            assert verify_inclusion(hashed[index], index, size, expected, root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1), (5, 3)])
def test_inclusion_verification_rejects_impossible_positions(index: int, size: int) -> None:
    hashed = leaf_hash(b"x")
    assert not verify_inclusion(hashed, index, size, [], hashed)
    assert not verify_inclusion(hashed, index, size, [], EMPTY_ROOT)


def test_inclusion_verification_rejects_malformed_input_without_raising() -> None:
    hashed = leaf_hash(b"x")
    assert verify_inclusion(hashed, 0, 1, [], hashed)
    assert not verify_inclusion(b"", 0, 1, [], hashed)
    assert not verify_inclusion(hashed, 0, 1, [], b"")
    assert not verify_inclusion(hashed, 0, 1, [b"\x00" * 31], hashed)
    # bool is an int subclass, but True is not a leaf index.
    pair = VECTOR_LEAF_HASHES[:2]
    assert verify_inclusion(pair[1], 1, 2, [pair[0]], root_of_size(2))
    assert not verify_inclusion(pair[1], True, 2, [pair[0]], root_of_size(2))
    # A proof far longer than any real path stops at the tree's height.
    assert not verify_inclusion(hashed, 0, 2, [hashed] * 10_000, hashed)


def test_inclusion_proof_generation_rejects_bad_arguments() -> None:
    hashed = VECTOR_LEAF_HASHES
    with pytest.raises(ValueError, match="leaf index"):
        inclusion_proof(hashed, 8, 8)
    with pytest.raises(ValueError, match="leaf index"):
        inclusion_proof(hashed, -1, 8)
    with pytest.raises(ValueError, match="tree size"):
        inclusion_proof(hashed, 0, 9)
    assert inclusion_proof(hashed, 7) == inclusion_proof(hashed, 7, 8)


# ---------------------------------------------------------------------------
# Consistency proofs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("old_size", "new_size", "proof"), VECTOR_CONSISTENCY_PROOFS)
def test_consistency_proofs_match_published_vectors(old_size: int, new_size: int, proof: list[str]) -> None:
    expected = decode(proof)
    assert consistency_proof(VECTOR_LEAF_HASHES, old_size, new_size) == expected
    assert verify_consistency(old_size, new_size, root_of_size(old_size), root_of_size(new_size), expected)


def corrupted_consistency_probes(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """The mutations of transparency-dev/merkle's corruptConsistencyProof."""
    probes = [
        ("old size - 1", old_size - 1, new_size, old_root, new_root, proof),
        ("old size + 1", old_size + 1, new_size, old_root, new_root, proof),
        ("old size ^ 2", old_size ^ 2, new_size, old_root, new_root, proof),
        ("new size * 2", old_size, new_size * 2, old_root, new_root, proof),
        ("new size // 2", old_size, new_size // 2, old_root, new_root, proof),
        ("short old root", old_size, new_size, b"WrongRoot", new_root, proof),
        ("short new root", old_size, new_size, old_root, b"WrongRoot", proof),
        ("wrong old root", old_size, new_size, SOME_HASH, new_root, proof),
        ("wrong new root", old_size, new_size, old_root, SOME_HASH, proof),
        ("swapped roots", old_size, new_size, new_root, old_root, proof),
        ("empty proof", old_size, new_size, old_root, new_root, []),
        ("trailing garbage", old_size, new_size, old_root, new_root, [*proof, b""]),
        (
            "trailing old root",
            old_size,
            new_size,
            old_root,
            new_root,
            [*proof, old_root],
        ),
        (
            "trailing new root",
            old_size,
            new_size,
            old_root,
            new_root,
            [*proof, new_root],
        ),
        ("preceding garbage", old_size, new_size, old_root, new_root, [b"", *proof]),
        (
            "preceding old root",
            old_size,
            new_size,
            old_root,
            new_root,
            [old_root, *proof],
        ),
        (
            "preceding new root",
            old_size,
            new_size,
            old_root,
            new_root,
            [new_root, *proof],
        ),
        (
            "preceding proof[0]",
            old_size,
            new_size,
            old_root,
            new_root,
            [proof[0], *proof],
        ),
        ("truncated proof", old_size, new_size, old_root, new_root, proof[:-1]),
    ]
    for position in range(len(proof)):
        wrong = list(proof)
        wrong[position] = flip_bit(wrong[position], mask=16)
        name = f"modified proof[{position}]"
        probes.append((name, old_size, new_size, old_root, new_root, wrong))
    return probes


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof"),
    [vector for vector in VECTOR_CONSISTENCY_PROOFS if vector[2]],
)
def test_corrupted_published_consistency_proofs_fail(old_size: int, new_size: int, proof: list[str]) -> None:
    probes = corrupted_consistency_probes(
        old_size,
        new_size,
        root_of_size(old_size),
        root_of_size(new_size),
        decode(proof),
    )
    wrongly_verified = [name for name, old, new, old_root, new_root, p in probes if verify_consistency(old, new, old_root, new_root, p)]
    assert wrongly_verified == []


def test_consistency_proofs_match_the_reference_implementation() -> None:
    leaves = distinct_leaves(70)
    hashed = [leaf_hash(leaf) for leaf in leaves]
    for new_size in range(1, 71):
        new_root = reference_mth(leaves[:new_size])
        for old_size in range(1, new_size + 1):
            expected = reference_proof(old_size, leaves[:new_size])
            assert consistency_proof(hashed, old_size, new_size) == expected
            old_root = reference_mth(leaves[:old_size])
            assert verify_consistency(old_size, new_size, old_root, new_root, expected)


def test_consistency_edge_cases() -> None:
    # Adapted from TestVerifyConsistency in transparency-dev/merkle
    # proof/verify_test.go. That test passes placeholder roots such as
    # "don't care 1" for the size-0 and equal-size cases; this verifier insists
    # that roots are 32-byte hashes and that a size-0 tree has EMPTY_ROOT.
    root_a, root_b = leaf_hash(b"a"), leaf_hash(b"b")
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 1, EMPTY_ROOT, root_b, [])
    assert verify_consistency(1, 1, root_b, root_b, [])
    assert not verify_consistency(0, 0, root_a, root_b, [])
    assert not verify_consistency(0, 0, root_a, root_a, [])  # not the empty root
    assert not verify_consistency(0, 1, root_a, root_b, [])  # not the empty root
    assert not verify_consistency(1, 1, root_a, root_b, [])
    # Time travel to the past.
    assert not verify_consistency(1, 0, root_a, root_b, [])
    assert not verify_consistency(2, 1, root_a, root_b, [])
    # A real extension needs a proof.
    assert not verify_consistency(1, 2, root_a, root_b, [])
    # Roots match but the proof is not empty.
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    # Malformed input gives False, not an exception.
    assert not verify_consistency(-1, 1, EMPTY_ROOT, root_b, [])
    assert not verify_consistency(1, 2, root_a, root_b, [b"short"])
    assert not verify_consistency(1, 2, root_a, root_b, [root_a] * 10_000)


def test_consistency_proof_generation_edge_cases() -> None:
    hashed = VECTOR_LEAF_HASHES
    assert consistency_proof(hashed, 0, 8) == []
    assert consistency_proof(hashed, 8, 8) == []
    assert consistency_proof(hashed, 3) == consistency_proof(hashed, 3, 8)
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(hashed, 5, 4)
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(hashed, -1, 4)
    with pytest.raises(ValueError, match="tree size"):
        consistency_proof(hashed, 1, 9)


# ---------------------------------------------------------------------------
# Frontier storage
# ---------------------------------------------------------------------------


def test_frontier_round_trips_through_json() -> None:
    frontier = MerkleFrontier.from_leaf_hashes(VECTOR_LEAF_HASHES[:7])
    stored = json.dumps(frontier.to_dict())
    restored = MerkleFrontier.from_dict(json.loads(stored))
    assert restored == frontier
    assert restored.root() == root_of_size(7)
    assert json.loads(stored) == {
        "size": 7,
        "hashes": [h.hex() for h in frontier.hashes],
    }


def test_restored_frontier_is_independent_of_the_original() -> None:
    frontier = MerkleFrontier.from_leaf_hashes(VECTOR_LEAF_HASHES[:3])
    twin = frontier.copy()
    twin.append(VECTOR_LEAF_HASHES[3])
    assert frontier.size == 3
    assert twin.root() == root_of_size(4)
    assert twin != frontier


@pytest.mark.parametrize(
    "stored",
    [
        {"hashes": []},
        {"size": -1, "hashes": []},
        {"size": True, "hashes": ["00" * 32]},
        {"size": "1", "hashes": ["00" * 32]},
        {"size": 1},
        {"size": 1, "hashes": "00" * 32},
        {"size": 3, "hashes": ["00" * 32]},  # size 3 needs two subtree roots
        {"size": 1, "hashes": ["zz" * 32]},
        {"size": 1, "hashes": ["00" * 31]},
        {"size": 1, "hashes": [None]},
    ],
)
def test_malformed_stored_frontier_is_rejected(stored: dict[str, object]) -> None:
    with pytest.raises(InvalidFrontierError):
        MerkleFrontier.from_dict(stored)


def test_frontier_rejects_raw_leaves() -> None:
    frontier = MerkleFrontier()
    with pytest.raises(ValueError, match="leaf_hash"):
        frontier.append(b"not a 32-byte leaf hash")
    assert frontier.size == 0


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

SALTS = st.binary(max_size=8)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    size = draw(st.integers(min_value=1, max_value=300))
    hashed = [leaf_hash(leaf) for leaf in distinct_leaves(size, draw(SALTS))]
    return hashed, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def tree_and_old_size(draw: st.DrawFn) -> tuple[list[bytes], int]:
    size = draw(st.integers(min_value=0, max_value=300))
    hashed = [leaf_hash(leaf) for leaf in distinct_leaves(size, draw(SALTS))]
    return hashed, draw(st.integers(min_value=0, max_value=size))


@given(tree_and_index(), st.data())
def test_every_inclusion_proof_verifies_and_alterations_fail(tree: tuple[list[bytes], int], data: st.DataObject) -> None:
    hashed, index = tree
    size = len(hashed)
    root = merkle_root(hashed)
    proof = inclusion_proof(hashed, index, size)
    assert verify_inclusion(hashed[index], index, size, proof, root)

    assert not verify_inclusion(flip_bit(hashed[index]), index, size, proof, root)
    assert not verify_inclusion(hashed[index], index, size, proof, flip_bit(root))
    other = data.draw(st.integers(min_value=0, max_value=size).filter(lambda i: i != index))
    assert not verify_inclusion(hashed[index], other, size, proof, root)


@given(tree_and_old_size())
def test_every_consistency_proof_verifies_and_altered_roots_fail(
    tree: tuple[list[bytes], int],
) -> None:
    hashed, old_size = tree
    new_size = len(hashed)
    old_root, new_root = merkle_root(hashed[:old_size]), merkle_root(hashed)
    proof = consistency_proof(hashed, old_size, new_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)

    assert not verify_consistency(old_size, new_size, flip_bit(old_root), new_root, proof)
    if old_size > 0:  # an empty old tree says nothing about the new root
        altered = flip_bit(new_root, byte_index=31)
        assert not verify_consistency(old_size, new_size, old_root, altered, proof)


@settings(max_examples=40)
@given(st.lists(st.binary(max_size=8), max_size=300))
def test_frontier_root_equals_merkle_root_at_every_size(leaves: list[bytes]) -> None:
    hashed = [leaf_hash(leaf) for leaf in leaves]
    frontier = MerkleFrontier()
    assert frontier.root() == merkle_root([])
    for size, item in enumerate(hashed, start=1):
        frontier.append(item)
        assert frontier.root() == merkle_root(hashed[:size])
    assert frontier.root() == reference_mth(leaves)


@given(st.lists(st.binary(max_size=8), max_size=300), st.data())
def test_restored_frontier_extends_like_the_original(leaves: list[bytes], data: st.DataObject) -> None:
    hashed = [leaf_hash(leaf) for leaf in leaves]
    stored_at = data.draw(st.integers(min_value=0, max_value=len(hashed)))
    saved = json.dumps(MerkleFrontier.from_leaf_hashes(hashed[:stored_at]).to_dict())

    restored = MerkleFrontier.from_dict(json.loads(saved))
    restored.extend(hashed[stored_at:])
    direct = MerkleFrontier.from_leaf_hashes(hashed)
    assert restored == direct
    assert restored.root() == merkle_root(hashed)


RootFunction = Callable[[Sequence[bytes]], bytes]


@pytest.mark.parametrize(
    "compute_root",
    [merkle_root, lambda hashed: MerkleFrontier.from_leaf_hashes(hashed).root()],
    ids=["merkle_root", "frontier"],
)
def test_root_changes_when_any_leaf_is_reordered(compute_root: RootFunction) -> None:
    hashed = [leaf_hash(leaf) for leaf in distinct_leaves(9)]
    reordered = [hashed[1], hashed[0], *hashed[2:]]
    assert compute_root(hashed) != compute_root(reordered)
    assert compute_root(hashed) != compute_root(hashed[:-1])
