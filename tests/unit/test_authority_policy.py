"""The authority rules' table and the policy's [authority] table (ledger/authority.py, ledger/policy.py)."""

from __future__ import annotations

import pytest

from ledger.authority import RULES
from ledger.policy import DEFAULT_POLICY, PolicyError, policy_from_toml
from ledger.records import Disposed
from ledger.referral import Referral
from ledger.subject import Subject
from ledger.values import Actor


def _topics() -> set[str]:
    classes = [c for c in vars(Referral).values() if isinstance(c, type)] + [c for c in vars(Subject).values() if isinstance(c, type)]
    return {c.TOPIC for c in classes if hasattr(c, "TOPIC")} | {Disposed.TOPIC}


def test_every_rule_judges_real_event_types_and_each_type_has_one_rule() -> None:
    topics = [topic for rule in RULES for topic in rule.topics]
    assert set(topics) <= _topics()
    assert len(topics) == len(set(topics))
    assert len({rule.id for rule in RULES}) == len(RULES) and all(rule.id.startswith("authority-") for rule in RULES)


def test_the_default_rules_leave_the_version_as_it_was_and_a_change_makes_a_new_one() -> None:
    assert policy_from_toml("").version == DEFAULT_POLICY.version
    assert policy_from_toml("[authority.review]\nenabled = true\n").version == DEFAULT_POLICY.version
    changed = policy_from_toml('[authority.review]\nroles = ["supervisory", "decision"]\n')
    assert changed.version != DEFAULT_POLICY.version
    assert policy_from_toml('[authority.review]\nalso_roles = ["analyst"]\n').version not in (DEFAULT_POLICY.version, changed.version)


def test_a_policy_sets_what_satisfies_a_rule() -> None:
    class Unowned:
        owner_unit = None
        custodian_unit = "U-INTAKE"
        offered_unit = None
        escalated_to: tuple[str, ...] = ()

    analyst = Actor("P-1", "analyst", "U-TRIAGE")
    review = Referral.ReviewRecorded.TOPIC
    assert DEFAULT_POLICY.authority_rules().breach(review, analyst, Unowned(), agency=True) is not None
    assert DEFAULT_POLICY.authority_rules().breach(review, analyst, Unowned(), agency=None) is None  # no directory yet
    widened = policy_from_toml('[authority.review]\nalso_roles = ["analyst"]\n')
    assert widened.authority_rules().breach(review, analyst, Unowned(), agency=True) is None
    assert widened.authority_rules().breach(review, analyst, Unowned(), agency=False) is not None  # never outside the agency
    off = policy_from_toml("[authority.review]\nenabled = false\n")
    assert off.authority_rules().breach(review, Actor("P-2", "force-liaison", "F-EAST"), Unowned(), agency=False) is None


def test_disposal_needs_a_records_role_even_before_the_directory_is_in_force() -> None:
    class Closed:
        owner_unit = "U-IDT"
        custodian_unit = "U-IDT"
        offered_unit = None
        escalated_to: tuple[str, ...] = ()

    rules = DEFAULT_POLICY.authority_rules()
    manager, keeper = Actor("P-1", "team-manager", "U-IDT"), Actor("P-9", "records-manager", "U-RM")
    refused = rules.breach(Disposed.TOPIC, manager, Closed(), agency=None)
    assert refused == ("authority-dispose", "a disposal needs an agency unit's records role (records-manager), not team-manager@U-IDT")
    assert rules.breach(Disposed.TOPIC, keeper, Closed(), agency=None) is None  # the stated role, before the directory
    assert rules.breach(Disposed.TOPIC, keeper, Closed(), agency=True) is None
    assert rules.breach(Disposed.TOPIC, keeper, Closed(), agency=False) is not None  # a force's records manager: never
    widened = policy_from_toml('[authority.dispose]\nalso_roles = ["head-of-unit"]\n').authority_rules()
    assert widened.breach(Disposed.TOPIC, Actor("P-2", "head-of-unit", "U-IDT"), Closed(), agency=True) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[authority.reviews]\nenabled = false\n", "authority.reviews is not a known authority rule"),
        ("[authority.release]\nenabled = false\n", "authority.release (authority-release) decides ownership or custody"),
        ("[authority.force-answer]\nenabled = false\n", "cannot be changed"),
        ('[authority.review]\nroles = ["supervisors"]\n', "authority.review.roles must be a list of role groups"),
        ('[authority.review]\nalso_roles = ["head of unit"]\n', "authority.review.also_roles must be a list of role names"),
        ("[authority.review]\nenable = false\n", "authority.review.enable is not a known key"),
        ('[authority.review]\nenabled = "no"\n', "authority.review.enabled must be true or false"),
        ("authority = 3\n", "authority must be a table"),
    ],
)
def test_a_bad_authority_table_is_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        policy_from_toml(text, "policy.toml")
    assert str(refused.value).startswith("policy.toml: ") and message in str(refused.value), str(refused.value)
