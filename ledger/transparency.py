"""Checkpoints as C2SP signed notes, consistency proofs between them, and witnesses.

The signed note is the checkpoint form for anyone outside the organisation: its text is
``referral-ledger/<ledger id>\\n<size>\\n<base64 root>\\n`` (the ledger id is the SHA-256
digest of the ledger's first event, as in the JSON form) and its signature line is the
ledger's Ed25519 key under the origin as key name. Standard tools (Go's
``golang.org/x/mod/sumdb/note``, the transparency-dev witnesses) read it as it is.

A witness keeps, per origin, the last checkpoint it cosigned in its state directory and
cosigns a newer one only with a consistency proof from that one; a different checkpoint of
the same size (a split view) is refused. See docs/FORMAT.md §6.
"""

from __future__ import annotations

import base64
import fcntl
import os
import time as clock
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.checkpoint import SIGNATURE_PROBLEMS, Checkpoint, load_private_key
from ledger.checkpointing import _leaf_of_row
from ledger.errors import InvalidInput, LedgerError, LedgerTampered
from ledger.merkle import EMPTY_ROOT, consistency_proof, verify_consistency
from ledger.signed_note import (
    COSIGNATURE,
    ED25519,
    CheckpointBody,
    SignedNote,
    VerifierKey,
    check_signature,
    cosign,
    format_consistency_proof,
    parse_checkpoint_body,
    parse_consistency_proof,
    parse_note,
    sign_note,
    signer_key,
)

if TYPE_CHECKING:
    from ledger.storage import Database

ORIGIN_PREFIX = "referral-ledger/"
#: what a report says for a signed note's time: the note does not state one
NOTE_TIME = "a time the signed note does not state"


class WitnessRefused(LedgerError):
    """The witness will not cosign: the checkpoint is not consistent with what it cosigned before."""


def origin_for(ledger_id: str | None) -> str:
    """The origin line (and log key name) naming a ledger by its id."""
    if ledger_id is None:
        raise InvalidInput("an empty ledger has no id to name in a checkpoint's origin")
    return ORIGIN_PREFIX + ledger_id


@dataclass(frozen=True)
class NoteCheckpoint(Checkpoint):
    """A checkpoint read from a signed note. Its signature is checked with the public key the
    auditor gives (a note names its key but does not carry it); it holds no time."""

    origin: str = ""
    note: SignedNote | None = field(default=None, compare=False)

    def signature_status(self, pinned_key: bytes | None) -> str:
        if pinned_key is None or self.note is None:
            return "unchecked"
        found = check_signature(self.note, VerifierKey(self.origin, ED25519, pinned_key))
        return {"valid": "valid", "invalid": "invalid", "absent": "wrong-key"}[found.status]

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "time": None, "form": "signed-note", "origin": self.origin}


def checkpoint_from_note(note: SignedNote, source: str) -> NoteCheckpoint:
    body = parse_checkpoint_body(note.text, source)
    ledger = body.origin.removeprefix(ORIGIN_PREFIX)
    known = ledger if body.origin.startswith(ORIGIN_PREFIX) and len(ledger) == 64 else None
    # ``signature``: the first signature line's payload, so a reader sees the note is signed
    first = base64.b64encode(note.signatures[0].key_id + note.signatures[0].signature).decode()
    return NoteCheckpoint(body.size, body.root.hex(), NOTE_TIME, known, first, origin=body.origin, note=note)


def load_checkpoint(data: bytes, source: str) -> Checkpoint:
    """A checkpoint file in either form: a C2SP signed note, or the JSON ``checkpoint`` writes."""
    if data.lstrip().startswith(b"{"):
        return Checkpoint.from_json(data, source)
    return checkpoint_from_note(parse_note(data, source), source)


def checkpoint_note(checkpoint: Checkpoint, private_key_pem: bytes) -> SignedNote:
    """The checkpoint as a C2SP signed note, signed by the ledger's Ed25519 key."""
    body = CheckpointBody(origin_for(checkpoint.ledger), checkpoint.size, bytes.fromhex(checkpoint.root))
    return sign_note(body.text(), body.origin, load_private_key(private_key_pem))


def log_verifier_key(checkpoint: Checkpoint, public_key: bytes) -> VerifierKey:
    """The vkey (``name+id+base64``) standard note tools take for this ledger's checkpoints."""
    return VerifierKey(origin_for(checkpoint.ledger), ED25519, public_key)


# --- consistency -------------------------------------------------------------------


