"""The one place that maps external records to ledger commands.

A record is a JSON object in the import format (docs/DOMAIN.md §8): ``type``, ``referral``,
``occurred_at``, ``actor``, optional ``late_reason`` (and ``recorded_at`` in a historical
import), plus the fields of its type. The CLI's record commands build the same records, so
a command typed by hand and a line of an import are checked by the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from ledger.application import Ledger
from ledger.collector import collector_paused
from ledger.errors import InvalidInput, LedgerError
from ledger.migration import backfill_refusal, migration_refusal
from ledger.staff import UNIT_KINDS, person_stream, unit_stream
from ledger.values import DECISION_OUTCOMES, RISK_BANDS, Actor, Stamp, parse_instant, referral_id, subject_id

COMMON_FIELDS = frozenset({"type", "referral", "occurred_at", "actor", "late_reason"})


@dataclass(frozen=True)
class Field:
    """One field of a record type: its name in the import format and how it is checked."""

    name: str
    kind: str  # text | int | bool | instant | texts | grading | claim | band | outcome | code | unit_kind | fields
    required: bool = True
    help: str = ""
    #: the command's parameter name, where the import format uses another word
    param: str | None = None

    @property
    def parameter(self) -> str:
        return self.param or self.name


@dataclass(frozen=True)
class RecordType:
    """A type of record: its fields, the ledger command it calls and its CLI wording."""

    type: str
    command: str
    method: str
    fields: tuple[Field, ...]
    summary: str
    example: str
    on_subject: bool = False
    #: a staff directory record (no ``referral``): the CLI group its command belongs to
    directory_group: str | None = None

    @property
    def on_directory(self) -> bool:
        return self.directory_group is not None

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _f(name: str, kind: str = "text", required: bool = True, help: str = "", param: str | None = None) -> Field:
    return Field(name, kind, required, help, param)


_REASON = _f("reason", required=False, help="Why.")
_SUBJECT = _f("subject", help="The subject's pseudonymous reference.")

RECORD_TYPES: tuple[RecordType, ...] = (
    RecordType(
        "received",
        "receive",
        "receive",
        (
            _f("reference", required=False, help="Same as the referral reference (optional)."),
            _f("originator", help="Who sent it (force, agency, provider)."),
            _f("channel", help="How it arrived."),
            _f("originator_reference", required=False, help="The sender's own reference."),
            _f("claimed_subject_count", "int", required=False, help="How many subjects the sender says it names."),
            _f("grading", "grading", required=False, help="Grading as supplied, SCHEME:VALUE."),
            _f("handling_conditions", "texts", required=False, help="A handling condition (repeatable)."),
            _f("package_hash", required=False, help="Hash of the package as received."),
            _f("custodian_unit", help="The unit holding the package."),
            _f("immediate_risk", "bool", required=False, help="Flagged as immediate risk on receipt."),
        ),
        "Record receipt of a new referral (sets its custodian).",
        "refledger receive R-2012-0716 --originator X-FORCE --channel liaison --custodian-unit U-INTAKE --as P-01:registry@U-INTAKE",
    ),
    RecordType(
        "assessed",
        "assess",
        "assess",
        (
            _f("risk_band", "band", help="LOW, MEDIUM, HIGH or VERY_HIGH."),
            _f("immediate_risk", "bool", help="Immediate risk to a person."),
            _f("grading", "grading", required=False, help="Grading, SCHEME:VALUE."),
            _f("recommended_lead_unit", required=False, help="The unit recommended to lead."),
            _f("rationale", help="Why this assessment."),
        ),
        "Record the initial assessment of a referral.",
        "refledger assess R-2012-0716 --risk-band HIGH --rationale 'Contact offences alleged' --as P-02:analyst@U-TRIAGE",
    ),
    RecordType(
        "ownership_offered",
        "offer",
        "offer_ownership",
        (
            _f("to_unit", help="The unit offered ownership."),
            _f("reply_due", "instant", required=False, help="When an answer is due."),
        ),
        "Offer ownership to a unit (ownership passes only when that unit accepts).",
        "refledger offer R-2012-0716 --to-unit U-OPSA --reply-due 2012-07-29T10:00:00Z --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "ownership_accepted",
        "accept",
        "accept_ownership",
        (_REASON,),
        "Accept the open offer of ownership (by someone of the offered unit).",
        "refledger accept R-2012-0716 --as P-07:team-manager@U-OPSA",
    ),
    RecordType(
        "ownership_declined",
        "decline",
        "decline_ownership",
        (_f("reason", help="Why it is declined."),),
        "Decline the open offer of ownership (by someone of the offered unit).",
        "refledger decline R-2012-0716 --reason 'No capacity' --as P-07:team-manager@U-OPSA",
    ),
    RecordType(
        "offer_withdrawn",
        "withdraw-offer",
        "withdraw_offer",
        (_REASON,),
        "Withdraw the open offer of ownership.",
        "refledger withdraw-offer R-2012-0716 --reason 'Sent to the wrong team' --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "ownership_released",
        "release",
        "release_ownership",
        (_f("reason", help="Why ownership is given up."),),
        "Release ownership (by someone of the owning unit); the referral becomes unowned.",
        "refledger release R-2012-0716 --reason 'Outside our remit' --as P-07:team-manager@U-OPSA",
    ),
    RecordType(
        "custody_transferred",
        "transfer-custody",
        "transfer_custody",
        (_f("to_unit", help="The unit now holding the package."),),
        "Transfer custody of the package (by someone of the custodian unit).",
        "refledger transfer-custody R-2012-0716 --to-unit U-OPSA --as P-01:registry@U-INTAKE",
    ),
    RecordType(
        "escalation_raised",
        "escalate",
        "escalate",
        (
            _f("to_role", help="The role asked to decide."),
            _f("issue", help="What must be decided."),
            _f("decision_due", "instant", required=False, help="When a decision is due."),
        ),
        "Escalate an issue to a role for decision.",
        "refledger escalate R-2012-0716 --to-role head-of-tasking --issue 'No lead unit' --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "decision_recorded",
        "decide",
        "decide",
        (
            _f("outcome", "outcome", help="ASSIGN_OWNER, DEFER, REJECT, NO_FURTHER_ACTION or CLOSE."),
            _f("rationale", help="Why."),
            _f("options_considered", "texts", required=False, help="An option considered (repeatable)."),
            _f("revisit_by", "instant", required=False, help="When a DEFER is revisited (required for DEFER)."),
        ),
        "Record a decision (a DEFER must say when it is revisited).",
        "refledger decide R-2012-0716 --outcome DEFER --rationale 'Await capacity' --revisit-by 2012-09-01T10:00:00Z --as P-09:head-of-tasking@U-TASK",
    ),
    RecordType(
        "review_recorded",
        "review",
        "review",
        (
            _f("progress", help="Progress since the last review."),
            _f("owner_confirmed", help="The owning unit confirmed, or 'unowned'."),
            _f("next_review_by", "instant", required=False, help="When the next review is due."),
        ),
        "Record a supervisory review.",
        "refledger review R-2012-0716 --progress 'Awaiting owner' --owner-confirmed unowned --as P-10:supervisor@U-IDT",
    ),
    RecordType(
        "external_request_received",
        "external-request",
        "receive_external_request",
        (
            _f("from", help="Who asked.", param="requester"),
            _f("summary", help="What they asked."),
        ),
        "Record a request for an update from outside (e.g. the originating force).",
        "refledger external-request R-2012-0716 --from X-FORCE --summary 'Asked for an update' --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "external_reply_sent",
        "external-reply",
        "send_external_reply",
        (_f("reply_to", help="Whom the reply answers."),),
        "Record a reply sent to an external requester.",
        "refledger external-reply R-2012-0716 --reply-to X-FORCE --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "note_added",
        "note",
        "add_note",
        (
            _f("text", help="The note."),
            _f("claim", "claim", required=False, help="A claim in the note, TYPE:UNIT (never changes ownership)."),
        ),
        "Add a note (a claim in it is shown as disputed, never acted on).",
        "refledger note R-2012-0716 --text 'Tasking meeting: OPSA said it would take it' --claim ownership_accepted:U-OPSA --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "closed",
        "close",
        "close_referral",
        (_f("reason", help="Why it is closed."),),
        "Close the referral (ends ownership and every clock).",
        "refledger close R-2012-0716 --reason 'All subjects disseminated' --as P-07:team-manager@U-OPSA",
    ),
    RecordType(
        "reopened",
        "reopen",
        "reopen_referral",
        (_f("reason", help="Why it is reopened."),),
        "Reopen a closed referral (it starts unowned).",
        "refledger reopen R-2012-0716 --reason 'New intelligence' --as P-07:team-manager@U-OPSA",
    ),
    RecordType(
        "subject_extracted",
        "add",
        "extract_subject",
        (
            _SUBJECT,
            _f("category", help="suspect, misidentified, unknown, …"),
        ),
        "Add a subject found in the package (a pseudonymous reference only).",
        "refledger subject add R-2012-0716 SUBJ-0001 --category suspect --as P-02:analyst@U-TRIAGE",
        on_subject=True,
    ),
    RecordType(
        "subject_triaged",
        "triage",
        "triage_subject",
        (
            _SUBJECT,
            _f("risk_tool", help="The risk tool used."),
            _f("risk_tool_version", help="Its version."),
            _f("band", "band", help="LOW, MEDIUM, HIGH or VERY_HIGH."),
            _f("drivers", "texts", required=False, help="A risk driver (repeatable)."),
            _f("target_force", required=False, help="The force it should go to."),
        ),
        "Record a subject's risk triage.",
        "refledger subject triage R-2012-0716 SUBJ-0001 --risk-tool RPT --risk-tool-version 3.2 --band HIGH --as P-02:analyst@U-TRIAGE",
        on_subject=True,
    ),
    RecordType(
        "subject_disseminated",
        "disseminate",
        "disseminate_subject",
        (
            _SUBJECT,
            _f("to_force", help="The force it is sent to."),
            _f("authorised_by", help="Who authorised it."),
            _f("grading", "grading", required=False, help="Grading, SCHEME:VALUE (e.g. 3x5x2:2-B-C)."),
            _f("consent_reference", required=False, help="Consent reference from the originator."),
        ),
        "Record dissemination of a subject to a force.",
        "refledger subject disseminate R-2012-0716 SUBJ-0001 --to-force F-NORTH --authorised-by P-07 --as P-07:team-manager@U-OPSA",
        on_subject=True,
    ),
    RecordType(
        "force_acknowledged",
        "acknowledge",
        "acknowledge_subject",
        (_SUBJECT,),
        "Record that the force acknowledged the latest dissemination.",
        "refledger subject acknowledge R-2012-0716 SUBJ-0001 --as P-20:liaison@F-NORTH",
        on_subject=True,
    ),
    RecordType(
        "force_rejected",
        "reject",
        "reject_subject",
        (_SUBJECT, _f("reason", help="Why the force rejected it.")),
        "Record that the force rejected the latest dissemination.",
        "refledger subject reject R-2012-0716 SUBJ-0001 --reason 'Not in our area' --as P-20:liaison@F-NORTH",
        on_subject=True,
    ),
    RecordType(
        "force_action_recorded",
        "action",
        "record_force_action",
        (_SUBJECT, _f("action", help="What the force did.")),
        "Record an action the force took on a subject.",
        "refledger subject action R-2012-0716 SUBJ-0001 --action 'Warrant executed' --as P-20:liaison@F-NORTH",
        on_subject=True,
    ),
    RecordType(
        "subject_closed",
        "close",
        "close_subject",
        (
            _SUBJECT,
            _f("outcome", "code", help="NFA, RETURNED_TO_ORIGINATOR, …"),
            _f("rationale", help="Why."),
        ),
        "Close a subject.",
        "refledger subject close R-2012-0716 SUBJ-0001 --outcome NFA --rationale 'Misidentified' --as P-07:team-manager@U-OPSA",
        on_subject=True,
    ),
)

_AMENDED_VERSION = _f("version", "int", help="The stream version of the entry (see 'timeline').")
_AMENDED_SUBJECT = _f("subject", required=False, help="The subject, when the entry is one of that subject's.")

#: corrections, retractions and attestations of an earlier entry (``ledger.knowledge``)
AMENDMENT_TYPES: tuple[RecordType, ...] = (
    RecordType(
        "entry_corrected",
        "correct",
        "correct_entry",
        (
            _AMENDED_VERSION,
            _f("fields", "fields", help="FIELD=VALUE: a field of that entry and the value it should have had (repeatable)."),
            _f("reason", help="Why the entry was wrong."),
            _AMENDED_SUBJECT,
        ),
        "Correct fields of an earlier entry (the original stays; answers read the correction from now on).",
        "refledger correct R-2012-0716 --version 3 --field to_unit=U-OPSB --reason 'Offered to OPSB, typed OPSA' --as P-04:team-manager@U-IDT",
    ),
    RecordType(
        "entry_retracted",
        "retract",
        "retract_entry",
        (_AMENDED_VERSION, _f("reason", help="Why the entry was made in error."), _AMENDED_SUBJECT),
        "Retract an entry made in error (it stays on the record; answers ignore it from now on).",
        "refledger retract R-2012-0716 --version 4 --reason 'Recorded on the wrong referral' --as P-10:supervisor@U-IDT",
    ),
    RecordType(
        "entry_attested",
        "attest",
        "attest_entry",
        (_AMENDED_VERSION, _f("statement", help="What the supervisor attests."), _AMENDED_SUBJECT),
        "Attest a late entry, as a supervisory role.",
        "refledger attest R-2012-0716 --version 5 --statement 'Seen the pocket-book entry of that day' --as P-10:supervisor@U-IDT",
    ),
)
RECORD_TYPES += AMENDMENT_TYPES

_UNIT = _f("unit", help="The unit's id.")
_PERSON = _f("person", help="The person's pseudonymous staff id.")
_ROLE = _f("role", help="The role (e.g. team-manager, head-of-unit, analyst).")

#: the staff directory's records (no ``referral``); a contract other systems rely on
DIRECTORY_RECORD_TYPES: tuple[RecordType, ...] = (
    RecordType(
        "unit_registered",
        "add",
        "register_unit",
        (
            _UNIT,
            _f("name", help="The unit's name."),
            _f("kind", "unit_kind", help="agency-unit, force or partner."),
            _f("parent", required=False, help="The parent unit (registered before it)."),
        ),
        "Register a unit of the agency, an external force or a partner.",
        "refledger unit add U-OPS1 --name 'Operations 1' --kind agency-unit --parent U-NCA --as P-900:hr-officer@U-HR",
        directory_group="unit",
    ),
    RecordType(
        "unit_renamed",
        "rename",
        "rename_unit",
        (_UNIT, _f("name", help="The new name.")),
        "Rename a unit (its id stays).",
        "refledger unit rename U-OPS1 --name 'Operations North' --as P-900:hr-officer@U-HR",
        directory_group="unit",
    ),
    RecordType(
        "unit_closed",
        "close",
        "close_unit",
        (_UNIT, _REASON),
        "Close a unit (every role held in it ends).",
        "refledger unit close U-OPS1 --reason 'Merged into U-OPS2' --as P-900:hr-officer@U-HR",
        directory_group="unit",
    ),
    RecordType(
        "person_registered",
        "add",
        "register_person",
        (
            _PERSON,
            _f("employer", help="The employing organisation's id."),
            _f("login", required=False, help="The database or OS account they record under."),
        ),
        "Register a person (a pseudonymous staff id) and their employer.",
        "refledger person add P-042 --employer NCA --login jsmith --as P-900:hr-officer@U-HR",
        directory_group="person",
    ),
    RecordType(
        "person_left",
        "leave",
        "person_left",
        (_PERSON, _REASON),
        "Record that a person left the staff (their roles end).",
        "refledger person leave P-042 --reason retired --as P-900:hr-officer@U-HR",
        directory_group="person",
    ),
    RecordType(
        "role_assigned",
        "assign",
        "assign_role",
        (_PERSON, _ROLE, _UNIT, _f("acting", "bool", required=False, help="An acting or temporary holding.")),
        "Record that a person takes a role in a unit.",
        "refledger role assign P-042 --role team-manager --unit U-OPS1 --at 2024-01-08 --as P-900:hr-officer@U-HR",
        directory_group="role",
    ),
    RecordType(
        "role_ended",
        "end",
        "end_role",
        (_PERSON, _ROLE, _UNIT, _REASON),
        "Record that a person gives a role up.",
        "refledger role end P-042 --role team-manager --unit U-OPS1 --at 2024-06-30 --as P-900:hr-officer@U-HR",
        directory_group="role",
    ),
    RecordType(
        "secondment_started",
        "start",
        "start_secondment",
        (_PERSON, _f("to_organisation", help="The organisation they are seconded to.")),
        "Record that a person starts working for another organisation.",
        "refledger secondment start P-042 --to-organisation NCA --as P-900:hr-officer@U-HR",
        directory_group="secondment",
    ),
    RecordType(
        "secondment_ended",
        "end",
        "end_secondment",
        (_PERSON,),
        "Record that a person's secondment ends.",
        "refledger secondment end P-042 --as P-900:hr-officer@U-HR",
        directory_group="secondment",
    ),
    RecordType(
        "key_registered",
        "add-key",
        "register_key",
        (_PERSON, _f("public_key", help="The Ed25519 public key that signs for them (64 hex digits).")),
        "Register a person's signing key (refledger keygen --person makes one and registers it).",
        "refledger person add-key P-042 --public-key 8a0ac23da6138e4de4b3bdb25c7fa8e26d31aa3a252f067ba2106c40b3f0209d --as P-900:hr-officer@U-HR",
        directory_group="person",
    ),
    RecordType(
        "key_revoked",
        "revoke-key",
        "revoke_key",
        (_PERSON, _f("public_key", help="The public key that no longer signs for them (64 hex digits)."), _REASON),
        "Revoke a person's signing key: from now it signs nothing (what it signed before stays valid).",
        "refledger person revoke-key P-042 --public-key 8a0ac23da6138e4de4b3bdb25c7fa8e26d31aa3a252f067ba2106c40b3f0209d "
        "--reason 'laptop lost' --as P-900:hr-officer@U-HR",
        directory_group="person",
    ),
)
RECORD_TYPES = RECORD_TYPES + DIRECTORY_RECORD_TYPES

RECORD_TYPE = {t.type: t for t in RECORD_TYPES}
_ALLOWED = {
    (t.type, historical): (COMMON_FIELDS - ({"referral"} if t.on_directory else set()))
    | {f.name for f in t.fields}
    | ({"recorded_at"} if historical else set())
    for t in RECORD_TYPES
    for historical in (False, True)
}


@dataclass(frozen=True)
class Command:
    """A checked record, ready to run against the ledger."""

    record_type: RecordType
    #: None for a staff directory record
    referral: str | None
    stamp: Stamp
    arguments: dict[str, Any]
    #: the stream it records in (asked for several times per line: preload, re-import check, run)
    stream_id: UUID

    def run(self, ledger: Ledger) -> None:
        if self.referral is None:
            getattr(ledger, self.record_type.method)(self.stamp, **self.arguments)
        else:
            getattr(ledger, self.record_type.method)(self.referral, self.stamp, **self.arguments)


def _text(name: str, value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(f"{name} must be a non-empty string")
    return text


def _pair(name: str, value: Any, keys: tuple[str, str]) -> dict[str, str]:
    if not isinstance(value, dict) or value.keys() != set(keys):
        raise InvalidInput(f"{name} must be an object with exactly {keys[0]} and {keys[1]}")
    first, second = value[keys[0]], value[keys[1]]
    if type(first) is str and type(second) is str and first.strip() == first and second.strip() == second and first and second:
        return {keys[0]: first, keys[1]: second}  # the common case, already as _text would give it
    return {k: _text(f"{name}.{k}", value[k]) for k in keys}


#: the largest whole number a field holds: beyond 2^53-1 JSON readers (and RFC 8785) disagree
MAX_INTEGER = 2**53 - 1


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
        raise InvalidInput(f"{name} must be a whole number from 0 to {MAX_INTEGER} (2^53-1)")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false")
    return value


def _instant(name: str, value: Any) -> datetime:
    return parse_instant(_text(name, value), name)


def _texts(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidInput(f"{name} must be a list of strings")
    return [_text(name, v) for v in value]


def _one_of(choices: tuple[str, ...]) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value not in choices:
            raise InvalidInput(f"{name} must be one of {', '.join(choices)}")
        return value

    return check


def _code(name: str, value: Any) -> str:
    text = _text(name, value)
    if not text.replace("_", "").isalnum() or text.upper() != text:
        raise InvalidInput(f"{name} must be an upper-case code such as NFA or RETURNED_TO_ORIGINATOR")
    return text


def _fields(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value or not all(isinstance(k, str) and k.strip() for k in value):
        raise InvalidInput(f"{name} must be an object naming at least one field and its value")
    return {k.strip(): v for k, v in value.items()}


#: how a value of each field kind is checked (and normalised): kind -> check(name, value)
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "text": _text,
    "int": _int,
    "bool": _bool,
    "instant": _instant,
    "texts": _texts,
    "grading": lambda name, value: _pair(name, value, ("scheme", "value")),
    "claim": lambda name, value: _pair(name, value, ("type", "unit")),
    "band": _one_of(RISK_BANDS),
    "outcome": _one_of(DECISION_OUTCOMES),
    "unit_kind": _one_of(UNIT_KINDS),
    "code": _code,
    "fields": _fields,
}


def _check(field: Field, value: Any) -> Any:
    return _CHECKS[field.kind](field.name, value)


_EMPTY: dict[str, Any] = {"texts": [], "bool": False}
#: the envelope fields a record must hold: (directory record?, historical?) -> names
_REQUIRED = {
    (on_directory, historical): (() if on_directory else ("referral",))
    + ("occurred_at", "actor")
    + (("recorded_at",) if historical else ())
    for on_directory in (False, True)
    for historical in (False, True)
}
#: per record type, each field as parse_record reads it: (name, parameter, required, check, value when absent)
_PLANS = {t.type: tuple((f.name, f.parameter, f.required, _CHECKS[f.kind], _EMPTY.get(f.kind)) for f in t.fields) for t in RECORD_TYPES}


def parse_record(
    record: Any, historical: bool = False, source: dict[str, Any] | None = None, *, occurred_now_if_missing: bool = False
) -> Command:
    """Check one record of the import format and turn it into a Command.

    ``occurred_now_if_missing`` serves the CLI, where ``--at`` defaults to now.
    """
    if not isinstance(record, dict):
        raise InvalidInput("a record must be a JSON object")
    type_name = record.get("type")
    if not isinstance(type_name, str) or type_name not in RECORD_TYPE:
        raise InvalidInput(f"unknown type {type_name!r}")
    record_type = RECORD_TYPE[type_name]
    allowed = _ALLOWED[type_name, historical]
    if not record.keys() <= allowed:
        unknown = sorted(record.keys() - allowed)
        hint = " (recorded_at needs --historical)" if unknown == ["recorded_at"] else ""
        raise InvalidInput(f"unknown field {unknown[0]!r} for type {type_name}{hint}")
    for name in _REQUIRED[record_type.on_directory, historical]:
        if name not in record and not (name == "occurred_at" and occurred_now_if_missing):
            raise InvalidInput(f"missing {name}")
    referral = None if record_type.on_directory else _text("referral", record["referral"])
    late_reason = record.get("late_reason")
    occurred_at = record.get("occurred_at")
    stamp = Stamp(
        actor=Actor.from_dict(record["actor"]),
        occurred_at=None if occurred_at is None and "occurred_at" not in record else _instant("occurred_at", occurred_at),
        late_reason=None if late_reason is None else _text("late_reason", late_reason),
        source_recorded_at=_instant("recorded_at", record["recorded_at"]) if historical else None,
        source=source,
    )
    arguments: dict[str, Any] = {}
    for name, parameter, required, check, empty in _PLANS[type_name]:
        value = record.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"missing {name} for type {type_name}")
            arguments[parameter] = empty
        else:
            arguments[parameter] = check(name, value)
    if type_name == "received" and arguments.pop("reference") not in (None, referral):
        raise InvalidInput("reference differs from referral")
    return Command(record_type, referral, stamp, arguments, _stream_id(record_type, referral, arguments))


def _stream_id(record_type: RecordType, referral: str | None, arguments: dict[str, Any]) -> UUID:
    if referral is None:
        unit = arguments.get("unit")
        return unit_stream(unit) if unit is not None else person_stream(arguments["person"])
    if record_type.on_subject or arguments.get("subject"):
        return subject_id(referral, arguments["subject"])
    return referral_id(referral)


@dataclass(frozen=True)
class ImportResult:
    lines: int
    events: int
    referrals: int
    file_sha256: str
    #: checked against the ledger, nothing recorded
    dry_run: bool = False


#: lines read, checked and run per step: the streams a step touches are read in one query
STEP_LINES = 5_000
#: events the loaded aggregates may hold between steps (a few hundred MB at most); beyond,
#: they are forgotten and read again from the open transaction when a line needs them
KEEP_EVENTS = 100_000
_BOM = b"\xef\xbb\xbf"


def _commands(lines: Iterable[bytes], historical: bool, file_sha256: str) -> Iterator[tuple[int, Command]]:
    """Each non-blank line (numbered from 1) checked and turned into a Command, one at a time."""
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]  # a UTF-8 byte order mark, as spreadsheet exports write
        if not raw.strip():
            continue
        try:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise InvalidInput(f"malformed JSON ({error.args[0].split(':')[0]})") from None
            yield number, parse_record(record, historical, {"file": file_sha256, "line": number})
        except LedgerError as error:
            raise InvalidInput(f"line {number}: {error}") from None


class _DryRunDone(Exception):
    """Ends a dry run's transaction without committing it."""


