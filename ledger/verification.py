"""Verification: recompute every per-stream chain and the ledger-wide Merkle tree from the
stored rows, and check them against checkpoints (a file the auditor kept, and those stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.canonical import CHAINED_TOPIC_PREFIXES, GENESIS, canonical_bytes
from ledger.checkpoint import SIGNATURE_PROBLEMS, Checkpoint
from ledger.checkpointing import stored_checkpoints
from ledger.collector import collector_paused
from ledger.errors import InvalidInput, first_words
from ledger.identity import KeyRing
from ledger.merkle import MerkleFrontier
from ledger.transcoder import untag

#: the topics the directory cross-check names
SUBJECT_LISTED_TOPIC = "refledger:SubjectDirectory.SubjectListed"
SUBJECT_EXTRACTED_TOPIC = "refledger:Subject.Extracted"
KEY_REGISTERED_TOPIC = "refledger:Person.KeyRegistered"
_KEY_TOPICS = frozenset({KEY_REGISTERED_TOPIC, "refledger:Person.KeyRevoked"})
#: chained topics whose next intact link needs nothing but the link check
FAST_TOPIC_PREFIXES = tuple(prefix for prefix in CHAINED_TOPIC_PREFIXES if prefix != "refledger:SubjectDirectory.")

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.storage import Database, EventRow

# Leaves of the Merkle tree are the events in log order (SQLite rowid, PostgreSQL
# notification_id; gaps skipped, so a leaf index is not a log position). A leaf is
# RFC 6962's leaf hash of the event's 32-byte digest: SHA-256(0x00 || SHA-256(canonical)).
# Every stream is in the tree; only referral and subject streams carry a prev_hash chain.

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
            "reordered",
            "topic-changed",
            "directory-entry-missing",
            "directory-entry-unknown",
            "checkpoint-leaf-removed",
            "checkpoint-leaf-differs",
            "checkpoint-other-ledger",
            "checkpoint-truncated",
            "checkpoint-root-mismatch",
            "stored-checkpoint-mismatch",
            "stored-checkpoint-truncated",
            "signature",
            "event-signature",
        )
    )
}


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
            # a referral's name is in its first event: when that is gone, say what kind of stream it is
            named = "referral stream" if (self.topic or "").startswith("refledger:Referral.") else "stream"
            parts.append(f"{named} {self.stream}")
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
        "first_leaf",
        "first_position",
        "gaps",
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
        self.first_leaf: int | None = None  # where the stream's first event (version 1) is
        self.first_position: int | None = None
        #: versions found missing so far: (first, last, index of the finding), to tell a
        #: reorder (they come later) from a deletion
        self.gaps: list[tuple[int, int, int | None]] = []
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
    #: every subject directory entry: (stream as stored, subject, leaf, log position, version)
    directory_subjects: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    leaf_differs: Finding | None = None
    first_event: Finding | None = None  # where leaf 0 is, for findings about the ledger's first event
    #: each person's signing keys in force so far (log order), and how many signatures held
    keys: KeyRing = field(default_factory=KeyRing)
    signed: int = 0
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
        # directory entries take the slow path: it also collects them for the directory cross-check
        fast_prefixes = FAST_TOPIC_PREFIXES
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
                    Finding("undecodable", f"its stored state cannot be read ({first_words(error)})"),
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
            if type(fields) is dict and (topic in _KEY_TOPICS or "signature" in fields):
                self._check_signature(stream, leaf_index, position, version, topic, fields, digest_hex)
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
                and topic.startswith(fast_prefixes)
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

    def _check_signature(self, stream: _Stream, leaf: int, position: int, version: int, topic: str, fields: Any, digest_hex: str) -> None:
        """A signed event must verify with a key registered for its actor's person by then."""
        if "signature" in fields:
            actor = fields.get("actor")
            person = actor.get("person") if isinstance(actor, dict) else None
            if not isinstance(person, str):
                problem = "it carries a signature but names no person who could have made it"
            elif not self.keys.in_force(person):
                problem = f"it is signed, but {person} had no signing key in force then"
            elif not self.keys.holds(person, fields["signature"], digest_hex):
                problem = f"its signature does not verify with {person}'s key: the event was changed, or signed by someone else"
            else:
                problem = ""
                self.signed += 1
            if problem:
                self._add(Finding("event-signature", problem), stream, leaf, position, version, topic)
        if topic in _KEY_TOPICS and isinstance(fields.get("person"), str) and isinstance(fields.get("public_key"), str):
            # in force from the next event on (a key does not sign its own registration)
            if topic == KEY_REGISTERED_TOPIC:
                self.keys.register(fields["person"], fields["public_key"])
            else:
                self.keys.revoke(fields["person"], fields["public_key"])

    def _next_size(self) -> int:
        return self.points[self._next_point].size if self._next_point < len(self.points) else -1

    def _compare_leaf(
        self, expected: bytes, leaf: bytes, stream: _Stream, leaf_index: int, position: int, version: int, topic: str
    ) -> None:
        committed = expected[leaf_index * 32 : leaf_index * 32 + 32]
        if committed and committed != leaf:
            removed = self._removed_before(expected, leaf, leaf_index)
            if removed:
                # the event here was committed further on: the ones before it are gone, and
                # this event is not to blame
                here = f"referral {stream.referral}" if stream.referral else f"stream {stream.text}"
                span = f"leaf {leaf_index}" if removed == 1 else f"leaves {leaf_index}-{leaf_index + removed - 1}"
                self.leaf_differs = Finding(
                    "checkpoint-leaf-removed",
                    f"the {'event' if removed == 1 else f'{removed} events'} the checkpoint committed to at {span} "
                    f"{'was' if removed == 1 else 'were'} removed since the checkpoint: the event now at leaf {leaf_index} "
                    f"({here} version {version}, log position {position}) is the one committed at leaf {leaf_index + removed}",
                    leaf=leaf_index,
                )
                self._keep(self.leaf_differs)
                return
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

    @staticmethod
    def _removed_before(expected: bytes, leaf: bytes, leaf_index: int, look_ahead: int = 256) -> int:
        """How many committed leaves were skipped when this leaf is committed a little further on (0: it is not)."""
        for ahead in range(1, look_ahead + 1):
            start = (leaf_index + ahead) * 32
            if start >= len(expected):
                return 0
            if expected[start : start + 32] == leaf:
                return ahead
        return 0

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
            self.directory_subjects.append((stream.raw, fields["subject"], leaf, position, version))
        if version == 1:
            stream.first_leaf, stream.first_position = leaf, position
        if topic.startswith(CHAINED_TOPIC_PREFIXES) != stream.chained:
            self._add(Finding("topic-changed", f"its topic {topic} does not belong in this stream"), stream, leaf, position, version, topic)
        if version <= stream.version:
            if self._reordered(stream, leaf, position, version, topic):
                return
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
            stream.gaps.append((1, version - 1, self._last_kept()))
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
            stream.gaps.append((stream.version + 1, version - 1, self._last_kept()))
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

    def _last_kept(self) -> int | None:
        """The index of the finding just added, if it was kept in full."""
        return len(self.findings) - 1 if self.findings_total == len(self.findings) else None

    def _reordered(self, stream: _Stream, leaf: int, position: int, version: int, topic: str) -> bool:
        """A version found missing earlier turns up later in log order: the events were
        reordered (moved), not deleted. The earlier finding says so, and this one too."""
        for number, (low, high, index) in enumerate(stream.gaps):
            if low <= version <= high:
                if index is not None:
                    earlier = self.findings[index]
                    self.findings[index] = replace(
                        earlier,
                        kind="reordered",
                        problem=f"it comes before version {version} (log position {position}) in log order: "
                        "the stream's events were reordered (moved), not deleted",
                    )
                self._add(
                    Finding(
                        "reordered",
                        f"version {version} comes after version {stream.version} (log position {stream.position}) in log order: "
                        "the stream's events were reordered (moved)",
                    ),
                    stream,
                    leaf,
                    position,
                    version,
                    topic,
                )
                remaining = [(lo, hi, index) for lo, hi in ((low, version - 1), (version + 1, high)) if lo <= hi]
                stream.gaps[number : number + 1] = remaining
                return True
        return False

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
        self._check_directories()
        if any(f.referral is None and f.stream is not None for f in self.findings):
            self._name_unlabelled(self.streams)

    def _check_directories(self) -> None:
        """Every subject stream is listed in its referral's subject directory, and every
        directory entry names a subject stream: a removed entry hides a subject from
        ``subjects list``, the case file and the timeline, even where no chain can see it."""
        from ledger.subject import directory_id
        from ledger.values import subject_id

        texts = {stream.text for stream in self.streams.values()}
        directories: dict[str, str] = {}  # directory stream (text) → referral
        subjects: dict[tuple[str, str], _Stream] = {}
        for stream in self.streams.values():
            if stream.referral and stream.subject is not None and stream.first_leaf is not None:
                subjects[(stream.referral, stream.subject)] = stream
        for known in {s.referral for s in self.streams.values() if s.referral}:
            directories[str(directory_id(known))] = known
        listed: set[tuple[str, str]] = set()
        for raw, subject, leaf, position, version in self.directory_subjects:
            directory = self.streams[raw]
            reference = directories.get(directory.text)
            if reference is None:
                continue  # a directory of no known referral: named, if at all, by its own findings
            listed.add((reference, subject))
            if (reference, subject) not in subjects and str(subject_id(reference, subject)) not in texts:
                self._keep(
                    Finding(
                        "directory-entry-unknown",
                        f"the subject directory lists subject {subject}, but no such subject's events are in the ledger "
                        "(its events were removed, or this entry was changed)",
                        leaf=leaf,
                        position=position,
                        stream=directory.text,
                        referral=reference,
                        subject=subject,
                        version=version,
                        topic=SUBJECT_LISTED_TOPIC,
                    )
                )
        for (reference, subject), stream in subjects.items():
            if (reference, subject) not in listed:
                self._keep(
                    Finding(
                        "directory-entry-missing",
                        "the subject is not listed in its referral's subject directory: the entry was removed or changed, "
                        "so the subject is hidden from subjects list, the case file and the timeline",
                        leaf=stream.first_leaf,
                        position=stream.first_position,
                        stream=stream.text,
                        referral=reference,
                        subject=subject,
                        version=1,
                        topic=SUBJECT_EXTRACTED_TOPIC,
                    )
                )

    def _name_unlabelled(self, streams: dict[str, _Stream]) -> None:
        """Name streams whose first event is gone, from the references the ledger still holds."""
        from ledger.subject import directory_id
        from ledger.values import referral_id, subject_id

        references = {s.referral for s in streams.values() if s.referral}
        names: dict[str, tuple[str, str | None]] = {}
        for reference in references:
            names[str(referral_id(reference))] = (reference, None)
            names[str(directory_id(reference))] = (reference, None)
        for raw, listed, *_ in self.directory_subjects:
            owner = names.get(streams[raw].text, (None, None))[0]
            if owner is not None:
                names[str(subject_id(owner, listed))] = (owner, listed)
        for index, finding in enumerate(self.findings):
            if finding.referral is None and finding.stream in names:
                named_referral, named_subject = names[finding.stream]
                self.findings[index] = replace(finding, referral=named_referral, subject=named_subject)


