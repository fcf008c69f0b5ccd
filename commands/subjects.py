"""Bulk packages: ``subjects import|triage|disseminate`` from CSV, ``subjects list``, ``package``.

Reading and checking the CSV files is ``ledger.subject_csv``; this module is the commands.

The listing is ``subjects list REF`` (not ``subjects REF``): a click group cannot take a
positional argument and subcommands without an implicit default subcommand.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.output import emit, output_options, plural
from commands.session import instant_option, session
from ledger.subject_csv import (
    DISSEMINATE_LAYOUT,
    IMPORT_LAYOUT,
    TRIAGE_LAYOUT,
    CsvFile,
    disseminate_records,
    import_records,
    read_csv,
    record_rows,
    triage_records,
)
from projections.subjects import STATE_FILTERS

#: files at least this long show a progress bar on a terminal
PROGRESS_FROM_ROWS = 200

if TYPE_CHECKING:
    from datetime import datetime


@contextmanager
def _progress(rows: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long files, when stderr is a terminal."""
    if rows < PROGRESS_FROM_ROWS or not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(length=rows, label=label, file=sys.stderr) as bar:
        yield bar.update


def _record_file(
    reference: str,
    table: CsvFile,
    to_records: Callable[[dict[str, str]], list[dict[str, Any]]],
    at: str | None,
    late_reason: str | None,
    actor: str | None,
    fmt: str | None,
    label: str,
) -> None:
    from ledger.values import iso

    current = session()
    ledger = current.ledger
    occurred = instant_option(at, "--at") or ledger.clock()  # one instant for the whole tranche
    stamp: dict[str, Any] = {"actor": current.actor(actor).as_dict(), "occurred_at": iso(occurred)}
    if late_reason is not None:
        stamp["late_reason"] = late_reason
    with _progress(len(table.rows), label) as advance:
        recorded = record_rows(ledger, reference, table, to_records, stamp, advance)
    total = sum(recorded.events.values())
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(recorded.events.items()))
    emit(
        fmt,
        {
            "referral": reference,
            "file": str(table.path),
            "sha256": table.sha256,
            "rows": recorded.rows,
            "events": total,
            "recorded": dict(sorted(recorded.events.items())),
        },
        text=f"Recorded {plural(total, 'event')} ({kinds}) on {plural(recorded.rows, 'subject')} of {reference} from {table.path}.",
    )


_CSV_PATH = click.Path(dir_okay=False, exists=True, path_type=Path)


def _stamp_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--at", metavar="TIME", help="When it happened, for every row without an occurred_at (default now)."),
            click.option("--late-reason", help="Why it is recorded more than 24 h after it happened (every row)."),
            click.option(
                "--as", "actor", metavar="PERSON:ROLE@UNIT", help="Who records it (or --as before the command, or REFLEDGER_ACTOR)."
            ),
            click.option("--json", "fmt", flag_value="json", help="Print JSON."),
        ]
    ):
        command = option(command)
    return command


@click.group("subjects", short_help="Bulk packages: CSV import, triage and dissemination; where each subject is.")
def subjects_group() -> None:
    """Bulk packages: import subjects, triage and disseminate them by CSV, list where each is.

    \b
    Example:
      refledger subjects list R-2012-0716 --at 2013-01-01 --state in_transit
    """


