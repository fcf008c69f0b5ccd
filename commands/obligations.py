"""``obligations REF``: what the policy asked of one referral, and ``policy show``: which policy."""

from __future__ import annotations

from typing import Any

import click

from commands.output import emit, output_options
from commands.session import FindingsExit, instant_option, session
from projections.obligations import COLUMNS, DETAIL_KEYS, OVERDUE, STATUSES, obligations_at

_TABLE = ("rule", "subject", "status", "started_at", "due", "satisfied_at", "days_late", "detail")
_DETAIL = ("band", "cycles_missed", *DETAIL_KEYS)


@click.command("obligations")
@click.argument("reference", metavar="REFERRAL")
@click.option("--at", "at_text", metavar="TIME", help="Judge at this instant (ISO 8601 with zone; default now).")
@click.option(
    "--as-known-now",
    is_flag=True,
    help="Hindsight: also count events recorded after --at. By default only what was recorded by --at counts.",
)
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only obligations with this status (repeatable).")
@click.option("--fail-on-findings", is_flag=True, help="Exit 3 when any obligation is open and overdue at --at.")
@output_options()
def obligations_command(
    reference: str, at_text: str | None, as_known_now: bool, statuses: tuple[str, ...], fail_on_findings: bool, fmt: str | None
) -> None:
    """Every obligation of a referral and its subjects at an instant: rule, clock start, due,
    when it was satisfied, and whether it was met, discharged (stopped by a closure, rejection or
    withdrawal, not done), breached, or is open and overdue or not yet due.

    By default the answer is as known at --at: only events that had occurred and been recorded
    by then count, which is what a manager could have seen that day. --as-known-now adds
    entries recorded later (hindsight). Rules come from --policy FILE or REFLEDGER_POLICY,
    else the built-in defaults; the answer names the policy version.

    \b
    Example:
      refledger obligations R-2024-0402 --at 2024-06-03T12:00:00Z
      refledger obligations R-2024-0402 --at 2024-04-25T12:00:00Z --as-known-now --json
    """
    from ledger.values import iso

    current = session()
    policy = current.policy
    ledger = current.ledger
    at = instant_option(at_text, "--at") or ledger.clock()
    found = obligations_at(
        ledger.referral_events(reference), ledger.subject_events(reference), at, policy=policy, as_known_now=as_known_now
    )
    shown = [o for o in found if not statuses or o.status in statuses]
    rows = [o.as_row() for o in shown]
    data = {"referral": reference, "at": iso(at), "as_known_now": as_known_now, "policy": policy.version, "obligations": rows}
    counts = {status: sum(1 for o in found if o.status == status) for status in STATUSES}
    knowledge = "as known now" if as_known_now else "as known then"
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    if fmt != "csv":  # people get the detail keys in one column, so the table fits a screen
        rows = [{**row, "detail": "; ".join(f"{key} {row[key]}" for key in _DETAIL if row.get(key) is not None)} for row in rows]
    emit(
        fmt,
        data,
        rows=rows,
        columns=COLUMNS if fmt == "csv" else _TABLE,
        text=f"{reference} at {iso(at)}, {knowledge} (policy {policy.version}): {summary}.",
    )
    overdue = counts[OVERDUE]
    if fail_on_findings and overdue:
        raise FindingsExit(f"{overdue} obligation{'s' if overdue != 1 else ''} of {reference} open and overdue at {iso(at)}")


@click.group("policy")
def policy_group() -> None:
    """The review and SLA rule set that answers are judged by (--policy FILE or REFLEDGER_POLICY).

    \b
    Example:
      refledger --policy national-unit.toml policy show
    """


@policy_group.command("show")
@output_options()
def policy_show(fmt: str | None) -> None:
    """List the rules in force, their periods in days, and the policy version answers report
    (with --json also the authority rules: who may record what, as the [authority] table sets them).

    \b
    Example:
      refledger policy show
      refledger --policy national-unit.toml policy show --json
    """
    current = session()
    policy = current.policy
    rules = policy.describe()
    from ledger.authority import RULES

    authority = [
        {"rule": rule.id, "key": None if rule.fixed else rule.key, "who": rule.summary, **policy.authority[rule.key].as_dict()}
        for rule in RULES
    ]
    data: dict[str, Any] = {
        "name": policy.name,
        "version": policy.version,
        "source": current.policy_source,
        "rules": rules,
        "authority": authority,
    }
    rows = [
        {
            "rule": rule["rule"],
            "enabled": rule["enabled"],
            "days": ", ".join(f"{case} {number:g}" for case, number in rule["days"].items()),
            "note": rule["note"],
        }
        for rule in rules
    ]
    source = current.policy_source or "built-in defaults"
    emit(fmt, data, rows=rows, columns=("rule", "enabled", "days", "note"), text=f"Policy {policy.version} ({source})")
