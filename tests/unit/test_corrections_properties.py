"""Property: a history with corrections and retractions folds, as known now, exactly as the
history in which the corrected values had been recorded in the first place (and the
retracted entries never had); as known before the first amendment, as the originals do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.knowledge import known
from ledger.referral import LedgerEvent, Referral, correctable_fields, fold_state
from ledger.subject import Subject, fold_subject
from projections.obligations import obligations_at
from projections.ownership import ownership_history

T0 = datetime(2024, 1, 1, 9, tzinfo=UTC)
UNITS = ("U-A", "U-B", "U-C")
BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")
REF = "R-PROP-1"


def event(cls: type[LedgerEvent], stream: Any, version: int, occurred: datetime, recorded: datetime, unit: str, **fields: Any) -> Any:
    """An event as the mapper builds one from the store (no aggregate, no checks)."""
    made = object.__new__(cls)
    state = {
        "originator_id": stream,
        "originator_version": version,
        "timestamp": recorded,
        "occurred_at": occurred,
        "actor": {"person": f"P-{unit}", "role": "team-manager", "unit": unit},
        "late_reason": None,
        "source_recorded_at": recorded,
        "source": None,
        "prev_hash": "",
        **fields,
    }
    object.__setattr__(made, "__dict__", state)
    return made


#: (class, fields drawn for it) of the referral events a history is made of
KINDS = {
    "offer": (Referral.OwnershipOffered, lambda d: {"to_unit": d(st.sampled_from(UNITS)), "reply_due": None}),
    "accept": (Referral.OwnershipAccepted, lambda d: {"reason": None}),
    "decline": (Referral.OwnershipDeclined, lambda d: {"reason": "no"}),
    "withdraw": (Referral.OfferWithdrawn, lambda d: {"reason": None}),
    "release": (Referral.OwnershipReleased, lambda d: {"reason": "not ours"}),
    "custody": (Referral.CustodyTransferred, lambda d: {"to_unit": d(st.sampled_from(UNITS))}),
    "assess": (
        Referral.Assessed,
        lambda d: {
            "risk_band": d(st.sampled_from(BANDS)),
            "immediate_risk": False,
            "grading": None,
            "recommended_lead_unit": None,
            "rationale": "r",
        },
    ),
    "review": (Referral.ReviewRecorded, lambda d: {"progress": "p", "owner_confirmed": d(st.sampled_from(UNITS)), "next_review_by": None}),
    "close": (Referral.Closed, lambda d: {"reason": "done"}),
    "reopen": (Referral.Reopened, lambda d: {"reason": "again"}),
}

#: a corrected value for each correctable field the generated events have
VALUES = {
    "to_unit": st.sampled_from(UNITS),
    "risk_band": st.sampled_from(BANDS),
    "owner_confirmed": st.sampled_from(UNITS),
    "reason": st.sampled_from(("a", "b")),
    "progress": st.just("corrected"),
    "rationale": st.just("corrected"),
    "immediate_risk": st.booleans(),
}


@st.composite
def amended_histories(draw: Any) -> tuple[list[Any], list[Any], list[Any], datetime]:
    """(history with amendments, the same written right first, the originals alone, first amendment's recording)."""
    stream = uuid4()
    count = draw(st.integers(min_value=1, max_value=14))
    originals = [
        event(
            Referral.Received, stream, 1, T0, T0, "U-IN", reference=REF, originator="X", channel="c", originator_reference=None,
            claimed_subject_count=None, grading=None, handling_conditions=[], package_hash=None, custodian_unit="U-IN", immediate_risk=False,
        )
    ]  # fmt: skip
    recorded = T0
    for version in range(2, count + 2):
        cls, fields = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        occurred = T0 + timedelta(hours=draw(st.integers(min_value=1, max_value=400)))
        recorded = max(recorded, occurred) + timedelta(minutes=draw(st.integers(min_value=0, max_value=3000)))
        originals.append(event(cls, stream, version, occurred, recorded, draw(st.sampled_from(UNITS)), **fields(draw)))
    first_amendment = recorded + timedelta(hours=1)
    right: dict[int, Any] = {e.originator_version: e for e in originals}
    amendments: list[Any] = []
    at = first_amendment
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        target = draw(st.sampled_from(originals[1:])) if len(originals) > 1 else None
        if target is None or target.originator_version not in right:
            continue
        version = len(originals) + len(amendments) + 1
        hints = correctable_fields(type(target))
        names = sorted(name for name in hints if name in VALUES)
        if names and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
            values = {name: draw(VALUES[name]) for name in chosen}
            amendments.append(
                event(
                    Referral.EntryCorrected,
                    stream,
                    version,
                    at,
                    at,
                    "U-IN",
                    target_version=target.originator_version,
                    corrected=values,
                    reason="r",
                )
            )
            fixed = object.__new__(type(target))
            object.__setattr__(fixed, "__dict__", {**right[target.originator_version].__dict__, **values})
            right[target.originator_version] = fixed
        else:
            amendments.append(
                event(Referral.EntryRetracted, stream, version, at, at, "U-IN", target_version=target.originator_version, reason="r")
            )
            del right[target.originator_version]
        at += timedelta(minutes=5)
    return [*originals, *amendments], [right[v] for v in sorted(right)], originals, first_amendment


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amended_histories())
def test_folds_of_an_amended_history_equal_folds_of_the_history_written_right(
    case: tuple[list[Any], list[Any], list[Any], datetime],
) -> None:
    amended, right, originals, first_amendment = case
    later = first_amendment + timedelta(days=400)
    assert ownership_history(amended) == ownership_history(right)
    assert fold_state(amended) == fold_state(right)
    assert obligations_at(amended, {}, later, as_known_now=True) == obligations_at(right, {}, later, as_known_now=True)
    # as known before the first amendment was recorded, the originals answer
    before = first_amendment - timedelta(minutes=1)
    assert ownership_history(amended, as_known_at=before) == ownership_history(originals, as_known_at=before)
    assert obligations_at(amended, {}, before) == obligations_at(originals, {}, before)


def test_a_subject_fold_reads_corrections_too() -> None:
    stream = uuid4()
    extracted = event(Subject.Extracted, stream, 1, T0, T0, "U-A", referral=REF, subject="S-1", category="suspect")
    triaged = event(
        Subject.Triaged, stream, 2, T0 + timedelta(hours=1), T0 + timedelta(hours=1), "U-A",
        risk_tool="RPT", risk_tool_version="1", band="LOW", drivers=[], target_force=None,
    )  # fmt: skip
    fixed = event(
        Subject.EntryCorrected,
        stream,
        3,
        T0 + timedelta(days=1),
        T0 + timedelta(days=1),
        "U-A",
        target_version=2,
        corrected={"band": "HIGH"},
        reason="r",
    )
    assert fold_subject([extracted, triaged, fixed]).band == "HIGH"
    assert fold_subject(known([extracted, triaged, fixed], T0 + timedelta(hours=2))).band == "LOW"
