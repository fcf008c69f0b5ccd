"""The review and SLA rule set: how long each obligation may take, by rule id.

Only the numbers and their lookup live here. Deciding what was met, breached or
overdue at an instant is the obligations fold's job (``projections/obligations.py``);
it asks this module "how long?" and nothing else. Standard library only.

Public API
----------
Rule ids (a public contract, docs/DOMAIN.md §7), in ``RULE_IDS`` in the design's
order: ``OWNER_ACCEPTED``, ``INITIAL_ASSESSMENT``, ``OFFER_REPLY``,
``ESCALATION_DECIDED``, ``DEFERRED_REVISIT``, ``SUPERVISORY_REVIEW``,
``EXTERNAL_REPLY``, ``DISSEMINATION``, ``FORCE_ACKNOWLEDGEMENT``, ``FORCE_ACTION``,
``LATE_ENTRY``. Risk bands: ``RISK_BANDS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")``.

``Policy(name="default", rules={})`` (frozen) is a complete rule set. ``rules``
has the same shape as the ``[rules]`` table of a policy file and may be partial:
what it leaves out keeps its default, and it is validated like a file.

- ``version`` -> ``"<name>@<12 hex>"``: sha256 of the sorted-key JSON of every
  resolved number and ``enabled`` flag, so equal rule sets share a version however
  their file was formatted.
- ``enabled(rule_id) -> bool``
- ``timedelta`` lookups: ``owner_accepted()``, ``initial_assessment(immediate_risk)``,
  ``offer_reply()``, ``escalation_decided()``, ``supervisory_review(band | None)``,
  ``external_reply()``, ``dissemination(band)``, ``force_acknowledgement(band)``,
  ``force_action(band)``, ``late_entry_threshold()``, ``attestation_threshold()``.
  ``deferred-revisit`` has no number: it is due at the DEFER's ``revisit_by``.
  A band that is not one of ``RISK_BANDS`` raises ``ValueError``.
- ``describe() -> list[RuleDescription]``: per rule, enabled and numbers in days.

``DEFAULT_POLICY``; ``load_policy(path | None) -> Policy`` (None gives the default);
``policy_from_toml(text, source) -> Policy``; ``PolicyError(ValueError)``, whose
message is one line naming the file and the offending key path.

Policy file (TOML); every key is optional, days may be fractional::

    name = "national-unit-2026"     # letters, digits, '.', '_', '-'

    [rules.owner-accepted]          # likewise offer-reply, escalation-decided,
    days = 2                        # external-reply
    [rules.initial-assessment]
    days = 7
    immediate_risk_days = 1
    [rules.supervisory-review]
    days = 28                       # LOW, MEDIUM, or no band yet
    HIGH = 14
    VERY_HIGH = 7
    [rules.dissemination]           # likewise force-acknowledgement, force-action
    VERY_HIGH = 1
    HIGH = 3
    MEDIUM = 7
    LOW = 14
    [rules.late-entry]
    hours = 24
    attestation_days = 7
    [rules.deferred-revisit]
    enabled = false                 # any rule may be switched off

    [directory]                     # which roles of the staff directory are what
    accountable_roles = ["team-manager", "head-of-unit"]    # answer for their unit
    supervisory_roles = ["team-manager", "head-of-unit", "supervisor", "detective-inspector"]
    tasking_roles     = ["head-of-tasking", "tasking-manager"]
    decision_roles    = ["head-of-tasking", "head-of-unit"]
    records_roles     = ["records-manager"]                 # dispose of a referral

    [authority.offer]               # who may record what (ledger/authority.py), by rule key:
    enabled = true                  # offer, escalate, review, decide, close, subject,
    roles = ["accountable", "supervisory", "tasking"]   # dispose; groups of [directory]
    also_roles = ["intake-officer"] # and further role names

    [signatures]                    # event types whose live recording must be signed
    required = ["ownership_accepted", "ownership_released", "decision_recorded", "review_recorded"]

    [records]                       # retention, sealing and the consultation log
    review_after_years = 6          # a closed referral's retention review; never while open
    consultation_log = false        # true: reading free text records who read it
    sealed_fields = ["consent_reference"]   # sealed besides the free text (of these only)

``policy.directory`` is a ``DirectoryRoles``: ``accountable_roles``,
``supervisory_roles``, ``tasking_roles``, ``decision_roles`` (tuples of role names).
``policy.authority`` maps each rule key to its ``RuleSettings``; ``policy.authority_rules()``
is the ``ledger.authority.Authority`` that judges live entries with them.
``policy.signatures_required``: the event types (import-format names) of ``[signatures]``.
``policy.records`` is a ``RecordsRules``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Final, TypedDict

from ledger import authority as _authority

OWNER_ACCEPTED: Final = "owner-accepted"
INITIAL_ASSESSMENT: Final = "initial-assessment"
OFFER_REPLY: Final = "offer-reply"
ESCALATION_DECIDED: Final = "escalation-decided"
DEFERRED_REVISIT: Final = "deferred-revisit"
SUPERVISORY_REVIEW: Final = "supervisory-review"
EXTERNAL_REPLY: Final = "external-reply"
DISSEMINATION: Final = "dissemination"
FORCE_ACKNOWLEDGEMENT: Final = "force-acknowledgement"
FORCE_ACTION: Final = "force-action"
LATE_ENTRY: Final = "late-entry"
LATE_ENTRY_ATTESTATION: Final = "late-entry-attestation"

RULE_IDS: Final[tuple[str, ...]] = (
    OWNER_ACCEPTED,
    INITIAL_ASSESSMENT,
    OFFER_REPLY,
    ESCALATION_DECIDED,
    DEFERRED_REVISIT,
    SUPERVISORY_REVIEW,
    EXTERNAL_REPLY,
    DISSEMINATION,
    FORCE_ACKNOWLEDGEMENT,
    FORCE_ACTION,
    LATE_ENTRY,
    LATE_ENTRY_ATTESTATION,
)

RISK_BANDS: Final[tuple[str, ...]] = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")

DEFAULT_NAME: Final = "default"

_DAYS: Final = "days"
_IMMEDIATE_RISK_DAYS: Final = "immediate_risk_days"
_HOURS: Final = "hours"
_ATTESTATION_DAYS: Final = "attestation_days"
_ENABLED: Final = "enabled"

# The one place for the numbers. Each rule's keys here are also exactly the keys a
# policy file may set for it (besides `enabled`), so the accepted file format can
# never drift from the defaults it overrides.
_DEFAULT_NUMBERS: Final[Mapping[str, Mapping[str, float]]] = {
    OWNER_ACCEPTED: {_DAYS: 2},
    INITIAL_ASSESSMENT: {_DAYS: 7, _IMMEDIATE_RISK_DAYS: 1},
    OFFER_REPLY: {_DAYS: 5},
    ESCALATION_DECIDED: {_DAYS: 7},
    DEFERRED_REVISIT: {},
    SUPERVISORY_REVIEW: {_DAYS: 28, "HIGH": 14, "VERY_HIGH": 7},
    EXTERNAL_REPLY: {_DAYS: 5},
    DISSEMINATION: {"VERY_HIGH": 1, "HIGH": 3, "MEDIUM": 7, "LOW": 14},
    FORCE_ACKNOWLEDGEMENT: {"VERY_HIGH": 1, "HIGH": 1, "MEDIUM": 3, "LOW": 3},
    FORCE_ACTION: {"VERY_HIGH": 1, "HIGH": 7, "MEDIUM": 14, "LOW": 30},
    LATE_ENTRY: {_HOURS: 24, _ATTESTATION_DAYS: 7},
    LATE_ENTRY_ATTESTATION: {_DAYS: 7},
}

# Where a rule's due instant can come from the event itself, `describe()` says so;
# otherwise a reader of `policy show` would take the number for the whole story.
_NOTES: Final[Mapping[str, str]] = {
    OFFER_REPLY: "or the offer's reply_due, if earlier",
    ESCALATION_DECIDED: "or the escalation's decision_due, if earlier",
    DEFERRED_REVISIT: "due at the DEFER's revisit_by",
    SUPERVISORY_REVIEW: "or a review's next_review_by, if earlier",
    LATE_ENTRY: "delay to recording beyond which an entry is late / needs attestation",
    LATE_ENTRY_ATTESTATION: "a supervisor attests an entry that needs it, within this many days of its recording",
}


# A century: anything longer is a typo, and would overflow datetime arithmetic
# (due = start + period) long before timedelta's own limit.
_MAX_DAYS: Final = 36_525

_TOP_LEVEL_KEYS: Final = ("name", "rules", "directory", "authority", "signatures", "records")
_EVENT_TYPE_PATTERN: Final = re.compile(r"[a-z][a-z_]*")
_ROLE_PATTERN: Final = re.compile(r"[^:@\s]+")
# The name is the part of the version before '@', so it must not contain one.
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BARE_TOML_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")

ResolvedRules = Mapping[str, Mapping[str, float | bool]]


class PolicyError(ValueError):
    """A policy file or rule set is unreadable or invalid; the message is one line."""


@dataclass(frozen=True)
class DirectoryRoles:
    """Which roles of the staff directory make someone accountable, supervisory, … (the
    ``[directory]`` table of a policy file)."""

    accountable_roles: tuple[str, ...] = ("team-manager", "head-of-unit")
    supervisory_roles: tuple[str, ...] = ("team-manager", "head-of-unit", "supervisor", "detective-inspector")
    tasking_roles: tuple[str, ...] = ("head-of-tasking", "tasking-manager")
    decision_roles: tuple[str, ...] = ("head-of-tasking", "head-of-unit")
    records_roles: tuple[str, ...] = ("records-manager",)

    def as_dict(self) -> dict[str, list[str]]:
        return {key: list(getattr(self, key)) for key in _DIRECTORY_KEYS}


_DIRECTORY_KEYS: Final = ("accountable_roles", "supervisory_roles", "tasking_roles", "decision_roles", "records_roles")

#: fields besides the free text that ``[records] sealed_fields`` may seal (no fold reads them)
SEALABLE_FIELDS: Final[tuple[str, ...]] = ("consent_reference", "originator_reference")


@dataclass(frozen=True)
class RecordsRules:
    """The ``[records]`` table: retention review, the consultation log, extra sealed fields."""

    review_after_years: int = 6
    consultation_log: bool = False
    sealed_fields: tuple[str, ...] = ()


def _checked_records(value: object, source: str) -> RecordsRules:
    if not isinstance(value, Mapping):
        raise _error(source, ("records",), f"must be a table, got {_shown(value)}")
    keys = ("review_after_years", "consultation_log", "sealed_fields")
    for key in value:
        if key not in keys:
            raise _error(source, ("records", key), "is not a known key", expected=keys)
    years = value.get("review_after_years", 6)
    if isinstance(years, bool) or not isinstance(years, int) or not 0 <= years <= 100:
        raise _error(source, ("records", "review_after_years"), f"must be a whole number of years, 0 to 100, got {_shown(years)}")
    log = value.get("consultation_log", False)
    if not isinstance(log, bool):
        raise _error(source, ("records", "consultation_log"), f"must be true or false, got {_shown(log)}")
    fields = value.get("sealed_fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) and f in SEALABLE_FIELDS for f in fields):
        raise _error(source, ("records", "sealed_fields"), f"must list fields of {', '.join(SEALABLE_FIELDS)}, got {_shown(fields)}")
    return RecordsRules(years, log, tuple(fields))


#: ``[directory] supervisory_roles`` defaults: the roles that may attest late entries and
#: correct or retract anyone's entry.
SUPERVISORY_ROLES: Final[tuple[str, ...]] = DirectoryRoles().supervisory_roles


def _checked_directory(value: object, source: str) -> DirectoryRoles:
    if not isinstance(value, Mapping):
        raise _error(source, ("directory",), f"must be a table, got {_shown(value)}")
    chosen: dict[str, tuple[str, ...]] = {}
    for key, roles in value.items():
        path = ("directory", key)
        if key not in _DIRECTORY_KEYS:
            raise _error(source, path, "is not a known key", expected=_DIRECTORY_KEYS)
        if not isinstance(roles, list) or not all(isinstance(r, str) and _ROLE_PATTERN.fullmatch(r) for r in roles):
            raise _error(source, path, f"must be a list of role names (no spaces, ':' or '@'), got {_shown(roles)}")
        chosen[key] = tuple(roles)
    return DirectoryRoles(**chosen)


_AUTHORITY_KEYS: Final = ("enabled", "roles", "also_roles")


def _checked_authority(value: object, source: str) -> Mapping[str, _authority.RuleSettings]:
    """The ``[authority]`` table: per rule key, enabled, role groups and extra role names."""
    if not isinstance(value, Mapping):
        raise _error(source, ("authority",), f"must be a table, got {_shown(value)}")
    settings = dict(_authority.DEFAULT_SETTINGS)
    configurable = tuple(rule.key for rule in _authority.RULES if not rule.fixed)
    for key, table in value.items():
        path: tuple[object, ...] = ("authority", key)
        rule = _authority.BY_KEY.get(key)
        if rule is None:
            raise _error(source, path, "is not a known authority rule", expected=configurable)
        if rule.fixed:
            raise _error(source, path, f"({rule.id}) decides ownership or custody and cannot be changed", expected=configurable)
        if not isinstance(table, Mapping):
            raise _error(source, path, f"must be a table, got {_shown(table)}")
        current = settings[key]
        enabled, roles, also = current.enabled, current.roles, current.also_roles
        for name, setting in table.items():
            if name not in _AUTHORITY_KEYS:
                raise _error(source, (*path, name), "is not a known key", expected=_AUTHORITY_KEYS)
            if name == "enabled":
                enabled = _checked_flag(setting, source, (*path, name))
            elif name == "roles":
                if not isinstance(setting, list) or not all(isinstance(g, str) and g in _authority.ROLE_GROUPS for g in setting):
                    raise _error(
                        source, (*path, name), f"must be a list of role groups, got {_shown(setting)}", expected=_authority.ROLE_GROUPS
                    )
                roles = tuple(setting)
            else:
                if not isinstance(setting, list) or not all(isinstance(r, str) and _ROLE_PATTERN.fullmatch(r) for r in setting):
                    raise _error(source, (*path, name), f"must be a list of role names (no spaces, ':' or '@'), got {_shown(setting)}")
                also = tuple(setting)
        settings[key] = _authority.RuleSettings(enabled, roles, also)
    return MappingProxyType(settings)


class RuleDescription(TypedDict):
    """One rule as `policy show` and answers report it; numbers are in days."""

    rule: str
    enabled: bool
    days: dict[str, float]
    note: str


@dataclass(frozen=True)
class Policy:
    """A complete, validated rule set; ``rules`` may be given partially.

    ``Policy(rules={"supervisory-review": {"days": 1}})`` is the default rule set
    with a one-day cadence for LOW and MEDIUM. After construction ``rules`` holds
    every rule and key, numbers as floats and ``enabled`` as a bool, read-only.
    """

    name: str = DEFAULT_NAME
    rules: ResolvedRules = field(default_factory=lambda: MappingProxyType({}), hash=False)
    directory: DirectoryRoles = field(default_factory=DirectoryRoles)
    #: the ``[authority]`` table by rule key (may be partial: the rest keeps its defaults)
    authority: Mapping[str, _authority.RuleSettings] = field(default_factory=lambda: _authority.DEFAULT_SETTINGS, hash=False)
    #: event types (import-format names) whose live recording must carry the person's signature
    signatures_required: tuple[str, ...] = ()
    #: retention, sealing and the consultation log (``[records]``)
    records: RecordsRules = field(default_factory=RecordsRules)
    # The version hashes this, and equality and hashing use it, because a
    # read-only mapping is not itself hashable.
    _canonical: str = field(init=False, repr=False)
    _authority_rules: _authority.Authority = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Checked here as well as in the file loader, so a Policy built in code
        # (tests, later callers) cannot hold a rule set a file would be refused for.
        object.__setattr__(self, "name", _checked_name(self.name, "Policy"))
        resolved = _resolved_rules(self.rules, "Policy")
        object.__setattr__(self, "rules", resolved)
        object.__setattr__(self, "authority", MappingProxyType({**_authority.DEFAULT_SETTINGS, **self.authority}))
        object.__setattr__(
            self, "_canonical", _canonical_json(resolved, self.directory, self.authority, self.signatures_required, self.records)
        )
        groups = {group: getattr(self.directory, f"{group}_roles") for group in _authority.ROLE_GROUPS}
        object.__setattr__(self, "_authority_rules", _authority.Authority(self.authority, groups))

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self._canonical.encode("utf-8")).hexdigest()
        return f"{self.name}@{digest[:12]}"

    def enabled(self, rule_id: str) -> bool:
        return bool(self.rules[_checked_rule_id(rule_id)][_ENABLED])

    def owner_accepted(self) -> timedelta:
        return self._days(OWNER_ACCEPTED, _DAYS)

    def initial_assessment(self, immediate_risk: bool) -> timedelta:
        key = _IMMEDIATE_RISK_DAYS if immediate_risk else _DAYS
        return self._days(INITIAL_ASSESSMENT, key)

    def offer_reply(self) -> timedelta:
        return self._days(OFFER_REPLY, _DAYS)

    def escalation_decided(self) -> timedelta:
        return self._days(ESCALATION_DECIDED, _DAYS)

    def supervisory_review(self, band: str | None) -> timedelta:
        """Cadence for the band; LOW, MEDIUM and None (no band yet) share ``days``."""
        cadences = self.rules[SUPERVISORY_REVIEW]
        if band is not None and _checked_band(band) in cadences:
            return self._days(SUPERVISORY_REVIEW, band)
        return self._days(SUPERVISORY_REVIEW, _DAYS)

    def external_reply(self) -> timedelta:
        return self._days(EXTERNAL_REPLY, _DAYS)

    def dissemination(self, band: str) -> timedelta:
        return self._days(DISSEMINATION, _checked_band(band))

    def force_acknowledgement(self, band: str) -> timedelta:
        return self._days(FORCE_ACKNOWLEDGEMENT, _checked_band(band))

    def force_action(self, band: str) -> timedelta:
        return self._days(FORCE_ACTION, _checked_band(band))

    def late_entry_threshold(self) -> timedelta:
        """An entry recorded more than this after it occurred is late."""
        return timedelta(hours=self.rules[LATE_ENTRY][_HOURS])

    def attestation_threshold(self) -> timedelta:
        """A late entry recorded more than this after it occurred needs attestation."""
        return self._days(LATE_ENTRY, _ATTESTATION_DAYS)

    def attestation_due_after(self) -> timedelta:
        """An entry that needs attestation should be attested this long after its recording."""
        return self._days(LATE_ENTRY_ATTESTATION, _DAYS)

    def authority_rules(self) -> _authority.Authority:
        """The authority rules as this policy sets them (``ledger.authority``)."""
        return self._authority_rules

    def supervisory_roles(self) -> tuple[str, ...]:
        """The roles that attest late entries and may correct or retract another's entry."""
        return self.directory.supervisory_roles

    def describe(self) -> list[RuleDescription]:
        """Every rule in ``RULE_IDS`` order with its numbers in days, unrounded."""
        return [
            RuleDescription(
                rule=rule_id,
                enabled=self.enabled(rule_id),
                days=self._days_by_case(rule_id),
                note=_NOTES.get(rule_id, ""),
            )
            for rule_id in RULE_IDS
        ]

    def _days(self, rule_id: str, key: str) -> timedelta:
        return timedelta(days=self.rules[rule_id][key])

    def _days_by_case(self, rule_id: str) -> dict[str, float]:
        numbers = self.rules[rule_id]
        if rule_id == INITIAL_ASSESSMENT:
            return {
                "standard": float(numbers[_DAYS]),
                "immediate_risk": float(numbers[_IMMEDIATE_RISK_DAYS]),
            }
        if rule_id == LATE_ENTRY:
            return {
                "late_after": float(numbers[_HOURS]) / 24,
                "attestation_after": float(numbers[_ATTESTATION_DAYS]),
            }
        if rule_id == SUPERVISORY_REVIEW:
            # Spelled out per band, highest first like the banded rules, so a
            # reader need not know that LOW and MEDIUM fall back to `days`.
            return {band: float(numbers.get(band, numbers[_DAYS])) for band in reversed(RISK_BANDS)}
        if _DAYS in numbers:
            return {"standard": float(numbers[_DAYS])}
        return {band: float(numbers[band]) for band in reversed(RISK_BANDS) if band in numbers}


