"""Integrity commands: keygen, checkpoint, verify, proof, verify-proof.

Thin: read the files the user names, call ``ledger.checkpointing``, ``ledger.verification`` and ``ledger.proofs``, render through ``emit``.
``verify`` and ``verify-proof`` exit 3 when the record does not hold (FindingsExit).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from commands.output import emit, output_options, plural
from commands.session import FindingsExit, session
from commands.transparency import _check_witnesses, _load_checkpoints, _require_key_for_notes, _witness_text, witness_options

_FILE = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(dir_okay=False, exists=True, path_type=Path)
KEY_ENV = "REFLEDGER_CHECKPOINT_KEY"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read the {what} {path}: {error.strerror}") from None


def _write_new(path: Path, data: bytes, private: bool = False) -> None:
    """Write a file that must not exist yet (a key or checkpoint is never overwritten): 0600,
    never through a symbolic link, on disk before anything that depends on it is committed."""
    from commands.output import write_out

    write_out(path, data)


def _public_key(value: str | None) -> bytes | None:
    """--public-key: a PEM file, a file holding 64 hex characters, or the 64 hex characters."""
    from ledger.checkpoint import parse_public_key

    if value is None:
        return None
    path = Path(value)
    try:
        is_file = path.exists()
    except (OSError, ValueError):  # a name too long (or with a NUL) for a path: it is the key text
        is_file = False
    data = _read(path, "public key") if is_file else value.encode("utf-8", "replace")
    return parse_public_key(data)


@click.command("keygen")
@click.option("--out", "out", type=_FILE, required=True, metavar="KEY", help="Private key file to create (KEY.pub is written beside it).")
@click.option("--person", metavar="PERSON", help="A person's key for signing events: its public half is registered in the directory.")
@click.option("--data-key", "data_key", is_flag=True, help="Create a ledger data key (seals free text) instead of a signing key.")
@output_options(tabular=False)
def keygen(out: Path, person: str | None, data_key: bool, fmt: str | None) -> None:
    """Create an Ed25519 key pair for signing checkpoints (or a person's events), or with
    --data-key a ledger data key.

    A data key (256 random bits, readable by its owner only) seals the free text of a new
    ledger: give it as --data-key FILE or REFLEDGER_DATA_KEY from the first event on.

    The private key (PEM, PKCS 8, readable by its owner only) goes to KEY, the public key
    to KEY.pub. Give the public key to the auditors who will verify checkpoints; keep the
    private key with whoever takes checkpoints.

    With --person, the key is that person's, for signing the events they record
    (--signing-key or REFLEDGER_SIGNING_KEY); its public half is registered for them in the
    directory, as an event recorded --as whoever issues it.

    \b
    Example:
      refledger keygen --out checkpoint-key.pem
      refledger keygen --data-key --out ledger-data.key
      refledger --as P-900:hr-officer@U-HR keygen --person P-042 --out p-042.pem
    """
    if data_key and person is not None:
        raise click.ClickException("give --person or --data-key, not both")
    if data_key:
        from ledger.sealing import new_data_key_text

        _write_new(out, new_data_key_text().encode(), private=True)
        emit(fmt, {"data_key": str(out)}, text=f"Wrote a ledger data key to {out}. Keep it apart from the ledger's backups.")
        return
    from ledger.checkpoint import new_signing_key

    if person is not None:
        from commands.signing import person_keygen

        person_keygen(person, out, fmt)
        return

    private, public_pem, public_hex = new_signing_key()
    public_path = out.with_name(out.name + ".pub")
    if public_path.exists():
        raise click.ClickException(f"{public_path} already exists; choose another name")
    _write_new(out, private, private=True)
    _write_new(public_path, public_pem)
    data = {"private_key": str(out), "public_key_file": str(public_path), "public_key": public_hex}
    emit(fmt, data, text=f"Wrote the private key to {out} and the public key to {public_path}.\nPublic key: {public_hex}")


@click.command("checkpoint")
@click.option("--key", type=_EXISTING, envvar=KEY_ENV, metavar="KEY", help=f"Sign with this Ed25519 private key (or ${KEY_ENV}).")
@click.option("--out", "out", type=_FILE, metavar="FILE", help="Also write the checkpoint to FILE, to keep outside the organisation.")
@click.option(
    "--leaves",
    type=_FILE,
    metavar="FILE",
    help="Also write the checkpoint's leaf hashes (32 bytes per event; reads the whole ledger) so verify can name "
    "the exact event of a change the chains cannot see.",
)
@click.option(
    "--note",
    "note",
    type=_FILE,
    metavar="FILE",
    help="Also write the checkpoint as a C2SP signed note (needs --key): the form witnesses and standard tools read.",
)
@output_options(tabular=False)
def checkpoint(key: Path | None, out: Path | None, leaves: Path | None, note: Path | None, fmt: str | None) -> None:
    """Record the ledger's size and Merkle root, signed when a key is given.

    Every event is hashed again (nothing stored is trusted). The checkpoint is written to
    --out first, then recorded in the database (``proof`` uses the newest): {size, root,
    time, ledger, signature, public_key, streams, heads}, where heads is the root of the
    tree of every stream's chain head; with --note, also as a C2SP signed note (origin,
    size, base64 root, one signature line), the form to hand to witnesses and to check with
    standard tools. Refuses (exit 3) when events already checkpointed were changed, removed
    or inserted; nothing is recorded when a file cannot be written.

    \b
    Example:
      refledger checkpoint --key checkpoint-key.pem --note checkpoints/2024-04-30.note
    """
    from ledger.checkpointing import checkpoint_leaves, prepare_checkpoint, record_checkpoint
    from ledger.errors import LedgerTampered

    pem = _read(key, "key") if key is not None else None
    if note is not None and pem is None:
        raise click.ClickException("a signed note needs a signature: give --key with --note")
    for path in (out, leaves, note):
        if path is not None and path.exists():
            raise click.ClickException(f"{path} already exists; choose another name")
    ledger, database = session().open()
    try:
        made = prepare_checkpoint(ledger, database, pem)
        leaf_bytes = checkpoint_leaves(database, made.checkpoint) if leaves is not None else None
    except LedgerTampered as error:
        raise FindingsExit(f"Refused: {error}") from None
    # the files first, the row last: a checkpoint is never recorded that the user does not hold
    written: list[Path] = []
    vkey = None
    try:
        if out is not None:
            _write_new(out, orjson.dumps(made.checkpoint.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
            written.append(out)
        if leaves is not None and leaf_bytes is not None:
            _write_new(leaves, leaf_bytes)
            written.append(leaves)
        if note is not None and pem is not None:
            vkey = _write_note(note, made.checkpoint, pem)
            written.append(note)
        record_checkpoint(ledger, database, made)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    found = made.checkpoint
    data = {
        "checkpoint": found.as_dict(),
        "new_events": made.new_events,
        "out": str(out) if out else None,
        "leaves": str(leaves) if leaves else None,
        "note": str(note) if note else None,
        "verifier_key": vkey,
    }
    signed = "signed" if found.signature else "unsigned"
    lines = [
        f"Checkpoint of {plural(found.size, 'event')} ({made.new_events} new), {signed}, at {found.time}.",
        f"Root: {found.root}",
    ]
    if out is not None:
        lines.append(f"Written to {out}: keep a copy outside the organisation.")
    if leaves is not None:
        lines.append(f"Leaf hashes written to {leaves}.")
    if note is not None:
        lines.append(f"Signed note written to {note}; its verifier key: {vkey}")
    emit(fmt, data, text="\n".join(lines))


def _write_note(path: Path, made: Any, pem: bytes) -> str:
    """Write the checkpoint as a signed note; return the verifier key standard tools take."""
    from ledger.checkpoint import parse_public_key
    from ledger.transparency import checkpoint_note, log_verifier_key

    _write_new(path, checkpoint_note(made, pem).encode())
    return log_verifier_key(made, parse_public_key(made.public_key.encode())).encode()


@click.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    type=_EXISTING,
    multiple=True,
    metavar="FILE",
    help="A checkpoint file kept outside the organisation (signed note or JSON); repeat to check several.",
)
@click.option("--public-key", metavar="PUB", help="The public key the checkpoint must be signed with (PEM file, or 64 hex characters).")
@click.option("--leaves", type=_EXISTING, metavar="FILE", help="The leaf file written with that checkpoint, to name changes exactly.")
@witness_options
@output_options(tabular=False)
def verify(
    checkpoint_files: tuple[Path, ...],
    public_key: str | None,
    leaves: Path | None,
    witness_keys: tuple[str, ...],
    witnesses: int | None,
    fmt: str | None,
) -> None:
    """Recompute every hash chain and the Merkle tree; prove the ledger extends a checkpoint.

    Exit 0 when the record holds. Exit 3 when it does not, naming the first bad event in
    log order (referral, subject, version, log position) and what is wrong with it.
    Without --checkpoint, an edit to a stream's last event or a consistent rewrite cannot
    be seen; the output says so. Several --checkpoint files are each checked, in one pass:
    when the ledger extends every one, they are consistent with one another. With
    --witness-key, the newest checkpoint (a signed note) must carry that witness's
    cosignature (every key given, or --witnesses N of them).

    \b
    Example:
      refledger verify --checkpoint checkpoints/2024-04-30.note --public-key checkpoint-key.pem.pub
    """
    from ledger.storage import append_only_guard_state, resolve_database
    from ledger.verification import verify_ledger

    found = _load_checkpoints(checkpoint_files)
    pinned = _public_key(public_key)
    leaf_bytes = _read(leaves, "leaf file") if leaves is not None else None
    _require_key_for_notes(found, pinned)
    main = max(found, key=lambda c: (leaf_bytes is not None and c.size * 32 == len(leaf_bytes), c.size)) if found else None
    witnessed = _check_witnesses(main, witness_keys, witnesses)
    current = session()
    # read before opening: opening the ledger reinstalls the guards
    guards = append_only_guard_state(resolve_database(current.db))
    ledger, database = current.open()
    others = [c for c in found if c is not main]
    result = verify_ledger(ledger, database, main, pinned, leaf_bytes, guards, others)
    data = result.as_dict()
    text = _verification_text(result)
    if witnessed is not None:
        data["witnesses"] = witnessed.as_dict()
        text += "\n" + _witness_text(witnessed)
    emit(fmt, data, text=text)
    if witnessed is not None and not witnessed.sound:
        raise FindingsExit(f"Verification failed: {witnessed.problem()}")
    if not result.sound:
        first = result.first_bad
        others = result.findings_total - 1
        more = f" ({others} more finding{'s' if others != 1 else ''})" if others else ""
        raise FindingsExit(f"Verification failed: {first.describe() if first else 'see above'}{more}")


def _verification_text(result: Any) -> str:
    lines = []
    if result.sound:
        lines.append(f"Sound: {plural(result.events, 'event')} in {plural(result.streams, 'stream')}; every hash chain holds.")
    else:
        lines.append(f"NOT SOUND: {result.findings_total} finding(s) in {plural(result.events, 'event')}.")
        for finding in result.findings[:20]:
            lines.append(f"  - {finding.describe()}")
        if result.findings_total > 20:
            lines.append(f"  … and {result.findings_total - 20} more (--json lists the first 100)")
    lines.append(f"Merkle root of {plural(result.events, 'event')}: {result.root}")
    for check in ([result.checkpoint] if result.checkpoint else []) + list(result.others):
        stands = "the ledger extends it" if check.extends else "the ledger does NOT extend it"
        at = "" if getattr(check.checkpoint, "note", None) else f" at {check.checkpoint.time}"
        lines.append(f"Checkpoint of {plural(check.checkpoint.size, 'event')}{at} (signature: {check.signature}): {stands}.")
    if result.stored_checked:
        lines.append(f"Checkpoints stored in the database: {result.stored_matching} of {result.stored_checked} match.")
    lines += [f"Note: {note}" for note in result.notes]
    return "\n".join(lines)


@click.command("proof")
@click.argument("reference", metavar="REF")
@click.option("--out", "out", type=_FILE, metavar="FILE", help="Write the proof to FILE (default: print it).")
@output_options(tabular=False)
def proof(reference: str, out: Path | None, fmt: str | None) -> None:
    """Export one referral's events with inclusion proofs against the newest checkpoint.

    The file holds the referral's events, its subjects' and its subject directory's, each
    with the exact bytes that were hashed and the Merkle path to the checkpoint's root, and
    the checkpoint itself: anyone can check it offline with ``verify-proof``. Reads the whole
    ledger up to the checkpoint.

    \b
    Example:
      refledger proof R-2024-0311 --out R-2024-0311.proof.json
    """
    from ledger.errors import LedgerTampered
    from ledger.proofs import export_proof

    if out is not None and out.exists():
        raise click.ClickException(f"{out} already exists; choose another name")
    ledger, database = session().open()
    ledger.referral_events(reference)  # an unknown referral: "referral … is not in the ledger"
    try:
        document = export_proof(ledger, database, reference)
    except LedgerTampered as error:
        raise FindingsExit(f"Refused: {error}") from None
    if out is None:
        emit("json", document)
        return
    _write_new(out, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    data = {
        "referral": reference,
        "events": len(document["events"]),
        "events_after_checkpoint": document["events_after_checkpoint"],
        "checkpoint_size": document["checkpoint"]["size"],
        "out": str(out),
    }
    later = f"; {data['events_after_checkpoint']} later events await the next checkpoint" if data["events_after_checkpoint"] else ""
    emit(
        fmt,
        data,
        text=f"Wrote {data['events']} event{'' if data['events'] == 1 else 's'} of {reference} with inclusion proofs to {out} (checkpoint size {data['checkpoint_size']}{later}).",
    )


@click.command("verify-proof")
@click.argument("file", type=_EXISTING, metavar="FILE")
@click.option("--public-key", metavar="PUB", help="The public key the checkpoint must be signed with (PEM file, or 64 hex characters).")
@click.option(
    "--checkpoint",
    "note_file",
    type=_EXISTING,
    metavar="NOTE",
    help="The cosigned signed-note checkpoint of the proof's size and root, for --witness-key.",
)
@witness_options
@output_options(tabular=False)
def verify_proof_command(
    file: Path,
    public_key: str | None,
    note_file: Path | None,
    witness_keys: tuple[str, ...],
    witnesses: int | None,
    fmt: str | None,
) -> None:
    """Check a proof file offline (no database): hashes, inclusion proofs, chains, signature.

    Exit 0 when every event is in the checkpointed tree and the stream chains in the file
    hold; exit 3 otherwise. With --witness-key, the checkpoint note given with --checkpoint
    (the same size and root as the proof's) must carry the witnesses' cosignatures.

    \b
    Example:
      refledger verify-proof R-2024-0311.proof.json --public-key checkpoint-key.pem.pub
    """
    from ledger.errors import InvalidInput
    from ledger.proofs import verify_proof

    try:
        document = orjson.loads(_read(file, "proof file"))
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{file} is not JSON") from None
    pinned = _public_key(public_key)
    result = verify_proof(document, pinned)
    witnessed = None
    if note_file is not None or witness_keys:
        if note_file is None:
            raise click.ClickException("--witness-key needs the cosigned checkpoint note: give --checkpoint NOTE")
        note = _load_checkpoints((note_file,))[0]
        _require_key_for_notes([note], pinned)
        if (note.size, note.root) != (result.checkpoint.size, result.checkpoint.root):
            raise click.ClickException(f"{note_file} is a checkpoint of size {note.size}, not the proof's ({result.checkpoint.size})")
        status = note.signature_status(pinned)
        if status != "valid":
            result = replace(result, findings=(*result.findings, f"the checkpoint note's signature: {status}"))
        witnessed = _check_witnesses(note, witness_keys, witnesses)
    lines = [
        f"{'Sound' if result.sound else 'NOT SOUND'}: {plural(result.events, 'event')} of {result.referral} "
        f"against the checkpoint of {plural(result.checkpoint.size, 'event')} at {result.checkpoint.time} (signature: {result.signature})."
    ]
    lines += [f"  - {finding}" for finding in result.findings]
    data = result.as_dict()
    if witnessed is not None:
        data["witnesses"] = witnessed.as_dict()
        lines.append(_witness_text(witnessed))
    emit(fmt, data, text="\n".join(lines))
    if not result.sound:
        raise FindingsExit(f"Proof failed: {result.findings[0]}")
    if witnessed is not None and not witnessed.sound:
        raise FindingsExit(f"Proof failed: {witnessed.problem()}")


INTEGRITY_COMMANDS = [keygen, checkpoint, verify, proof, verify_proof_command]