def _scan_rows(batches: Iterable[Sequence[EventRow]], points: Sequence[ReferencePoint], expected_leaves: bytes | None = None) -> _Scan:
    scan = _Scan(list(points), expected_leaves)
    with collector_paused():  # the per-stream table grows with the ledger and holds no cycles
        for batch in batches:
            scan.feed(batch)
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
    #: further checkpoint files given (``verify --checkpoint A --checkpoint B``), each checked the same way
    others: tuple[CheckpointCheck, ...] = ()
    #: events whose signature verified with their person's key
    signed: int = 0

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
            "other_checkpoints": [c.as_dict() for c in self.others],
            "stored_checkpoints": {"checked": self.stored_checked, "matching": self.stored_matching},
            "guards": dict(self.guards),
            "first_bad": self.first_bad.as_dict() if self.first_bad else None,
            "findings": [f.as_dict() for f in self.findings[:limit]],
            "findings_total": self.findings_total,
            "signed_events": self.signed,
            "notes": list(self.notes),
        }


def verify_ledger(
    ledger: Ledger,
    database: Database,
    checkpoint: Checkpoint | None = None,
    public_key: bytes | None = None,
    leaves: bytes | None = None,
    guards: Mapping[str, str] | None = None,
    others: Sequence[Checkpoint] = (),
) -> Verification:
    """Recompute every chain and the Merkle tree from the stored rows; check the checkpoint
    (a file the auditor kept), any ``others`` (more files) and the checkpoints stored in the database.

    ``leaves`` (the leaf file written with that checkpoint) lets a change the chains cannot
    see (a stream's last event, a consistent rewrite) be named exactly, not just bounded.
    """
    from ledger.storage import read_event_rows

    stored = [s.checkpoint for s in stored_checkpoints(ledger, database)]
    return verify_rows(read_event_rows(database), checkpoint, public_key, leaves, stored, guards, others)