def import_lines(
    ledger: Ledger,
    lines: Iterable[bytes],
    *,
    historical: bool = False,
    file_sha256: str,
    progress: Callable[[int], None] | None = None,
    importer: Actor | None = None,
    dry_run: bool = False,
    at_end: Callable[[], None] | None = None,
) -> ImportResult:
    """Record every line, atomically: all lines are saved together, or none is.

    Lines are read, checked and run in steps of STEP_LINES (the streams of a step are read
    in one query), all inside one batch. Each event keeps its provenance ({file, line}).
    A file whose lines are already in a stream it touches is refused, so importing the same
    file twice cannot duplicate history. ``dry_run`` checks every line against the ledger
    (every rule, every invariant) and records nothing. ``at_end`` runs after the last line,
    inside the batch: what it raises refuses the whole file, what it records is saved with it.
    """
    from ledger.storage import held_transaction

    if historical:
        refuse_closed_migration(ledger)
    span: list[datetime] = []

    touched: set[UUID] = set()
    referrals: set[str] = set()
    count = 0
    try:
        with collector_paused(), held_transaction(ledger), ledger.batch():
            commands = _commands(lines, historical, file_sha256)
            while step := list(islice(commands, STEP_LINES)):
                _run_step(ledger, step, file_sha256, touched, progress)
                ledger.flush(keep_events=KEEP_EVENTS)  # saved inside the one transaction: memory stays bounded
                count += len(step)
                referrals.update(command.referral for _, command in step if command.referral is not None)
                span = source_span(span, step)
            if count == 0:
                raise InvalidInput("the file holds no events (it is empty or blank)")
            record_migration(ledger, count, len(referrals), span, file_sha256, importer)
            if at_end is not None:
                at_end()
            if dry_run:
                raise _DryRunDone  # every line was checked and saved in the transaction: roll it back
    except _DryRunDone:
        pass
    return ImportResult(lines=count, events=count, referrals=len(referrals), file_sha256=file_sha256, dry_run=dry_run)


