"""Canonical event encoding and hashes: the basis of the per-stream hash chain.

An event's canonical form is sorted-key JSON of its stream id, version, topic and every
field it stores (domain fields, both clocks, actor, provenance and the predecessor's hash),
with instants written as ISO 8601 (Z for UTC, microseconds when there are any). The same bytes are produced from a
domain event object (when it is recorded) and from the stored record (when it is verified),
so verification never trusts the decoding of the record it is checking.
"""

from __future__ import annotations

import base64
import gc
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.merkle import InvalidFrontierError, MerkleFrontier, leaf_hash, merkle_root, node_hash, verify_inclusion
from ledger.transcoder import untag
from ledger.values import iso, parse_instant

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.storage import Database, EventRow

#: the "predecessor hash" of the first event of every stream.
GENESIS = "0" * 64

_NOT_FIELDS = frozenset({"originator_id", "originator_version"})
# instants as ISO 8601 with Z; orjson writes microseconds whenever there are any
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def _instant(value: Any) -> Any:
    # datetime subclasses (test clocks) are written as the plain instant they stand for
    # (as text: constructing a datetime here would loop when the class itself is patched)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def canonical_bytes(stream_id: UUID, version: int, topic: str, fields: Mapping[str, Any]) -> bytes:
    """Sorted-key JSON of the stream id, version, topic and fields (``fields`` holds
    instants as datetime objects)."""
    own = dict(fields)
    for key in _NOT_FIELDS:
        own.pop(key, None)
    document = {"stream": str(stream_id), "version": version, "topic": topic, "fields": own}
    return orjson.dumps(document, default=_instant, option=_OPTIONS)


def canonical_event(event: Any) -> bytes:
    """The canonical bytes of a domain event object."""
    return canonical_bytes(event.originator_id, event.originator_version, type(event).TOPIC, vars(event))


def canonical_stored(stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of a stored record (its state as the library wrote it)."""
    return canonical_bytes(stream_id, version, topic, untag(orjson.loads(state)))


def digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def event_hash(event: Any) -> str:
    return digest(canonical_event(event))


# =========================================================================================
# Verification: per-stream chains, the ledger-wide Merkle tree, signed checkpoints
# =========================================================================================
#
# Leaves of the Merkle tree are the events in log order (SQLite rowid, PostgreSQL
# notification_id; gaps skipped, so a leaf index is not a log position). A leaf is
# RFC 6962's leaf hash of the event's 32-byte digest: SHA-256(0x00 || SHA-256(canonical)).
# Every stream is in the tree; only referral and subject streams carry a prev_hash chain.

#: topics of the streams whose events carry ``prev_hash``; other streams (the subject
#: directory logs) are covered by the Merkle tree only.
CHAINED_TOPIC_PREFIXES = ("refledger:Referral.", "refledger:Subject.")
CHECKPOINT_FIELDS = ("size", "root", "time", "ledger", "signature", "public_key")
PROOF_FORMAT = "refledger-proof/1"
#: findings kept in full; beyond this only the count grows (a wholly rewritten ledger
#: would otherwise hold one finding per event in memory).
MAX_FINDINGS = 10_000

# Which finding to name first when several fall on the same event: the most specific.
_KIND_ORDER = {
    kind: rank
    for rank, kind in enumerate(
        (
            "undecodable",
            "altered",
            "inserted",
            "content-edited",
            "chain-start-broken",
            "version-gap",
            "first-event-missing",
            "out-of-order",
            "topic-changed",
            "checkpoint-leaf-differs",
            "checkpoint-other-ledger",
            "checkpoint-truncated",
            "checkpoint-root-mismatch",
            "stored-checkpoint-mismatch",
            "stored-checkpoint-truncated",
            "signature",
        )
    )
}


class LedgerTampered(LedgerError):
    """The stored events no longer match what an earlier checkpoint recorded."""


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the stored record, and where it is.

    ``leaf`` is the index in the Merkle tree (log order), ``position`` the log position
    (SQLite rowid, PostgreSQL notification_id). A change the chains cannot see and no leaf
    file pins down is bounded instead by ``leaf_range`` (first leaf, leaf after the last).
    """

    kind: str
    problem: str
    leaf: int | None = None
    position: int | None = None
    stream: str | None = None
    referral: str | None = None
    subject: str | None = None
    version: int | None = None
    topic: str | None = None
    leaf_range: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        found = {f: getattr(self, f) for f in ("kind", "referral", "subject", "version", "position", "leaf", "stream", "topic", "problem")}
        found["leaf_range"] = list(self.leaf_range) if self.leaf_range else None
        return found

    def where(self) -> str:
        """Where, in the words an auditor searches by: referral/subject, version, position."""
        parts = []
        if self.referral:
            parts.append(f"referral {self.referral}" + (f" subject {self.subject}" if self.subject else ""))
        elif self.stream:
            parts.append(f"stream {self.stream}")
        if self.version is not None:
            kind = f" ({self.topic.removeprefix('refledger:')})" if self.topic else ""
            parts.append(f"version {self.version}{kind}")
        if self.position is not None:
            parts.append(f"log position {self.position}")
        if self.leaf is not None:
            parts.append(f"leaf {self.leaf}")
        if self.leaf_range is not None:
            parts.append(f"somewhere in leaves {self.leaf_range[0]}-{self.leaf_range[1] - 1}")
        return ", ".join(parts) or "the checkpoint"

    def describe(self) -> str:
        return f"{self.where()}: {self.problem}"

    def order(self) -> tuple[int, int, int]:
        """Log order first; findings without an event go last."""
        if self.leaf is not None:
            return (0, self.leaf, _KIND_ORDER.get(self.kind, 99))
        low = self.leaf_range[0] if self.leaf_range else 0
        return (1, low, _KIND_ORDER.get(self.kind, 99))


# --- checkpoints and keys -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the ledger's size and Merkle root at a time (an STH)."""

    size: int
    root: str
    time: str
    ledger: str | None
    signature: str | None = None
    public_key: str | None = None

    def signed_bytes(self) -> bytes:
        """What the signature covers: sorted-key JSON of every other field."""
        fields = {name: getattr(self, name) for name in CHECKPOINT_FIELDS if name != "signature"}
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHECKPOINT_FIELDS}

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        """Read a checkpoint as written by ``checkpoint --out``; InvalidInput if malformed."""
        if not isinstance(data, dict) or set(data) != set(CHECKPOINT_FIELDS):
            raise InvalidInput(f"not a checkpoint: expected exactly the fields {', '.join(CHECKPOINT_FIELDS)}")
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
        return cls(size, root, time, ledger, signature, public_key)

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

        key = _load_private_key(private_key_pem)
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


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"not an unencrypted PEM private key ({_first_words(error)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the key is not an Ed25519 key")
    return key


