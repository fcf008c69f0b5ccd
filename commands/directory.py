"""The staff directory on the command line: record commands, loading, queries.

Record commands (``unit add``, ``person add``, ``role assign``, …) are built from the
directory's record types in ``ledger.importing`` and run through ``parse_record``, like a line
of an import. Queries: ``accountable``, ``person P``, ``directory show``, ``audit actors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from commands.output import emit, output_options
from commands.record import field_option, record_value, recording_command
from commands.session import instant_option, session
from ledger.importing import DIRECTORY_RECORD_TYPES, RecordType

_AT_HELP = "The instant asked about (ISO 8601 with zone, or a date; default now)."
_KNOWN_HELP = "Answer as the ledger knew it then: only events recorded by K count (default: as known now)."


def _make_command(record_type: RecordType) -> click.Command:
    key = record_type.fields[0]

    def callback(at: str | None, late_reason: str | None, actor: str | None, **values: Any) -> None:
        from ledger.importing import parse_record

        current = session()
        record: dict[str, Any] = {"type": record_type.type, "actor": current.actor(actor).as_dict()}
        if at is not None:
            record["occurred_at"] = at
        if late_reason is not None:
            record["late_reason"] = late_reason
        for field in record_type.fields:
            value = values.get(field.name)
            if value is not None and value != () and not (field.kind == "bool" and value is False):
                record[field.name] = record_value(field, value)
        parse_record(record, occurred_now_if_missing=True).run(current.open(create=True)[0])  # a directory record may start a ledger
        emit(None, {"recorded": record_type.type, key.name: values[key.name]}, text=f"Recorded {record_type.type} for {values[key.name]}.")

    params: list[click.Parameter] = [click.Argument([key.name], metavar=key.name.upper())]
    params += [field_option(f) for f in record_type.fields[1:]]
    return recording_command(record_type, params, callback, happened="took effect")


class PersonGroup(click.Group):
    """``person P-042`` shows a person's record; ``person add`` / ``person leave`` record."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group("unit")
def unit_group() -> None:
    """Record units: registered (agency unit, force, partner), renamed, closed.

    \b
    Example:
      refledger unit add U-OPS1 --name 'Operations 1' --kind agency-unit --as P-900:hr-officer@U-HR
    """


@click.group("person", cls=PersonGroup)
def person_group() -> None:
    """An officer's record (``person P-042``), or record a person joining or leaving.

    \b
    Example:
      refledger person P-042 --from 2024-01-01 --to 2024-07-01
    """


@click.group("role")
def role_group() -> None:
    """Record roles held: a person takes a role in a unit, or gives it up.

    \b
    Example:
      refledger role assign P-042 --role team-manager --unit U-OPS1 --as P-900:hr-officer@U-HR
    """


@click.group("secondment")
def secondment_group() -> None:
    """Record secondments: a person employed by one organisation works for another.

    \b
    Example:
      refledger secondment start P-042 --to-organisation NCA --as P-900:hr-officer@U-HR
    """


_GROUPS = {"unit": unit_group, "person": person_group, "role": role_group, "secondment": secondment_group}
for _type in DIRECTORY_RECORD_TYPES:
    assert _type.directory_group is not None
    _GROUPS[_type.directory_group].add_command(_make_command(_type))


@person_group.command("show")
@click.argument("person", metavar="PERSON")
@click.option("--from", "from_text", metavar="T1", help="Only from T1 (ISO 8601 with zone, or a date).")
@click.option("--to", "to_text", metavar="T2", help="Only until T2.")
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options()
def person_show(person: str, from_text: str | None, to_text: str | None, known_text: str | None, fmt: str | None) -> None:
    """An officer's record: roles over time, every stretch in which a unit they were accountable
    for owned or held a referral, the obligations that fell due, were breached or were left open
    then, and the events they recorded. ``refledger person P`` is the same.

    \b
    Example:
      refledger person P-042 --from 2024-01-01 --to 2024-07-01 --csv
    """
    from projections.accountable import person_record

    current = session()
    record = person_record(
        current.ledger,
        person,
        start=instant_option(from_text, "--from"),
        end=instant_option(to_text, "--to"),
        as_known_at=instant_option(known_text, "--as-known-at"),
        policy=current.policy,
        now=current.ledger.clock(),
    )
    rows = [
        {
            "referral": s["referral"],
            "kind": s["kind"],
            "unit": s["unit"],
            "start": s["start"],
            "end": s["end"],
            "days": s["days"],
            "fell_due": s["fell_due"],
            "breached": len(s["breached"]),
            "left_open": len(s["left_open"]),
        }
        for s in record["stretches"]
    ]
    roles = "; ".join(
        f"{r['role']}@{r['unit']} {r['start']}–{r['end'] or 'now'}{' (acting)' if r['acting'] else ''}" for r in record["roles"]
    )
    seconded = "".join(f"; seconded to {s['to_organisation']} {s['start']}–{s['end'] or 'now'}" for s in record["secondments"])
    left = f", left {record['left_at']}" if record["left_at"] else ""
    text = (
        f"{person}: employed by {record['employer']}{seconded}{left}.\n"
        f"Roles: {roles or 'none'}.\n"
        f"{len(rows)} stretches of accountability; {sum(r['breached'] for r in rows)} obligations breached in them; "
        f"{len(record['events'])} events recorded by {person}."
    )
    emit(fmt, record, rows=rows, columns=list(rows[0]) if rows else ["referral", "kind", "unit", "start", "end"], text=text)


