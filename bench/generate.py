"""Synthetic referral ledgers in the import format of docs/DOMAIN.md §8 section 9 (JSON Lines).

Every benchmark (ingest, owner query, audit catch-up, verify, bulk) reads files made here, and
the importer refuses invalid lines, so every line is valid under docs/DOMAIN.md §4–6 and §8.

How validity is kept:
- Each referral is simulated on its own, one event at a time, from a state (owner, custodian,
  open offer, escalation, subjects, closed); only actions the state allows are chosen. A
  referral gets an event budget and emits exactly that many events, so the file has exactly
  ``--events`` lines. Business times (occurred_at) rise strictly within a referral.
- Recording order: each event is recorded a few minutes (rarely up to 20 h) after it occurred.
  About 1-2 % of events are recorded late (1.5 to 12 days). Only event types whose validity
  cannot change with the delay are made late (notes, reviews, external replies, force actions,
  and acceptances while nothing touching the offer happens in between), and only when every
  event of the referral recorded in the meantime commutes with it. So each line is valid both
  when judged at its occurred_at against the lines before it (docs/DOMAIN.md §6) and against the plain
  state after the lines before it, and the whole history is valid in occurred order.
- Lines are written in recording order: referrals are generated in order of receipt and their
  events merged through a heap keyed by recorded time, so memory holds only the referrals in
  flight, not the whole ledger.
- ``--historical`` lines carry ``recorded_at`` and only late lines carry ``late_reason``.
  Normal lines carry no ``recorded_at`` (the ledger stamps the import time), so every line
  occurred more than 24 h before its recording and carries a ``late_reason``. The events and
  their order are the same in both modes.

Usage:
    python bench/generate.py --events 1000000 --out /tmp/ledger.jsonl
    python bench/generate.py --events 1000000 --big-referral-events 500 --out big.jsonl
    python bench/generate.py --events 200000 --historical --out hist.jsonl --check

From a benchmark script (bench/ on sys.path)::

    from generate import generate, write_jsonl
    write_jsonl("ledger.jsonl", generate(100_000, seed=7, historical=True))
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

BIG_REFERENCE = "R-BIG-0001"
"""Reference of the one large referral made by ``big_referral_events``."""

MIGRATION_REASON = "Migrated from the legacy register"
"""late_reason carried by every line in normal (non-historical) mode."""

DAY = 86_400
HOUR = 3_600
MINUTE = 60

OPS_UNITS = ("U-OPS1", "U-OPS2", "U-OPS3", "U-OPS4", "U-OPS5", "U-OPS6")
OWNER_UNITS = (*OPS_UNITS, "U-LIAISON")
FORCES = ("F-NORTH", "F-EAST", "F-WEST", "F-SOUTH")

# Staff per unit and role; person ids are handed out in this order, so they never depend on
# the seed and the same person always belongs to the same unit.
_STAFF: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("U-INTAKE", (("registry-officer", 4), ("head-of-tasking", 2))),
    ("U-TRIAGE", (("analyst", 6), ("team-manager", 3), ("detective-inspector", 1))),
    *(
        (
            unit,
            (
                ("team-manager", 2),
                ("detective-inspector", 1),
                ("analyst", 3),
                ("intelligence-officer", 2),
            ),
        )
        for unit in OPS_UNITS
    ),
    (
        "U-LIAISON",
        (
            ("team-manager", 2),
            ("detective-inspector", 1),
            ("liaison-officer", 3),
            ("analyst", 2),
            ("intelligence-officer", 2),
        ),
    ),
    *((force, (("force-referrals-officer", 3),)) for force in FORCES),
)


def _build_roster() -> dict[tuple[str, str], tuple[dict[str, str], ...]]:
    roster: dict[tuple[str, str], tuple[dict[str, str], ...]] = {}
    number = 0
    for unit, roles in _STAFF:
        for role, count in roles:
            people = []
            for _ in range(count):
                number += 1
                people.append({"person": f"P-{number:04d}", "role": role, "unit": unit})
            roster[unit, role] = tuple(people)
    return roster


ROSTER = _build_roster()

# --- Vocabulary for free-text fields: short, plausible, fictional. -------------------------

_PROVIDERS = ("X-ESP-HALCYON", "X-ESP-LANTERN", "X-ESP-MERIDIAN", "X-ESP-QUILL", "X-ESP-TALLOW")
_AGENCIES = tuple(f"X-AGENCY-{n}" for n in range(1, 10))
_BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")
_BAND_WEIGHTS = (0.34, 0.42, 0.17, 0.07)
_CADENCE_DAYS = {"LOW": 28, "MEDIUM": 28, "HIGH": 14, "VERY_HIGH": 7}
_RATIONALES = (
    "Chat logs suggest ongoing contact between an adult account and a child; location resolves to one force area.",
    "Uploads of indecent images from a single account; no sign of current contact offending.",
    "Payments to an overseas livestream facilitator; small, old amounts and no known access to children.",
    "Account shared known material in a closed group; identity resolution needed before allocation.",
    "Report names a school employee; safeguarding checks with the local authority required.",
)
_DECLINE_REASONS = (
    "No capacity: two live operations this fortnight.",
    "Outside this unit's remit; international enquiries sit better with U-LIAISON.",
    "Subject already under investigation by another team; offer to them.",
    "Insufficient detail to act; needs further research before allocation.",
)
_RELEASE_REASONS = (
    "Remaining work is international enquiries, outside this unit's remit. Returned for reallocation.",
    "Team redeployed to a priority operation; returned for reallocation.",
    "Identity resolution complete; hand-off to another unit required.",
)
_CLOSE_REASONS = (
    "All subjects disseminated and actioned by forces; nothing left to do here.",
    "Suspect arrested and charged; evidence passed to the investigating force.",
    "No offence identified after research; closed with no further action.",
    "Duplicate of an earlier referral; the work continues there.",
)
_REOPEN_REASONS = (
    "Originator supplied further material naming a new account.",
    "Force asked for an update; the closure rationale was incomplete.",
)
_NOTES = (
    "Called the originator to confirm the reporting date.",
    "Research on the account holder continues; open-source checks done.",
    "Discussed at the daily tasking meeting.",
    "Package hash re-verified against the originator's manifest.",
    "Chased the force for an update by e-mail.",
)
_CLAIM_NOTES = (
    "Minutes of the tasking meeting: {unit} said it would pick the package up.",
    "Per phone call, {unit} has agreed to take this on.",
)
_ESCALATION_ISSUES = (
    "Recommended lead unit reports no capacity; a lead unit must be decided.",
    "Two units have declined; allocation needs a tasking decision.",
    "Conflicting force areas for the subjects; decide who leads.",
)
_DECISION_RATIONALES = {
    "ASSIGN_OWNER": "Capacity confirmed at the tasking meeting; offer to the chosen unit.",
    "DEFER": "Capacity review is next week and no child is at current risk. Revisit then.",
    "REJECT": "The proposed reallocation is refused; the current arrangement stands.",
    "NO_FURTHER_ACTION": "Research shows no offence; no further action.",
    "CLOSE": "Work complete; close the referral.",
}
_PROGRESS = (
    "Enquiries progressing; next steps agreed with the team manager.",
    "Identity of the account holder confirmed; force to be informed.",
    "No progress since last review: capacity pressures. Chase next week.",
    "Awaiting the originator's reply to our request for further data.",
)
_EXTERNAL_SUMMARIES = (
    "The originator asks for an update on the referral.",
    "The provider asks whether it must keep preserving the reported account.",
    "A force asks whether a subject in its area is part of this package.",
)
_CATEGORIES = ("payer", "uploader", "sharer", "account-holder", "contact")
_DRIVERS = (
    "lives with children under 12",
    "repeat payments over 14 months",
    "single payment in 2022",
    "no known access to children",
    "works with children",
    "previous conviction",
)
_REJECT_REASONS = (
    "Address checks show the subject moved out of this force area.",
    "Subject not known at the stated address; return for research.",
)
_ACTIONS = (
    "Search warrant executed; devices seized; subject arrested and bailed.",
    "Subject interviewed under caution; phone seized for examination.",
    "Safeguarding visit completed; no children at the address.",
    "Intelligence logged; subject flagged for local management.",
)
_SUBJECT_CLOSE = {
    "NFA": "Research shows no offence by this subject; no further action.",
    "RETURNED_TO_ORIGINATOR": "Subject lives outside the UK; returned to the originator.",
}
_GRADINGS = ("1-A-A", "2-B-C", "2-B-A", "3-C-C")
_LATE_REASONS = {
    "note_added": "Meeting minutes typed up after the meeting.",
    "review_recorded": "Review held on paper; entered when the inspector returned from leave.",
    "external_reply_sent": "Reply sent by e-mail; not entered until the weekly reconciliation.",
    "force_action_recorded": "Force reported the action late through its liaison officer.",
    "ownership_accepted": "Accepted by e-mail to the tasking desk; not entered until the weekly reconciliation.",
}

# Which events may be recorded late, and which events may be recorded while one is pending
# (between its occurred_at and its late recorded_at). A pending late event must not change the
# validity of those events, nor they its validity.
_LATE_TYPES = frozenset(_LATE_REASONS)
_LATE_BLOCKERS: dict[str, frozenset[str]] = {
    "note_added": frozenset(),
    # Replies are matched to requests first in, first out: keep their recording order.
    "external_reply_sent": frozenset({"closed", "reopened", "external_reply_sent"}),
    "review_recorded": frozenset({"closed", "reopened", "ownership_accepted", "ownership_released"}),
    "force_action_recorded": frozenset({"closed", "reopened"}),
}
_LATE_ACCEPT_COMPANIONS = frozenset({"note_added", "custody_transferred", "external_request_received", "external_reply_sent"})
_LATE_PROBABILITY = 0.06  # per eligible event; about 1.5 % of all events end up late

# --- Time helpers. ---------------------------------------------------------------------------

_EPOCH = date(1970, 1, 1)
_DAY_TEXT: dict[int, str] = {}


def iso(ts: int) -> str:
    """Format epoch seconds as ISO 8601 UTC with a Z (fast: one cached date per day)."""
    day, rest = divmod(ts, DAY)
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = (_EPOCH + timedelta(days=day)).isoformat()
    hours, rest = divmod(rest, HOUR)
    minutes, seconds = divmod(rest, MINUTE)
    return f"{text}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def _epoch(day: date) -> int:
    return (day - _EPOCH).days * DAY


def _parse_day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# --- One referral's story. -------------------------------------------------------------------


class _ReferralStory:
    """Simulates one referral: emits exactly ``budget`` events, each allowed by the state.

    Events are [occurred, type, actor, fields, subject]; times are epoch seconds.
    """

    def __init__(
        self,
        rng: random.Random,
        reference: str,
        received_at: int,
        budget: int,
        *,
        bulk: bool,
        end: int,
        pace: float = 1.0,
        may_close: bool = True,
    ) -> None:
        self.rng = rng
        self.reference = reference
        self.t = received_at
        self.budget = budget
        self.bulk = bulk
        self.end = end
        self.pace = pace
        self.plan_close = may_close and rng.random() < 0.72
        # A few referrals are closed part-way and reopened later.
        self.reopen_at = rng.randrange(budget // 3, budget // 2) if may_close and budget >= 12 and rng.random() < 0.05 else -1
        self.events: list[list[Any]] = []
        self.owner: str | None = None
        self.custodian = ""
        self.offer: tuple[str, dict[str, str]] | None = None  # (to_unit, offering actor)
        self.declined: set[str] = set()
        self.assign_to: str | None = None
        self.lead_unit: str | None = None
        self.escalation: str | None = None  # None, "open" or "deferred"
        self.defers = 0
        self.external_pending = 0
        self.closed = False
        self.band = "MEDIUM"
        self.immediate_risk = False
        self.originator = ""
        # Subjects: stage per subject and lists of subjects waiting at each stage.
        self.subjects_planned = 0
        self.subjects_made = 0
        self.subject_force: dict[str, str] = {}
        self.extracted: list[str] = []  # awaiting triage
        self.triaged: list[str] = []  # awaiting dissemination (incl. returned by a force)
        self.in_transit: list[str] = []
        self.with_force: list[str] = []
        self.actioned: list[str] = []

    # -- plumbing --

    def _person(self, unit: str, role: str) -> dict[str, str]:
        return dict(self.rng.choice(ROSTER[unit, role]))  # a copy: callers may edit records

    def _emit(
        self,
        kind: str,
        actor: dict[str, str],
        fields: dict[str, Any],
        delay: float,
        subject: str | None = None,
    ) -> int:
        # Leave room for the rest of the budget before the end of the time window.
        remaining = self.budget - len(self.events)
        room = (self.end - self.t) // (remaining + 1)
        step = min(int(delay * self.pace), room) // MINUTE * MINUTE
        self.t += max(step, MINUTE)
        self.events.append([self.t, kind, actor, fields, subject])
        return self.t

    def _hours(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * HOUR

    def _days(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * DAY

    # -- the story --

    def run(self) -> list[list[Any]]:
        self._received()
        while len(self.events) < self.budget:
            self._step(self.budget - len(self.events))
        return self.events

    def _received(self) -> None:
        rng = self.rng
        if self.bulk:
            self.originator = rng.choice(_AGENCIES)
            channel = "international liaison channel"
            grading = {"scheme": "admiralty", "value": rng.choice(("A1", "B2", "B3", "C3"))}
            self.subjects_planned = max(1, min(40, (self.budget - 8) // 8))
            claimed = self.subjects_planned + rng.choice((0, 0, 0, 1, 2, 5))
        else:
            self.originator = rng.choice(_PROVIDERS)
            channel = "industry reporting portal"
            grading = {"scheme": "provider-priority", "value": rng.choice(("P1", "P2", "P3"))}
            claimed = 1
        self.immediate_risk = rng.random() < 0.05
        actor = self._person("U-INTAKE", "registry-officer")
        self.custodian = "U-INTAKE"
        fields: dict[str, Any] = {
            "reference": self.reference,
            "originator": self.originator,
            "channel": channel,
            "originator_reference": f"{self.originator[2:5]}-{rng.randrange(10**6):06d}",
            "claimed_subject_count": claimed,
            "grading": grading,
            "handling_conditions": ["law-enforcement use only"],
            "package_hash": f"sha256:{rng.getrandbits(256):064x}",
            "custodian_unit": self.custodian,
        }
        if self.immediate_risk:
            fields["immediate_risk"] = True
        self.events.append([self.t, "received", actor, fields, None])

    def _step(self, remaining: int) -> None:
        rng = self.rng
        if self.closed:
            if remaining >= 2 and rng.random() < 0.5:
                self._reopened()
            else:
                self._note()
            return
        if len(self.events) == 1 and rng.random() < 0.97:
            self._assessed()
            return
        if self.offer is not None:
            self._answer_offer()
            return
        if len(self.events) >= self.reopen_at > 0 and remaining >= 3:
            self.reopen_at = -1
            self._closed()
            return
        if remaining == 1 and self.plan_close:
            self._closed()
            return
        self._choose_action()

    def _choose_action(self) -> None:
        actions: list[tuple[float, Any]] = []
        add = actions.append
        if self.owner is not None:
            if self.custodian != self.owner:
                add((8.0, self._custody_to_owner))
            add((3.0, self._review))
            add((0.35, self._released))
            add((0.25, self._offered))
            if self.escalation is None:
                add((0.3, self._escalation))
            if self.bulk:
                # Progress the subjects already extracted before extracting more.
                if self.subjects_made < self.subjects_planned:
                    add((2.0, self._extract))
                if self.extracted:
                    add((4.0, self._triage))
                if self.triaged:
                    add((4.0, self._disseminate))
                if self.actioned:
                    add((3.0, self._close_subject))
        else:
            add((6.0 if self.escalation is None else 2.0, self._offered))
            add((0.5, self._review))
            if self.escalation is None:
                add((0.8, self._escalation))
        if self.bulk:
            if self.in_transit:
                add((5.0, self._force_reply))
            if self.with_force:
                add((4.0, self._force_action))
        if self.escalation is not None:
            add((10.0, self._decision))
        if self.external_pending:
            add((3.0, self._external_reply))
        add((0.6, self._external_request))
        add((1.2, self._note))
        total = 0.0
        for weight, _ in actions:
            total += weight
        pick = self.rng.random() * total
        for weight, action in actions:
            pick -= weight
            if pick < 0:
                action()
                return
        actions[-1][1]()

    # -- referral actions --

    def _assessed(self) -> None:
        rng = self.rng
        self.band = rng.choices(_BANDS, _BAND_WEIGHTS)[0]
        immediate = self.immediate_risk or (self.band == "VERY_HIGH" and rng.random() < 0.4)
        self.lead_unit = "U-LIAISON" if self.bulk and rng.random() < 0.3 else rng.choice(OPS_UNITS)
        delay = self._hours(1, 20) if self.immediate_risk else self._days(0.2, 8)
        self._emit(
            "assessed",
            self._person("U-TRIAGE", "analyst"),
            {
                "risk_band": self.band,
                "immediate_risk": immediate,
                "grading": {"scheme": "3x5x2", "value": rng.choice(_GRADINGS)},
                "recommended_lead_unit": self.lead_unit,
                "rationale": rng.choice(_RATIONALES),
            },
            delay,
        )

    def _offered(self) -> None:
        rng = self.rng
        if self.owner is not None:
            offerer = self._person(self.owner, "team-manager")
        elif rng.random() < 0.6:
            offerer = self._person("U-TRIAGE", "team-manager")
        else:
            offerer = self._person("U-INTAKE", "head-of-tasking")
        if self.assign_to is not None and self.assign_to != self.owner:
            to_unit = self.assign_to
        elif self.lead_unit is not None and self.lead_unit not in self.declined and (self.owner is None and rng.random() < 0.7):
            to_unit = self.lead_unit
        else:
            choices = [u for u in OWNER_UNITS if u != self.owner and u not in self.declined]
            if not choices:
                self.declined.clear()
                choices = [u for u in OWNER_UNITS if u != self.owner]
            to_unit = rng.choice(choices)
        self.assign_to = None
        t = self._emit("ownership_offered", offerer, {"to_unit": to_unit}, self._days(0.1, 3))
        if rng.random() < 0.8:
            reply_days = rng.uniform(0.2, 1) if self.band == "VERY_HIGH" else rng.uniform(1, 5)
            self.events[-1][3]["reply_due"] = iso(t + int(reply_days * DAY) // MINUTE * MINUTE)
        self.offer = (to_unit, offerer)

    def _answer_offer(self) -> None:
        assert self.offer is not None  # only called with an open offer
        rng = self.rng
        to_unit, offerer = self.offer
        pick = rng.random()
        if pick < 0.60:
            self._emit(
                "ownership_accepted",
                self._person(to_unit, "team-manager"),
                {"reason": "Accepted at the tasking meeting."} if rng.random() < 0.3 else {},
                self._hours(0.5, 80),
            )
            self.owner = to_unit
            self.declined.clear()
        elif pick < 0.83:
            self._emit(
                "ownership_declined",
                self._person(to_unit, "team-manager"),
                {"reason": rng.choice(_DECLINE_REASONS)},
                self._days(0.3, 5),
            )
            self.declined.add(to_unit)
        elif pick < 0.93:
            self._emit(
                "offer_withdrawn",
                offerer,
                {"reason": "Offered to the wrong unit; reallocating."},
                self._days(0.5, 6),
            )
        else:
            # Life goes on while the offer waits.
            self._note()
            return
        self.offer = None

    def _released(self) -> None:
        assert self.owner is not None
        self._emit(
            "ownership_released",
            self._person(self.owner, "team-manager"),
            {"reason": self.rng.choice(_RELEASE_REASONS)},
            self._days(5, 60),
        )
        self.owner = None

    def _custody_to_owner(self) -> None:
        assert self.owner is not None
        role = "registry-officer" if self.custodian == "U-INTAKE" else "team-manager"
        self._emit(
            "custody_transferred",
            self._person(self.custodian, role),
            {"to_unit": self.owner},
            self._hours(0.3, 60),
        )
        self.custodian = self.owner

    def _review(self) -> None:
        rng = self.rng
        cadence = _CADENCE_DAYS[self.band]
        unit = self.owner or "U-TRIAGE"
        t = self._emit(
            "review_recorded",
            self._person(unit, "detective-inspector"),
            {"progress": rng.choice(_PROGRESS), "owner_confirmed": self.owner or "unowned"},
            self._days(cadence * 0.5, cadence * 1.3),
        )
        if rng.random() < 0.7:
            due = t + int(cadence * rng.choice((1.0, 1.0, 0.5)) * DAY)
            self.events[-1][3]["next_review_by"] = iso(due)

    def _escalation(self) -> None:
        rng = self.rng
        unit = self.owner or "U-TRIAGE"
        t = self._emit(
            "escalation_raised",
            self._person(unit, "team-manager"),
            {"to_role": "head-of-tasking", "issue": rng.choice(_ESCALATION_ISSUES)},
            self._days(0.5, 5),
        )
        if rng.random() < 0.6:
            self.events[-1][3]["decision_due"] = iso(t + rng.randint(2, 10) * DAY)
        self.escalation = "open"

    def _decision(self) -> None:
        rng = self.rng
        remaining = self.budget - len(self.events)
        if self.defers < 2 and rng.random() < 0.35:
            outcome = "DEFER"
        elif remaining <= 3 and self.plan_close and rng.random() < 0.5:
            outcome = rng.choice(("NO_FURTHER_ACTION", "CLOSE"))
        elif self.owner is None:
            outcome = "ASSIGN_OWNER" if rng.random() < 0.85 else "REJECT"
        else:
            outcome = rng.choice(("ASSIGN_OWNER", "REJECT", "REJECT"))
        fields: dict[str, Any] = {"outcome": outcome, "rationale": _DECISION_RATIONALES[outcome]}
        if rng.random() < 0.7:
            fields["options_considered"] = ["assign now", "assign to another unit", "defer"]
        t = self._emit(
            "decision_recorded",
            self._person("U-INTAKE", "head-of-tasking"),
            fields,
            self._days(1, 9),
        )
        if outcome == "DEFER":
            fields["revisit_by"] = iso(t + rng.randint(3, 14) * DAY)
            self.defers += 1
            self.escalation = "deferred"
            return
        self.escalation = None
        self.defers = 0
        if outcome == "ASSIGN_OWNER":
            self.assign_to = rng.choice([u for u in OWNER_UNITS if u != self.owner])

    def _external_request(self) -> None:
        self._emit(
            "external_request_received",
            self._person("U-LIAISON", "liaison-officer"),
            {"from": self.originator, "summary": self.rng.choice(_EXTERNAL_SUMMARIES)},
            self.rng.expovariate(1 / (8 * DAY)),
        )
        self.external_pending += 1

    def _external_reply(self) -> None:
        self._emit(
            "external_reply_sent",
            self._person("U-LIAISON", "liaison-officer"),
            {"reply_to": self.originator},
            self._days(0.5, 8),
        )
        self.external_pending -= 1

    def _note(self) -> None:
        rng = self.rng
        unit = self.owner or self.custodian
        role = "registry-officer" if unit == "U-INTAKE" else "team-manager"
        if rng.random() < 0.04:
            claimed = rng.choice(OWNER_UNITS)
            fields: dict[str, Any] = {
                "text": rng.choice(_CLAIM_NOTES).format(unit=claimed),
                "claim": {"type": "ownership_accepted", "unit": claimed},
            }
        else:
            fields = {"text": rng.choice(_NOTES)}
        self._emit("note_added", self._person(unit, role), fields, rng.expovariate(1 / (3 * DAY)))

    def _closed(self) -> None:
        actor = self._person(self.owner, "team-manager") if self.owner is not None else self._person("U-INTAKE", "head-of-tasking")
        self._emit("closed", actor, {"reason": self.rng.choice(_CLOSE_REASONS)}, self._days(1, 25))
        self.closed = True
        self.owner = None
        self.escalation = None
        self.defers = 0

    def _reopened(self) -> None:
        self._emit(
            "reopened",
            self._person("U-INTAKE", "head-of-tasking"),
            {"reason": self.rng.choice(_REOPEN_REASONS)},
            self._days(5, 60),
        )
        self.closed = False

    # -- subject actions (bulk packages) --

    def _take(self, waiting: list[str]) -> str:
        index = self.rng.randrange(len(waiting))
        waiting[index], waiting[-1] = waiting[-1], waiting[index]
        return waiting.pop()

    def _extract(self) -> None:
        assert self.owner is not None
        self.subjects_made += 1
        subject = f"SUBJ-{self.subjects_made:04d}"
        self._emit(
            "subject_extracted",
            self._person(self.owner, "analyst"),
            {"subject": subject, "category": self.rng.choice(_CATEGORIES)},
            self._hours(0.1, 20),
            subject,
        )
        self.extracted.append(subject)

    def _triage(self) -> None:
        assert self.owner is not None
        rng = self.rng
        subject = self._take(self.extracted)
        band = rng.choices(_BANDS, _BAND_WEIGHTS)[0]
        force = rng.choice(FORCES)
        self._emit(
            "subject_triaged",
            self._person(self.owner, "analyst"),
            {
                "subject": subject,
                "risk_tool": "RPT",
                "risk_tool_version": rng.choice(("3.1", "3.2")),
                "band": band,
                "drivers": rng.sample(_DRIVERS, 2),
                "target_force": force,
            },
            self._days(0.2, 4),
            subject,
        )
        self.subject_force[subject] = force
        # A few subjects are closed straight after triage (e.g. found to be victims).
        if rng.random() < 0.08:
            self.actioned.append(subject)
        else:
            self.triaged.append(subject)

    def _disseminate(self) -> None:
        assert self.owner is not None
        rng = self.rng
        subject = self._take(self.triaged)
        fields: dict[str, Any] = {
            "subject": subject,
            "to_force": self.subject_force[subject],
            "authorised_by": self._person(self.owner, "team-manager")["person"],
            "grading": {"scheme": "3x5x2", "value": rng.choice(_GRADINGS)},
        }
        if rng.random() < 0.3:
            fields["consent_reference"] = f"CONSENT-{rng.randrange(10**5):05d}"
        self._emit(
            "subject_disseminated",
            self._person(self.owner, "intelligence-officer"),
            fields,
            self._days(0.1, 6),
            subject,
        )
        self.in_transit.append(subject)

    def _force_reply(self) -> None:
        rng = self.rng
        subject = self._take(self.in_transit)
        force = self.subject_force[subject]
        actor = self._person(force, "force-referrals-officer")
        if rng.random() < 0.85:
            self._emit("force_acknowledged", actor, {"subject": subject}, self._hours(1, 70), subject)
            self.with_force.append(subject)
        else:
            self._emit(
                "force_rejected",
                actor,
                {"subject": subject, "reason": rng.choice(_REJECT_REASONS)},
                self._days(0.3, 3),
                subject,
            )
            # Back with the owner; the next dissemination goes to another force.
            self.subject_force[subject] = rng.choice([f for f in FORCES if f != force])
            self.triaged.append(subject)

    def _force_action(self) -> None:
        subject = self._take(self.with_force)
        self._emit(
            "force_action_recorded",
            self._person(self.subject_force[subject], "force-referrals-officer"),
            {"subject": subject, "action": self.rng.choice(_ACTIONS)},
            self._days(1, 25),
            subject,
        )
        self.actioned.append(subject)

    def _close_subject(self) -> None:
        assert self.owner is not None
        rng = self.rng
        subject = self._take(self.actioned)
        outcome = "NFA" if rng.random() < 0.75 else "RETURNED_TO_ORIGINATOR"
        self._emit(
            "subject_closed",
            self._person(self.owner, "analyst"),
            {"subject": subject, "outcome": outcome, "rationale": _SUBJECT_CLOSE[outcome]},
            self._days(1, 20),
            subject,
        )


# --- Recording times and late entries. -------------------------------------------------------


def _late_conflict(late: list[Any], other: list[Any]) -> bool:
    """Whether ``other`` may not be recorded while ``late`` waits to be recorded."""
    kind = late[1]
    if kind == "ownership_accepted":
        return other[1] not in _LATE_ACCEPT_COMPANIONS
    if other[1] in _LATE_BLOCKERS[kind]:
        return True
    return kind == "force_action_recorded" and other[4] is not None and other[4] == late[4]


def _recording_times(rng: random.Random, events: list[list[Any]], end: int) -> tuple[list[int], dict[int, str]]:
    """Recorded time per event and the late_reason of the few recorded late (by index)."""
    recorded: list[int] = []
    previous = 0
    for event in events:
        pick = rng.random()
        if pick < 0.85:
            lag = rng.randint(1, 30) * MINUTE
        elif pick < 0.97:
            lag = rng.randint(30, 240) * MINUTE
        else:
            lag = rng.randint(240, 1200) * MINUTE  # next morning, still under 24 h
        previous = max(event[0] + lag, previous)
        recorded.append(previous)
    late: dict[int, str] = {}
    blocked_until = 0
    count = len(events)
    for index in range(1, count):
        event = events[index]
        if event[1] not in _LATE_TYPES or event[0] < blocked_until:
            continue
        if rng.random() >= _LATE_PROBABILITY:
            continue
        late_at = event[0] + rng.randint(36 * 60, 12 * 24 * 60) * MINUTE
        if late_at > end:
            continue
        later = index + 1
        while later < count and recorded[later] < late_at:
            if _late_conflict(event, events[later]):
                break
            later += 1
        else:
            recorded[index] = late_at
            late[index] = _LATE_REASONS[event[1]]
            blocked_until = late_at
    return recorded, late


# --- The whole ledger. -----------------------------------------------------------------------


def _budgets(rng: random.Random, total: int, count: int) -> tuple[list[int], list[bool]]:
    """Events per referral (summing exactly to ``total``) and which referrals are bulk."""
    bulk = [rng.random() < 0.12 for _ in range(count)]
    weights = [rng.lognormvariate(math.log(22.0), 0.5) if is_bulk else rng.lognormvariate(math.log(7.5), 0.45) for is_bulk in bulk]
    scale = total / sum(weights)
    budgets = [max(1, round(w * scale)) for w in weights]
    # Rounding leaves the sum a little off: spread the difference one event at a time.
    # (count <= total, so while the sum is too big some referral has more than 1 event.)
    difference = total - sum(budgets)
    while difference > 0:
        budgets[rng.randrange(count)] += 1
        difference -= 1
    shrinkable = [index for index, budget in enumerate(budgets) if budget > 1]
    while difference < 0:
        slot = rng.randrange(len(shrinkable))
        index = shrinkable[slot]
        budgets[index] -= 1
        difference += 1
        if budgets[index] == 1:
            shrinkable[slot] = shrinkable[-1]
            shrinkable.pop()
    return budgets, bulk


def _default_end(start: date) -> date:
    latest = datetime.now(UTC).date() - timedelta(days=30)
    return min(start + timedelta(days=3 * 365 + 1), latest)


def generate(
    events: int,
    referrals: int | None = None,
    seed: int = 1,
    start: str | date = "2023-01-01",
    *,
    end: str | date | None = None,
    big_referral_events: int = 0,
    historical: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield ``events`` import records (docs/DOMAIN.md §8) in recording order, deterministic per seed.

    ``referrals`` defaults to about events / 10. Business times lie in [start, end); end
    defaults to three years after start (at most 30 days before today). With
    ``big_referral_events`` M, one more referral, ``BIG_REFERENCE``, gets M events (within the
    total), all on the referral stream (no subjects), received on the first day. In historical
    mode each record carries ``recorded_at``; otherwise each carries ``late_reason``.
    """
    if events < 1:
        raise ValueError("events must be at least 1")
    start_day = _parse_day(start)
    end_day = _parse_day(end) if end is not None else _default_end(start_day)
    start_ts, end_ts = _epoch(start_day), _epoch(end_day)
    if end_ts - start_ts < 60 * DAY:
        raise ValueError("the time window (start to end) must be at least 60 days")
    if end_day > datetime.now(UTC).date() - timedelta(days=2):
        raise ValueError("end must lie in the past: the importer refuses future occurred_at")
    big = min(big_referral_events, events)
    rest = events - big
    count = referrals if referrals is not None else max(1, round(events / 10))
    count = min(count, rest)
    rng = random.Random(seed)
    budgets, bulk = _budgets(rng, rest, count) if count else ([], [])
    tail = min(90 * DAY, (end_ts - start_ts) // 4)
    receipts = sorted(rng.randrange(start_ts, end_ts - tail) // MINUTE * MINUTE for _ in range(count))
    # (received at, reference, budget, bulk, pace, may close); the big referral comes first.
    plan: list[tuple[int, str, int, bool, float, bool]] = []
    if big:
        # Pace its story so that M events (mean gap ~2.5 days) fit in most of the window.
        pace = min(1.0, (end_ts - start_ts) * 0.8 / (big * 2.5 * DAY))
        plan.append((start_ts + DAY + 9 * HOUR, BIG_REFERENCE, big, False, pace, False))
    for index, received_at in enumerate(receipts):
        year = iso(received_at)[:4]
        plan.append((received_at, f"R-{year}-{index + 1:06d}", budgets[index], bulk[index], 1.0, True))
    plan.sort(key=lambda item: item[0])
    return _merge(rng, plan, end_ts, historical)


def _merge(
    rng: random.Random,
    plan: list[tuple[int, str, int, bool, float, bool]],
    end: int,
    historical: bool,
) -> Iterator[dict[str, Any]]:
    pending: list[tuple[int, int, int, dict[str, Any]]] = []
    push, pop = heapq.heappush, heapq.heappop
    for number, (received_at, reference, budget, is_bulk, pace, may_close) in enumerate(plan):
        # Nothing generated later can be recorded before this referral's receipt.
        while pending and (pending[0][0] < received_at or (pending[0][0] == received_at and pending[0][1] < number)):
            yield pop(pending)[3]
        story = _ReferralStory(
            rng,
            reference,
            received_at,
            budget,
            bulk=is_bulk,
            end=end,
            pace=pace,
            may_close=may_close,
        )
        story_events = story.run()
        recorded, late = _recording_times(rng, story_events, end)
        for index, (occurred, kind, actor, fields, _subject) in enumerate(story_events):
            record: dict[str, Any] = {
                "type": kind,
                "referral": reference,
                "occurred_at": iso(occurred),
            }
            if historical:
                record["recorded_at"] = iso(recorded[index])
            record["actor"] = actor
            if index in late:
                record["late_reason"] = late[index]
            elif not historical:
                record["late_reason"] = MIGRATION_REASON
            record.update(fields)
            push(pending, (recorded[index], number, index, record))
    while pending:
        yield pop(pending)[3]


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines (orjson); return the number of lines."""
    dumps = orjson.dumps
    lines = 0
    chunk: list[bytes] = []
    with open(path, "wb") as out:
        for record in records:
            chunk.append(dumps(record))
            lines += 1
            if len(chunk) >= 10_000:
                chunk.append(b"")
                out.write(b"\n".join(chunk))
                chunk = []
        if chunk:
            chunk.append(b"")
            out.write(b"\n".join(chunk))
    return lines


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write a synthetic referral ledger as import JSON Lines (docs/DOMAIN.md §8).",
        epilog="Example: python bench/generate.py --events 1000000 --historical --out /tmp/ledger.jsonl --check",
    )
    parser.add_argument("--events", type=int, required=True, help="number of lines to write")
    parser.add_argument("--referrals", type=int, help="number of referrals (default events/10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2023-01-01", help="first day of business time")
    parser.add_argument("--end", help="day business time stops (default start + 3 years)")
    parser.add_argument(
        "--big-referral-events",
        type=int,
        default=0,
        metavar="M",
        help=f"also make one referral ({BIG_REFERENCE}) with M events, within --events",
    )
    parser.add_argument(
        "--historical",
        action="store_true",
        help="carry recorded_at on every line (for import --historical)",
    )
    parser.add_argument("--out", required=True, help="output .jsonl file")
    parser.add_argument("--check", action="store_true", help="validate the written file with bench/_checker.py")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    began = time.perf_counter()
    try:
        records = generate(
            args.events,
            args.referrals,
            args.seed,
            args.start,
            end=args.end,
            big_referral_events=args.big_referral_events,
            historical=args.historical,
        )
    except ValueError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    lines = write_jsonl(args.out, records)
    elapsed = time.perf_counter() - began
    mode = "historical" if args.historical else "normal"
    print(f"wrote {lines} lines ({mode}) to {args.out} in {elapsed:.1f} s", file=sys.stderr)
    if args.big_referral_events:
        print(f"big referral: {BIG_REFERENCE} ({args.big_referral_events} events)", file=sys.stderr)
    if args.check:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _checker import check_file

        report = check_file(args.out)
        print(report.summary(), file=sys.stderr)
        if report.violation is not None:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