def load_policy(path: str | os.PathLike[str] | None) -> Policy:
    """Read a policy file; None means the default rule set."""
    if path is None:
        return DEFAULT_POLICY
    source = os.fspath(path)
    try:
        with open(path, "rb") as policy_file:
            raw = policy_file.read()
    except FileNotFoundError as error:
        raise PolicyError(f"{source}: no such policy file") from error
    except OSError as error:
        raise PolicyError(f"{source}: cannot read policy file ({error.strerror})") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(f"{source}: not UTF-8 text (bad byte at offset {error.start})") from error
    return policy_from_toml(text, source)


def policy_from_toml(text: str, source: str = "<string>") -> Policy:
    """Parse a policy from TOML text; ``source`` names it in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message already carries "(at line N, column M)".
        raise PolicyError(f"{source}: not valid TOML: {_one_line(str(error))}") from error
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise _error(source, (key,), "is not a known key", expected=_TOP_LEVEL_KEYS)
    name = _checked_name(document.get("name", DEFAULT_NAME), source)
    # Resolved here, not just in Policy, so errors name the file rather than "Policy".
    rules = _resolved_rules(document.get("rules", {}), source)
    return Policy(
        name=name,
        rules=rules,
        directory=_checked_directory(document.get("directory", {}), source),
        authority=_checked_authority(document.get("authority", {}), source),
        signatures_required=_checked_signatures(document.get("signatures", {}), source),
        records=_checked_records(document.get("records", {}), source),
    )


def _checked_signatures(value: object, source: str) -> tuple[str, ...]:
    if not isinstance(value, Mapping):
        raise _error(source, ("signatures",), f"must be a table, got {_shown(value)}")
    for key in value:
        if key != "required":
            raise _error(source, ("signatures", key), "is not a known key", expected=("required",))
    types = value.get("required", [])
    if not isinstance(types, list) or not all(isinstance(t, str) and _EVENT_TYPE_PATTERN.fullmatch(t) for t in types):
        raise _error(source, ("signatures", "required"), f"must be a list of event types (ownership_accepted, …), got {_shown(types)}")
    return tuple(dict.fromkeys(types))


def _resolved_rules(overrides: object, source: str) -> ResolvedRules:
    """Defaults with ``overrides`` (the ``[rules]`` table shape) applied, validated."""
    if not isinstance(overrides, Mapping):
        raise _error(source, ("rules",), f"must be a table of rules, got {_shown(overrides)}")
    resolved: dict[str, dict[str, float | bool]] = {
        rule_id: {**{key: float(days) for key, days in numbers.items()}, _ENABLED: True} for rule_id, numbers in _DEFAULT_NUMBERS.items()
    }
    for rule_id, settings in overrides.items():
        rule_path = ("rules", rule_id)
        if rule_id not in resolved:
            raise _error(source, rule_path, "is not a known rule id", expected=RULE_IDS)
        if not isinstance(settings, Mapping):
            raise _error(source, rule_path, f"must be a table, got {_shown(settings)}")
        known_keys = tuple(resolved[rule_id])
        for key, value in settings.items():
            key_path = (*rule_path, key)
            if key not in known_keys:
                raise _error(source, key_path, "is not a known key", expected=known_keys)
            if key == _ENABLED:
                resolved[rule_id][key] = _checked_flag(value, source, key_path)
            else:
                resolved[rule_id][key] = _checked_number(value, source, key_path)
    _check_late_entry_thresholds(resolved[LATE_ENTRY], source)
    return MappingProxyType({rule_id: MappingProxyType(settings) for rule_id, settings in resolved.items()})


def _checked_number(value: object, source: str, path: tuple[object, ...]) -> float:
    unit = _HOURS if path[-1] == _HOURS else _DAYS
    limit = _MAX_DAYS * 24 if unit == _HOURS else _MAX_DAYS
    # bool is an int in Python, but `days = true` is a typo, not 1 day.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(source, path, f"must be a number of {unit}, got {_shown(value)}")
    # Written so that NaN fails too.
    if not 0 < value <= limit:
        raise _error(
            source,
            path,
            f"must be more than 0 and at most {limit} {unit}, got {_shown(value)}",
        )
    return float(value)


def _checked_flag(value: object, source: str, path: tuple[object, ...]) -> bool:
    if not isinstance(value, bool):
        raise _error(source, path, f"must be true or false, got {_shown(value)}")
    return value


def _check_late_entry_thresholds(late_entry: Mapping[str, float | bool], source: str) -> None:
    # Attestation is a stronger degree of lateness; below the late threshold it
    # would demand attestation for entries that need not even give a reason.
    if late_entry[_ATTESTATION_DAYS] * 24 < late_entry[_HOURS]:
        raise _error(
            source,
            ("rules", LATE_ENTRY, _ATTESTATION_DAYS),
            f"({late_entry[_ATTESTATION_DAYS]:g} days) must not be shorter than rules.{LATE_ENTRY}.{_HOURS} ({late_entry[_HOURS]:g} hours)",
        )


def _checked_name(value: object, source: str) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise _error(
            source,
            ("name",),
            f"must be letters, digits, '.', '_' or '-', got {_shown(value)}",
        )
    return value


def _checked_rule_id(rule_id: str) -> str:
    if rule_id not in RULE_IDS:
        raise ValueError(f"unknown rule id {rule_id!r} (expected one of: {', '.join(RULE_IDS)})")
    return rule_id


def _checked_band(band: str) -> str:
    # A misspelt band must not quietly get the slowest cadence.
    if band not in RISK_BANDS:
        raise ValueError(f"unknown risk band {band!r} (expected one of: {', '.join(RISK_BANDS)})")
    return band


def _canonical_json(
    rules: ResolvedRules,
    directory: DirectoryRoles,
    authority: Mapping[str, _authority.RuleSettings],
    signatures_required: tuple[str, ...] = (),
    records: RecordsRules = RecordsRules(),
) -> str:
    plain: dict[str, object] = {rule_id: dict(settings) for rule_id, settings in rules.items()}
    if directory != DirectoryRoles():  # the default roles leave a rule set's version as it was
        plain["[directory]"] = directory.as_dict()
    if dict(authority) != dict(_authority.DEFAULT_SETTINGS):  # so do the default authority rules
        plain["[authority]"] = {key: settings.as_dict() for key, settings in authority.items()}
    if signatures_required:  # and no signature requirement
        plain["[signatures]"] = sorted(signatures_required)
    if records != RecordsRules():  # likewise the default records rules
        plain["[records]"] = {
            "review_after_years": records.review_after_years,
            "consultation_log": records.consultation_log,
            "sealed_fields": list(records.sealed_fields),
        }
    return json.dumps(plain, sort_keys=True, separators=(",", ":"))


def _error(
    source: str,
    path: tuple[object, ...],
    problem: str,
    expected: tuple[str, ...] = (),
) -> PolicyError:
    message = f"{source}: {_key_path(path)} {problem}"
    if expected:
        message += f" (expected one of: {', '.join(expected)})"
    return PolicyError(_one_line(message))


def _key_path(parts: tuple[object, ...]) -> str:
    # Quoted as TOML would need them, so a key with a dot or space stays unambiguous.
    return ".".join(text if _BARE_TOML_KEY.fullmatch(text) else json.dumps(text) for text in (str(part) for part in parts))


def _shown(value: object, limit: int = 40) -> str:
    # Strings quoted and booleans spelled as in TOML, so `"7"` and `true` show as typed.
    text = json.dumps(value) if isinstance(value, str | bool) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


DEFAULT_POLICY: Final = Policy()
