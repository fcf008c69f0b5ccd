"""ledger/sealing.py and the records rules: sealed values open only where they were sealed,
never as garbage; the folds see the same answers sealed or not."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from ledger.application import Ledger
from ledger.errors import RuleViolation
from ledger.policy import PolicyError, policy_from_toml
from ledger.referral import fold_state
from ledger.sealing import PREFIX, WITHHELD, DataKeyError, MemoryKeyStore, Seals, is_sealed, load_data_key, new_data_key_text
from ledger.values import Actor, Stamp


def _seals(store: MemoryKeyStore | None = None, key: bytes = b"k" * 32) -> Seals:
    seals = Seals(store if store is not None else MemoryKeyStore(), key, "test.key")
    seals.before_recording(ledger_is_empty=True)
    seals.before_saving()
    return seals


def test_a_sealed_value_opens_only_for_its_field_and_referral() -> None:
    seals, stream = _seals(), uuid4()
    sealed = seals.seal_fields(stream, {"text": "Mr Example", "claim": None, "to_unit": "U-1"})
    assert is_sealed(sealed["text"]) and sealed["text"].startswith(PREFIX + stream.hex + ":")
    assert (sealed["claim"], sealed["to_unit"]) == (None, "U-1")
    assert seals.open_value("text", sealed["text"], None) == "Mr Example"
    with pytest.raises(DataKeyError, match=re.escape("does not open with the data key test.key")):
        seals.open_value("reason", sealed["text"], None)  # moved to another field
    tampered = sealed["text"][:-2] + ("A" if sealed["text"][-2] != "A" else "B") + sealed["text"][-1]
    with pytest.raises(DataKeyError):
        seals.open_value("text", tampered, None)
    assert seals.open_value("text", sealed["text"], "[disposed 2032-05-01 by P-1:records-manager@U-RM]").startswith("[disposed")


def test_corrections_seal_the_free_text_they_correct_and_their_reason() -> None:
    seals, stream = _seals(), uuid4()
    sealed = seals.seal_fields(stream, {"corrected": {"rationale": "Mr X", "to_unit": "U-2"}, "reason": "typo by Ms Y"})
    assert is_sealed(sealed["corrected"]["rationale"]) and sealed["corrected"]["to_unit"] == "U-2" and is_sealed(sealed["reason"])


def test_without_the_ledger_key_free_text_is_withheld_and_a_wrong_key_is_refused() -> None:
    store = MemoryKeyStore()
    seals, stream = _seals(store), uuid4()
    value = seals.seal_fields(stream, {"text": "Mr Example"})["text"]
    keyless = Seals(store, None, "None")
    assert keyless.sealed_ledger and keyless.open_value("text", value, None) == WITHHELD
    with pytest.raises(RuleViolation, match="data-key-required"):
        keyless.before_recording(ledger_is_empty=False)
    with pytest.raises(DataKeyError, match=re.escape("the data key other.key is not this ledger's key")):
        Seals(store, b"x" * 32, "other.key")


def test_a_key_file_is_read_or_refused_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.key"
    good.write_text(new_data_key_text())
    assert len(load_data_key(good)) == 32
    bad = tmp_path / "bad.key"
    bad.write_text("refledger-data-key-1 c2hvcnQ=\n")
    with pytest.raises(DataKeyError, match=f"{bad} is not a data key file"):
        load_data_key(bad)
    with pytest.raises(DataKeyError, match="cannot read the data key"):
        load_data_key(tmp_path / "missing.key")


def test_the_folds_answer_the_same_sealed_or_not() -> None:
    def story(sealed: bool) -> Ledger:
        ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
        ledger.seals = Seals(MemoryKeyStore(), b"k" * 32 if sealed else None, "k")
        a, b = Actor("P-1", "analyst", "U-A"), Actor("P-2", "team-manager", "U-B")
        ledger.receive("R-1", Stamp(a), originator="X", channel="liaison", custodian_unit="U-A")
        ledger.offer_ownership("R-1", Stamp(a), to_unit="U-B")
        ledger.accept_ownership("R-1", Stamp(b), reason="We know Mr Example")
        ledger.add_note("R-1", Stamp(b), text="Mr Example's address", claim=None)
        ledger.close_referral("R-1", Stamp(b), reason="Done")
        return ledger

    sealed, plain = story(True), story(False)
    assert any(is_sealed(getattr(e, "text", None)) for e in sealed.referral_events("R-1"))
    assert fold_state(sealed.referral_events("R-1")) == fold_state(plain.referral_events("R-1"))
    opened = sealed.read_free_text("R-1", [sealed.referral_events("R-1")], None, "test")[0]
    assert [vars(e).get("text") for e in opened] == [vars(e).get("text") for e in plain.referral_events("R-1")]


def test_the_records_policy_is_checked_naming_the_key() -> None:
    policy = policy_from_toml('[records]\nreview_after_years = 10\nconsultation_log = true\nsealed_fields = ["consent_reference"]\n')
    assert (policy.records.review_after_years, policy.records.consultation_log, policy.records.sealed_fields) == (
        10,
        True,
        ("consent_reference",),
    )
    assert policy.version != policy_from_toml("").version
    with pytest.raises(PolicyError, match=re.escape("records.sealed_fields")):
        policy_from_toml('[records]\nsealed_fields = ["to_unit"]\n')
    with pytest.raises(PolicyError, match=re.escape("records.review_after_years")):
        policy_from_toml('[records]\nreview_after_years = "six"\n')
