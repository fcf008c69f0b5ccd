"""Consistency proofs and witnesses: consistency, verify-consistency, witness cosign.

Thin, like the other integrity commands: read the files named, call ``ledger.transparency``,
render through ``emit``. A verification failure exits 3 (FindingsExit); bad input exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from commands.output import emit, output_options
from commands.session import FindingsExit, session

_FILE = click.Path(dir_okay=False, path_type=Path)
_F = TypeVar("_F", bound=Callable[..., Any])


def _files() -> Any:
    # the shared file helpers live with the other integrity commands (imported late: they import us)
    from commands import integrity

    return integrity


def _load_checkpoints(paths: Sequence[Path]) -> list[Any]:
    """Read checkpoint files in either form (signed note or JSON)."""
    from ledger.transparency import load_checkpoint

    return [load_checkpoint(_files()._read(path, "checkpoint"), str(path)) for path in paths]


def _require_key_for_notes(checkpoints: Sequence[Any], pinned: bytes | None) -> None:
    from ledger.transparency import NoteCheckpoint

    if pinned is None and any(isinstance(c, NoteCheckpoint) for c in checkpoints):
        raise click.ClickException("a signed-note checkpoint is checked against the ledger's public key: give --public-key")


def witness_options(command: _F) -> _F:
    """--witness-key (repeatable) and --witnesses N, for verify and verify-proof."""
    command = click.option(
        "--witnesses",
        type=click.IntRange(min=1),
        metavar="N",
        help="How many of the witnesses given must have cosigned (default: all of them).",
    )(command)
    return click.option(
        "--witness-key",
        "witness_keys",
        multiple=True,
        metavar="VKEY",
        help="A witness's verifier key (NAME+ID+BASE64, as `witness cosign` prints, or a file holding it); repeatable.",
    )(command)


def _vkey_text(value: str) -> str:
    path = Path(value)
    if "+" not in value and path.exists():
        return _files()._read(path, "witness key").decode("utf-8", "replace").strip()
    return value


def _check_witnesses(checkpoint: Any, witness_keys: Sequence[str], required: int | None) -> Any:
    from ledger.transparency import check_witnesses, parse_witness_keys

    if not witness_keys:
        if required is not None:
            raise click.ClickException("--witnesses needs the witnesses' keys: give --witness-key")
        return None
    if checkpoint is None:
        raise click.ClickException("--witness-key checks a checkpoint's cosignatures: give --checkpoint")
    return check_witnesses(checkpoint, parse_witness_keys([_vkey_text(k) for k in witness_keys]), required)


def _witness_text(witnessed: Any) -> str:
    lines = [f"Witnesses: {witnessed.valid} of {len(witnessed.statuses)} cosigned ({witnessed.required} required)."]
    for name, status, stamp in witnessed.statuses:
        when = f" at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(stamp))}" if stamp is not None else ""
        lines.append(f"  - {name}: {status}{when}")
    return "\n".join(lines)


@click.command("consistency")
@click.argument("old", type=_FILE, metavar="OLD")
@click.argument("new", type=_FILE, metavar="NEW")
@click.option("--out", "out", type=_FILE, required=True, metavar="PROOF", help="The proof file to create.")
@output_options(tabular=False)
def consistency(old: Path, new: Path, out: Path, fmt: str | None) -> None:
    """Prove from the ledger that checkpoint NEW extends checkpoint OLD.

    Writes the RFC 6962 consistency proof in the C2SP tlog-witness form (``old <size>``, then
    one base64 hash a line), so anyone can check it with ``verify-consistency`` and no
    database, and a witness can take it (``witness cosign --proof``). Refuses (exit 3) when
    the ledger no longer hashes to both checkpoints' roots. Reads the ledger up to NEW.

    \b
    Example:
      refledger consistency checkpoints/2024-04-30.note checkpoints/2024-05-31.note --out 04-to-05.proof
    """
    from ledger.errors import LedgerTampered
    from ledger.transparency import prove_consistency

    old_point, new_point = _load_checkpoints((old, new))
    if out.exists():
        raise click.ClickException(f"{out} already exists; choose another name")
    _ledger, database = session().open()
    try:
        proof = prove_consistency(database, old_point, new_point)
    except LedgerTampered as error:
        raise FindingsExit(f"Refused: {error}") from None
    _files()._write_new(out, proof)
    hashes = proof.count(b"\n") - 1
    data = {"old_size": old_point.size, "new_size": new_point.size, "hashes": hashes, "bytes": len(proof), "out": str(out)}
    emit(fmt, data, text=f"Wrote the proof that {new_point.size} events extend {old_point.size} ({hashes} hashes) to {out}.")


@click.command("verify-consistency")
@click.argument("old", type=_FILE, metavar="OLD")
@click.argument("new", type=_FILE, metavar="NEW")
@click.argument("proof", type=_FILE, metavar="PROOF")
@click.option("--public-key", metavar="PUB", help="The public key both checkpoints must be signed with (PEM file, or 64 hex characters).")
@output_options(tabular=False)
def verify_consistency_command(old: Path, new: Path, proof: Path, public_key: str | None, fmt: str | None) -> None:
    """Check offline (no database) that checkpoint NEW extends checkpoint OLD.

    Needs nothing but the three files (and, with --public-key, the ledger's key, which a
    signed-note checkpoint needs). Exit 0 when the proof holds; exit 3 when it does not:
    the ledger was rewritten between the two checkpoints, or a signature fails.

    \b
    Example:
      refledger verify-consistency 2024-04-30.note 2024-05-31.note 04-to-05.proof --public-key checkpoint-key.pem.pub
    """
    from ledger.transparency import check_consistency

    old_point, new_point = _load_checkpoints((old, new))
    pinned = _files()._public_key(public_key)
    _require_key_for_notes((old_point, new_point), pinned)
    result = check_consistency(old_point, new_point, _files()._read(proof, "proof"), pinned)
    signatures = f"signatures: {result.signatures[0]}, {result.signatures[1]}"
    head = "Consistent" if result.sound else "NOT CONSISTENT"
    lines = [f"{head}: the checkpoint of {new_point.size} events against the one of {old_point.size} ({signatures})."]
    lines += [f"  - {finding}" for finding in result.findings]
    emit(fmt, result.as_dict(), text="\n".join(lines))
    if not result.sound:
        raise FindingsExit(f"Consistency failed: {result.findings[0]}")


@click.group("witness")
def witness() -> None:
    """Act as a witness: cosign a ledger's checkpoints after checking they extend the last one.

    A witness is run by a body independent of the ledger's keepers, on its own machine, with
    its own key (``refledger keygen``) and state directory. See the README's auditor's guide.

    \b
    Example:
      refledger witness cosign 2024-05-31.note --key witness.pem --name audit.example/witness --state witness-state --log-key ledger.pub
    """


@witness.command("cosign")
@click.argument("checkpoint_file", type=_FILE, metavar="CHECKPOINT")
@click.option("--key", type=_FILE, required=True, metavar="KEY", help="The witness's Ed25519 private key (from refledger keygen).")
@click.option("--name", "name", required=True, metavar="NAME", help="The witness's name, e.g. audit.example/witness (no spaces or '+').")
@click.option(
    "--state",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="The witness's state directory: the last checkpoint it cosigned, per ledger.",
)
@click.option("--log-key", required=True, metavar="PUB", help="The ledger's public key (PEM file, or 64 hex characters).")
@click.option(
    "--proof",
    type=_FILE,
    metavar="PROOF",
    help="Consistency proof from the last checkpoint this witness cosigned (refledger consistency); "
    "not needed the first time or for the same size.",
)
@click.option(
    "--out", "out", type=_FILE, metavar="FILE", help="Write the cosigned checkpoint to FILE (default: print the cosignature line)."
)
@output_options(tabular=False)
def cosign(
    checkpoint_file: Path, key: Path, name: str, state: Path, log_key: str, proof: Path | None, out: Path | None, fmt: str | None
) -> None:
    """Cosign a signed-note checkpoint after checking it against this witness's state.

    Checks the ledger's signature with --log-key, then that the checkpoint extends the last
    one this witness cosigned for that ledger (with --proof from it); a smaller checkpoint,
    or a different one of the same size (a split view), is refused (exit 3) and the state is
    left as it was. Adds a C2SP tlog-cosignature line and records the checkpoint as the
    witness's latest. Prints the line (append it to the note) or, with --out, writes the
    cosigned note.

    \b
    Example:
      refledger witness cosign 2024-05-31.note --key witness.pem --name audit.example/witness \\
        --state witness-state --log-key ledger.pub --proof 04-to-05.proof --out 2024-05-31.cosigned.note
    """
    from ledger.transparency import WitnessRefused, witness_cosign

    files = _files()
    log = files._public_key(log_key)
    if out is not None and out.exists():
        raise click.ClickException(f"{out} already exists; choose another name")
    pem = files._read(key, "key")
    proof_bytes = files._read(proof, "proof") if proof is not None else None
    try:
        made = witness_cosign(files._read(checkpoint_file, "checkpoint"), str(checkpoint_file), pem, name, state, log, proof_bytes)
    except WitnessRefused as error:
        raise FindingsExit(f"Refused: {error}") from None
    line = made.note.signatures[-1].line()
    if out is not None:
        files._write_new(out, made.note.encode())
    data = {
        "witness": name,
        "verifier_key": made.witness.encode(),
        "old_size": made.old_size,
        "size": int(made.note.text.split("\n")[1]),
        "timestamp": made.timestamp,
        "cosignature": line.rstrip("\n"),
        "out": str(out) if out else None,
    }
    if out is None and fmt is None:
        click.echo(line, nl=False)
        return
    text = f"Cosigned the checkpoint of {data['size']} events (after {made.old_size}) as {name}; written to {out}.\nWitness key: {data['verifier_key']}"
    emit(fmt, data, text=text)


TRANSPARENCY_COMMANDS = [consistency, verify_consistency_command, witness]