def record_commands(
    ledger: Ledger,
    commands: Sequence[tuple[int, Command]],
    file_sha256: str,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Run checked commands (each with its line number) in one transaction, or none of them."""
    with ledger.batch():
        _run_step(ledger, commands, file_sha256, set(), progress)


def _run_step(
    ledger: Ledger,
    commands: Sequence[tuple[int, Command]],
    file_sha256: str,
    touched: set[UUID],
    progress: Callable[[int], None] | None,
) -> None:
    """Inside a batch: run one step of commands.

    The streams they touch are read in one go first; a stream that already holds events of
    this file means the file was imported before, and the whole file is refused.
    """
    ledger.preload(
        [command.stream_id for _, command in commands],
        directories=[
            command.referral for _, command in commands if command.referral is not None and command.record_type.method == "extract_subject"
        ],
    )
    for number, command in commands:
        if progress is not None:
            progress(number)
        try:
            if command.stream_id not in touched:
                touched.add(command.stream_id)
                refuse_reimport(ledger, command.stream_id, file_sha256)
            refuse_backfill(ledger, command, file_sha256)
            command.run(ledger)
        except LedgerError as error:
            raise InvalidInput(f"line {number}: {error}") from None


def refuse_reimport(ledger: Ledger, stream_id: UUID, file_sha256: str) -> None:
    for event in ledger.loaded_history(stream_id):
        source = event.source
        if isinstance(source, Mapping) and source.get("file") == file_sha256:
            raise InvalidInput(f"this file (sha256 {file_sha256[:12]}…) was already imported; nothing was recorded")


def refuse_closed_migration(ledger: Ledger) -> None:
    """Before a historical import: refused once the ledger's migration is over (one line)."""
    refusal = migration_refusal(ledger.migration(), ledger.head() > 0)
    if refusal is not None:
        raise InvalidInput(refusal)


def refuse_backfill(ledger: Ledger, command: Command, file_sha256: str) -> None:
    """A historical line may only build a referral (or directory stream) new to the ledger."""
    if command.stamp.source_recorded_at is None:
        return
    streams = [command.stream_id] if command.referral is None else list(dict.fromkeys([referral_id(command.referral), command.stream_id]))
    for stream in streams:
        earlier = [e for e in ledger.loaded_history(stream) if not (isinstance(e.source, Mapping) and e.source.get("file") == file_sha256)]
        refusal = backfill_refusal(command.referral or "this directory entry's unit or person", earlier)
        if refusal is not None:
            raise InvalidInput(refusal)


def source_span(span: list[datetime], step: Sequence[tuple[int, Command]]) -> list[datetime]:
    """The earliest and latest source recorded_at so far ([] while there is none)."""
    recorded = [c.stamp.source_recorded_at for _, c in step if c.stamp.source_recorded_at is not None]
    return [min([*span, *recorded]), max([*span, *recorded])] if recorded or span else []


def record_migration(
    ledger: Ledger, lines: int, referrals: int, span: Sequence[datetime], file_sha256: str, importer: Actor | None
) -> None:
    """Inside the import's batch: a historical import records itself in the migration stream."""
    if not span:
        return
    ledger.record_history_import(Stamp(actor=importer or local_importer()), file_sha256, lines, referrals, (span[0], span[1]))


def local_importer() -> Actor:
    """Who imports when no ``--as`` is given: the operating-system account."""
    import getpass

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor(login.replace(":", "_").replace("@", "_") or "unknown", "importer", "local")


#: read files in blocks of this size (hashing, spooling standard input)
_BLOCK = 1 << 20


def import_file(
    ledger: Ledger,
    path: Path | None,
    *,
    historical: bool = False,
    progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
    importer: Actor | None = None,
) -> ImportResult:
    """Import a JSON Lines file (``None``: standard input), streaming it: never the whole file in memory.

    The file is hashed first (the hash is every event's provenance), then read line by line.
    Standard input is spooled to a temporary file on the way, so it can be read twice.
    """
    import sys
    import tempfile

    name = "standard input" if path is None else str(path)
    try:
        with tempfile.TemporaryFile() if path is None else path.open("rb") as handle:
            if path is None:
                source = sys.stdin.buffer
                while block := source.read(_BLOCK):
                    handle.write(block)
            sha = _sha256(handle)

            def unchanged() -> None:
                if _sha256(handle) != sha:
                    raise InvalidInput(f"{name} changed while it was imported; nothing was recorded")

            return import_lines(
                ledger,
                handle,
                historical=historical,
                file_sha256=sha,
                progress=progress,
                dry_run=dry_run,
                at_end=unchanged,
                importer=importer,
            )
    except OSError as error:
        raise InvalidInput(f"cannot read {name}: {error.strerror or error}") from None


def _sha256(handle: Any) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    while block := handle.read(_BLOCK):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)
