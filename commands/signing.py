"""A person's signing key: ``keygen --person`` (make it, register its public half)."""

from __future__ import annotations

from pathlib import Path

import click

from commands.output import emit, write_out
from commands.session import session


def person_keygen(person: str, out: Path, fmt: str | None) -> None:
    """Make an Ed25519 key for ``person``, write it (KEY, KEY.pub), register its public half.

    The registration is checked first (the person must be in the directory and on the staff),
    so a refused one leaves no key file behind.
    """
    from ledger.checkpoint import new_signing_key
    from ledger.errors import RuleViolation
    from ledger.values import Stamp

    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists():
            raise click.ClickException(f"{path} already exists; choose another name")
    current = session()
    ledger = current.open()[0]
    if ledger.person_state(person) is None:
        raise RuleViolation("person-exists", f"{person} is not in the directory: register them first (refledger person add)")
    private, public_pem, public_hex = new_signing_key()
    stamp = Stamp(actor=current.actor())
    with ledger.batch():
        ledger.register_key(stamp, person, public_hex)
        write_out(out, private)
        write_out(public_path, public_pem)
    data = {"person": person, "private_key": str(out), "public_key_file": str(public_path), "public_key": public_hex}
    emit(
        fmt,
        data,
        text=f"Wrote {person}'s signing key to {out} (public key {public_path}) and registered it in the directory.\n"
        f"Public key: {public_hex}\nSign what they record with: export REFLEDGER_SIGNING_KEY={out}",
    )


def audit_signatures_body(fail_on_findings: bool, fmt: str | None) -> None:
    from commands.session import FindingsExit
    from ledger.identity import unsigned_events
    from ledger.storage import read_event_rows
    from projections.ownership import EVENT_TYPES

    current = session()
    database = current.open()[1]
    required = current.policy.signatures_required
    topics = frozenset(cls.TOPIC for cls, name in EVENT_TYPES.items() if name in required)
    rows = unsigned_events(read_event_rows(database), topics)
    wanted = ", ".join(required) if required else "none (the policy's [signatures] required is empty)"
    text = f"{len(rows)} event(s) of the types the policy requires signed carry no signature. Required: {wanted}."
    emit(
        fmt,
        {"policy": current.policy.version, "required": list(required), "rows": rows},
        rows=rows,
        columns=("position", "stream", "version", "topic", "person", "historical", "login"),
        text=text,
    )
    if rows and fail_on_findings:
        raise FindingsExit("")
