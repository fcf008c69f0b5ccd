"""Who may record what: every authority rule of docs/DOMAIN.md §6.1, each one function, in one table.

The principle: an external force answers only for subjects disseminated to it; what moves or
decides a referral needs the owning unit (the custodian while nobody owns it) or a
supervisory, tasking or decision role of the agency.

- **Unit-level** parts (the owning unit, the custodian, the offered unit, the force the
  subject was last sent to) hold on every ledger.
- **Role-level** parts (a role of one of the policy's ``[directory]`` groups, held in an
  agency unit, never an external force) need the staff directory to know which units are
  forces, so they apply once the directory is in force. Before that, a rule that a role
  could satisfy does not refuse: it cannot be judged yet.

A rule is judged at the event's ``occurred_at`` against the state the aggregate already has
(everything recorded before it): nothing here reads a stream. Live recording refuses a breach
(``RuleViolation`` naming the rule id); ``import --historical`` records it and
``refledger audit authority`` lists it. The rules that decide ownership and custody
(``authority-answer-offer``, ``authority-release``, ``authority-custody``) and where a subject
is (``authority-force-answer``) are fixed: the folds (``ledger.referral.ReferralState``,
``ledger.subject.SubjectState``) call them too, so an answer, a release or a transfer recorded
outside them (only history can be) moves nothing.

The policy's ``[authority]`` table switches a configurable rule off or changes the role
groups (and extra role names) that satisfy its role-level part (``ledger.policy``). Adding a
rule (e.g. for a new event type) is one entry in ``RULES`` and one function.

Standard library only; event types are named by their topics, so that the aggregates can
import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol

AGENCY_UNIT: Final = "agency-unit"
#: the role groups of the policy's ``[directory]`` table a rule may name (``<group>_roles`` there)
ROLE_GROUPS: Final[tuple[str, ...]] = ("accountable", "supervisory", "tasking", "decision", "records")


class Who(Protocol):
    """The actor of an event (``ledger.values.Actor``)."""

    @property
    def role(self) -> str: ...

    @property
    def unit(self) -> str: ...


class ReferralView(Protocol):
    """What a rule reads of a referral at an instant (``ledger.referral.ReferralState``)."""

    @property
    def owner_unit(self) -> str | None: ...

    @property
    def custodian_unit(self) -> str: ...

    @property
    def offered_unit(self) -> str | None: ...

    @property
    def escalated_to(self) -> tuple[str, ...]: ...


class Ask(NamedTuple):
    """One question to a rule: may ``who`` record this, with the referral (and subject) as they stand?

    A named tuple rather than a frozen dataclass: one is built for nearly every event recorded
    or folded, and a tuple is built in a third of the time."""

    who: Who
    referral: ReferralView
    #: the force the subject's latest dissemination went to (subject events only)
    force: str | None
    #: the role names that satisfy the rule's role-level part (its groups and extra roles)
    roles: frozenset[str]
    #: the actor's unit is an agency unit; None while the directory is not in force
    agency: bool | None
    #: the rule's roles in words ("supervisory or decision role")
    described: str = "role"

    def by_role(self, *also: str) -> bool:
        """The role-level part: a role of the rule (or ``also``) held in an agency unit.

        Until the directory is in force it cannot be judged, so it holds if any role could.
        """
        if self.agency is None:
            return bool(self.roles or also)
        return self.agency and (self.who.role in self.roles or self.who.role in also)

    def roles_text(self, *also: str) -> str:
        return self.described + (f" (or {_either(also)})" if also else "")

    def owner_or_custodian(self) -> str:
        """The unit that answers for the referral now: its owner, or its custodian while unowned."""
        return self.referral.owner_unit or self.referral.custodian_unit


# --- the rules: each returns why ``ask`` is outside it, or None --------------------------------


def _either(names: tuple[str, ...] | list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def answer_offer(ask: Ask) -> str | None:
    """Accept or decline: only someone of the offered unit."""
    offered = ask.referral.offered_unit
    if offered is None or ask.who.unit == offered:  # no open offer: a state rule refuses it
        return None
    return f"the open offer is to {offered}; {ask.who.unit} cannot answer it"


def offer(ask: Ask) -> str | None:
    """Offer or withdraw an offer: the owning unit; while unowned, the custodian's unit or an
    agency unit's accountable, supervisory or tasking role."""
    return _moves(ask, "offer ownership of it")


def escalate(ask: Ask) -> str | None:
    """Raise an escalation: as for an offer."""
    return _moves(ask, "escalate it")


