"""Records management: ``hold place|release|list``, ``dispose``, ``retention due``,
``audit consultations``, and ``free_text``: how every command that shows free text reads it
(through ``Ledger.read_free_text``, the one place)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from commands.output import emit, output_options, plural

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.referral import LedgerEvent


def free_text(
    ledger: Ledger, reference: str, events: Sequence[LedgerEvent], subjects: Mapping[str, Sequence[LedgerEvent]], what: str
) -> tuple[list[LedgerEvent], dict[str, list[LedgerEvent]]]:
    """The referral's and its subjects' events with their free text readable, the reading
    recorded where the policy keeps a consultation log (the reader is --as)."""
    from commands.session import session

    session().policy  # noqa: B018  # the consultation log is the policy's: a bad policy file stops here
    names = list(subjects)
    opened = ledger.read_free_text(reference, [events, *(subjects[name] for name in names)], session().reader(), what)
    return opened[0], dict(zip(names, opened[1:], strict=True))


def _actor(actor: Mapping[str, str]) -> str:
    return f"{actor['person']}:{actor['role']}@{actor['unit']}"


def _stamp(actor: str | None, at: str | None) -> Any:
    from commands.session import instant_option, session
    from ledger.values import Stamp

    return Stamp(actor=session().actor(actor), occurred_at=instant_option(at, "--at"))


_AS = click.option("--as", "actor", metavar="PERSON:ROLE@UNIT", help="Who records it (or refledger --as, or REFLEDGER_ACTOR).")
_AT = click.option("--at", "at", metavar="TIME", help="When it happened (ISO 8601 with zone; default now).")
_REASON = click.option("--reason", required=True, metavar="TEXT", help="Why (kept in the clear: it must outlive a disposal).")


@click.group("hold")
def hold_group() -> None:
    """Legal holds: while one is in force the referral cannot be disposed of.

    \b
    Example:
      refledger hold place R-2024-0311 --reason 'Inquiry OP-7' --as P-90:records-manager@U-RM
    """


@hold_group.command("place")
@click.argument("reference", metavar="REFERRAL")
@_REASON
@_AT
@_AS
@output_options(tabular=False)
def hold_place(reference: str, reason: str, at: str | None, actor: str | None, fmt: str | None) -> None:
    """Place a legal hold on a referral (one at a time; shown in its timeline).

    \b
    Example:
      refledger hold place R-2024-0311 --reason 'Inquiry OP-7' --as P-90:records-manager@U-RM
    """
    from commands.session import session

    stamp = _stamp(actor, at)
    session().ledger.place_hold(reference, stamp, reason)
    emit(fmt, {"recorded": "hold_placed", "referral": reference}, text=f"Placed a hold on {reference}.")


@hold_group.command("release")
@click.argument("reference", metavar="REFERRAL")
@_REASON
@_AT
@_AS
@output_options(tabular=False)
def hold_release(reference: str, reason: str, at: str | None, actor: str | None, fmt: str | None) -> None:
    """Release the hold in force on a referral.

    \b
    Example:
      refledger hold release R-2024-0311 --reason 'Inquiry OP-7 concluded' --as P-90:records-manager@U-RM
    """
    from commands.session import session

    stamp = _stamp(actor, at)
    session().ledger.release_hold(reference, stamp, reason)
    emit(fmt, {"recorded": "hold_released", "referral": reference}, text=f"Released the hold on {reference}.")


@hold_group.command("list")
@output_options()
def hold_list(fmt: str | None) -> None:
    """List the holds in force, one row per referral.

    \b
    Example:
      refledger hold list --csv
    """
    from commands.session import session
    from ledger.records import HoldPlaced, HoldReleased

    ledger = session().ledger
    holds: dict[str, HoldPlaced] = {}
    for event in ledger.events_of_topics((HoldPlaced.TOPIC, HoldReleased.TOPIC)):
        if isinstance(event, HoldPlaced):
            holds[event.reference] = event
        elif isinstance(event, HoldReleased):
            holds.pop(event.reference, None)
    rows = [
        {"referral": reference, "since": hold.occurred_at, "by": _actor(hold.actor), "reason": hold.reason}
        for reference, hold in sorted(holds.items())
    ]
    emit(fmt, {"holds": rows}, rows=rows, columns=("referral", "since", "by", "reason"), text=f"{plural(len(rows), 'hold')} in force.")


@click.command("dispose")
@click.argument("reference", metavar="REFERRAL")
@_REASON
@_AT
@_AS
@output_options(tabular=False)
def dispose_command(reference: str, reason: str, at: str | None, actor: str | None, fmt: str | None) -> None:
    """Dispose of a closed referral's free text: destroy its data key, record the disposal.

    Refused while the referral is open or under a hold, and for a role that is not a
    records-management role (policy [directory] records_roles). Every structural answer,
    verify and the proofs stay as they were; the free text reads "[disposed DATE by …]".

    \b
    Example:
      refledger dispose R-2024-0311 --reason 'Retention review 2032' --as P-90:records-manager@U-RM
    """
    from commands.session import session
    from ledger.values import iso

    stamp = _stamp(actor, at)
    session().policy  # noqa: B018  # who may dispose is the policy's: a bad policy file stops here
    event = session().ledger.dispose(reference, stamp, reason)
    emit(
        fmt,
        {"recorded": "disposed", "referral": reference, "at": event.occurred_at, "by": event.actor},
        text=f"Disposed of the free text of {reference} at {iso(event.occurred_at)}: its data key is destroyed.",
    )


@click.group("retention")
def retention_group() -> None:
    """Retention review: when each closed referral falls due (policy [records]).

    \b
    Example:
      refledger retention due --at 2032-05-01
    """


@retention_group.command("due")
@click.option("--at", "at_text", metavar="T", help="Due by T (ISO 8601 with zone, or a date; default now).")
@output_options()
def retention_due(at_text: str | None, fmt: str | None) -> None:
    """List the referrals whose retention review is due by T (closed, not yet disposed of).

    A closed referral is due for review the policy's review_after_years after its closure
    (default 6); an open one never. A hold in force is shown beside it.

    \b
    Example:
      refledger retention due --at 2032-05-01 --csv
    """
    from commands.audit import read_models
    from commands.session import instant_option
    from ledger.records import review_due
    from ledger.referral import CLOSED, fold_state
    from ledger.values import iso

    models = read_models()
    ledger = models.ledger
    at = instant_option(at_text, "--at") or ledger.clock()
    years = models.policy.records.review_after_years
    rows = []
    for listed in models.referrals(at):
        if listed.status != CLOSED:
            continue
        due = review_due(fold_state(ledger.referral_events(listed.referral)), years)
        records = ledger.records(listed.referral)
        if due is None or due > at or records.disposed is not None:
            continue
        hold = records.hold
        rows.append(
            {"referral": listed.referral, "review_due": due, "on_hold": hold is not None, "hold_reason": hold.reason if hold else None}
        )
    emit(
        fmt,
        {"at": at, "review_after_years": years, "rows": rows},
        rows=rows,
        columns=("referral", "review_due", "on_hold", "hold_reason"),
        text=f"{plural(len(rows), 'referral')} due for retention review by {iso(at)}.",
    )


@click.command("consultations")
@click.argument("reference", metavar="REFERRAL")
@output_options()
def consultations_command(reference: str, fmt: str | None) -> None:
    """Who read this referral's free text, and when (policy [records] consultation_log).

    \b
    Example:
      refledger audit consultations R-2024-0311
    """
    from commands.session import session

    ledger = session().ledger
    rows = [{"at": e.timestamp, "who": _actor(e.actor), "what": e.what} for e in ledger.consultations(reference)]
    logged = "" if ledger.consultation_log else " (the policy keeps no consultation log)"
    emit(
        fmt,
        {"referral": reference, "consultations": rows},
        rows=rows,
        columns=("at", "who", "what"),
        text=f"{reference}: {plural(len(rows), 'consultation')} of its free text{logged}.",
    )