@subjects_group.command("import", short_help="Add a package's subjects from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.argument("file", type=_CSV_PATH)
@click.option("--risk-tool", help="The risk tool behind the band column (required with a band column).")
@click.option("--risk-tool-version", help="Its version (required with a band column).")
@_stamp_options
def import_subjects(
    reference: str,
    file: Path,
    risk_tool: str | None,
    risk_tool_version: str | None,
    at: str | None,
    late_reason: str | None,
    actor: str | None,
    fmt: str | None,
) -> None:
    """Add a package's subjects from a CSV, all or nothing.

    Columns: subject,category[,band][,target_force] (header row required; optional
    occurred_at, late_reason). Each row records subject_extracted; a row with a band also
    records subject_triaged with --risk-tool and --risk-tool-version. Subjects are
    pseudonymous references only: no names, dates of birth or other identifying data.

    \b
    Example:
      refledger subjects import R-2012-0716 subjects.csv --risk-tool RPT --risk-tool-version 3.2 --as P-02:analyst@U-TRIAGE
    """
    table = read_csv(file, IMPORT_LAYOUT)
    if "band" in table.columns and not (risk_tool and risk_tool_version):
        raise click.UsageError("the file has a band column: give --risk-tool and --risk-tool-version (the tool that set the bands)")
    _record_file(
        reference,
        table,
        lambda cells: import_records(cells, risk_tool, risk_tool_version),
        at,
        late_reason,
        actor,
        fmt,
        "Importing subjects",
    )


@subjects_group.command("triage", short_help="Record a tranche's triage from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.option("--from-csv", "file", type=_CSV_PATH, required=True, metavar="FILE", help="The tranche, one subject per row.")
@_stamp_options
def triage_subjects(reference: str, file: Path, at: str | None, late_reason: str | None, actor: str | None, fmt: str | None) -> None:
    """Record the triage of a tranche of subjects from a CSV, one event per row, all or nothing.

    Columns: subject,risk_tool,risk_tool_version,band[,target_force][,drivers] (drivers
    separated by ';'; optional occurred_at, late_reason).

    \b
    Example:
      refledger subjects triage R-2012-0716 --from-csv tranche-1.csv --as P-02:analyst@U-TRIAGE
    """
    _record_file(reference, read_csv(file, TRIAGE_LAYOUT), triage_records, at, late_reason, actor, fmt, "Triaging")


@subjects_group.command("disseminate", short_help="Record a tranche's dissemination from a CSV (all or nothing).")
@click.argument("reference", metavar="REFERRAL")
@click.option("--from-csv", "file", type=_CSV_PATH, required=True, metavar="FILE", help="The tranche, one subject per row.")
@_stamp_options
def disseminate_subjects(reference: str, file: Path, at: str | None, late_reason: str | None, actor: str | None, fmt: str | None) -> None:
    """Record the dissemination of a tranche of subjects from a CSV, one event per row, all or nothing.

    Columns: subject,to_force,authorised_by[,grading][,consent_reference] (grading as
    SCHEME:VALUE; optional occurred_at, late_reason).

    \b
    Example:
      refledger subjects disseminate R-2012-0716 --from-csv tranche-1-sent.csv --as P-07:team-manager@U-OPSA
    """
    _record_file(reference, read_csv(file, DISSEMINATE_LAYOUT), disseminate_records, at, late_reason, actor, fmt, "Disseminating")


# --- queries ---------------------------------------------------------------------------------


def _instants(at: str | None, as_known_at: str | None) -> tuple[datetime, datetime | None]:
    """--at (default now) and --as-known-at (None: as known now)."""
    return instant_option(at, "--at") or session().ledger.clock(), instant_option(as_known_at, "--as-known-at")


def _is_csv(fmt: str | None) -> bool:
    from commands.output import CSV, resolve_format

    return resolve_format(fmt) == CSV


_AT = click.option("--at", metavar="TIME", help="The instant asked about (default now).")
_AS_KNOWN_AT = click.option(
    "--as-known-at", metavar="TIME", help="Only what was recorded by then (default: as known now, every event recorded so far)."
)
_TEXT_COLUMNS = ("subject", "state", "responsible_unit", "force", "actioned", "band", "disseminated_at", "outcome")


@subjects_group.command("list", short_help="Where each subject is at an instant, and who answers for it.")
@click.argument("reference", metavar="REFERRAL")
@_AT
@_AS_KNOWN_AT
@click.option("--state", type=click.Choice(STATE_FILTERS), help="Only subjects in this state (actioned: a force has acted on it).")
@click.option("--force", metavar="FORCE", help="Only subjects in transit to this force or with it.")
@output_options()
def list_subjects(reference: str, at: str | None, as_known_at: str | None, state: str | None, force: str | None, fmt: str | None) -> None:
    """Where each subject of a referral is at an instant, and who answers for it.

    A subject is with the referral's owner (its custodian while unowned) until disseminated,
    in transit to a force until that force acknowledges or rejects it (the owner still
    answers for it), with the force after acknowledging, back with the owner after a
    rejection, and closed after subject_closed. A force action does not move a subject;
    --state actioned lists those a force has acted on.

    \b
    Example:
      refledger subjects list R-2012-0716 --at 2013-01-01T12:00:00Z --state in_transit --json
    """
    from ledger.values import iso
    from projections.subjects import ROW_COLUMNS, referral_state_at, subject_positions

    ledger = session().ledger
    instant, known_at = _instants(at, as_known_at)
    referral_events = ledger.referral_events(reference)
    referral = referral_state_at(referral_events, instant, known_at)
    positions = subject_positions(referral_events, ledger.subject_events(reference), instant, known_at)
    rows = [p.as_row() for p in positions if p.matches(state, force)]
    holder = referral.owner_unit or f"nobody (custodian {referral.custodian_unit})"
    emit(
        fmt,
        {
            "referral": reference,
            "at": iso(instant),
            "as_known_at": None if known_at is None else iso(known_at),
            "referral_owner": referral.owner_unit,
            "custodian": referral.custodian_unit,
            "filters": {"state": state, "force": force},
            "count": len(rows),
            "subjects": rows,
        },
        rows=rows,
        columns=ROW_COLUMNS if _is_csv(fmt) else _TEXT_COLUMNS,
        text=f"{len(rows)} of {len(positions)} subjects of {reference} at {iso(instant)}; referral owner {holder}.",
    )


@click.command("package", short_help="A bulk package at an instant: subjects by state, obligations.")
@click.argument("reference", metavar="REFERRAL")
@_AT
@_AS_KNOWN_AT
@output_options()
def package_command(reference: str, at: str | None, as_known_at: str | None, fmt: str | None) -> None:
    """A bulk package at an instant: subjects by state, disseminations, subject obligations.

    Counts subjects by where they are (the same answer as 'subjects list'), the first and
    last dissemination, the days from receipt to the first one, and the dissemination,
    force-acknowledgement and force-action obligations met, discharged, breached, open and overdue, or
    open and not yet due at that instant. As known now by default, like 'subjects list', so
    the two always agree; --as-known-at gives what the ledger showed then (--as-known-at
    equal to --at is a manager's view that day, as 'obligations' gives by default). Rules
    come from --policy FILE or REFLEDGER_POLICY, else the built-in defaults.

    \b
    Example:
      refledger package R-2012-0716 --at 2013-11-01T12:00:00Z --json
    """
    from projections.subjects import evaluate_package

    current = session()
    ledger = current.ledger
    instant, known_at = _instants(at, as_known_at)
    summary = evaluate_package(
        ledger.referral_events(reference), ledger.subject_events(reference), instant, known_at, policy=current.policy
    )
    data = summary.as_dict()
    # people get the sentence; --csv gets the same figures as measure/value rows
    emit(fmt, data, rows=_package_rows(data) if _is_csv(fmt) else None, columns=("measure", "value"), text=_package_text(data))


def _package_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary flattened to measure/value rows (dotted measure names)."""
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict):
                    rows += [{"measure": f"{key}.{inner}.{k}", "value": v} for k, v in inner_value.items()]
                else:
                    rows.append({"measure": f"{key}.{inner}", "value": inner_value})
        else:
            rows.append({"measure": key, "value": value})
    return rows


def _package_text(data: dict[str, Any]) -> str:
    states = ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in data["by_state"].items())
    lines = [
        f"{data['referral']} at {data['at']}" + (f" as known at {data['as_known_at']}" if data["as_known_at"] else " (as known now)"),
        f"  owner {data['owner'] or 'nobody'}, custodian {data['custodian']}",
        f"  {data['subjects']} subjects (claimed {data['claimed_subject_count'] or '?'}): {states}; {data['actioned']} actioned",
        f"  {data['disseminations']} disseminations, first {data['first_dissemination'] or '-'}, last {data['last_dissemination'] or '-'}"
        + (f"; {data['days_to_first_dissemination']} days from receipt to the first" if data["first_dissemination"] else ""),
    ]
    for rule, counts in (data["obligations"] or {}).items():
        lines.append(f"  {rule}: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)
