"""Properties of the ownership fold over random valid histories, late entries included.

Histories are told through the Referral aggregate (``Story``): random steps are tried and
the ones the rules refuse are skipped, so every history is one the ledger could hold. The
answers are checked against ``ledger.referral.fold_state``, the aggregate's own "state at an
instant", which knows nothing of intervals.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import RuleViolation
from ledger.knowledge import known as visible
from ledger.referral import OPEN, LedgerEvent, fold_state
from projections.ownership import OwnershipHistory, owner_at, ownership_history
from tests.unit.test_ownership_story import T0, Story

UNITS = ("U-INTAKE", "U-OPSA", "U-OPSB", "U-OPSC")
#: steps, weighted so that ownership often changes hands and closures are rare.
STEPS = (
    ("offer",) * 4
    + ("accept",) * 4
    + ("decline", "withdraw", "release", "release", "transfer", "transfer", "note", "close", "reopen", "assess")
)
#: how long after it occurred a step is recorded: mostly promptly, sometimes days late.
LAGS = (0, 0, 0, 1, 30, 60 * 20, 60 * 30, 60 * 24 * 4)
NOW = T0 + timedelta(days=400)


@st.composite
def histories(draw: st.DrawFn) -> Story:
    story = Story(custodian=draw(st.sampled_from(UNITS)))
    recording = T0 + timedelta(minutes=1)
    for _ in range(draw(st.integers(0, 40))):
        recording += timedelta(minutes=draw(st.sampled_from((0, 1, 45, 60 * 6, 60 * 30))))
        occurred = max(T0, recording - timedelta(minutes=draw(st.sampled_from(LAGS))))
        step = draw(st.sampled_from(STEPS))
        # Mostly the unit the rules want (so steps succeed), sometimes any unit (so they may not).
        state = story.referral.state_at(occurred)
        fitting = {
            "accept": state.open_offer.to_unit if state.open_offer else None,
            "decline": state.open_offer.to_unit if state.open_offer else None,
            "release": state.owner_unit,
            "transfer": state.custodian_unit,
        }.get(step)
        unit = fitting if fitting and draw(st.integers(0, 4)) else draw(st.sampled_from(UNITS))
        other = draw(st.sampled_from(UNITS))
        try:
            _tell(story, step, unit, other, occurred, recording)
        except RuleViolation:
            continue
    return story


def _tell(story: Story, step: str, unit: str, other: str, occurred: datetime, recorded: datetime) -> None:
    if step == "offer":
        story.offer(other, occurred, by=unit, recorded=recorded)
    elif step == "accept":
        story.accept(unit, occurred, recorded=recorded)
    elif step == "decline":
        story.decline(unit, occurred, recorded=recorded)
    elif step == "withdraw":
        story.withdraw(occurred, by=unit, recorded=recorded)
    elif step == "release":
        story.release(unit, occurred, recorded=recorded)
    elif step == "transfer":
        story.transfer(other, occurred, by=unit, recorded=recorded)
    elif step == "note":
        story.note(occurred, claim={"type": "ownership_accepted", "unit": other}, recorded=recorded)
    elif step == "close":
        story.close(unit, occurred, recorded=recorded)
    elif step == "reopen":
        story.reopen(unit, occurred, recorded=recorded)
    else:
        story.assess(occurred, recorded=recorded)


def boundaries(events: list[LedgerEvent]) -> list[datetime]:
    """Every event's occurred_at, the instants just before and between them, and one after."""
    instants = sorted({e.occurred_at for e in events})
    probes = set(instants)
    probes.update(t - timedelta(seconds=1) for t in instants[1:])
    probes.update(a + (b - a) / 2 for a, b in itertools.pairwise(instants))
    probes.add(instants[-1] + timedelta(days=1))
    return sorted(p for p in probes if p >= instants[0])


def open_time_by_reference(events: list[LedgerEvent], now: datetime) -> timedelta:
    """Open time measured from the aggregate's state between consecutive event instants."""
    instants = [*sorted({e.occurred_at for e in events}), now]
    return sum(
        (later - earlier for earlier, later in itertools.pairwise(instants) if fold_state(events, earlier).status == OPEN),
        timedelta(0),
    )


def pieces(history: OwnershipHistory) -> list[tuple[datetime, datetime | None]]:
    spans = [(i.start, i.end) for i in history.ownership] + [(g.start, g.end) for g in history.gaps]
    return sorted(spans, key=lambda span: (span[0], span[1] is None, span[1] or span[0]))


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histories())
def test_ownership_and_gaps_tile_the_open_time_without_overlap(story: Story) -> None:
    events = story.events
    history = ownership_history(events)

    spans = pieces(history)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end is not None and end <= next_start, f"overlap in {spans}"
    for instant in boundaries(events):
        state = fold_state(events, instant)
        owner, gap = history.ownership_at(instant), history.gap_at(instant)
        if state.status == OPEN:
            assert (owner is None) != (gap is None), f"at {instant}: owner {owner}, gap {gap}"
        else:
            assert owner is None and gap is None
    if fold_state(events, history.received_at).status == OPEN:
        assert spans[0][0] == history.received_at


@SETTINGS
@given(histories())
def test_owned_plus_unowned_time_is_the_open_time(story: Story) -> None:
    history = ownership_history(story.events)

    expected = open_time_by_reference(story.events, NOW)
    assert history.owned_time(NOW) + history.unowned_time(NOW) == expected
    assert history.open_time(NOW) == expected


@SETTINGS
@given(histories())
def test_owner_at_agrees_with_the_intervals_and_the_aggregate_at_every_boundary(story: Story) -> None:
    events = story.events
    history = ownership_history(events)

    for instant in boundaries(events):
        answer = owner_at(events, instant)
        state = fold_state(events, instant)
        interval = history.ownership_at(instant)
        gap = history.gap_at(instant)
        assert answer.owner == (None if interval is None else replace(interval, end=None, closed_by=None))
        assert (answer.owner and answer.owner.unit) == state.owner_unit
        assert answer.unowned_since == (None if gap is None else gap.start) == state.unowned_since
        assert answer.custodian.unit == state.custodian_unit == history.custody_at(instant).unit  # type: ignore[union-attr]
        assert answer.status == state.status
        assert answer.open_offer == state.open_offer


@SETTINGS
@given(histories())
def test_custody_tiles_from_receipt_on(story: Story) -> None:
    custody = ownership_history(story.events).custody

    assert custody[0].start == T0
    assert custody[-1].end is None
    for earlier, later in itertools.pairwise(custody):
        assert earlier.end == later.start and earlier.closed_by == later.opened_by


@SETTINGS
@given(histories(), st.data())
def test_as_known_at_is_the_fold_over_the_events_recorded_by_then(story: Story, data: st.DataObject) -> None:
    events = story.events
    recorded = sorted({e.recorded_at for e in events})
    known_at = data.draw(st.sampled_from(recorded)) + data.draw(st.sampled_from((timedelta(0), timedelta(seconds=30))))
    known = visible(events, known_at)

    assert replace(ownership_history(events, as_known_at=known_at), as_known_at=None) == ownership_history(known)
    for instant in boundaries(known):
        assert replace(owner_at(events, instant, known_at), as_known_at=None) == owner_at(known, instant)
    assert ownership_history(events, as_known_at=recorded[-1]) == replace(ownership_history(events), as_known_at=recorded[-1])