def _first_words(error: BaseException) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0][:80]


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
        raise InvalidInput(f"not a PEM public key or 64 hex characters ({_first_words(error)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- scanning the stored events ----------------------------------------------------


@dataclass(frozen=True)
class ReferencePoint:
    """A (size, root) the ledger's first ``size`` leaves must still hash to."""

    size: int
    root: bytes
    label: str
    stored: bool  # from the ledger's own checkpoint table (not the auditor's file)


class _Stream:
    """What the scan remembers of one stream: its identity and its head (newest event)."""

    __slots__ = (
        "before",
        "chained",
        "digest",
        "in_broken",
        "leaf",
        "pending",
        "position",
        "raw",
        "referral",
        "subject",
        "text",
        "topic",
        "version",
    )

    def __init__(self, raw: str, chained: bool) -> None:
        self.raw = raw
        try:
            self.text = str(UUID(raw))  # the form canonical_bytes writes (SQLite stores bare hex)
        except ValueError:
            self.text = raw
        self.chained = chained
        self.referral: str | None = None
        self.subject: str | None = None
        self.version = 0
        self.topic = ""
        self.digest = ""  # hex digest of the head
        self.before: str | None = None  # hex digest of the head's predecessor
        self.position = 0
        self.leaf = -1
        # the link into the head is broken; ``pending`` is the index of the finding that
        # blames its predecessor, until the head's own successor shows which one changed
        self.in_broken = False
        self.pending: int | None = None


@dataclass
class _Scan:
    """The state of one pass over the stored events in log order."""

    points: list[ReferencePoint]
    expected_leaves: bytes | None = None
    size: int = 0  # leaves so far
    # the frontier's subtree roots (as MerkleFrontier keeps them), appended to inline
    subtrees: list[bytes] = field(default_factory=list)
    streams: dict[str, _Stream] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    last_position: int | None = None
    first_digest: str | None = None
    point_results: list[tuple[ReferencePoint, bool]] = field(default_factory=list)
    directory_subjects: list[tuple[str, str]] = field(default_factory=list)
    leaf_differs: Finding | None = None
    first_event: Finding | None = None  # where leaf 0 is, for findings about the ledger's first event
    _next_point: int = 0

    def __post_init__(self) -> None:
        self.points = sorted(self.points, key=lambda p: p.size)
        self._check_points()  # a checkpoint of the empty ledger

    def feed(self, batch: Iterable[EventRow]) -> None:
        """Hash each row, add it to the tree and check its link (the hot loop of verify)."""
        streams = self.streams
        subtrees = self.subtrees
        expected = self.expected_leaves
        sha256 = hashlib.sha256
        loads = orjson.loads
        chained_prefixes = CHAINED_TOPIC_PREFIXES
        next_size = self._next_size()
        position = self.last_position
        leaf_index = self.size - 1
        for position, raw_id, version, topic, state in batch:
            leaf_index += 1
            stream = streams.get(raw_id)
            if stream is None:
                stream = streams[raw_id] = _Stream(raw_id, topic.startswith(chained_prefixes))
            try:
                fields = untag(loads(state))
                # the stream id as text: canonical_bytes writes str(stream_id), the same text
                canonical = canonical_bytes(stream.text, version, topic, fields)  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError) as error:
                # the leaf still commits to the bytes as stored, so the tree stays computable
                canonical = b"undecodable\x00" + bytes(state)
                fields = None
                self._add(
                    Finding("undecodable", f"its stored state cannot be read ({_first_words(error)})"),
                    stream,
                    leaf_index,
                    position,
                    version,
                    topic,
                )
            event_digest = sha256(canonical).digest()
            leaf = sha256(b"\x00" + event_digest).digest()  # merkle.leaf_hash, inlined
            # MerkleFrontier.append, inlined: a million method calls cost more than the hashing
            subtrees.append(leaf)
            carries = leaf_index
            while carries & 1:
                right = subtrees.pop()
                subtrees[-1] = sha256(b"\x01" + subtrees[-1] + right).digest()  # merkle.node_hash
                carries >>= 1
            digest_hex = event_digest.hex()
            if expected is not None and self.leaf_differs is None:
                self._compare_leaf(expected, leaf, stream, leaf_index, position, version, topic)
            if leaf_index + 1 == next_size:
                self.size = leaf_index + 1
                self._check_points()
                next_size = self._next_size()
            if (
                stream.version
                and version == stream.version + 1
                and stream.chained
                and type(fields) is dict
                and fields.get("prev_hash") == stream.digest
                and topic.startswith(chained_prefixes)
            ):
                # the common case: the next link of an intact chain
                stream.before, stream.digest = stream.digest, digest_hex
                stream.version, stream.position, stream.leaf, stream.topic = version, position, leaf_index, topic
                stream.in_broken, stream.pending = False, None
            else:
                if leaf_index == 0:
                    self.first_digest = digest_hex
                    self.first_event = Finding("", "", 0, position, stream.text, version=version, topic=topic)
                self._link(stream, leaf_index, position, version, topic, fields, digest_hex)
        self.last_position = position
        self.size = leaf_index + 1

    def _next_size(self) -> int:
        return self.points[self._next_point].size if self._next_point < len(self.points) else -1

    def _compare_leaf(
        self, expected: bytes, leaf: bytes, stream: _Stream, leaf_index: int, position: int, version: int, topic: str
    ) -> None:
        committed = expected[leaf_index * 32 : leaf_index * 32 + 32]
        if committed and committed != leaf:
            self.leaf_differs = self._add(
                Finding(
                    "checkpoint-leaf-differs",
                    "differs from the event the checkpoint committed to at this leaf: "
                    "it was changed, or events before it were removed, inserted or reordered, since the checkpoint",
                ),
                stream,
                leaf_index,
                position,
                version,
                topic,
            )

    @property
    def frontier(self) -> MerkleFrontier:
        """The tree of the leaves so far."""
        return MerkleFrontier.from_dict({"size": self.size, "hashes": [h.hex() for h in self.subtrees]})

    def _check_points(self) -> None:
        """Compare the root of the leaves so far with every reference point of this size."""
        size = self.size
        root = self.frontier.root()
        while self._next_point < len(self.points) and self.points[self._next_point].size <= size:
            point = self.points[self._next_point]
            self.point_results.append((point, point.size == size and point.root == root))
            self._next_point += 1

    def _add(self, finding: Finding, stream: _Stream, leaf: int, position: int, version: int, topic: str) -> Finding:
        located = replace(
            finding,
            leaf=leaf,
            position=position,
            stream=stream.text,
            referral=stream.referral,
            subject=stream.subject,
            version=version,
            topic=topic,
        )
        self._keep(located)
        return located

    def _keep(self, finding: Finding) -> int | None:
        self.findings_total += 1
        if len(self.findings) >= MAX_FINDINGS:
            return None
        self.findings.append(finding)
        return len(self.findings) - 1

    def _blame_head(self, stream: _Stream, kind: str, problem: str, replacing: int | None) -> int | None:
        """A finding about the stream's head (the event before the one being read)."""
        finding = Finding(
            kind,
            problem,
            leaf=stream.leaf,
            position=stream.position,
            stream=stream.text,
            referral=stream.referral,
            subject=stream.subject,
            version=stream.version,
            topic=stream.topic,
        )
        if replacing is not None:
            self.findings[replacing] = finding
            return replacing
        return self._keep(finding)

    def _link(self, stream: _Stream, leaf: int, position: int, version: int, topic: str, fields: Any, digest_hex: str) -> None:
        """Check the event's place in its stream and its link to its predecessor."""
        decoded = isinstance(fields, dict)
        if stream.version == 0 and decoded:
            # the stream's first event names it: a referral, or a referral's subject
            stream.referral = fields.get("reference") or fields.get("referral")
            stream.subject = fields.get("subject") if "referral" in fields else None
        if decoded and topic.startswith("refledger:SubjectDirectory") and isinstance(fields.get("subject"), str):
            self.directory_subjects.append((stream.raw, fields["subject"]))
        if topic.startswith(CHAINED_TOPIC_PREFIXES) != stream.chained:
            self._add(Finding("topic-changed", f"its topic {topic} does not belong in this stream"), stream, leaf, position, version, topic)
        if version <= stream.version:
            self._add(
                Finding(
                    "out-of-order",
                    f"version {version} comes after version {stream.version} (log position {stream.position}) in log order: "
                    "it was inserted or moved",
                ),
                stream,
                leaf,
                position,
                version,
                topic,
            )
            return
        prev = fields.get("prev_hash") if decoded else None
        in_broken, pending = False, None
        if stream.version == 0 and version != 1:
            missing = "version 1" if version == 2 else f"versions 1-{version - 1}"
            self._add(
                Finding("first-event-missing", f"the stream's first event is missing: {missing} not found (deleted)"),
                stream,
                leaf,
                position,
                version,
                topic,
            )
        elif version > stream.version + 1:
            missing = f"version {stream.version + 1}" if version == stream.version + 2 else f"versions {stream.version + 1}-{version - 1}"
            self._add(
                Finding("version-gap", f"its predecessor is missing: {missing} not found before it (deleted)"),
                stream,
                leaf,
                position,
                version,
                topic,
            )
        elif not decoded:
            in_broken = stream.chained
        elif stream.chained and stream.version == 0:
            if prev != GENESIS:
                in_broken = True
                pending = self._keep(
                    Finding(
                        "chain-start-broken",
                        "its prev_hash is not the genesis value a stream's first event carries: it was changed after it was recorded",
                        leaf=leaf,
                        position=position,
                        stream=stream.text,
                        referral=stream.referral,
                        subject=stream.subject,
                        version=version,
                        topic=topic,
                    )
                )
        elif stream.chained and prev != stream.digest:
            in_broken = True
            if stream.before is not None and prev == stream.before:
                self._blame_head(
                    stream,
                    "inserted",
                    f"does not belong here: version {version} (log position {position}) links past it to the event before it "
                    "(inserted, or moved here)",
                    stream.pending,
                )
            elif stream.in_broken:
                link = "is not the genesis value" if stream.version == 1 else f"does not match version {stream.version - 1}"
                self._blame_head(
                    stream,
                    "altered",
                    f"it was changed after it was recorded, link included: its prev_hash {link} "
                    f"and its hash does not match the one version {version} (log position {position}) carries",
                    stream.pending,
                )
            else:
                pending = self._blame_head(
                    stream,
                    "content-edited",
                    f"it was changed after it was recorded: its hash does not match the prev_hash that version {version} "
                    f"(log position {position}) carries",
                    None,
                )
        stream.before = stream.digest if stream.version and version == stream.version + 1 else None
        stream.version, stream.digest, stream.position, stream.leaf, stream.topic = version, digest_hex, position, leaf, topic
        stream.in_broken, stream.pending = in_broken, pending

    def finish(self) -> None:
        if self._next_point < len(self.points):
            self._check_points()
        for stream in self.streams.values():
            if stream.pending is not None and self.findings[stream.pending].kind == "content-edited":
                # the broken link leads into the stream's last event: nothing after it tells
                # whether the predecessor or that event's link changed
                finding = self.findings[stream.pending]
                self.findings[stream.pending] = replace(
                    finding, problem=finding.problem + f" (or the link in version {stream.version}, the stream's last event, was changed)"
                )
        if any(f.referral is None and f.stream is not None for f in self.findings):
            self._name_unlabelled(self.streams)

    def _name_unlabelled(self, streams: dict[str, _Stream]) -> None:
        """Name streams whose first event is gone, from the references the ledger still holds."""
        from ledger.subject import directory_id
        from ledger.values import referral_id, subject_id

        references = {s.referral for s in streams.values() if s.referral}
        names: dict[str, tuple[str, str | None]] = {}
        for reference in references:
            names[str(referral_id(reference))] = (reference, None)
            names[str(directory_id(reference))] = (reference, None)
        for raw, listed in self.directory_subjects:
            owner = names.get(streams[raw].text, (None, None))[0]
            if owner is not None:
                names[str(subject_id(owner, listed))] = (owner, listed)
        for index, finding in enumerate(self.findings):
            if finding.referral is None and finding.stream in names:
                named_referral, named_subject = names[finding.stream]
                self.findings[index] = replace(finding, referral=named_referral, subject=named_subject)


