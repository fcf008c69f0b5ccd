"""An independent checker for import JSON Lines (docs/DOMAIN.md §4–6 and §8).

It is the generator's safety net, written without sharing any table with ``generate.py``;
the ledger's importer stays the final judge. Each line is checked for its shape (known type,
no unknown fields, required fields, ISO 8601 UTC times with Z) and its clocks, then judged
three ways against the lines before it:

1. in recording order: the state after every earlier line of the referral;
2. at its occurred_at (docs/DOMAIN.md §6): the earlier lines that occurred at or before it, replayed
   in occurred order;
3. in hindsight: the referral's whole history so far, replayed in occurred order, must stay
   valid once the line is added (what "as known now" projections will replay).

A few checks go beyond docs/DOMAIN.md and are marked "policy": they hold the generator to a realistic
story (reviews confirm the actual owner, replies follow requests, force events come from the
force the subject was sent to). The first violation is reported with its 1-based line number.

Usage: python bench/_checker.py FILE.jsonl
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?Z$")
_LATE_AFTER = 24 * 3600
_FUTURE_SKEW = 300

_COMMON = frozenset({"type", "referral", "occurred_at", "actor", "late_reason", "recorded_at"})
# type: (required fields, optional fields), from the import table (README, Importing).
_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    kind: (frozenset(required.split()), frozenset(optional.split()))
    for kind, required, optional in (
        (
            "received",
            "originator channel custodian_unit",
            "reference originator_reference claimed_subject_count grading handling_conditions package_hash immediate_risk",
        ),
        ("assessed", "risk_band immediate_risk rationale", "grading recommended_lead_unit"),
        ("ownership_offered", "to_unit", "reply_due"),
        ("ownership_accepted", "", "reason"),
        ("ownership_declined", "reason", ""),
        ("offer_withdrawn", "", "reason"),
        ("ownership_released", "reason", ""),
        ("custody_transferred", "to_unit", ""),
        ("escalation_raised", "to_role issue", "decision_due"),
        ("decision_recorded", "outcome rationale", "options_considered revisit_by"),
        ("review_recorded", "progress owner_confirmed", "next_review_by"),
        ("external_request_received", "from summary", ""),
        ("external_reply_sent", "reply_to", ""),
        ("note_added", "text", "claim"),
        ("closed", "reason", ""),
        ("reopened", "reason", ""),
        ("subject_extracted", "subject category", ""),
        (
            "subject_triaged",
            "subject risk_tool risk_tool_version band",
            "drivers target_force",
        ),
        ("subject_disseminated", "subject to_force authorised_by", "grading consent_reference"),
        ("force_acknowledged", "subject", ""),
        ("force_rejected", "subject reason", ""),
        ("force_action_recorded", "subject action", ""),
        ("subject_closed", "subject outcome rationale", ""),
    )
}
_TIME_FIELDS = ("reply_due", "decision_due", "revisit_by", "next_review_by")
_LIST_FIELDS = ("handling_conditions", "options_considered", "drivers")
_BANDS = frozenset({"LOW", "MEDIUM", "HIGH", "VERY_HIGH"})
_OUTCOMES = frozenset({"ASSIGN_OWNER", "DEFER", "REJECT", "NO_FURTHER_ACTION", "CLOSE"})
_AFTER_CLOSE = frozenset({"reopened", "note_added"})


class Violation(Exception):
    """A line breaks a rule; the message names the rule."""


def _epoch(text: Any, name: str) -> int:
    if not isinstance(text, str):
        raise Violation(f"{name} is not a string")
    match = _TIME.match(text)
    if match is None:
        raise Violation(f"{name} {text!r} is not ISO 8601 UTC with Z")
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as error:
        raise Violation(f"{name} {text!r}: {error}") from None
    return int(moment.timestamp())


def _check_shape(record: Any) -> None:
    if not isinstance(record, dict):
        raise Violation("line is not a JSON object")
    kind = record.get("type")
    if kind not in _FIELDS:
        raise Violation(f"unknown type {kind!r}")
    required, optional = _FIELDS[kind]
    keys = set(record)
    missing = (required | {"type", "referral", "occurred_at", "actor"}) - keys
    if missing:
        raise Violation(f"{kind}: missing {sorted(missing)}")
    unknown = keys - required - optional - _COMMON
    if unknown:
        raise Violation(f"{kind}: unknown fields {sorted(unknown)}")
    for key, value in record.items():
        if key in _LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Violation(f"{key} must be a list of strings")
        elif key in ("actor", "grading", "claim"):
            continue
        elif key in ("immediate_risk",):
            if not isinstance(value, bool):
                raise Violation(f"{key} must be a boolean")
        elif key == "claimed_subject_count":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise Violation(f"{key} must be a non-negative integer")
        elif not isinstance(value, str) or not value:
            raise Violation(f"{key} must be a non-empty string")
    actor = record["actor"]
    if not isinstance(actor, dict) or set(actor) != {"person", "role", "unit"}:
        raise Violation("actor must be {person, role, unit}")
    if not all(isinstance(v, str) and v for v in actor.values()):
        raise Violation("actor fields must be non-empty strings")
    if "grading" in record and (not isinstance(record["grading"], dict) or set(record["grading"]) != {"scheme", "value"}):
        raise Violation("grading must be {scheme, value}")
    if "claim" in record and (not isinstance(record["claim"], dict) or set(record["claim"]) != {"type", "unit"}):
        raise Violation("claim must be {type, unit}")
    if kind == "received" and record.get("reference", record["referral"]) != record["referral"]:
        raise Violation("received: reference differs from referral")
    if kind == "assessed" and record["risk_band"] not in _BANDS:
        raise Violation(f"assessed: unknown risk_band {record['risk_band']!r}")
    if kind == "subject_triaged" and record["band"] not in _BANDS:
        raise Violation(f"subject_triaged: unknown band {record['band']!r}")
    if kind == "decision_recorded":
        outcome = record["outcome"]
        if outcome not in _OUTCOMES:
            raise Violation(f"decision_recorded: unknown outcome {outcome!r}")
        if (outcome == "DEFER") != ("revisit_by" in record):
            raise Violation("decision_recorded: revisit_by is required with DEFER and only then")


@dataclass
class _Event:
    line: int
    occurred: int
    kind: str
    unit: str
    record: dict[str, Any]


@dataclass
class _Subject:
    stage: str = "extracted"  # extracted, triaged, in_transit, with_force, returned, closed
    force: str = ""


@dataclass
class _ReferralState:
    """The facts a referral's invariants are judged against."""

    received_at: int | None = None
    closed: bool = False
    owner: str | None = None
    custodian: str | None = None
    offer_to: str | None = None
    requests_unanswered: int = 0
    subjects: dict[str, _Subject] = field(default_factory=dict)

    def apply(self, event: _Event) -> None:
        """Judge ``event`` against this state, then apply it; raise Violation if refused."""
        kind, record, unit = event.kind, event.record, event.unit
        if self.received_at is None:
            if kind != "received":
                raise Violation(f"{kind} before received")
            self.received_at = event.occurred
            self.custodian = record["custodian_unit"]
            return
        if kind == "received":
            raise Violation("received twice")
        if event.occurred < self.received_at:
            raise Violation(f"{kind} occurred before receipt")
        if self.closed and kind not in _AFTER_CLOSE:
            raise Violation(f"{kind} on a closed referral")
        if kind.startswith(("subject_", "force_")):
            self._apply_subject(kind, record, unit)
            return
        if kind == "ownership_offered":
            if self.offer_to is not None:
                raise Violation("second offer while one is open")
            self.offer_to = record["to_unit"]
        elif kind in ("ownership_accepted", "ownership_declined"):
            if self.offer_to is None:
                raise Violation(f"{kind} without an open offer")
            if unit != self.offer_to:
                raise Violation(f"{kind} by {unit}, offer was to {self.offer_to}")
            if kind == "ownership_accepted":
                self.owner = unit
            self.offer_to = None
        elif kind == "offer_withdrawn":
            if self.offer_to is None:
                raise Violation("offer_withdrawn without an open offer")
            self.offer_to = None
        elif kind == "ownership_released":
            if self.owner is None:
                raise Violation("ownership_released while unowned")
            if unit != self.owner:
                raise Violation(f"ownership_released by {unit}, owner is {self.owner}")
            self.owner = None
        elif kind == "custody_transferred":
            if unit != self.custodian:
                raise Violation(f"custody_transferred by {unit}, custodian is {self.custodian}")
            if record["to_unit"] == self.custodian:
                raise Violation("policy: custody_transferred to the current custodian")
            self.custodian = record["to_unit"]
        elif kind == "review_recorded":
            expected = self.owner or "unowned"
            if record["owner_confirmed"] != expected:
                raise Violation(f"policy: review confirms {record['owner_confirmed']}, owner is {expected}")
        elif kind == "external_request_received":
            self.requests_unanswered += 1
        elif kind == "external_reply_sent":
            if self.requests_unanswered == 0:
                raise Violation("policy: external_reply_sent without an unanswered request")
            self.requests_unanswered -= 1
        elif kind == "closed":
            if self.offer_to is not None:
                raise Violation("policy: closed with an offer still open")
            self.closed = True
            self.owner = None
        elif kind == "reopened":
            if not self.closed:
                raise Violation("reopened while open")
            self.closed = False

    def _apply_subject(self, kind: str, record: dict[str, Any], unit: str) -> None:
        ref = record["subject"]
        subject = self.subjects.get(ref)
        if kind == "subject_extracted":
            if subject is not None:
                raise Violation(f"{ref} extracted twice")
            self.subjects[ref] = _Subject()
            return
        if subject is None:
            raise Violation(f"{kind} for {ref} before subject_extracted")
        if subject.stage == "closed":
            raise Violation(f"{kind} for {ref} after subject_closed")
        if kind == "subject_triaged":
            if subject.stage not in ("extracted", "triaged", "returned"):
                raise Violation(f"policy: {ref} triaged while {subject.stage}")
            subject.stage = "triaged" if subject.stage == "extracted" else subject.stage
        elif kind == "subject_disseminated":
            if subject.stage not in ("triaged", "returned"):
                raise Violation(f"policy: {ref} disseminated while {subject.stage}")
            subject.stage, subject.force = "in_transit", record["to_force"]
        elif kind in ("force_acknowledged", "force_rejected", "force_action_recorded"):
            if not subject.force:
                raise Violation(f"{kind} for {ref} before any dissemination")
            if unit != subject.force:
                raise Violation(f"policy: {kind} for {ref} by {unit}, sent to {subject.force}")
            if kind == "force_action_recorded":
                if subject.stage != "with_force":
                    raise Violation(f"policy: force action on {ref} while {subject.stage}")
            elif subject.stage != "in_transit":
                raise Violation(f"{kind} for {ref} while {subject.stage}")
            else:
                subject.stage = "with_force" if kind == "force_acknowledged" else "returned"
        elif kind == "subject_closed":
            if subject.stage == "in_transit":
                raise Violation(f"policy: {ref} closed while in transit")
            subject.stage = "closed"


