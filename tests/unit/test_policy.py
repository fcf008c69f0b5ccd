"""The review/SLA rule set: defaults, TOML overrides, versioning and refusals."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.policy import (
    DEFAULT_POLICY,
    DEFERRED_REVISIT,
    DISSEMINATION,
    FORCE_ACTION,
    INITIAL_ASSESSMENT,
    LATE_ENTRY,
    OWNER_ACCEPTED,
    RISK_BANDS,
    RULE_IDS,
    SUPERVISORY_REVIEW,
    Policy,
    PolicyError,
    load_policy,
    policy_from_toml,
)

DAY = timedelta(days=1)


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults -----------------------------------------------------------------


def test_rule_ids_are_the_public_contract() -> None:
    assert RULE_IDS == (
        "owner-accepted",
        "initial-assessment",
        "offer-reply",
        "escalation-decided",
        "deferred-revisit",
        "supervisory-review",
        "external-reply",
        "dissemination",
        "force-acknowledgement",
        "force-action",
        "late-entry",
        "late-entry-attestation",
    )
    assert RISK_BANDS == ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")


def test_default_single_periods() -> None:
    policy = DEFAULT_POLICY
    assert policy.owner_accepted() == 2 * DAY
    assert policy.offer_reply() == 5 * DAY
    assert policy.escalation_decided() == 7 * DAY
    assert policy.external_reply() == 5 * DAY


def test_initial_assessment_is_one_day_with_immediate_risk() -> None:
    assert DEFAULT_POLICY.initial_assessment(immediate_risk=False) == 7 * DAY
    assert DEFAULT_POLICY.initial_assessment(immediate_risk=True) == 1 * DAY


@pytest.mark.parametrize(
    ("band", "days"),
    [("VERY_HIGH", 7), ("HIGH", 14), ("MEDIUM", 28), ("LOW", 28), (None, 28)],
)
def test_default_supervisory_review_cadence(band: str | None, days: int) -> None:
    assert DEFAULT_POLICY.supervisory_review(band) == days * DAY


@pytest.mark.parametrize(
    ("band", "dissemination", "acknowledgement", "action"),
    [
        ("VERY_HIGH", 1, 1, 1),
        ("HIGH", 3, 1, 7),
        ("MEDIUM", 7, 3, 14),
        ("LOW", 14, 3, 30),
    ],
)
def test_default_subject_periods_by_band(band: str, dissemination: int, acknowledgement: int, action: int) -> None:
    assert DEFAULT_POLICY.dissemination(band) == dissemination * DAY
    assert DEFAULT_POLICY.force_acknowledgement(band) == acknowledgement * DAY
    assert DEFAULT_POLICY.force_action(band) == action * DAY


def test_default_late_entry_thresholds() -> None:
    assert DEFAULT_POLICY.late_entry_threshold() == timedelta(hours=24)
    assert DEFAULT_POLICY.attestation_threshold() == 7 * DAY


def test_every_rule_is_enabled_by_default() -> None:
    assert all(DEFAULT_POLICY.enabled(rule_id) for rule_id in RULE_IDS)


def test_no_path_gives_the_default_policy() -> None:
    assert load_policy(None) is DEFAULT_POLICY
    assert Policy() == DEFAULT_POLICY
    assert DEFAULT_POLICY.name == "default"
    assert re.fullmatch(r"default@[0-9a-f]{12}", DEFAULT_POLICY.version)


@pytest.mark.parametrize("band", ["high", "EXTREME", ""])
def test_a_misspelt_band_is_refused_not_given_a_default(band: str) -> None:
    with pytest.raises(ValueError, match="unknown risk band"):
        DEFAULT_POLICY.dissemination(band)
    with pytest.raises(ValueError, match="unknown risk band"):
        DEFAULT_POLICY.supervisory_review(band)


def test_an_unknown_rule_id_cannot_be_asked_about() -> None:
    with pytest.raises(ValueError, match="unknown rule id 'owner-acepted'"):
        DEFAULT_POLICY.enabled("owner-acepted")


# --- overrides ----------------------------------------------------------------


def test_a_partial_override_keeps_every_other_default(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        """
        name = "national-unit-2026"
        [rules.supervisory-review]
        HIGH = 10
        [rules.force-action]
        LOW = 21.5
        [rules.late-entry]
        hours = 12
        """,
    )
    policy = load_policy(path)

    assert policy.name == "national-unit-2026"
    assert policy.supervisory_review("HIGH") == 10 * DAY
    assert policy.supervisory_review("VERY_HIGH") == 7 * DAY
    assert policy.supervisory_review("LOW") == 28 * DAY
    assert policy.force_action("LOW") == timedelta(days=21.5)
    assert policy.force_action("MEDIUM") == 14 * DAY
    assert policy.late_entry_threshold() == timedelta(hours=12)
    assert policy.attestation_threshold() == 7 * DAY
    assert policy.owner_accepted() == 2 * DAY
    assert policy.initial_assessment(immediate_risk=True) == 1 * DAY


def test_supervisory_days_sets_low_medium_and_unbanded(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "[rules.supervisory-review]\ndays = 21\n"))
    assert policy.supervisory_review("LOW") == 21 * DAY
    assert policy.supervisory_review("MEDIUM") == 21 * DAY
    assert policy.supervisory_review(None) == 21 * DAY
    assert policy.supervisory_review("HIGH") == 14 * DAY


def test_immediate_risk_assessment_can_be_overridden() -> None:
    policy = policy_from_toml("[rules.initial-assessment]\nimmediate_risk_days = 0.5\n")
    assert policy.initial_assessment(immediate_risk=True) == timedelta(hours=12)
    assert policy.initial_assessment(immediate_risk=False) == 7 * DAY


def test_an_empty_file_is_the_default_rule_set(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, ""))
    assert policy == DEFAULT_POLICY
    assert policy.version == DEFAULT_POLICY.version


def test_a_policy_built_in_code_is_checked_like_a_file() -> None:
    policy = Policy(name="fast", rules={SUPERVISORY_REVIEW: {"days": 1}})
    assert policy.supervisory_review("LOW") == DAY
    with pytest.raises(PolicyError, match=r"^Policy: rules\.dissemination\.low "):
        Policy(rules={DISSEMINATION: {"low": 1}})


# --- disabling ----------------------------------------------------------------


def test_a_rule_can_be_disabled_and_keeps_its_numbers() -> None:
    policy = policy_from_toml(
        """
        [rules.deferred-revisit]
        enabled = false
        [rules.force-action]
        enabled = false
        [rules.owner-accepted]
        enabled = true
        """
    )
    assert not policy.enabled(DEFERRED_REVISIT)
    assert not policy.enabled(FORCE_ACTION)
    assert policy.enabled(OWNER_ACCEPTED)
    assert policy.enabled(DISSEMINATION)
    assert policy.force_action("HIGH") == 7 * DAY


def test_disabling_a_rule_changes_the_version() -> None:
    policy = policy_from_toml("[rules.deferred-revisit]\nenabled = false\n")
    assert policy.version != DEFAULT_POLICY.version


# --- versioning ---------------------------------------------------------------


def test_version_ignores_formatting_and_defaults_written_out() -> None:
    terse = policy_from_toml('name = "unit"\nrules.supervisory-review.HIGH = 10\n')
    verbose = policy_from_toml(
        """
        # same numbers, written differently
        name = "unit"

        [rules.late-entry]
        attestation_days = 7.0      # the default, spelled out
        hours = 24

        [rules.supervisory-review]
        VERY_HIGH = 7
        HIGH      = 10.0
        """
    )
    assert terse.version == verbose.version
    assert terse == verbose
    assert hash(terse) == hash(verbose)
    assert terse.version.startswith("unit@")


def test_version_changes_when_a_number_changes() -> None:
    base = policy_from_toml('name = "unit"\nrules.dissemination.LOW = 14\n')
    changed = policy_from_toml('name = "unit"\nrules.dissemination.LOW = 13\n')
    assert base.version != changed.version
    assert base.version.split("@")[1] == DEFAULT_POLICY.version.split("@")[1]


def test_version_hash_does_not_depend_on_the_name() -> None:
    named = policy_from_toml('name = "other"\n')
    assert named.version == "other@" + DEFAULT_POLICY.version.split("@")[1]


# --- describe -----------------------------------------------------------------


def test_describe_lists_every_rule_with_its_days() -> None:
    described = {entry["rule"]: entry for entry in DEFAULT_POLICY.describe()}

    assert list(described) == list(RULE_IDS)
    assert described[OWNER_ACCEPTED]["days"] == {"standard": 2.0}
    assert described[INITIAL_ASSESSMENT]["days"] == {
        "standard": 7.0,
        "immediate_risk": 1.0,
    }
    assert described[DEFERRED_REVISIT]["days"] == {}
    assert "revisit_by" in described[DEFERRED_REVISIT]["note"]
    assert described[SUPERVISORY_REVIEW]["days"] == {
        "VERY_HIGH": 7.0,
        "HIGH": 14.0,
        "MEDIUM": 28.0,
        "LOW": 28.0,
    }
    assert described[DISSEMINATION]["days"] == {
        "VERY_HIGH": 1.0,
        "HIGH": 3.0,
        "MEDIUM": 7.0,
        "LOW": 14.0,
    }
    assert described[LATE_ENTRY]["days"] == {
        "late_after": 1.0,
        "attestation_after": 7.0,
    }
    assert all(entry["enabled"] for entry in described.values())


def test_describe_reports_overrides_and_disabled_rules() -> None:
    policy = policy_from_toml("[rules.late-entry]\nhours = 36\n[rules.force-action]\nenabled = false\n")
    described = {entry["rule"]: entry for entry in policy.describe()}
    assert described[LATE_ENTRY]["days"]["late_after"] == 1.5
    assert described[FORCE_ACTION]["enabled"] is False


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[rules.force-action]\nHGIH = 1\n",
            "policy.toml: rules.force-action.HGIH is not a known key (expected one of: VERY_HIGH, HIGH, MEDIUM, LOW, enabled)",
            id="unknown key in a rule",
        ),
        pytest.param(
            "[rules.supervisory-review]\nMEDIUM = 21\n",
            "policy.toml: rules.supervisory-review.MEDIUM is not a known key (expected one of: days, HIGH, VERY_HIGH, enabled)",
            id="band without its own cadence",
        ),
        pytest.param(
            'rules.late-entry."hours per day" = 1\n',
            'policy.toml: rules.late-entry."hours per day" is not a known key (expected one of: hours, attestation_days, enabled)',
            id="quoted key",
        ),
        pytest.param(
            "[rules.owner-acepted]\ndays = 2\n",
            "policy.toml: rules.owner-acepted is not a known rule id (expected one of: " + ", ".join(RULE_IDS) + ")",
            id="unknown rule id",
        ),
        pytest.param(
            "[rule.owner-accepted]\ndays = 2\n",
            "policy.toml: rule is not a known key (expected one of: name, rules, directory, authority, signatures, records)",
            id="unknown top-level key",
        ),
        pytest.param(
            '[rules.offer-reply]\ndays = "5"\n',
            'policy.toml: rules.offer-reply.days must be a number of days, got "5"',
            id="string",
        ),
        pytest.param(
            "[rules.offer-reply]\ndays = true\n",
            "policy.toml: rules.offer-reply.days must be a number of days, got true",
            id="boolean",
        ),
        pytest.param(
            "[rules.late-entry]\nhours = [24]\n",
            "policy.toml: rules.late-entry.hours must be a number of hours, got [24]",
            id="array",
        ),
        pytest.param(
            "[rules.dissemination]\nLOW = 0\n",
            "policy.toml: rules.dissemination.LOW must be more than 0 and at most 36525 days, got 0",
            id="zero",
        ),
        pytest.param(
            "[rules.dissemination]\nLOW = -1.5\n",
            "policy.toml: rules.dissemination.LOW must be more than 0 and at most 36525 days, got -1.5",
            id="negative",
        ),
        pytest.param(
            "[rules.dissemination]\nLOW = nan\n",
            "policy.toml: rules.dissemination.LOW must be more than 0 and at most 36525 days, got nan",
            id="not a number",
        ),
        pytest.param(
            "[rules.dissemination]\nLOW = 1e9\n",
            "policy.toml: rules.dissemination.LOW must be more than 0 and at most 36525 days, got 1000000000.0",
            id="absurdly long",
        ),
        pytest.param(
            '[rules.deferred-revisit]\nenabled = "no"\n',
            'policy.toml: rules.deferred-revisit.enabled must be true or false, got "no"',
            id="enabled not a bool",
        ),
        pytest.param(
            "[rules.deferred-revisit]\ndays = 3\n",
            "policy.toml: rules.deferred-revisit.days is not a known key (expected one of: enabled)",
            id="number for a rule without one",
        ),
        pytest.param(
            "rules = 3\n",
            "policy.toml: rules must be a table of rules, got 3",
            id="rules not a table",
        ),
        pytest.param(
            "[rules]\nowner-accepted = 2\n",
            "policy.toml: rules.owner-accepted must be a table, got 2",
            id="rule not a table",
        ),
        pytest.param(
            'name = "unit@2026"\n',
            "policy.toml: name must be letters, digits, '.', '_' or '-', got \"unit@2026\"",
            id="name with the version separator",
        ),
        pytest.param(
            "[rules.late-entry]\nhours = 200\n",
            "policy.toml: rules.late-entry.attestation_days (7 days) must not be shorter than rules.late-entry.hours (200 hours)",
            id="attestation before lateness",
        ),
    ],
)
def test_invalid_policy_is_refused_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write_policy(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert str(raised.value) == message.replace("policy.toml", str(path))


def test_invalid_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "[rules.owner-accepted]\ndays = 2\ndays == 3\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 3" in message
    assert "\n" not in message


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match=re.escape(f"{path}: no such policy file")):
        load_policy(path)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=re.escape(f"{tmp_path}: cannot read policy file")):
        load_policy(tmp_path)


def test_a_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(PolicyError, match=re.escape(f"{path}: not UTF-8 text")):
        load_policy(path)


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_every_error_message_is_one_line() -> None:
    with pytest.raises(PolicyError) as raised:
        policy_from_toml('rules.offer-reply.days = "two\\nthree"\n', "policy.toml")
    assert "\n" not in str(raised.value)


def test_the_directory_roles_default_and_can_be_set(tmp_path: Path) -> None:
    assert DEFAULT_POLICY.directory.accountable_roles == ("team-manager", "head-of-unit")
    assert DEFAULT_POLICY.directory.supervisory_roles == ("team-manager", "head-of-unit", "supervisor", "detective-inspector")
    chosen = load_policy(write_policy(tmp_path, '[directory]\naccountable_roles = ["head-of-unit"]\n'))
    assert chosen.directory.accountable_roles == ("head-of-unit",)
    assert chosen.directory.tasking_roles == ("head-of-tasking", "tasking-manager")
    assert chosen.version != DEFAULT_POLICY.version


def test_a_bad_directory_table_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"directory\.accountable_roles must be a list of role names"):
        load_policy(write_policy(tmp_path, '[directory]\naccountable_roles = "team-manager"\n'))
    with pytest.raises(PolicyError, match=r"directory\.boss_roles is not a known key"):
        load_policy(write_policy(tmp_path, "[directory]\nboss_roles = []\n"))
