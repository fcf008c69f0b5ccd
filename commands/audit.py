"""Portfolio audit: ``audit gaps|overdue|late-entries|authority|…``, ``backlog``, ``projections status|rebuild``.

Each query brings the stored read models (``projections.store``) up to the log's head, then
answers from them; the rows come out through ``emit``. Every JSON answer has one shape,
``{"policy": VERSION, "rows": [...]}``, because overdue obligations, late entries and the
backlog depend on the rule set (``--policy``) and answers must say which one they used; gaps
follow the same shape so that a script reads all four alike. CSV is the plain rows.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from commands.output import emit, output_options
from projections.backlog import OBLIGATION_RULES

if TYPE_CHECKING:
    from projections.store import ReadModels

_FINDINGS_HELP = "Exit 3 when anything is found."
_KNOWN_NOW_HELP = "Hindsight: also count events recorded after --at. By default only what was recorded by --at counts."
#: a catch-up this far behind shows a progress bar on a terminal.
_SHOW_PROGRESS_FROM = 50_000


def read_models(*, catch_up: bool = True) -> ReadModels:
    """The session's read models, caught up to the log's head (with a progress bar when slow)."""
    from commands.session import session
    from projections.store import ReadModels

    current = session()
    models = ReadModels(current.ledger, current.policy)
    if catch_up:
        _catch_up(models)
        if not models.stored:
            click.echo("Note: computed without stored read models (the ledger cannot be written here).", err=True)
    return models


def _catch_up(models: ReadModels, *, rebuild: bool = False) -> Any:
    head = models.ledger.head()
    start = 0 if rebuild else models.position()
    if head - start < _SHOW_PROGRESS_FROM or not sys.stderr.isatty():
        return models.rebuild() if rebuild else models.catch_up()
    label = "Rebuilding read models" if rebuild else "Catching up read models"
    with click.progressbar(length=max(head - start, 1), label=label, file=sys.stderr) as bar:
        done = [start]

        def advance(position: int, head: int) -> None:
            bar.update(max(position - done[0], 0))
            done[0] = position

        return models.rebuild(progress=advance) if rebuild else models.catch_up(progress=advance)


def _answer(fmt: str | None, policy: str, rows: list[dict[str, Any]], columns: tuple[str, ...], text: str) -> None:
    emit(fmt, {"policy": policy, "rows": rows}, rows=rows, columns=columns, text=text)


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


@click.group("audit")
def audit_group() -> None:
    """Portfolio audit across the whole ledger: gaps, overdue obligations, late entries,
    corrections, findings, actors and authority.

    Answers come from stored read models that catch up with the ledger before answering.

    \b
    Example:
      refledger audit overdue --at 2024-06-03T12:00:00Z
    """


@audit_group.command("gaps")
@click.option("--from", "from_text", metavar="D", help="Only gaps that run on or after D (ISO 8601 with zone, or a date).")
@click.option("--to", "to_text", metavar="D", help="Only gaps that start on or before D.")
@click.option("--min-days", type=click.FloatRange(min=0), metavar="N", help="Only gaps of at least N days.")
@click.option(
    "--as-known-at", "known_text", metavar="K", help="As the ledger knew it at K: only events recorded by K count (default: as known now)."
)
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def gaps_command(
    from_text: str | None, to_text: str | None, min_days: float | None, known_text: str | None, fail_on_findings: bool, fmt: str | None
) -> None:
    """List every stretch of time in which an open referral had no owner.

    A gap runs from receipt, a release or a reopening to the acceptance or closure that
    ends it; an offer, a decline or a note does not end it. A gap still running ("end"
    null) is measured up to now, or up to K with --as-known-at. --from/--to keep the gaps
    that overlap that window; their days are still the whole gap's.

    \b
    Example:
      refledger audit gaps --min-days 7
      refledger audit gaps --as-known-at 2024-04-26T12:00:00Z --json
    """
    from commands.session import instant_option
    from ledger.values import iso

    models = read_models()
    now = models.ledger.clock()
    as_known_at = instant_option(known_text, "--as-known-at")
    found = models.gaps(
        now=now,
        as_known_at=as_known_at,
        start=instant_option(from_text, "--from"),
        end=instant_option(to_text, "--to"),
        min_days=min_days,
    )
    rows = [gap.as_row() for gap in found]
    knowledge = f"as known at {iso(as_known_at)}" if as_known_at is not None else "as known now"
    running = sum(1 for gap in found if gap.end is None)
    _answer(
        fmt,
        models.policy.version,
        rows,
        ("referral", "start", "end", "days"),
        f"{_plural(len(rows), 'gap')} in ownership ({running} still running), {knowledge}.",
    )
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'gap')} in ownership found")


@audit_group.command("overdue")
@click.option("--at", "at_text", metavar="T", help="Judge at this instant (ISO 8601 with zone, or a date; default now).")
@click.option("--unit", metavar="U", help="Only what unit U answered for at T: referrals it owned, or held while nobody owned them.")
@click.option("--rule", type=click.Choice(OBLIGATION_RULES), help="Only obligations of this rule.")
@click.option("--as-known-now", is_flag=True, help=_KNOWN_NOW_HELP)
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def overdue_command(
    at_text: str | None, unit: str | None, rule: str | None, as_known_now: bool, fail_on_findings: bool, fmt: str | None
) -> None:
    """List every obligation open and overdue at an instant, across all referrals and subjects.

    By default the answer is as known at T: only events that had occurred and been recorded
    by T count, which is what a supervisor could have seen that morning. Owner and custodian
    are those at T (as known at T, or now with --as-known-now). Rules come from --policy or
    REFLEDGER_POLICY, else the defaults; the answer names the policy version.

    \b
    Example:
      refledger audit overdue --at 2024-06-03T12:00:00Z
      refledger audit overdue --unit U-OPS1 --rule supervisory-review --json
    """
    from commands.session import instant_option
    from ledger.values import iso

    models = read_models()
    at = instant_option(at_text, "--at") or models.ledger.clock()
    found = models.overdue(at, as_known_now=as_known_now, unit=unit, rule=rule)
    rows = [row.as_row() for row in found]
    knowledge = "as known now" if as_known_now else "as known then"
    referrals = len({row.referral for row in found})
    _answer(
        fmt,
        models.policy.version,
        rows,
        ("referral", "subject", "rule", "started_at", "due", "days_overdue", "cycles_missed", "owner_unit", "custodian_unit"),
        f"{_plural(len(rows), 'obligation')} open and overdue on {_plural(referrals, 'referral')} at {iso(at)}, {knowledge} "
        f"(policy {models.policy.version}).",
    )
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'obligation')} open and overdue at {iso(at)}")


@audit_group.command("late-entries")
@click.option(
    "--min-lag-hours",
    type=click.FloatRange(min=0, min_open=True),
    metavar="H",
    help="List entries recorded more than H hours after they occurred (default: the policy's late-entry threshold, 24 h).",
)
@click.option("--needs-attestation", "needing", is_flag=True, help="Only entries that still need a supervisor's attestation.")
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def late_entries_command(min_lag_hours: float | None, needing: bool, fail_on_findings: bool, fmt: str | None) -> None:
    """List entries recorded long after they happened, and those that need a supervisor's attestation.

    An entry is late when recorded more than 24 h after it occurred (the policy's
    late-entry threshold); it must carry a late reason. Over 7 days it needs a supervisor's
    attestation ('refledger attest'); attested_by and attested_at say who gave it and when,
    and rule late-entry-attestation makes an unattested one overdue 7 days after it was
    recorded. For historical imports, the source system's recorded_at is the recording time.

    \b
    Example:
      refledger audit late-entries
      refledger audit late-entries --min-lag-hours 168 --csv
      refledger audit late-entries --needs-attestation
    """
    from datetime import timedelta

    from projections.late_entries import COLUMNS

    models = read_models()
    found = models.late_entries(min_lag=None if min_lag_hours is None else timedelta(hours=min_lag_hours))
    if needing:
        found = [entry for entry in found if entry.needs_attestation]
    rows = [entry.as_row() for entry in found]
    attest = sum(1 for entry in found if entry.needs_attestation)
    _answer(
        fmt,
        models.policy.version,
        rows,
        COLUMNS,
        f"{_plural(len(rows), 'late entry', 'late entries')}, {attest} needing attestation (policy {models.policy.version}).",
    )
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'late entry', 'late entries')} found")


@audit_group.command("corrections")
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def corrections_command(fail_on_findings: bool, fmt: str | None) -> None:
    """List every correction (one row per field, original and corrected value) and retraction.

    The original entries stay on the record with their hashes; answers read the corrections
    from their recording on. by_entry_actor says whether the person who recorded the entry
    amended it (otherwise a supervisory role did, or the imported history says who).

    \b
    Example:
      refledger audit corrections --csv
    """
    from commands.session import session
    from ledger.referral import Referral
    from ledger.subject import Subject
    from projections.findings import AMENDMENT_COLUMNS, amendments

    models = read_models()
    topics = {cls.TOPIC for cls in (Referral.EntryCorrected, Referral.EntryRetracted, Subject.EntryCorrected, Subject.EntryRetracted)}
    reader = session().reader()

    def readable(referral: str, stream: Any) -> Any:  # the reasons and values are free text
        return models.ledger.read_free_text(referral, [models.ledger.stream_events(stream)], reader, "audit corrections")[0]

    found = [
        row
        for stream, (referral, subject) in models.streams_with(topics).items()
        for row in amendments(referral, subject, readable(referral, stream))
    ]
    found.sort(key=lambda row: (row.referral, row.recorded_at, row.subject or "", row.version))
    rows = [row.as_row() for row in found]
    _answer(
        fmt,
        models.policy.version,
        rows,
        AMENDMENT_COLUMNS,
        f"{_plural(len(rows), 'corrected field or retraction', 'corrected fields and retractions')}.",
    )
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'correction or retraction', 'corrections and retractions')} found")


@audit_group.command("findings")
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def findings_command(fail_on_findings: bool, fmt: str | None) -> None:
    """List what the record itself shows to be wrong: reviews that confirmed the wrong owner.

    A review is recorded as the reviewer said it; here its owner_confirmed is compared with
    the owner the events show at the review's instant (as known now).

    \b
    Example:
      refledger audit findings --json
    """
    from ledger.referral import Referral
    from projections.findings import FINDING_COLUMNS, review_findings

    models = read_models()
    streams = models.streams_with({Referral.ReviewRecorded.TOPIC})
    found = [finding for stream in streams for finding in review_findings(models.ledger.stream_events(stream))]
    found.sort(key=lambda finding: (finding.referral, finding.occurred_at, finding.version))
    rows = [finding.as_row() for finding in found]
    _answer(fmt, models.policy.version, rows, FINDING_COLUMNS, f"{_plural(len(rows), 'finding')}.")
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'finding')} found")


@audit_group.command("authority")
@click.option("--at", "at_text", metavar="T", help="Only events that occurred by T (ISO 8601 with zone, or a date; default: all).")
@click.option(
    "--as-known-at", "known_text", metavar="K", help="As the ledger knew it at K: only events recorded by K (default: as known now)."
)
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def authority_command(at_text: str | None, known_text: str | None, fail_on_findings: bool, fmt: str | None) -> None:
    """List every event recorded outside the authority rules: who recorded what they had no
    authority to record (a force answering for a subject never sent to it, a unit moving a
    referral it did not own, a review without a supervisory role, …).

    Live recording refuses such an event; 'import --historical' keeps it, so a migration
    keeps the real history and this shows where it broke the rules. Each event is judged at
    its occurred_at against everything recorded before it, by the rules of --policy (its
    [authority] table); role-level rules count from the instant the directory is in force.

    \b
    Example:
      refledger audit authority
      refledger audit authority --as-known-at 2024-05-01T00:00:00Z --csv
    """
    from commands.session import instant_option
    from projections.authority import COLUMNS, authority_findings

    models = read_models(catch_up=False)
    found = authority_findings(
        models.ledger,
        models.policy,
        at=instant_option(at_text, "--at"),
        as_known_at=instant_option(known_text, "--as-known-at"),
    )
    rows = [finding.as_row() for finding in found]
    text = f"{_plural(len(rows), 'event')} recorded outside the authority rules (policy {models.policy.version})."
    _answer(fmt, models.policy.version, rows, COLUMNS, text)
    if fail_on_findings and rows:
        raise _findings(f"{_plural(len(rows), 'event')} recorded outside the authority rules")


@click.command("backlog")
@click.option("--at", "at_text", metavar="T", help="The instant (ISO 8601 with zone, or a date; default now).")
@click.option("--as-known-now", is_flag=True, help=_KNOWN_NOW_HELP)
@click.option("--fail-on-findings", is_flag=True, help="Exit 3 when any obligation is open and overdue at T.")
@output_options()
def backlog_command(at_text: str | None, as_known_now: bool, fail_on_findings: bool, fmt: str | None) -> None:
    """Show, per owning unit, the open referrals and subjects at an instant, their age, and what is overdue.

    Unowned referrals are counted under "unowned", one row per custodian (the unit holding
    the package). Ages run from receipt, in buckets 0-7, 7-28, 28-90, 90-365 and 365+ days.
    Overdue counts are per rule, judged as in 'audit overdue'.

    \b
    Example:
      refledger backlog --at 2024-06-03T12:00:00Z
      refledger backlog --json
    """
    from commands.session import instant_option
    from ledger.values import iso
    from projections.backlog import backlog, csv_columns

    models = read_models()
    at = instant_option(at_text, "--at") or models.ledger.clock()
    found = backlog(models.backlog(at, as_known_now=as_known_now), at)
    knowledge = "as known now" if as_known_now else "as known then"
    open_referrals = sum(row.open_referrals for row in found)
    overdue = sum(row.overdue_total for row in found)
    unowned = sum(row.open_referrals for row in found if row.custodian_unit is not None)
    data = {"policy": models.policy.version, "rows": [row.as_row() for row in found]}
    flat = [row.as_flat_row() for row in found]
    emit(
        fmt,
        data,
        rows=flat,
        columns=csv_columns() if fmt == "csv" else _BACKLOG_TABLE,
        text=f"{_plural(open_referrals, 'open referral')} at {iso(at)} ({unowned} unowned), {_plural(overdue, 'obligation')} overdue, "
        f"{knowledge} (policy {models.policy.version}).",
    )
    if fail_on_findings and overdue:
        raise _findings(f"{_plural(overdue, 'obligation')} open and overdue at {iso(at)}")


_BACKLOG_TABLE = (
    "owner_unit",
    "custodian_unit",
    "open_referrals",
    "open_subjects",
    "age_0-7d",
    "age_7-28d",
    "age_28-90d",
    "age_90-365d",
    "age_365d+",
    "oldest_days",
    "overdue_total",
)


def _findings(message: str) -> click.ClickException:
    from commands.session import FindingsExit

    return FindingsExit(message)


@click.group("projections")
def projections_group() -> None:
    """The stored read models behind the portfolio queries: how far they are, and rebuilding them.

    \b
    Example:
      refledger projections status
    """


@projections_group.command("status")
@output_options(tabular=False)
def status_command(fmt: str | None) -> None:
    """Show the read models' position in the log, the log's head, the lag, and row counts.

    Queries catch up by themselves before answering; a lag here only means that nothing
    has asked since the last recording.

    \b
    Example:
      refledger projections status --json
    """
    models = read_models(catch_up=False)
    status = models.status()
    lines = [
        f"position {status.position}, head {status.head}, lag {status.lag}",
        f"policy {status.policy or '-'}, layout {status.layout or '-'}",
        *(f"{name}: {count}" for name, count in status.tables.items()),
    ]
    emit(fmt, status.as_document(), text="\n".join(lines))


@projections_group.command("rebuild")
@output_options(tabular=False)
def rebuild_command(fmt: str | None) -> None:
    """Empty the read-model tables and fold the whole log into them again.

    The result is the same tables a catch-up keeps, row for row; use it after changing
    the folds' code, or to check the stored models against the log.

    \b
    Example:
      refledger projections rebuild
    """
    models = read_models(catch_up=False)
    result = _catch_up(models, rebuild=True)
    status = models.status()
    data = {
        **status.as_document(),
        "entries": result.entries,
        "referrals": result.referrals_folded,
        "seconds": round(result.seconds, 2),
        "entries_per_second": round(result.entries_per_second),
    }
    emit(
        fmt,
        data,
        text=f"Rebuilt from {result.entries} log entries ({_plural(result.referrals_folded, 'referral')}) in {result.seconds:.1f} s "
        f"({result.entries_per_second:,.0f} entries/s); position {status.position}, head {status.head}.",
    )


@audit_group.command("actors")
@click.option("--counts", is_flag=True, help="Count per person, role, unit and rule instead of listing each event.")
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def actors_command(counts: bool, fail_on_findings: bool, fmt: str | None) -> None:
    """List every event whose actor does not check out against the staff directory: not a
    registered person, an unknown unit, or a role not held there then (neither when it
    happened nor when it was recorded). Events recorded before the directory was in force, and
    every line of an ``import --historical``, are kept and listed here.

    \b
    Example:
      refledger audit actors --counts
    """
    from commands.directory import actors_command_body

    actors_command_body(counts, fail_on_findings, fmt)


@audit_group.command("migrations")
@output_options()
def migrations_command(fmt: str | None) -> None:
    """List the ledger's migration: each historical import (file hash, lines, referrals, who,
    when, the span of the source system's clocks) and when and how the migration closed.
    Until it closes, ``import --historical`` is allowed for referrals new to the ledger.

    \b
    Example:
      refledger audit migrations
    """
    from commands.migration import migrations_body

    migrations_body(fmt)


@audit_group.command("signatures")
@click.option("--fail-on-findings", is_flag=True, help=_FINDINGS_HELP)
@output_options()
def signatures_command(fail_on_findings: bool, fmt: str | None) -> None:
    """List every event of a type the policy requires signed ([signatures] required) that
    carries no signature: live recording refuses them, so these came with an
    ``import --historical`` or before the requirement. Whether a signature verifies is
    ``verify``'s check.

    \b
    Example:
      refledger audit signatures
    """
    from commands.signing import audit_signatures_body

    audit_signatures_body(fail_on_findings, fmt)
