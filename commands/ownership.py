"""Who owned a referral, when: ``owner``, ``history`` and ``timeline``.

Each command reads one referral's events, folds them with ``projections.ownership`` or
``projections.timeline`` and renders the answer through ``emit``. Imports beyond click are
made inside the commands, so ``refledger owner`` starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from commands.output import output_options, plural

if TYPE_CHECKING:
    from projections.ownership import OwnerAnswer

_AT_HELP = "The instant asked about (ISO 8601 with zone, or a date; default now)."
_KNOWN_HELP = "Answer as the ledger knew it then: only events recorded by K count (default: as known now)."


def _actor(actor: dict[str, str]) -> str:
    return f"{actor['person']}:{actor['role']}@{actor['unit']}"


@click.command("owner")
@click.argument("reference", metavar="REFERRAL")
@click.option("--at", "at_text", metavar="T", help=_AT_HELP)
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options(tabular=False)
def owner_command(reference: str, at_text: str | None, known_text: str | None, fmt: str | None) -> None:
    """Say who owned a referral at an instant, who held it, and any open offer or disputed claim.

    Ownership passes only when the offered unit accepts; an offer, a decision or a note
    does not move it. With --as-known-at, late entries recorded after K are left out, so
    the answer is the one the ledger gave at K.

    \b
    Example:
      refledger owner R-2024-0402 --at 2024-04-22T12:00:00Z --as-known-at 2024-04-26T12:00:00Z
    """
    from commands.output import emit
    from commands.session import instant_option, session
    from projections.ownership import answer_document, owner_at

    ledger = session().ledger
    at = instant_option(at_text, "--at") or ledger.clock()
    as_known_at = instant_option(known_text, "--as-known-at")
    events = ledger.referral_events(reference)
    answer = owner_at(events, at, as_known_at)
    document, caveat = with_source_clocks(answer_document(answer), events, as_known_at)
    emit(fmt, document, text=owner_sentence(answer) + (f"\nNote: {caveat}." if caveat else ""))


def with_source_clocks(document: dict[str, Any], events: Any, as_known_at: Any) -> tuple[dict[str, Any], str | None]:
    """The answer, saying whether "as known at" rests on a source system's clocks (a migration)."""
    from ledger.migration import source_clock_caveat

    caveat = source_clock_caveat(events, as_known_at)
    return {**document, "source_clocks": caveat}, caveat


def owner_sentence(answer: OwnerAnswer) -> str:
    """The human answer: who owned it (or plainly that nobody did), then what else matters."""
    from ledger.values import days, iso

    when = iso(answer.at)
    custodian = f"custodian: {answer.custodian.unit} (since {iso(answer.custodian.start)})"
    owner = answer.owner
    if owner is not None:
        held = days(answer.at - owner.start)
        person = f" ({owner.person})" if owner.person else ""
        lines = [f"{owner.unit}{person} owned {answer.reference} on {when} (since {iso(owner.start)}, {held:.2f} days); {custodian}."]
    elif answer.closed_at is not None:
        lines = [f"Nobody owned {answer.reference} on {when}: it was closed at {iso(answer.closed_at)}; {custodian}."]
    else:
        since = answer.unowned_since or answer.at
        lines = [
            f"Nobody owned {answer.reference} on {when} (unowned since {iso(since)}, {days(answer.at - since):.2f} days); {custodian}."
        ]
    offer = answer.open_offer
    if offer is not None:
        due = f", reply due {iso(offer.reply_due)}" if offer.reply_due else ""
        lines.append(
            f"Open offer to {offer.to_unit}, made {iso(offer.offered_at)} by {_actor(offer.offered_by)}{due} (an offer is not ownership)."
        )
    for claim in answer.disputed_claims:
        lines.append(
            f"Disputed claim: a note of {iso(claim.occurred_at)} (recorded {iso(claim.recorded_at)} by {_actor(claim.by)}) "
            f"claims {claim.claim.get('type')} by {claim.claim.get('unit')}; the events do not show it."
        )
    if answer.as_known_at is not None:
        lines.append(f"As known at {iso(answer.as_known_at)}: events recorded after it are left out.")
    return "\n".join(lines)


@click.command("history")
@click.argument("reference", metavar="REFERRAL")
@click.option("--at", "at_text", metavar="T", help="Show the history up to T; running intervals are measured to T (default now).")
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options()
def history_command(reference: str, at_text: str | None, known_text: str | None, fmt: str | None) -> None:
    """List who owned and who held a referral over time, with durations, gaps marked.

    A gap is time while the referral was open and nobody owned it. Each interval names the
    event that began it and the one that ended it (stream version, type, import line).

    \b
    Example:
      refledger history R-2024-0311
    """
    from commands.output import emit
    from commands.session import instant_option, session
    from ledger.knowledge import known
    from projections.findings import amendments
    from projections.ownership import history_document, ownership_history

    ledger = session().ledger
    at = instant_option(at_text, "--at")
    as_known_at = instant_option(known_text, "--as-known-at")
    events = ledger.referral_events(reference)
    history = ownership_history(events, as_known_at=as_known_at, until=at)
    document, caveat = with_source_clocks(history_document(history, events, at or ledger.clock()), events, as_known_at)
    # the originals stay on the record: show what amended them (as known at K)
    document["amendments"] = [row.as_row() for row in amendments(reference, None, known(events, as_known_at, recorded_only=True))]
    text = history_sentence(document)
    if document["amendments"]:
        text += "\n" + "\n".join(
            f"v{a['version']} {a['kind']} of v{a['entry_version']} {a['entry_type']}"
            + (f": {a['field']} {a['original']} -> {a['corrected']}" if a["field"] else "")
            + f" ({a['reason']}; {a['by']})"
            for a in document["amendments"]
        )
    text += f"\nNote: {caveat}." if caveat else ""
    emit(fmt, document, rows=history_rows(document), columns=HISTORY_COLUMNS, text=text)