def _moves(ask: Ask, what: str) -> str | None:
    owner = ask.referral.owner_unit
    if owner is not None:
        return None if ask.who.unit == owner else f"only the owner {owner} may {what}, not {ask.who.unit}"
    if ask.who.unit == ask.referral.custodian_unit or ask.by_role():
        return None
    return (
        f"while nobody owns it, only the custodian {ask.referral.custodian_unit} or an agency unit's "
        f"{ask.roles_text()} may {what}, not {ask.who.role}@{ask.who.unit}"
    )


def release(ask: Ask) -> str | None:
    """Release ownership: only someone of the owning unit."""
    owner = ask.referral.owner_unit
    if owner is None or ask.who.unit == owner:  # nobody owns it: a state rule refuses it
        return None
    return f"only the owner {owner} can release it, not {ask.who.unit}"


def custody(ask: Ask) -> str | None:
    """Transfer custody: only someone of the custodian's unit."""
    custodian = ask.referral.custodian_unit
    if ask.who.unit == custodian:
        return None
    return f"only the custodian {custodian} can transfer custody, not {ask.who.unit}"


def review(ask: Ask) -> str | None:
    """Record a supervisory review: a supervisory role of an agency unit."""
    if ask.by_role():
        return None
    return f"a review needs an agency unit's {ask.roles_text()}, not {ask.who.role}@{ask.who.unit}"


def decide(ask: Ask) -> str | None:
    """Record a decision: the role an open escalation was raised to, or a supervisory or decision role."""
    raised = ask.referral.escalated_to
    if ask.by_role(*raised):
        return None
    return f"a decision needs an agency unit's {ask.roles_text(*raised)}, not {ask.who.role}@{ask.who.unit}"


def close(ask: Ask) -> str | None:
    """Close or reopen: the owning unit (the custodian while unowned) or a decision role."""
    unit = ask.owner_or_custodian()
    if ask.who.unit == unit or ask.by_role():
        return None
    return f"only {unit} (owner, or custodian while unowned) or an agency unit's {ask.roles_text()} may close or reopen it, not {ask.who.role}@{ask.who.unit}"


def handle_subject(ask: Ask) -> str | None:
    """Triage, disseminate or close a subject: the referral's owning unit (custodian while
    unowned) or a supervisory role."""
    unit = ask.owner_or_custodian()
    if ask.who.unit == unit or ask.by_role():
        return None
    return (
        f"only {unit} (the referral's owner, or its custodian while unowned) or an agency unit's {ask.roles_text()} "
        f"may triage, disseminate or close its subjects, not {ask.who.role}@{ask.who.unit}"
    )


def force_answer(ask: Ask) -> str | None:
    """A force's acknowledgement, rejection or action: only someone of the force the subject's
    latest dissemination went to."""
    if ask.force is None or ask.who.unit == ask.force:
        return None  # never disseminated: a state rule refuses it
    return f"its latest dissemination went to {ask.force}; {ask.who.unit} cannot answer for it"


