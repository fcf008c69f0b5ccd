"""Given: a referral's events, built through the Referral aggregate, so the rules allow each one.

``Story`` is the "given" of the ownership and timeline tests. Every step runs the aggregate's
own command, judged at its occurred_at like any recording, and is stamped with a recording
time (default: one minute after it occurred, never before the previous recording). No
database is involved. The tests at the bottom check the builder itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.authority import Judge
from ledger.errors import RuleViolation
from ledger.policy import DEFAULT_POLICY
from ledger.referral import LedgerEvent, Referral
from ledger.subject import Subject
from ledger.values import LATE_AFTER, Actor, Entry, referral_id, subject_id

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
REFERENCE = "R-TEST-0001"


def at(hours: float = 0, days: float = 0, minutes: float = 0) -> datetime:
    """An instant relative to T0 (the receipt in most stories)."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def actor(who: str) -> Actor:
    """``"P-7@U-OPSA"`` or just a unit ``"U-OPSA"`` (person P-U-OPSA), role team-manager."""
    person, _, unit = who.rpartition("@")
    return Actor(person or f"P-{unit}", "team-manager", unit)


class Story:
    """A referral told one recorded event at a time; ``events`` are its events in recording order."""

    def __init__(
        self,
        reference: str = REFERENCE,
        *,
        received: datetime = T0,
        custodian: str = "U-INTAKE",
        recorded: datetime | None = None,
    ) -> None:
        self.reference = reference
        self.events: list[LedgerEvent] = []
        self.subjects: dict[str, Subject] = {}
        self.subject_events: dict[str, list[LedgerEvent]] = {}
        self._last_recorded = recorded or received + timedelta(minutes=1)
        self.referral = Referral.receive(
            self._entry("P-1@U-INTAKE", received, self._last_recorded),
            referral_id(reference),
            reference,
            originator="X-FORCE",
            channel="liaison",
            custodian_unit=custodian,
        )
        self._collect()

    # --- the clock -------------------------------------------------------------------

    def _entry(self, who: str, occurred: datetime, recorded: datetime | None) -> Entry:
        when = max(recorded or occurred + timedelta(minutes=1), self._last_recorded)
        self._last_recorded = when
        late = "entered late" if when - occurred > LATE_AFTER else None
        return Entry(actor(who), occurred, when, late, None, None, Judge(DEFAULT_POLICY.authority_rules(), None))

    def _collect(self) -> None:
        self.events.extend(self.referral.collect_events())

    def _do(self, method: str, who: str, occurred: datetime, recorded: datetime | None, **fields: Any) -> Story:
        getattr(self.referral, method)(self._entry(who, occurred, recorded), **fields)
        self._collect()
        return self

    # --- referral steps ----------------------------------------------------------------

    def offer(
        self, to_unit: str, when: datetime, *, by: str = "U-INTAKE", reply_due: datetime | None = None, recorded: datetime | None = None
    ) -> Story:
        return self._do("offer", by, when, recorded, to_unit=to_unit, reply_due=reply_due)

    def accept(self, by: str, when: datetime, *, recorded: datetime | None = None) -> Story:
        return self._do("accept", by, when, recorded, reason=None)

    def decline(self, by: str, when: datetime, *, recorded: datetime | None = None) -> Story:
        return self._do("decline", by, when, recorded, reason="No capacity")

    def withdraw(self, when: datetime, *, by: str = "U-INTAKE", recorded: datetime | None = None) -> Story:
        return self._do("withdraw_offer", by, when, recorded, reason=None)

    def release(self, by: str, when: datetime, *, recorded: datetime | None = None) -> Story:
        return self._do("release", by, when, recorded, reason="Outside our remit")

    def transfer(self, to_unit: str, when: datetime, *, by: str, recorded: datetime | None = None) -> Story:
        return self._do("transfer_custody", by, when, recorded, to_unit=to_unit)

    def note(
        self, when: datetime, *, claim: dict[str, str] | None = None, by: str = "P-9@U-TRIAGE", recorded: datetime | None = None
    ) -> Story:
        return self._do("add_note", by, when, recorded, text="Minutes of the tasking meeting", claim=claim)

    def assess(self, when: datetime, *, by: str = "U-TRIAGE", recorded: datetime | None = None) -> Story:
        fields = {"risk_band": "HIGH", "immediate_risk": False, "grading": None, "recommended_lead_unit": "U-OPSA", "rationale": "Why"}
        return self._do("assess", by, when, recorded, **fields)

    def close(self, by: str, when: datetime, *, recorded: datetime | None = None) -> Story:
        return self._do("close", by, when, recorded, reason="Done")

    def reopen(self, by: str, when: datetime, *, recorded: datetime | None = None) -> Story:
        return self._do("reopen", by, when, recorded, reason="New material")

    # --- subject steps -----------------------------------------------------------------

    def subject(self, name: str, when: datetime, *, by: str = "U-OPSA", recorded: datetime | None = None) -> Story:
        subject = Subject.extract(self._entry(by, when, recorded), subject_id(self.reference, name), self.reference, name, "payer")
        self.subjects[name] = subject
        self.subject_events[name] = list(subject.collect_events())
        return self

    def on_subject(self, name: str, method: str, who: str, when: datetime, *, recorded: datetime | None = None, **fields: Any) -> Story:
        subject = self.subjects[name]
        getattr(subject, method)(self._entry(who, when, recorded), **fields)
        self.subject_events[name].extend(subject.collect_events())
        return self

    # --- reading -----------------------------------------------------------------------

    def version_of(self, type_: type[LedgerEvent], nth: int = 1) -> int:
        """Stream version of the nth event of a type (recording order)."""
        found = [e.originator_version for e in self.events if type(e) is type_]
        return found[nth - 1]


# --- the builder itself -----------------------------------------------------------------


def test_story_stamps_both_clocks_and_versions() -> None:
    story = Story().offer("U-OPSA", at(hours=1)).accept("P-7@U-OPSA", at(hours=2), recorded=at(days=3))
    received, offered, accepted = story.events
    assert [e.originator_version for e in story.events] == [1, 2, 3]
    assert (received.occurred_at, received.recorded_at) == (T0, T0 + timedelta(minutes=1))
    assert offered.recorded_at == at(hours=1, minutes=1)
    assert (accepted.occurred_at, accepted.recorded_at) == (at(hours=2), at(days=3))
    assert accepted.late_reason == "entered late"
    assert accepted.actor == {"person": "P-7", "role": "team-manager", "unit": "U-OPSA"}


def test_story_refuses_what_the_rules_refuse() -> None:
    story = Story().offer("U-OPSA", at(hours=1))
    with pytest.raises(RuleViolation) as refused:
        story.accept("U-OPSB", at(hours=2))
    assert refused.value.rule == "authority-answer-offer"