def prove_consistency(database: Database, old: Checkpoint, new: Checkpoint) -> bytes:
    """The RFC 6962 consistency proof from ``old`` to ``new``, from the ledger's events, in
    tlog-witness lines. LedgerTampered when the ledger no longer hashes to either root."""
    from ledger.storage import read_event_rows

    _same_log(old, new)
    if old.size > new.size:
        raise InvalidInput(f"the old checkpoint covers {old.size} events, more than the new one ({new.size}): swap them")
    leaves: list[bytes] = []
    for batch in read_event_rows(database):
        for row in batch:
            if len(leaves) == new.size:
                break
            leaves.append(_leaf_of_row(row))
        if len(leaves) == new.size:
            break
    if len(leaves) < new.size:
        raise LedgerTampered(f"the ledger holds {len(leaves)} events, fewer than the {new.size} the new checkpoint covers")
    proof = consistency_proof(leaves, old.size, new.size)
    if not verify_consistency(old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root), proof):
        raise LedgerTampered(
            "the ledger's events do not hash to both checkpoints' roots: the ledger was changed since the old checkpoint, "
            "or the checkpoints are of another ledger; no consistency proof exists"
        )
    return format_consistency_proof(old.size, proof)


def _same_log(old: Checkpoint, new: Checkpoint) -> None:
    if old.ledger is not None and new.ledger is not None and old.ledger != new.ledger:
        raise LedgerTampered("the two checkpoints name different ledgers")


@dataclass(frozen=True)
class ConsistencyCheck:
    old: Checkpoint
    new: Checkpoint
    signatures: tuple[str, str]
    proof_hashes: int
    findings: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.sound,
            "old": {**self.old.as_dict(), "signature_status": self.signatures[0]},
            "new": {**self.new.as_dict(), "signature_status": self.signatures[1]},
            "proof_hashes": self.proof_hashes,
            "findings": list(self.findings),
        }


def check_consistency(old: Checkpoint, new: Checkpoint, proof: bytes, public_key: bytes | None = None) -> ConsistencyCheck:
    """Offline: does ``new`` extend ``old``? Needs nothing but the two checkpoints and the proof."""
    old_size, hashes = parse_consistency_proof(proof)
    if old_size != old.size:
        raise InvalidInput(
            f"the proof starts from size {old_size}, but the old checkpoint covers {old.size}: it belongs to other checkpoints"
        )
    findings: list[str] = []
    statuses = (old.signature_status(public_key), new.signature_status(public_key))
    for which, status in zip(("old", "new"), statuses, strict=True):
        if status in ("invalid", "wrong-key") or (status == "unsigned" and public_key is not None):
            findings.append(f"the {which} checkpoint: {SIGNATURE_PROBLEMS[status]}")
    if old.ledger is not None and new.ledger is not None and old.ledger != new.ledger:
        findings.append("the two checkpoints name different ledgers")
    if old.size > new.size:
        findings.append(f"the new checkpoint covers {new.size} events, fewer than the old one's {old.size}: events were removed")
    elif not verify_consistency(old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root), hashes):
        same = old.size == new.size
        findings.append(
            "the two checkpoints are of the same size with different roots: a split view or a rewrite"
            if same
            else f"the proof does not show that the first {old.size} events of the new checkpoint are the old checkpoint's: "
            "the ledger was rewritten between them, or the proof is of other checkpoints"
        )
    return ConsistencyCheck(old, new, statuses, len(hashes), tuple(findings))


# --- witnesses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cosigned:
    note: SignedNote
    witness: VerifierKey
    old_size: int
    timestamp: int


def _state_file(state: Path, origin: str) -> Path:
    # the origin is a key name: no spaces or '+'; '/' becomes '_' so it is one file name
    return state / (origin.replace("/", "_") + ".checkpoint")