def _scan_rows(batches: Iterable[Sequence[EventRow]], points: Sequence[ReferencePoint], expected_leaves: bytes | None = None) -> _Scan:
    scan = _Scan(list(points), expected_leaves)
    # The scan allocates nothing cyclic; the collector's passes over the ever-growing
    # per-stream table would only cost time (a third of it on a million events).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for batch in batches:
            scan.feed(batch)
    finally:
        if collecting:
            gc.enable()
    scan.finish()
    return scan


# --- verify ------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointCheck:
    """How the ledger stands against one checkpoint."""

    source: str  # "file" or "database"
    checkpoint: Checkpoint
    signature: str
    extends: bool

    def as_dict(self) -> dict[str, Any]:
        return {**self.checkpoint.as_dict(), "source": self.source, "signature_status": self.signature, "extends": self.extends}


@dataclass(frozen=True)
class Verification:
    """The outcome of recomputing every chain and the Merkle tree, against checkpoints."""

    events: int
    streams: int
    root: str
    ledger: str | None
    last_position: int | None
    findings: tuple[Finding, ...]
    findings_total: int
    checkpoint: CheckpointCheck | None
    stored_checked: int
    stored_matching: int
    guards: Mapping[str, str]
    notes: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return self.findings_total == 0

    @property
    def first_bad(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def as_dict(self, limit: int = 100) -> dict[str, Any]:
        return {
            "ok": self.sound,
            "events": self.events,
            "streams": self.streams,
            "root": self.root,
            "ledger": self.ledger,
            "last_position": self.last_position,
            "checkpoint": self.checkpoint.as_dict() if self.checkpoint else None,
            "stored_checkpoints": {"checked": self.stored_checked, "matching": self.stored_matching},
            "guards": dict(self.guards),
            "first_bad": self.first_bad.as_dict() if self.first_bad else None,
            "findings": [f.as_dict() for f in self.findings[:limit]],
            "findings_total": self.findings_total,
            "notes": list(self.notes),
        }


def verify_ledger(
    ledger: Ledger,
    database: Database,
    checkpoint: Checkpoint | None = None,
    public_key: bytes | None = None,
    leaves: bytes | None = None,
    guards: Mapping[str, str] | None = None,
) -> Verification:
    """Recompute every chain and the Merkle tree from the stored rows; check the checkpoint
    (a file the auditor kept) and the checkpoints stored in the database.

    ``leaves`` (the leaf file written with that checkpoint) lets a change the chains cannot
    see (a stream's last event, a consistent rewrite) be named exactly, not just bounded.
    """
    from ledger.storage import read_event_rows

    stored = [s.checkpoint for s in _stored_checkpoints(ledger, database)]
    return verify_rows(read_event_rows(database), checkpoint, public_key, leaves, stored, guards)


def verify_rows(
    batches: Iterable[Sequence[EventRow]],
    checkpoint: Checkpoint | None = None,
    public_key: bytes | None = None,
    leaves: bytes | None = None,
    stored: Sequence[Checkpoint] = (),
    guards: Mapping[str, str] | None = None,
) -> Verification:
    """Verify stored rows (position, stream id, version, topic, state) given in log order."""
    if leaves is not None:
        _check_leaf_file(leaves, checkpoint)
    file_point = ReferencePoint(checkpoint.size, bytes.fromhex(checkpoint.root), "the checkpoint", False) if checkpoint else None
    points = [file_point] if file_point else []
    for found in stored:
        if file_point is None or (found.size, found.root) != (file_point.size, file_point.root.hex()):
            points.append(
                ReferencePoint(found.size, bytes.fromhex(found.root), f"the checkpoint stored in the database at {found.time}", True)
            )
    scan = _scan_rows(batches, points, leaves)
    findings = list(scan.findings)
    extra = _reference_findings(scan, checkpoint)
    status = checkpoint.signature_status(public_key) if checkpoint else None
    if status in ("invalid", "wrong-key") or (status == "unsigned" and public_key is not None):
        extra.append(Finding("signature", _SIGNATURE_PROBLEMS[str(status)]))
    findings += extra
    findings.sort(key=Finding.order)
    check = None
    if checkpoint is not None:
        same_ledger = checkpoint.ledger is None or checkpoint.ledger == scan.first_digest
        extends = (checkpoint.size == 0 or any(not p.stored and ok for p, ok in scan.point_results)) and same_ledger
        check = CheckpointCheck("file", checkpoint, str(status), extends)
    # stored checkpoints equal to the file's were checked as the file's
    same_as_file = len(stored) - sum(1 for p in points if p.stored)
    file_matched = any(not p.stored and ok for p, ok in scan.point_results)
    stored_matching = sum(ok for p, ok in scan.point_results if p.stored) + (same_as_file if file_matched else 0)
    verification = Verification(
        events=scan.frontier.size,
        streams=len(scan.streams),
        root=scan.frontier.root().hex(),
        ledger=scan.first_digest,
        last_position=scan.last_position,
        findings=tuple(findings),
        findings_total=scan.findings_total + len(extra),
        checkpoint=check,
        stored_checked=len(stored),
        stored_matching=stored_matching,
        guards=dict(guards or {}),
        notes=(),
    )
    return replace(verification, notes=tuple(_notes(verification, scan)))


_SIGNATURE_PROBLEMS = {
    "invalid": "the checkpoint's signature does not verify: the checkpoint was altered, or signed by another key than it names",
    "wrong-key": "the checkpoint is signed by another key than the public key given",
    "unsigned": "a public key was given but the checkpoint is not signed",
}


def _reference_findings(scan: _Scan, checkpoint: Checkpoint | None) -> list[Finding]:
    """What the checkpoints say: roots that no longer match, events that are gone."""
    found: list[Finding] = []
    size = scan.frontier.size
    matched_sizes = sorted({p.size for p, ok in scan.point_results if ok})
    stored_reported = False
    for point, ok in scan.point_results:
        if ok or (point.stored and stored_reported):
            continue
        low = max((s for s in matched_sizes if s < point.size), default=0)
        if point.stored:
            stored_reported = True
            kind = "stored-checkpoint-mismatch"
        else:
            kind = "checkpoint-root-mismatch"
        if scan.leaf_differs is not None and not point.stored:
            continue  # already named exactly, leaf by leaf
        found.append(
            Finding(
                kind,
                f"the first {point.size} events no longer hash to the root of {point.label}: at least one of them was changed, "
                "removed, inserted or reordered since (a change to a stream's last event or a consistent rewrite shows only here; "
                "keep the checkpoint's leaf file to name the event)",
                leaf_range=(low, point.size),
            )
        )
    last = f"after log position {scan.last_position}" if scan.last_position is not None else "(the ledger is empty)"
    for point in scan.points:
        if point.size > size and not (point.stored and stored_reported):
            stored_reported = stored_reported or point.stored
            missing = point.size - size
            found.append(
                Finding(
                    "stored-checkpoint-truncated" if point.stored else "checkpoint-truncated",
                    f"{point.label} covers {point.size} events but the ledger holds {size}: the last {missing} were removed {last}",
                    leaf=size,
                )
            )
    first = scan.first_event
    if checkpoint is not None and checkpoint.ledger is not None and first is not None and checkpoint.ledger != scan.first_digest:
        named = next((s for s in scan.streams.values() if s.text == first.stream), None)
        found.append(
            replace(
                first,
                kind="checkpoint-other-ledger",
                problem="the ledger's first event is not the one the checkpoint names: it was changed, or the checkpoint is of another ledger",
                referral=named.referral if named else None,
                subject=named.subject if named else None,
            )
        )
    return found


def _notes(verification: Verification, scan: _Scan) -> list[str]:
    """What this verification could not see, said plainly."""
    notes: list[str] = []
    check = verification.checkpoint
    covered = max([check.checkpoint.size] if check and check.extends else [0])
    covered = max([covered, *(p.size for p, ok in scan.point_results if ok and p.stored)])
    heads = sum(1 for s in scan.streams.values() if s.chained and s.leaf >= covered)
    if check is None:
        notes.append(
            "No checkpoint file given: an edit to a stream's last event, or a stream rewritten with fresh hashes, "
            "cannot be seen by the chains; verify against a checkpoint kept outside the organisation (--checkpoint)."
        )
        if verification.stored_checked:
            notes.append(
                f"Checked against the {verification.stored_checked} checkpoints stored in the database; "
                "whoever can rewrite the events can rewrite those too."
            )
    elif check.signature == "not-pinned":
        notes.append("The checkpoint's signature holds for the key it names, but no --public-key was given to say that key is yours.")
    elif check.signature == "unsigned":
        notes.append("The checkpoint is unsigned: it proves only as much as the place it was kept.")
    if verification.events > covered and heads:
        notes.append(
            f"{verification.events - covered} events were recorded after the newest matching checkpoint; the last event of "
            f"{heads} streams among them is protected by no later hash until the next checkpoint."
        )
    guards = verification.guards
    if guards and any(state != "enabled" for state in guards.values()):
        off = ", ".join(f"{name} {state}" for name, state in guards.items() if state != "enabled")
        notes.append(f"Append-only guards were not in force when verify started ({off}); opening the ledger reinstalled them.")
    return notes


def _check_leaf_file(leaves: bytes, checkpoint: Checkpoint | None) -> None:
    if checkpoint is None:
        raise InvalidInput("a leaf file belongs to a checkpoint: give the checkpoint too")
    if len(leaves) != checkpoint.size * 32:
        raise InvalidInput(
            f"the leaf file holds {len(leaves) / 32:g} leaves but the checkpoint covers {checkpoint.size}: it belongs to another checkpoint"
        )
    frontier = MerkleFrontier()
    for start in range(0, len(leaves), 32):
        frontier.append(leaves[start : start + 32])
    if frontier.root().hex() != checkpoint.root:
        raise InvalidInput("the leaf file does not hash to the checkpoint's root: it belongs to another checkpoint, or was altered")


# --- checkpoints ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as the ledger keeps it: with its Merkle frontier and last log position."""

    checkpoint: Checkpoint
    position: int
    last_leaf: str | None
    frontier: MerkleFrontier

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> str:
        return self.checkpoint.root

    @property
    def time(self) -> str:
        return self.checkpoint.time


def _ensure_checkpoint_table(ledger: Ledger, database: Database) -> None:
    from ledger.storage import ensure_checkpoint_table

    ensure_checkpoint_table(ledger, database)


def _stored_from_row(row: Sequence[Any]) -> StoredCheckpoint:
    size, position, _root, last_leaf, frontier, checkpoint = row
    try:
        restored = MerkleFrontier.from_dict(orjson.loads(frontier))
    except (orjson.JSONDecodeError, InvalidFrontierError) as error:
        raise LedgerTampered(f"the stored checkpoint of size {size} is damaged ({_first_words(error)}); run refledger verify") from None
    return StoredCheckpoint(Checkpoint.from_json(checkpoint, f"the stored checkpoint of size {size}"), int(position), last_leaf, restored)


def _stored_checkpoints(ledger: Ledger, database: Database) -> list[StoredCheckpoint]:
    from ledger.storage import select_checkpoint_rows

    _ensure_checkpoint_table(ledger, database)
    return [_stored_from_row(row) for row in select_checkpoint_rows(ledger, database)]


def latest_checkpoint(ledger: Ledger, database: Database) -> StoredCheckpoint | None:
    """The newest checkpoint recorded in the ledger's database, if any."""
    from ledger.storage import select_checkpoint_rows

    _ensure_checkpoint_table(ledger, database)
    rows = select_checkpoint_rows(ledger, database, latest_only=True)
    return _stored_from_row(rows[0]) if rows else None


@dataclass(frozen=True)
class CheckpointMade:
    checkpoint: Checkpoint
    new_events: int


def make_checkpoint(ledger: Ledger, database: Database, private_key_pem: bytes | None = None) -> CheckpointMade:
    """Extend the stored Merkle frontier by the events since the last checkpoint, record a
    new checkpoint in the database and return it (signed when a key is given).

    Only the new events are hashed. Two cheap checks first refuse to extend a frontier whose
    events were removed, inserted or (the newest of them) changed since: those are for
    ``verify`` to locate, and a checkpoint must not bless them.
    """
    from ledger.storage import count_events_through, insert_checkpoint_row, read_event_rows

    if private_key_pem is not None:
        _load_private_key(private_key_pem)  # a bad key fails before the work, not after
    latest = latest_checkpoint(ledger, database)
    frontier = latest.frontier.copy() if latest else MerkleFrontier()
    position = latest.position if latest else 0
    ledger_id = latest.checkpoint.ledger if latest else None
    last_leaf = latest.last_leaf if latest else None
    if latest is not None and latest.size:
        counted = count_events_through(ledger, database, latest.position)
        if counted != latest.size:
            raise LedgerTampered(
                f"{latest.size} events were checkpointed up to log position {latest.position}, but {counted} are there now: "
                "events were removed or inserted; run refledger verify --checkpoint with your last checkpoint file"
            )
        rows = [row for batch in read_event_rows(database, after=latest.position - 1, limit=1) for row in batch]
        if not rows or rows[0][0] != latest.position or _leaf_of_row(rows[0]).hex() != latest.last_leaf:
            raise LedgerTampered(
                f"the event at log position {latest.position}, the last one checkpointed, was changed or removed since; run refledger verify"
            )
    added = 0
    for batch in read_event_rows(database, after=position):
        for row in batch:
            leaf, digest_hex = _leaf_and_digest(row)
            if frontier.size == 0:
                ledger_id = digest_hex
            frontier.append(leaf)
            position, last_leaf = row[0], leaf.hex()
            added += 1
    if frontier.size == 0:
        raise InvalidInput("the ledger is empty: there is nothing to checkpoint yet")
    checkpoint = Checkpoint(frontier.size, frontier.root().hex(), iso(ledger.clock()), ledger_id)
    if private_key_pem is not None:
        checkpoint = checkpoint.signed_with(private_key_pem)
    insert_checkpoint_row(
        ledger,
        database,
        (
            checkpoint.size,
            position,
            checkpoint.root,
            last_leaf,
            orjson.dumps(frontier.to_dict()).decode(),
            orjson.dumps(checkpoint.as_dict()).decode(),
        ),
    )
    return CheckpointMade(checkpoint, added)


def _leaf_and_digest(row: EventRow) -> tuple[bytes, str]:
    """The Merkle leaf hash and hex digest of one stored row (as the scan computes them)."""
    _position, raw_id, version, topic, state = row
    try:
        canonical = canonical_stored(UUID(raw_id), version, topic, state)
    except (ValueError, TypeError, AttributeError):
        canonical = b"undecodable\x00" + bytes(state)
    event_digest = hashlib.sha256(canonical).digest()
    return leaf_hash(event_digest), event_digest.hex()


def _leaf_of_row(row: EventRow) -> bytes:
    return _leaf_and_digest(row)[0]


def checkpoint_leaves(database: Database, checkpoint: Checkpoint) -> bytes:
    """The leaf hashes of the checkpoint's first ``size`` events (32 bytes each), for an
    auditor to keep beside the checkpoint. Reads the whole ledger; refuses when the events
    no longer hash to the checkpoint's root."""
    from ledger.storage import read_event_rows

    leaves = bytearray()
    frontier = MerkleFrontier()
    for batch in read_event_rows(database):
        for row in batch:
            if frontier.size == checkpoint.size:
                break
            leaf = _leaf_of_row(row)
            frontier.append(leaf)
            leaves += leaf
        if frontier.size == checkpoint.size:
            break
    if frontier.size != checkpoint.size or frontier.root().hex() != checkpoint.root:
        raise LedgerTampered("the stored events no longer hash to the checkpoint's root; run refledger verify")
    return bytes(leaves)


# --- proofs for one referral ---------------------------------------------------------


def export_proof(ledger: Ledger, database: Database, reference: str) -> dict[str, Any]:
    """One referral's events (its stream, its subjects' streams, its subject directory) with
    inclusion proofs against the newest stored checkpoint, checkable offline."""
    from ledger.storage import read_event_rows
    from ledger.subject import directory_id
    from ledger.values import referral_id

    latest = latest_checkpoint(ledger, database)
    if latest is None:
        raise InvalidInput("there is no checkpoint yet: run refledger checkpoint first")
    size = latest.size
    wanted = {referral_id(reference), directory_id(reference)}
    ids: dict[str, UUID | None] = {}
    selected: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    later = 0
    for batch in read_event_rows(database):
        for position, raw_id, version, topic, state in batch:
            if raw_id not in ids:
                ids[raw_id] = _uuid_or_none(raw_id)
            stream = ids[raw_id]
            if len(leaves) >= size:
                if version == 1 and topic.startswith("refledger:Subject.") and _names_referral(state, reference):
                    wanted.add(stream)  # type: ignore[arg-type]
                later += stream in wanted
                continue
            try:
                fields = untag(orjson.loads(state))
                canonical = canonical_bytes(stream or raw_id, version, topic, fields)  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError):
                fields, canonical = None, b"undecodable\x00" + bytes(state)
            event_digest = hashlib.sha256(canonical).digest()
            leaves.append(leaf_hash(event_digest))
            if version == 1 and topic.startswith("refledger:Subject.") and isinstance(fields, dict) and fields.get("referral") == reference:
                wanted.add(stream)  # type: ignore[arg-type]
            if stream in wanted:
                selected.append(
                    {
                        "leaf": len(leaves) - 1,
                        "position": position,
                        "stream": str(stream),
                        "version": version,
                        "topic": topic,
                        "hash": event_digest.hex(),
                        # the exact bytes that were hashed, so any tool can check them
                        "canonical": canonical.decode(),
                    }
                )
    if len(leaves) < size or merkle_root(leaves).hex() != latest.root:
        raise LedgerTampered("the stored events no longer hash to the newest checkpoint's root; run refledger verify")
    if not selected:
        raise NotFound(f"referral {reference} has no events covered by the newest checkpoint (size {size})")
    levels = _tree_levels(leaves)
    for event in selected:
        event["inclusion_proof"] = [h.hex() for h in _audit_path(levels, event["leaf"])]
    return {
        "format": PROOF_FORMAT,
        "referral": reference,
        "checkpoint": latest.checkpoint.as_dict(),
        "events": selected,
        "events_after_checkpoint": later,
    }