def verify_rows(
    batches: Iterable[Sequence[EventRow]],
    checkpoint: Checkpoint | None = None,
    public_key: bytes | None = None,
    leaves: bytes | None = None,
    stored: Sequence[Checkpoint] = (),
    guards: Mapping[str, str] | None = None,
    others: Sequence[Checkpoint] = (),
) -> Verification:
    """Verify stored rows (position, stream id, version, topic, state) given in log order.

    Each of ``others`` is a further checkpoint file, checked like ``checkpoint``: when the
    ledger extends every one of them they are consistent with one another too (each is a
    prefix of the same tree)."""
    if leaves is not None:
        _check_leaf_file(leaves, checkpoint)
    file_point = ReferencePoint(checkpoint.size, bytes.fromhex(checkpoint.root), "the checkpoint", False) if checkpoint else None
    points = [file_point] if file_point else []
    other_points = [ReferencePoint(c.size, bytes.fromhex(c.root), f"the checkpoint file of size {c.size}", False) for c in others]
    points += other_points
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
        extra.append(Finding("signature", SIGNATURE_PROBLEMS[str(status)]))
    other_checks = []
    for other, point in zip(others, other_points, strict=True):
        other_status = other.signature_status(public_key)
        if other_status in ("invalid", "wrong-key") or (other_status == "unsigned" and public_key is not None):
            extra.append(Finding("signature", f"checkpoint of size {other.size}: {SIGNATURE_PROBLEMS[other_status]}"))
        same = other.ledger is None or other.ledger == scan.first_digest
        matched = other.size == 0 or any(p is point and ok for p, ok in scan.point_results)
        other_checks.append(CheckpointCheck("file", other, other_status, matched and same))
    findings += extra
    findings.sort(key=Finding.order)
    check = None
    if checkpoint is not None:
        same_ledger = checkpoint.ledger is None or checkpoint.ledger == scan.first_digest
        extends = (checkpoint.size == 0 or any(p is file_point and ok for p, ok in scan.point_results)) and same_ledger
        check = CheckpointCheck("file", checkpoint, str(status), extends)
    # stored checkpoints equal to the file's were checked as the file's
    same_as_file = len(stored) - sum(1 for p in points if p.stored)
    file_matched = any(p is file_point and ok for p, ok in scan.point_results)
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
        others=tuple(other_checks),
        signed=scan.signed,
    )
    return replace(verification, notes=tuple(_notes(verification, scan)))


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
    removals = any(f.kind in ("version-gap", "first-event-missing", "checkpoint-leaf-removed") for f in scan.findings)
    for point in scan.points:
        if point.size > size and not (point.stored and stored_reported):
            stored_reported = stored_reported or point.stored
            missing = point.size - size
            found.append(
                Finding(
                    "stored-checkpoint-truncated" if point.stored else "checkpoint-truncated",
                    f"{point.label} covers {point.size} events but the ledger holds {size}: "
                    + (
                        f"{missing} were removed (see the findings before this one)"
                        if removals
                        else f"the last {missing} were removed {last}"
                    ),
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