def dispose(ask: Ask) -> str | None:
    """Dispose of a referral's free text: a records-management role, of an agency unit.

    A disposal cannot be undone, so this role-level part is judged before the directory is in
    force too, on the role the actor states (the directory then holds the actor to it)."""
    if ask.who.role in ask.roles and ask.agency is not False:
        return None
    named = f" ({', '.join(sorted(ask.roles))})" if ask.roles else ""
    return f"a disposal needs an agency unit's {ask.roles_text()}{named}, not {ask.who.role}@{ask.who.unit}"


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One authority rule: its id, its ``[authority]`` key, the event topics it judges, its function."""

    id: str
    key: str
    topics: tuple[str, ...]
    check: Callable[[Ask], str | None]
    #: the role groups that satisfy its role-level part by default
    roles: tuple[str, ...] = ()
    #: decides ownership or custody: the fold uses it, so a policy cannot change it
    fixed: bool = False

    @property
    def summary(self) -> str:
        return " ".join((self.check.__doc__ or "").split("\n\n")[0].split())


def _referral(*names: str) -> tuple[str, ...]:
    return tuple(f"refledger:Referral.{name}" for name in names)


def _subject(*names: str) -> tuple[str, ...]:
    return tuple(f"refledger:Subject.{name}" for name in names)


RULES: Final[tuple[Rule, ...]] = (
    Rule("authority-answer-offer", "answer-offer", _referral("OwnershipAccepted", "OwnershipDeclined"), answer_offer, fixed=True),
    Rule("authority-offer", "offer", _referral("OwnershipOffered", "OfferWithdrawn"), offer, ("accountable", "supervisory", "tasking")),
    Rule("authority-escalate", "escalate", _referral("EscalationRaised"), escalate, ("accountable", "supervisory", "tasking")),
    Rule("authority-release", "release", _referral("OwnershipReleased"), release, fixed=True),
    Rule("authority-custody", "custody", _referral("CustodyTransferred"), custody, fixed=True),
    Rule("authority-review", "review", _referral("ReviewRecorded"), review, ("supervisory",)),
    Rule("authority-decide", "decide", _referral("DecisionRecorded"), decide, ("supervisory", "decision")),
    Rule("authority-close", "close", _referral("Closed", "Reopened"), close, ("decision",)),
    Rule("authority-subject", "subject", _subject("Triaged", "Disseminated", "Closed"), handle_subject, ("supervisory",)),
    Rule(
        "authority-force-answer",
        "force-answer",
        _subject("ForceAcknowledged", "ForceRejected", "ForceActionRecorded"),
        force_answer,
        fixed=True,
    ),
    Rule("authority-dispose", "dispose", ("refledger:Records.Disposed",), dispose, ("records",)),
)
RULE_IDS: Final[tuple[str, ...]] = tuple(rule.id for rule in RULES)
BY_KEY: Final[Mapping[str, Rule]] = MappingProxyType({rule.key: rule for rule in RULES})
_BY_TOPIC: Final[Mapping[str, Rule]] = MappingProxyType({topic: rule for rule in RULES for topic in rule.topics})


@dataclass(frozen=True)
class RuleSettings:
    """How a policy sets one rule: on or off, the role groups and extra role names it accepts."""

    enabled: bool = True
    roles: tuple[str, ...] = ()
    also_roles: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"enabled": self.enabled, "roles": list(self.roles), "also_roles": list(self.also_roles)}


DEFAULT_SETTINGS: Final[Mapping[str, RuleSettings]] = MappingProxyType({rule.key: RuleSettings(roles=rule.roles) for rule in RULES})


@dataclass(frozen=True)
class Authority:
    """The rules as one policy sets them: ``settings`` by ``[authority]`` key, ``groups`` by role
    group (the policy's ``[directory]`` roles)."""

    settings: Mapping[str, RuleSettings] = field(default_factory=lambda: DEFAULT_SETTINGS)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _roles: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _described: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        roles = {
            rule.key: frozenset(role for group in self.settings[rule.key].roles for role in self.groups.get(group, ())).union(
                self.settings[rule.key].also_roles
            )
            for rule in RULES
        }
        object.__setattr__(self, "_roles", roles)
        described = {}
        for rule in RULES:
            chosen = self.settings[rule.key]
            words = [*chosen.roles, *chosen.also_roles]
            described[rule.key] = f"{_either(words)} role" if words else "role"
        object.__setattr__(self, "_described", described)

    def breach(
        self, topic: str, who: Who, referral: ReferralView, *, force: str | None = None, agency: bool | None = None
    ) -> tuple[str, str] | None:
        """(rule id, reason) if an event of ``topic`` by ``who`` is outside its rule; None otherwise
        (or when no rule judges that event, or the policy switched it off)."""
        rule = _BY_TOPIC.get(topic)
        if rule is None or not self.settings[rule.key].enabled:
            return None
        reason = rule.check(Ask(who, referral, force, self._roles[rule.key], agency, self._described[rule.key]))
        return None if reason is None else (rule.id, reason)


class _UnitOnly(NamedTuple):
    unit: str
    role: str = ""


@dataclass(frozen=True)
class _NoReferral:
    """What a subject's fold passes: the fixed subject rule reads the force only."""

    owner_unit: str | None = None
    custodian_unit: str = ""
    offered_unit: str | None = None
    escalated_to: tuple[str, ...] = ()


_NO_REFERRAL: Final = _NoReferral()


def fixed_breach(topic: str, unit: str, referral: ReferralView = _NO_REFERRAL, force: str | None = None) -> tuple[str, str] | None:
    """For the folds: (rule id, reason) if an answer to an offer, a release, a custody transfer or
    a force's answer by someone of ``unit`` is outside its fixed rule, so that it moves nothing.
    Any other event: None."""
    rule = _BY_TOPIC.get(topic)
    if rule is None or not rule.fixed:
        return None
    reason = rule.check(Ask(_UnitOnly(unit), referral, force, frozenset(), None))
    return None if reason is None else (rule.id, reason)


@dataclass(frozen=True)
class Judge:
    """What a live entry is judged with: the policy's rules, whether its actor's unit is an
    agency unit (None: the directory is not in force), and for a subject event its referral's state."""

    authority: Authority
    agency: bool | None
    referral: ReferralView | None = None

    def breach(self, topic: str, who: Who, referral: ReferralView, force: str | None = None) -> tuple[str, str] | None:
        return self.authority.breach(topic, who, referral, force=force, agency=self.agency)