def _replay(events: list[_Event]) -> _ReferralState:
    state = _ReferralState()
    for event in sorted(events, key=lambda e: (e.occurred, e.line)):
        try:
            state.apply(event)
        except Violation as error:
            raise Violation(f"in occurred order, line {event.line} is refused: {error}") from None
    return state


@dataclass
class _Referral:
    events: list[_Event] = field(default_factory=list)
    in_recording_order: _ReferralState = field(default_factory=_ReferralState)
    in_occurred_order: _ReferralState = field(default_factory=_ReferralState)
    latest_occurred: int = 0


@dataclass
class Report:
    lines: int = 0
    historical: bool | None = None
    counts: Counter[str] = field(default_factory=Counter)
    late: int = 0
    referrals: int = 0
    violation: str | None = None

    def summary(self) -> str:
        mode = "historical" if self.historical else "normal"
        head = f"checked {self.lines} lines ({mode}), {self.referrals} referrals, {self.late} late (>24 h) entries: "
        return head + (f"FIRST VIOLATION {self.violation}" if self.violation else "no violations")


def check_lines(lines: Any, now: datetime | None = None) -> Report:
    """Check an iterable of JSON lines (bytes or str); stop at the first violation."""
    now_ts = int((now or datetime.now(UTC)).timestamp())
    report = Report()
    referrals: dict[str, _Referral] = {}
    last_recorded = 0
    number = 0
    for number, raw in enumerate(lines, start=1):
        try:
            record = orjson.loads(raw)
            _check_shape(record)
            occurred = _epoch(record["occurred_at"], "occurred_at")
            for name in _TIME_FIELDS:
                if name in record and _epoch(record[name], name) < occurred:
                    raise Violation(f"{name} before occurred_at")
            historical = "recorded_at" in record
            if report.historical is None:
                report.historical = historical
            elif report.historical != historical:
                raise Violation("recorded_at on some lines but not others")
            if historical:
                recorded = _epoch(record["recorded_at"], "recorded_at")
                if recorded < last_recorded:
                    raise Violation("recorded_at goes backwards (lines must be in recording order)")
                last_recorded = recorded
                if recorded > now_ts + _FUTURE_SKEW:
                    raise Violation("recorded_at in the future")
            else:
                recorded = now_ts  # the ledger records the line when it imports it
            if occurred > recorded + _FUTURE_SKEW:
                raise Violation("occurred_at after its recording (in the future)")
            if recorded - occurred > _LATE_AFTER:
                report.late += 1
                if not record.get("late_reason"):
                    raise Violation("late entry (>24 h) without late_reason")
            kind = record["type"]
            report.counts[kind] += 1
            referral = referrals.get(record["referral"])
            if referral is None:
                referral = referrals[record["referral"]] = _Referral()
            event = _Event(number, occurred, kind, record["actor"]["unit"], record)
            _judge(referral, event)
        except Violation as error:
            report.violation = f"line {number}: {error}"
            break
        except orjson.JSONDecodeError as error:
            report.violation = f"line {number}: not JSON ({error})"
            break
    report.lines = number
    report.referrals = len(referrals)
    return report


def _judge(referral: _Referral, event: _Event) -> None:
    try:
        referral.in_recording_order.apply(event)
    except Violation as error:
        raise Violation(f"in recording order: {error}") from None
    if event.occurred >= referral.latest_occurred:
        # Everything recorded so far occurred at or before it: views 2 and 3 coincide.
        try:
            referral.in_occurred_order.apply(event)
        except Violation as error:
            raise Violation(f"at its occurred_at: {error}") from None
        referral.latest_occurred = event.occurred
        referral.events.append(event)
        return
    # A late line: judge it against what occurred before it, then replay everything.
    before = [e for e in referral.events if e.occurred <= event.occurred]
    state = _replay(before)
    try:
        state.apply(event)
    except Violation as error:
        raise Violation(f"at its occurred_at: {error}") from None
    referral.events.append(event)
    referral.in_occurred_order = _replay(referral.events)


def check_file(path: str) -> Report:
    with open(path, "rb") as lines:
        return check_lines(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/_checker.py FILE.jsonl")
    result = check_file(sys.argv[1])
    print(result.summary())
    for kind, count in sorted(result.counts.items()):
        print(f"  {kind:28} {count}")
    sys.exit(3 if result.violation else 0)