@click.command("accountable")
@click.argument("reference", metavar="REFERRAL")
@click.option("--at", "at_text", metavar="T", help=_AT_HELP)
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options()
def accountable_command(reference: str, at_text: str | None, known_text: str | None, fmt: str | None) -> None:
    """Say who was accountable for a referral at T: the owning unit's accountable people (and who
    accepted), the custodian's, who answered for it while unowned, and whose answer was awaited.

    \b
    Example:
      refledger accountable R-2024-0402 --at 2024-04-22T12:00:00Z
    """
    from projections.accountable import accountable_at

    current = session()
    ledger = current.ledger
    at = instant_option(at_text, "--at") or ledger.clock()
    answer = accountable_at(ledger, reference, at, instant_option(known_text, "--as-known-at"), current.policy)
    rows = []

    def add(answers_as: str, people: list[dict[str, Any]]) -> None:
        rows.extend({"answers_as": answers_as, **p} for p in people)

    if answer["owner"] is not None:
        add("owner", answer["owner"]["accountable"])
    add("custodian", answer["custodian"]["accountable"])
    add("while-unowned", answer["answering_while_unowned"])
    for waiting in answer["awaiting"]:
        add(f"awaiting-{waiting['kind']}", waiting["holders"])
    owner = answer["owner"]
    head = (
        f"{owner['unit']} owned {reference} at {answer['at']} (accepted by {owner['person']})"
        if owner
        else f"Nobody owned {reference} at {answer['at']}; custodian {answer['custodian']['unit']}"
    )
    awaited = "".join(f"; awaiting {w['kind']} ({w['role'] or w['unit']})" for w in answer["awaiting"])
    emit(
        fmt,
        answer,
        rows=rows,
        columns=["answers_as", "person", "role", "unit", "since", "employer", "seconded_to"],
        text=head + awaited + ".",
    )


@click.group("directory")
def directory_group() -> None:
    """The staff directory: load an HR extract, put it in force, show it at an instant.

    \b
    Example:
      refledger directory show --at 2024-04-01
    """


@directory_group.command("show")
@click.option("--at", "at_text", metavar="T", help=_AT_HELP)
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options()
def directory_show(at_text: str | None, known_text: str | None, fmt: str | None) -> None:
    """Show the units, people and roles in force at T.

    \b
    Example:
      refledger directory show --at 2024-04-01 --csv
    """
    from projections.accountable import directory_at

    ledger = session().ledger
    at = instant_option(at_text, "--at") or ledger.clock()
    answer = directory_at(ledger, at, instant_option(known_text, "--as-known-at"))
    force = f"in force from {answer['in_force_from']}" if answer["in_force_from"] else "not in force (actors are not checked)"
    text = f"Directory at {answer['at']}: {len(answer['units'])} units, {len(answer['people'])} people, {len(answer['roles'])} roles held; {force}."
    emit(fmt, answer, rows=answer["roles"], columns=["person", "role", "unit", "since", "acting", "employer", "seconded_to"], text=text)


@directory_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
def directory_import(file: Path, fmt: str | None) -> None:
    """Load an HR extract (CSV, one row per role held), all or nothing.

    Columns: person, employer, role, unit, from (required); to, acting, login (optional).
    People and units not yet in the directory are registered from the first row naming them
    (a unit must already be registered, or the row names it in ``unit``: register units first).

    \b
    Example:
      refledger directory import staff.csv --as P-900:hr-officer@U-HR
    """
    from ledger.staff_csv import import_staff_csv

    current = session()
    result = import_staff_csv(current.open(create=True)[0], file, current.actor())
    emit(fmt, result, text=f"Recorded {result['events']} directory events from {result['rows']} rows of {file}.")


@directory_group.command("enforce")
@click.option("--from", "from_text", metavar="T", required=True, help="From this instant every new event's actor is checked.")
@click.option("--as", "actor", metavar="PERSON:ROLE@UNIT", help="Who puts it in force (must check out against the directory).")
def directory_enforce(from_text: str, actor: str | None) -> None:
    """Put the directory in force: from T, every new event's actor must be a registered person
    holding that role in that unit then. Recorded as an event; it cannot be undone.

    \b
    Example:
      refledger directory enforce --from 2024-05-01T00:00:00Z --as P-900:hr-officer@U-HR
    """
    from ledger.values import Stamp

    current = session()
    when = instant_option(from_text, "--from")
    assert when is not None
    current.open(create=True)[0].enforce_directory(Stamp(actor=current.actor(actor)), when)
    emit(None, {}, text=f"The directory is in force from {from_text}.")


def actors_command_body(counts: bool, fail_on_findings: bool, fmt: str | None) -> None:
    from commands.session import FindingsExit
    from projections.accountable import actor_counts, actor_findings

    findings = actor_findings(session().ledger)
    rows = actor_counts(findings) if counts else [f.as_row() for f in findings]
    columns = (
        ["person", "role", "unit", "rule", "events"] if counts else ["referral", "type", "occurred_at", "actor", "rule", "problem", "line"]
    )
    text = f"{len(findings)} events whose actor does not check out against the directory." if findings else "Every actor checks out."
    emit(fmt, {"findings": len(findings), "rows": rows}, rows=rows, columns=columns, text=text)
    if fail_on_findings and findings:
        raise FindingsExit("")