def _names_referral(state: bytes, reference: str) -> bool:
    try:
        fields = orjson.loads(state)
    except orjson.JSONDecodeError:
        return False
    return isinstance(fields, dict) and fields.get("referral") == reference


def _uuid_or_none(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


def _tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 6962 tree, leaves first (an odd last node is promoted)."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            parents.append(level[-1])
        levels.append(parents)
    return levels


def _audit_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """PATH(index) from prebuilt levels: the same hashes as merkle.inclusion_proof, in
    O(log n) instead of O(n) per proof."""
    path: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


@dataclass(frozen=True)
class ProofCheck:
    """The outcome of checking an exported proof file offline."""

    referral: str
    checkpoint: Checkpoint
    signature: str
    events: int
    findings: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.sound,
            "referral": self.referral,
            "events": self.events,
            "checkpoint": self.checkpoint.as_dict(),
            "signature_status": self.signature,
            "findings": list(self.findings),
        }


def verify_proof(document: object, public_key: bytes | None = None) -> ProofCheck:
    """Check a proof file: every event hashes to the leaf its inclusion proof places under
    the checkpoint's root, its stream's chain links hold, and the signature (if any)."""
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise InvalidInput(f"not a proof file (its format is not {PROOF_FORMAT})")
    checkpoint = Checkpoint.from_dict(document.get("checkpoint"))
    events = document.get("events")
    if not isinstance(events, list):
        raise InvalidInput("a proof file holds a list of events")
    findings: list[str] = []
    status = checkpoint.signature_status(public_key)
    if status in ("invalid", "wrong-key") or (status == "unsigned" and public_key is not None):
        findings.append(_SIGNATURE_PROBLEMS[status])
    root = bytes.fromhex(checkpoint.root)
    heads: dict[str, tuple[int, str]] = {}
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            findings.append(f"event {number} is not an object")
            continue
        text = event.get("canonical")
        where = f"event {number} (stream {event.get('stream')}, version {event.get('version')}, leaf {event.get('leaf')})"
        try:
            canonical = text.encode() if isinstance(text, str) else b""
            canonical_doc = orjson.loads(canonical)
        except orjson.JSONDecodeError:
            canonical_doc = None
        if not isinstance(canonical_doc, dict):
            findings.append(f"{where}: it carries no canonical form")
            continue
        event_digest = hashlib.sha256(canonical).digest()
        if event_digest.hex() != event.get("hash"):
            findings.append(f"{where}: its content does not hash to the hash it names")
        proof = event.get("inclusion_proof")
        leaf = event.get("leaf")
        try:
            path = [bytes.fromhex(h) for h in proof] if isinstance(proof, list) else None
        except (ValueError, TypeError):
            path = None
        if path is None or not isinstance(leaf, int) or not verify_inclusion(leaf_hash(event_digest), leaf, checkpoint.size, path, root):
            findings.append(f"{where}: its inclusion proof does not lead to the checkpoint's root")
        stream, version = canonical_doc.get("stream"), canonical_doc.get("version")
        if (stream, version) != (event.get("stream"), event.get("version")):
            findings.append(f"{where}: the stream or version it names differs from its canonical form")
        fields = canonical_doc.get("fields")
        topic = canonical_doc.get("topic")
        if isinstance(stream, str) and isinstance(version, int) and isinstance(topic, str) and topic.startswith(CHAINED_TOPIC_PREFIXES):
            prev = fields.get("prev_hash") if isinstance(fields, dict) else None
            expected = heads.get(stream, (0, GENESIS))
            if version != expected[0] + 1:
                findings.append(f"{where}: the proof skips from version {expected[0]} to {version} of this stream")
            elif prev != expected[1]:
                findings.append(f"{where}: its prev_hash does not match the hash of version {expected[0]}")
            heads[stream] = (version, event_digest.hex())
    reference = document.get("referral")
    return ProofCheck(str(reference), checkpoint, status, len(events), tuple(findings))
