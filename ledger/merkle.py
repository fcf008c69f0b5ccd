"""RFC 6962 / RFC 9162 Merkle tree: roots, a storable frontier, and log proofs.

We write this ourselves rather than use ``pymerkle``. pymerkle does hash with the
RFC 6962 0x00/0x01 prefixes and proves inclusion and consistency, but storage means
subclassing its ``BaseMerkleTree`` or using its ``SqliteTree``, which opens its own
connection and owns its own ``leaf`` table; it computes roots by re-hashing the stored
leaf range (``hash_range``) and keeps no frontier we could persist, and its proofs are
its own ``MerkleProof`` objects with 1-based indices rather than bare RFC 9162 hash
lists. Our frontier must live in the ledger's own SQLite and PostgreSQL tables and
extend incrementally, so a small standard-library module is less code than an adapter.

Every function and method here takes *leaf hashes*, the output of ``leaf_hash(data)``,
never raw leaves. Indices count from zero; sizes count leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict, TypeGuard

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash one raw leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH over the given leaf hashes (EMPTY_ROOT for none)."""
    return _range_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """Return PATH(index, D[0:size]) (RFC 6962 §2.1.1), ordered from the leaf up.

    ``size`` defaults to ``len(leaf_hashes)``. Raises ``ValueError`` when
    ``index`` is not a leaf of the tree of that size.
    """
    size = _checked_size(leaf_hashes, size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    siblings: list[bytes] = []
    low, high = 0, size
    # Walk down from the root; each sibling subtree is disjoint from the others,
    # so the total hashing is O(size) however deep the path is.
    while high - low > 1:
        split = low + _largest_power_of_two_below(high - low)
        if index < split:
            siblings.append(_range_root(leaf_hashes, split, high))
            high = split
        else:
            siblings.append(_range_root(leaf_hashes, low, split))
            low = split
    siblings.reverse()
    return siblings


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """Return PROOF(old_size, D[0:new_size]) (RFC 6962 §2.1.2), bottom-up.

    ``new_size`` defaults to ``len(leaf_hashes)``. The proof is empty when
    ``old_size`` is 0 or equals ``new_size``. Raises ``ValueError`` when
    ``old_size`` is negative or larger than ``new_size``.
    """
    new_size = _checked_size(leaf_hashes, new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    low, high = 0, new_size
    # RFC 6962 SUBPROOF's flag: true while the old tree's root is the node we are in.
    old_root_is_this_node = True
    while old_size != high:
        split = low + _largest_power_of_two_below(high - low)
        if old_size <= split:
            proof.append(_range_root(leaf_hashes, split, high))
            high = split
        else:
            proof.append(_range_root(leaf_hashes, low, split))
            low = split
            old_root_is_this_node = False
    if not old_root_is_this_node:
        proof.append(_range_root(leaf_hashes, low, high))
    proof.reverse()
    return proof


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check an inclusion proof per RFC 9162 §2.1.3.2; malformed input gives False."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _are_hashes(proof)):
        return False
    if not (_is_count(index) and _is_count(size)) or index >= size:
        return False
    node_index, last_index = index, size - 1
    computed = leaf_hash
    for sibling in proof:
        if last_index == 0:
            return False  # proof longer than the path
        if node_index & 1 or node_index == last_index:
            computed = node_hash(sibling, computed)
            # A right-edge node with no right sibling is promoted unchanged.
            while not node_index & 1 and node_index != 0:
                node_index >>= 1
                last_index >>= 1
        else:
            computed = node_hash(computed, sibling)
        node_index >>= 1
        last_index >>= 1
    return last_index == 0 and computed == root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check a consistency proof per RFC 9162 §2.1.4.2; malformed input gives False.

    Stricter than RFC 9162 at the edges: a size-0 tree must have root
    EMPTY_ROOT, and equal sizes need equal roots and an empty proof.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and _are_hashes(proof)):
        return False
    if not (_is_count(old_size) and _is_count(new_size)) or old_size > new_size:
        return False
    if old_size == 0:
        # The empty tree is a prefix of every tree; only its root can be wrong.
        new_root_fits = new_size > 0 or new_root == EMPTY_ROOT
        return not proof and old_root == EMPTY_ROOT and new_root_fits
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so the proof omits its root.
        path.insert(0, old_root)
    node_index, last_index = old_size - 1, new_size - 1
    while node_index & 1:
        node_index >>= 1
        last_index >>= 1
    old_computed = new_computed = path[0]
    for sibling in path[1:]:
        if last_index == 0:
            return False  # proof longer than the path
        if node_index & 1 or node_index == last_index:
            old_computed = node_hash(sibling, old_computed)
            new_computed = node_hash(sibling, new_computed)
            while not node_index & 1 and node_index != 0:
                node_index >>= 1
                last_index >>= 1
        else:
            new_computed = node_hash(new_computed, sibling)
        node_index >>= 1
        last_index >>= 1
    return last_index == 0 and old_computed == old_root and new_computed == new_root


class InvalidFrontierError(ValueError):
    """A stored frontier is malformed: wrong types, bad hex, or wrong hash count."""


class FrontierDict(TypedDict):
    """The JSON-friendly form of a MerkleFrontier: leaf count and hex subtree roots."""

    size: int
    hashes: list[str]


class MerkleFrontier:
    """The roots of the perfect subtrees covering leaves [0, size), largest first.

    Also called a compact range. It holds one hash per set bit of ``size``, which is
    all that is needed to append more leaves and compute the root, so a stored
    frontier extends a million-leaf tree without touching the old leaves.

    Mutable on purpose: it is an accumulator, and copying it on every append would
    turn amortised O(1) appends into O(log n).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> MerkleFrontier:
        """Build a frontier by appending the given leaf hashes in order."""
        frontier = cls()
        frontier.extend(leaf_hashes)
        return frontier

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MerkleFrontier:
        """Restore a frontier saved with ``to_dict``.

        Raises InvalidFrontierError if the stored form is malformed.
        """
        size = data.get("size")
        hex_hashes = data.get("hashes")
        if not _is_count(size):
            raise InvalidFrontierError(f"frontier size must be a non-negative integer, got {size!r}")
        if not isinstance(hex_hashes, list):
            raise InvalidFrontierError("frontier hashes must be a list of hex strings")
        if len(hex_hashes) != size.bit_count():
            raise InvalidFrontierError(f"a frontier of size {size} has {size.bit_count()} hashes, got {len(hex_hashes)}")
        hashes = [_hash_from_hex(item) for item in hex_hashes]
        frontier = cls()
        frontier._size = size
        frontier._hashes = hashes
        return frontier

    def to_dict(self) -> FrontierDict:
        """Return the frontier as {"size": int, "hashes": [hex, ...]} for storage."""
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash; amortised O(1) node hashes."""
        if not _is_hash(leaf_hash):
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes; use leaf_hash(data) for raw leaves")
        hashes = self._hashes
        hashes.append(leaf_hash)
        # Like binary increment: each trailing 1 bit of the old size is a perfect
        # subtree the same height as the carry, so the two merge into one.
        carries = self._size
        while carries & 1:
            right = hashes.pop()
            hashes[-1] = node_hash(hashes[-1], right)
            carries >>= 1
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for item in leaf_hashes:
            self.append(item)

    def root(self) -> bytes:
        """Return MTH of the leaves so far, in O(log size)."""
        if not self._hashes:
            return EMPTY_ROOT
        # The RFC tree splits off its largest perfect subtree on the left, so the
        # smaller subtrees fold together from the right.
        computed = self._hashes[-1]
        for subtree_root in reversed(self._hashes[:-1]):
            computed = node_hash(subtree_root, computed)
        return computed

    def copy(self) -> MerkleFrontier:
        """Return an independent frontier with the same state."""
        twin = MerkleFrontier()
        twin._size = self._size
        twin._hashes = list(self._hashes)
        return twin

    # Defining __eq__ leaves __hash__ as None: a mutable accumulator is not hashable.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleFrontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"MerkleFrontier(size={self._size}, root={self.root().hex()})"


def _range_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of leaf_hashes[start:end], hashing each node exactly once."""
    level = list(leaf_hashes[start:end])
    if not level:
        return EMPTY_ROOT
    # Pairing level by level and promoting an odd last node builds exactly the
    # RFC 6962 tree, whose left subtrees are always perfect.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _largest_power_of_two_below(count: int) -> int:
    """RFC 6962's split point k: the largest power of two below count (count >= 2)."""
    return 1 << ((count - 1).bit_length() - 1)


def _checked_size(leaf_hashes: Sequence[bytes], size: int | None) -> int:
    if size is None:
        return len(leaf_hashes)
    if not 0 <= size <= len(leaf_hashes):
        raise ValueError(f"tree size {size} is not between 0 and the {len(leaf_hashes)} leaf hashes given")
    return size


def _is_count(value: object) -> TypeGuard[int]:
    # bool is an int subclass; True is not a leaf count.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _are_hashes(values: object) -> bool:
    return isinstance(values, Sequence) and not isinstance(values, (bytes, str)) and all(_is_hash(v) for v in values)


def _hash_from_hex(value: object) -> bytes:
    if not isinstance(value, str):
        raise InvalidFrontierError(f"frontier hash must be a hex string, got {value!r}")
    try:
        decoded = bytes.fromhex(value)
    except ValueError as error:
        raise InvalidFrontierError(f"frontier hash is not hex: {value!r}") from error
    if len(decoded) != HASH_SIZE:
        raise InvalidFrontierError(f"frontier hash must be {HASH_SIZE} bytes, got {len(decoded)}")
    return decoded
