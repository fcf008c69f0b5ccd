"""Looking around a ledger: ``referrals`` (what is in it), ``show`` (stored events), ``export``.

``referrals`` answers from the stored read models (``projections.store``); ``show`` reads one
referral's streams as stored; ``export`` writes the import format (``projections.export``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from commands.output import emit, output_options, plural

_REFERRAL_COLUMNS = (
    "referral",
    "status",
    "owner_unit",
    "custodian_unit",
    "originator",
    "received_at",
    "age_days",
    "days_unowned",
    "overdue",
)


@click.command("referrals")
@click.option("--unit", metavar="U", help="Only referrals unit U owned or held at T.")
@click.option("--status", type=click.Choice(["open", "closed"]), help="Only open, or only closed, referrals at T.")
@click.option("--originator", metavar="O", help="Only referrals sent by O.")
@click.option("--unowned", is_flag=True, help="Only open referrals nobody owned at T.")
@click.option("--at", "at_text", metavar="T", help="As the ledger stood and knew it at T (ISO 8601 with zone, or a date; default now).")
@output_options()
def referrals_command(
    unit: str | None, status: str | None, originator: str | None, unowned: bool, at_text: str | None, fmt: str | None
) -> None:
    """List the referrals in the ledger, one row each: status, owner, custodian, age, days unowned, overdue.

    Answers as known at T: a referral counts once its receipt had happened and been
    recorded by T. Days unowned add up every gap up to T; overdue counts the obligations
    open and overdue at T, as 'audit overdue' judges them. Long tables take --sort and
    --limit, and go through a pager on a terminal.

    \b
    Example:
      refledger referrals --status open --unowned
      refledger referrals --unit U-OPS1 --at 2024-04-25T12:00:00Z --sort -days_unowned --limit 20
    """
    from commands.audit import read_models
    from commands.session import instant_option
    from ledger.values import iso

    models = read_models()
    at = instant_option(at_text, "--at") or models.ledger.clock()
    found = [
        listed
        for listed in models.referrals(at)
        if (unit is None or unit in (listed.owner_unit, listed.custodian_unit))
        and (status is None or listed.status == status)
        and (originator is None or listed.originator == originator)
        and (not unowned or listed.unowned)
    ]
    rows = [listed.as_row() for listed in found]
    open_count = sum(1 for listed in found if listed.status == "open")
    unowned_count = sum(1 for listed in found if listed.unowned)
    emit(
        fmt,
        {"at": at, "policy": models.policy.version, "rows": rows},
        rows=rows,
        columns=_REFERRAL_COLUMNS,
        text=f"{plural(len(rows), 'referral')} at {iso(at)} ({open_count} open, {unowned_count} unowned), as known then.",
    )


_SHOW_COLUMNS = ("stream", "version", "type", "occurred_at", "recorded_at", "actor", "late_reason", "line", "hash")


def stored_event(event: Any, stream: str, readable: Any = None) -> dict[str, Any]:
    """One stored event as it was recorded: both clocks, actor, hashes, provenance and its
    fields (those of ``readable``, the same event with its free text opened, when given)."""
    from ledger.canonical import event_hash
    from projections.ownership import event_type

    common = {"occurred_at", "actor", "late_reason", "source_recorded_at", "source", "prev_hash", "timestamp", "inserted_by", "signature"}
    common |= {"originator_id", "originator_version"}
    return {
        "stream": stream,
        "stream_id": str(event.originator_id),
        "version": event.originator_version,
        "type": event_type(event),
        "topic": type(event).TOPIC,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "ingested_at": event.timestamp,
        "source_recorded_at": event.source_recorded_at,
        "actor": f"{event.actor['person']}:{event.actor['role']}@{event.actor['unit']}",
        "late_reason": event.late_reason,
        "login": event.inserted_by,
        "signed": getattr(event, "signature", None) is not None,
        "hash": event_hash(event),
        "line": event.source.get("line") if isinstance(event.source, dict) else None,
        "prev_hash": event.prev_hash,
        "source": event.source,
        "fields": {name: value for name, value in vars(readable or event).items() if name not in common},
    }


@click.command("show")
@click.argument("reference", metavar="REFERRAL")
@click.option("--version", "version", type=click.IntRange(min=1), metavar="N", help="Only the event at version N of the referral's stream.")
@output_options()
def show_command(reference: str, version: int | None, fmt: str | None) -> None:
    """Show a referral's stored events exactly as recorded, and its subjects' events.

    Each event has its stream and version, both clocks (occurred, recorded, and when this
    ledger took it in), the actor, the late reason, its own hash and the previous event's
    hash in the stream's chain, its provenance (import file and line) and its fields.

    \b
    Example:
      refledger show R-2024-0311
      refledger show R-2024-0311 --version 3 --json
    """
    from commands.records import free_text
    from commands.session import session
    from ledger.errors import NotFound

    ledger = session().ledger
    stored = ledger.referral_events(reference)
    if version is not None and not any(event.originator_version == version for event in stored):
        raise NotFound(f"{reference} has no event at version {version}")
    subjects = {} if version is not None else ledger.subject_events(reference)
    opened, opened_subjects = free_text(ledger, reference, stored, subjects, "show")
    events = [stored_event(event, reference, readable) for event, readable in zip(stored, opened, strict=True)]
    if version is not None:
        events = [event for event in events if event["version"] == version]
    else:
        for subject, subject_events in subjects.items():
            pairs = zip(subject_events, opened_subjects[subject], strict=True)
            events += [stored_event(event, f"{reference}/{subject}", readable) for event, readable in pairs]
    if version is not None and resolve_text(fmt):
        click.echo(_one_event_text(events[0]))
        return
    emit(
        fmt,
        {"referral": reference, "events": events},
        rows=events,
        columns=_SHOW_COLUMNS,
        text=f"{reference}: {plural(len(events), 'stored event')}.",
    )


def resolve_text(fmt: str | None) -> bool:
    from commands.output import TEXT, resolve_format

    return resolve_format(fmt) == TEXT


def _one_event_text(event: dict[str, Any]) -> str:
    from commands.output import _cell

    lines = [f"{event['stream']} v{event['version']} {event['type']} ({event['topic']})"]
    for name in (
        "stream_id",
        "occurred_at",
        "recorded_at",
        "ingested_at",
        "source_recorded_at",
        "actor",
        "late_reason",
        "hash",
        "prev_hash",
    ):
        lines.append(f"  {name.replace('_', ' ')}: {_cell(event[name]) or '-'}")
    lines.append(f"  source: {_cell(event['source']) or '- (recorded live)'}")
    for name, value in event["fields"].items():
        lines.append(f"  {name}: {_cell(value) or '-'}")
    return "\n".join(lines)


@click.command("export")
@click.argument("references", metavar="[REFERRAL]...", nargs=-1)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="The JSON Lines file to write (- for standard output).",
)
@output_options(tabular=False)
def export_command(references: tuple[str, ...], out: Path, fmt: str | None) -> None:
    """Write events in the import format, with recorded_at, for 'import --historical'.

    Every event of the ledger (or of the referrals named, with their subjects) becomes one
    line, in the order they were recorded. Importing the file with --historical into a
    fresh ledger gives the same answers: owners, gaps, obligations, late entries. The new
    ledger keeps its own hashes and gives each event the export file as provenance. Without
    REFERRAL the staff directory's records come too; putting the directory in force is not
    an import line ('directory enforce' again on the new ledger).

    \b
    Example:
      refledger export --out ledger.jsonl
      refledger export R-2024-0311 R-2024-0402 --out two.jsonl
    """
    import orjson

    from commands.session import session
    from projections.export import export_records

    ledger = session().ledger
    records = export_records(ledger, references, reader=session().reader())
    count, referrals = 0, set()
    first = next(records, None)  # unknown referrals are refused before anything is written
    if out == Path("-"):
        stream = sys.stdout.buffer
        for record in _chain(first, records):
            stream.write(orjson.dumps(record) + b"\n")
            count += 1
        return
    temporary = out.with_name(f".{out.name}.partial")
    try:
        with temporary.open("wb") as handle:
            for record in _chain(first, records):
                handle.write(orjson.dumps(record) + b"\n")
                count += 1
                if "referral" in record:  # staff directory records have none
                    referrals.add(record["referral"])
        os.replace(temporary, out)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    emit(
        fmt,
        {"out": str(out), "events": count, "referrals": len(referrals)},
        text=f"Exported {plural(count, 'event')} of {plural(len(referrals), 'referral')} to {out}.",
    )


def _chain(first: dict[str, Any] | None, rest: Any) -> Any:
    if first is not None:
        yield first
    yield from rest
