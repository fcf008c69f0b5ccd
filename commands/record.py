"""Recording commands, built from the record catalogue in ``ledger.importing``, and ``import``.

Each command builds a record in the import format and runs it through the same checks as an
imported line, so the command line and an import can never disagree about what is valid.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from commands.output import emit, plural
from commands.session import session
from ledger.importing import AMENDMENT_TYPES, RECORD_TYPES, Field, RecordType

#: whole numbers are read as text and checked by the import format's rule (one line, exit 1)
_CLICK_TYPES: dict[str, Any] = {}


def _pair(text: str, name: str, keys: tuple[str, str]) -> dict[str, str]:
    from ledger.errors import InvalidInput

    left, sep, right = text.partition(":")
    if not sep or not left.strip() or not right.strip():
        raise InvalidInput(f"--{name.replace('_', '-')} must be {keys[0].upper()}:{keys[1].upper()}")
    return {keys[0]: left.strip(), keys[1]: right.strip()}


def field_option(field: Field) -> click.Option:
    flag = "--" + field.name.replace("_", "-")
    if field.kind == "fields":
        return click.Option(["--field", field.name], multiple=True, required=True, metavar="FIELD=VALUE", help=field.help)
    if field.kind == "bool":
        return click.Option([f"{flag}/--no-{flag[2:]}", field.name], default=False, help=field.help)
    if field.kind == "texts":
        return click.Option([flag, field.name], multiple=True, help=field.help)
    metavar = {"instant": "TIME", "grading": "SCHEME:VALUE", "claim": "TYPE:UNIT"}.get(field.kind)
    return click.Option(
        [flag, field.name],
        type=_CLICK_TYPES.get(field.kind, str),
        required=field.required and field.name not in ("reference", "subject"),
        metavar=metavar,
        help=field.help,
    )


def record_value(field: Field, value: Any) -> Any:
    if field.kind == "fields":
        from ledger.errors import InvalidInput

        pairs = {}
        for text in value:
            name, sep, given = text.partition("=")
            if not sep or not name.strip():
                raise InvalidInput(f"--field must be FIELD=VALUE, not {text!r}")
            pairs[name.strip()] = given
        return pairs
    if field.kind == "grading":
        return _pair(value, field.name, ("scheme", "value"))
    if field.kind == "claim":
        return _pair(value, field.name, ("type", "unit"))
    if field.kind == "texts":
        return list(value)
    if field.kind == "int" and isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())  # anything else stays text, which the check refuses
    return value


def _make_command(record_type: RecordType) -> click.Command:
    def callback(referral: str, at: str | None, late_reason: str | None, actor: str | None, **values: Any) -> None:
        from ledger.importing import parse_record

        current = session()
        record: dict[str, Any] = {
            "type": record_type.type,
            "referral": referral,
            "actor": current.actor(actor).as_dict(),
        }
        if at is not None:
            record["occurred_at"] = at
        if late_reason is not None:
            record["late_reason"] = late_reason
        for field in record_type.fields:
            value = values.get(field.name)
            if value is not None and value != ():
                record[field.name] = record_value(field, value)
        command = parse_record(record, occurred_now_if_missing=True)
        # only a receipt can start a ledger: any other record needs a referral already in one
        ledger = current.open(create=record_type.type == "received")[0]
        if record_type in AMENDMENT_TYPES:  # who may amend comes from the policy's [directory]
            ledger.supervisory_roles = current.policy.supervisory_roles()
        command.run(ledger)
        what = f"{record_type.type} on {referral}" + (f" subject {values['subject']}" if values.get("subject") else "")
        emit(None, {"recorded": record_type.type, "referral": referral, "subject": values.get("subject")}, text=f"Recorded {what}.")

    params: list[click.Parameter] = [click.Argument(["referral"], metavar="REFERRAL")]
    if record_type.on_subject:
        params.append(click.Argument(["subject"], metavar="SUBJECT"))
    params += [field_option(f) for f in record_type.fields if f.name != "subject"]
    return recording_command(record_type, params, callback)


def recording_command(record_type: RecordType, params: list[click.Parameter], callback: Any, happened: str = "happened") -> click.Command:
    """A record command: its arguments and fields, then --at, --late-reason and --as."""
    params = [
        *params,
        click.Option(["--at", "at"], metavar="TIME", help=f"When it {happened} (ISO 8601 with zone; default now)."),
        click.Option(["--late-reason"], help=f"Why it is recorded more than 24 h after it {happened}."),
        click.Option(
            ["--as", "actor"], metavar="PERSON:ROLE@UNIT", help="Who records it (or --as before the command, or REFLEDGER_ACTOR)."
        ),
    ]
    return click.Command(
        record_type.command,
        callback=callback,
        params=params,
        help=f"{record_type.summary}\n\nEvent type: {record_type.type}.\n\n\b\nExample:\n  {record_type.example}",
        short_help=record_type.summary,
    )


@click.group("subject")
def subject_group() -> None:
    """Record what happens to one subject (person) of a referral.

    \b
    Example:
      refledger subject add R-2012-0716 SUBJ-0001 --category suspect --as P-02:analyst@U-TRIAGE
    """


REFERRAL_COMMANDS = [_make_command(t) for t in RECORD_TYPES if not t.on_subject and not t.on_directory]
for _subject_type in RECORD_TYPES:
    if _subject_type.on_subject:
        subject_group.add_command(_make_command(_subject_type))


def _importer() -> Any:
    """Who runs an import (recorded with a historical one): --as if given, else the OS account."""
    import os

    from commands.session import ACTOR_ENV

    current = session()
    return current.actor() if current.actor_text or os.environ.get(ACTOR_ENV) else None


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--historical", is_flag=True, help="Each line carries the source system's recorded_at (migration).")
@click.option("--dry-run", is_flag=True, help="Check every line against the ledger (every rule) and record nothing.")
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
def import_command(file: Path, historical: bool, dry_run: bool, fmt: str | None) -> None:
    """Import events from a JSON Lines file (- for standard input), all or nothing.

    One event per line in the import format (see the README). A bad line is reported with
    its number and nothing is recorded. Importing the same file twice is refused. The file
    is streamed: memory does not grow with its length.

    \b
    Example:
      refledger --db demo.sqlite import --historical cybertip.jsonl
      refledger --db demo.sqlite import --dry-run - < cybertip.jsonl
    """
    from ledger.importing import count_lines, import_file

    stdin = str(file) == "-"
    if not stdin and not file.exists():
        raise click.ClickException(f"{file} does not exist")
    current = session()
    ledger = _dry_run_ledger(current.db) if dry_run else None
    if ledger is None:
        ledger = current.open(create=not dry_run)[0]
    source = None if stdin else file
    if not stdin and sys.stderr.isatty() and file.stat().st_size > 1_000_000:
        total = count_lines(file)
        with click.progressbar(length=total, label="Checking" if dry_run else "Importing", file=sys.stderr) as bar:
            done = [0]

            def advance(line: int) -> None:
                bar.update(line - done[0])
                done[0] = line

            result = import_file(ledger, source, historical=historical, progress=advance, dry_run=dry_run, importer=_importer())
    else:
        result = import_file(ledger, source, historical=historical, dry_run=dry_run, importer=_importer())
    name = "standard input" if stdin else str(file)
    data: dict[str, Any] = {"file": name, "sha256": result.file_sha256, "events": result.events, "referrals": result.referrals}
    what = f"{plural(result.events, 'event')} on {plural(result.referrals, 'referral')} from {name}"
    if dry_run:
        data["dry_run"] = True
    emit(fmt, data, text=f"Checked {what}: all would be recorded; nothing was." if dry_run else f"Imported {what}.")


def _dry_run_ledger(db: str | None) -> Any:
    """Where there is no ledger yet, a dry run checks the file against an empty one in memory."""
    from ledger.application import Ledger
    from ledger.storage import holds_ledger

    return None if holds_ledger(db) else Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