HISTORY_COLUMNS = ("kind", "unit", "person", "start", "end", "days", "began_with", "ended_by")


def _event_label(ref: dict[str, Any] | None) -> str | None:
    if ref is None:
        return None
    line = f" (line {ref['line']})" if ref.get("line") is not None else ""
    login = f" by {ref['login']}" if ref.get("login") else ""
    return f"v{ref['version']} {ref['type']}{line}{login}"


def history_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Ownership intervals and gaps in time order, then custody intervals."""
    spans = [{"kind": "owner", **interval} for interval in document["ownership"]]
    spans += [{"kind": "GAP", "unit": "(nobody)", "person": None, **gap} for gap in document["gaps"]]
    spans.sort(key=lambda span: span["start"])
    spans += [{"kind": "custody", "person": None, **interval} for interval in document["custody"]]
    return [
        {
            **{column: span.get(column) for column in HISTORY_COLUMNS[:6]},
            "began_with": _event_label(span["opened_by"]),
            "ended_by": _event_label(span["closed_by"]),
        }
        for span in spans
    ]


def history_sentence(document: dict[str, Any]) -> str:
    totals = document["totals"]
    closed = f", closed {document['closed_at']}" if document["closed_at"] else ""
    lines = [
        f"{document['referral']}: received {document['received_at']}{closed} ({document['status']}). "
        f"Up to {document['at']}: open {totals['open_days']:.2f} days, owned {totals['owned_days']:.2f}, "
        f"unowned {totals['unowned_days']:.2f} in {len(document['gaps'])} gap(s)."
    ]
    if document["as_known_at"]:
        lines.append(f"As known at {document['as_known_at']}: events recorded after it are left out.")
    for claim in document["disputed_claims"]:
        lines.append(
            f"Disputed claim: a note of {claim['occurred_at']} by {_actor(claim['by'])} claims "
            f"{claim['claim'].get('type')} by {claim['claim'].get('unit')}; the events do not show it."
        )
    for stopped in document["superseded"]:
        lines.append(f"Superseded (no effect in hindsight): {_event_label(stopped['event'])}: {stopped['reason']}.")
    return "\n".join(lines)


@click.command("timeline")
@click.argument("reference", metavar="REFERRAL")
@click.option("--as-known-at", "known_text", metavar="K", help=_KNOWN_HELP)
@output_options()
def timeline_command(reference: str, known_text: str | None, fmt: str | None) -> None:
    """List every event of a referral and its subjects in the order things happened.

    Each row shows both clocks (when it happened, when it was recorded), the lag between
    them, whether it was a late entry (over 24 h; over 7 days needs attestation), who acted
    and what it did. An event that a later-recorded, earlier-occurring event made impossible
    is marked superseded: it stays on the record but changes nothing.

    \b
    Example:
      refledger timeline R-2024-0402 --csv
    """
    from commands.output import CSV, JSON, emit, resolve_format
    from commands.records import free_text
    from commands.session import instant_option, session
    from projections.timeline import CSV_COLUMNS, timeline, timeline_document

    ledger = session().ledger
    as_known_at = instant_option(known_text, "--as-known-at")
    events, subjects = free_text(ledger, reference, ledger.referral_events(reference), ledger.subject_events(reference), "timeline")
    policy = session().policy  # late and attestation thresholds, as `audit late-entries` uses
    rows = timeline(
        events,
        subjects,
        records_events=ledger.records(reference).events,
        as_known_at=as_known_at,
        late_after=policy.late_entry_threshold(),
        attestation_after=policy.attestation_threshold(),
    )
    document = timeline_document(reference, rows, as_known_at)
    chosen = resolve_format(fmt)
    if chosen == JSON:
        emit(fmt, document)
    elif chosen == CSV:
        emit(fmt, document, rows=[{**row, "actor": _actor(row["actor"])} for row in document["events"]], columns=CSV_COLUMNS)
    else:
        emit(fmt, document, rows=timeline_table(document["events"]), columns=TIMELINE_COLUMNS, text=timeline_heading(document))


TIMELINE_COLUMNS = ("occurred_at", "recorded_at", "lag_days", "late", "who", "login", "what")


def timeline_table(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def late(row: dict[str, Any]) -> str:
        return "LATE, attest" if row["needs_attestation"] else "LATE" if row["late"] else ""

    def what(row: dict[str, Any]) -> str:
        stopped = f" (SUPERSEDED, no effect: {row['why']})" if row["why"] else ""
        return f"{row['summary']}{stopped}"

    return [
        {
            "occurred_at": row["occurred_at"],
            "recorded_at": row["recorded_at"],
            "lag_days": row["lag_days"],
            "late": late(row),
            "who": _actor(row["actor"]),
            "login": row["login"],
            "what": what(row),
        }
        for row in events
    ]


def timeline_heading(document: dict[str, Any]) -> str:
    events = document["events"]
    late = sum(1 for row in events if row["late"])
    known = f", as known at {document['as_known_at']}" if document["as_known_at"] else ""
    return f"{document['referral']}: {plural(len(events), 'event')} in the order they happened{known}; {late} late entr{'y' if late == 1 else 'ies'}."