def witness_cosign(
    data: bytes,
    source: str,
    witness_pem: bytes,
    witness_name: str,
    state: Path,
    log_key: bytes,
    proof: bytes | None = None,
    now: int | None = None,
) -> Cosigned:
    """Check a checkpoint note against the log's key and the last one this witness cosigned
    for its origin, then add this witness's cosignature and remember the new checkpoint.

    WitnessRefused (a verification failure) when the checkpoint is not consistent with the
    last one cosigned: a smaller size, the same size with another root, or a proof that does
    not verify. InvalidInput for missing or malformed inputs.
    """
    note = parse_note(data, source)
    body = parse_checkpoint_body(note.text, source)
    log = VerifierKey(body.origin, ED25519, log_key)
    status = check_signature(note, log).status
    if status != "valid":
        words = "does not verify" if status == "invalid" else "is missing"
        raise WitnessRefused(f"the log's signature on {source} {words} for the log key given (origin {body.origin})")
    key = load_private_key(witness_pem)
    witness = signer_key(key, witness_name, COSIGNATURE)
    if body.size == 0 and body.root != EMPTY_ROOT:
        raise WitnessRefused("a checkpoint of size 0 must have the empty tree's root")
    _make_state_dir(state)
    # tlog-witness: checking against the state and replacing it are one step (a lock per state directory)
    with _locked(state):
        return _cosign_locked(note, body, key, witness, witness_name, _state_file(state, body.origin), log, proof, now)


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    try:
        descriptor = os.open(state / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as error:
        raise InvalidInput(f"cannot lock the witness state directory {state}: {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _cosign_locked(
    note: SignedNote,
    body: CheckpointBody,
    key: Any,
    witness: VerifierKey,
    witness_name: str,
    kept: Path,
    log: VerifierKey,
    proof: bytes | None,
    now: int | None,
) -> Cosigned:
    old = _read_state(kept, log)
    old_size = old.size if old else 0
    if old is not None and body.size < old.size:
        raise WitnessRefused(f"this witness already cosigned size {old.size}; a checkpoint of size {body.size} would roll it back")
    if old is not None and body.size == old.size and body.root != old.root:
        raise WitnessRefused(
            f"this witness already cosigned a different checkpoint of size {body.size} for {body.origin}: a split view; not cosigned"
        )
    hashes: list[bytes] = []
    if proof is not None:
        proof_size, hashes = parse_consistency_proof(proof)
        if proof_size != old_size:
            raise InvalidInput(f"this witness last cosigned size {old_size} for {body.origin}; the proof starts from {proof_size}")
    elif old_size not in (0, body.size):
        raise InvalidInput(
            f"this witness last cosigned size {old_size} for {body.origin}: give --proof, a consistency proof from it "
            f"(refledger consistency OLD NEW --out PROOF)"
        )
    if old_size == 0 and hashes:
        raise InvalidInput("this witness has cosigned nothing for this ledger yet: no proof is needed, and one from size 0 is empty")
    if old is not None and not verify_consistency(old.size, body.size, old.root, body.root, hashes):
        raise WitnessRefused(
            f"the consistency proof from size {old.size} to {body.size} does not verify: the log was rewritten; not cosigned"
        )
    timestamp = now if now is not None else int(clock.time())
    signature = cosign(note, witness_name, key, timestamp)
    _write_state(kept, CheckpointBody(body.origin, body.size, body.root, body.extensions), note)
    return Cosigned(note.with_signature(signature), witness, old_size, timestamp)


def _make_state_dir(state: Path) -> None:
    if state.exists() and not state.is_dir():
        raise InvalidInput(f"the witness state directory {state} is not a directory")
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInput(f"cannot use the witness state directory {state}: {error.strerror}") from None


def _read_state(path: Path, log: VerifierKey) -> CheckpointBody | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InvalidInput(f"cannot read the witness state {path}: {error.strerror}") from None
    note = parse_note(data, f"the witness state {path}")
    # the state is the log's own signed checkpoint, so a changed state file is caught too
    if check_signature(note, log).status != "valid":
        raise WitnessRefused(f"the witness state {path} is not signed by the log key given: it was changed, or the log key differs")
    return parse_checkpoint_body(note.text, f"the witness state {path}")


def _write_state(path: Path, body: CheckpointBody, note: SignedNote) -> None:
    """Replace the state atomically (write beside, fsync, rename), so a crash keeps old or new."""
    temporary = path.with_name(path.name + ".new")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(SignedNote(body.text(), note.signatures).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise InvalidInput(f"cannot write the witness state {path}: {error.strerror}") from None


@dataclass(frozen=True)
class WitnessCheck:
    """How many of the given witnesses validly cosigned a checkpoint note."""

    statuses: tuple[tuple[str, str, int | None], ...]  # (vkey name, valid/absent/invalid, timestamp)
    required: int

    @property
    def valid(self) -> int:
        return sum(status == "valid" for _, status, _ in self.statuses)

    @property
    def sound(self) -> bool:
        return self.valid >= self.required and not any(status == "invalid" for _, status, _ in self.statuses)

    def problem(self) -> str:
        bad = [name for name, status, _ in self.statuses if status == "invalid"]
        if bad:
            return f"the cosignature of {', '.join(bad)} does not verify: the checkpoint was altered after it was cosigned"
        return f"{self.valid} of the {len(self.statuses)} witnesses given cosigned the checkpoint; {self.required} are required"

    def as_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "valid": self.valid,
            "ok": self.sound,
            "witnesses": [{"name": n, "status": s, "timestamp": t} for n, s, t in self.statuses],
        }


def parse_witness_keys(texts: Sequence[str]) -> list[VerifierKey]:
    keys = [VerifierKey.parse(text) for text in texts]
    for key in keys:
        if key.signature_type != COSIGNATURE:
            raise InvalidInput(f"the witness key {key.name} is not a cosignature key (type 0x04); give the key `witness cosign` printed")
    return keys


def check_witnesses(checkpoint: Checkpoint, keys: Sequence[VerifierKey], required: int | None) -> WitnessCheck:
    """Count valid cosignatures on a checkpoint note (``required`` defaults to every key given)."""
    need = len(keys) if required is None else required
    if need > len(keys):
        raise InvalidInput(f"{need} witnesses are required but only {len(keys)} --witness-key given")
    note = checkpoint.note if isinstance(checkpoint, NoteCheckpoint) else None
    if note is None:
        raise InvalidInput("witnesses cosign signed-note checkpoints: give the checkpoint as a signed note (checkpoint --note)")
    found = [check_signature(note, key) for key in keys]
    return WitnessCheck(tuple((f.key.name, f.status, f.timestamp) for f in found), need)
