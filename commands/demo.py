"""``refledger demo``: a fictional bulk referral that falls between chairs, and the answers.

The story is written as an import file (kept beside the demo ledger so a reader can see the
raw events) and recorded through the same historical import a migration would use. Then
the demo asks the questions an inquiry would ask, with the same commands a user types.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

REFERENCE = "R-2012-0716"
PACKAGE = "R-2013-1130"
SUBJECTS = [f"SUBJ-{n:02d}" for n in range(1, 9)]

# who does what (pseudonymous staff ids)
REGISTRY = ("P-011", "registry-officer", "U-INTAKE")
ANALYST = ("P-023", "analyst", "U-TRIAGE")
TRIAGE_MANAGER = ("P-024", "team-manager", "U-TRIAGE")
OPSA = ("P-031", "team-manager", "U-OPSA")
OPSB = ("P-042", "team-manager", "U-OPSB")
OPSB_DI = ("P-045", "detective-inspector", "U-OPSB")
TASKING = ("P-050", "head-of-tasking", "U-TASKING")
LIAISON = ("P-061", "liaison-officer", "U-LIAISON")
FORCES = {
    "F-NORTH": ("P-101", "force-liaison", "F-NORTH"),
    "F-EAST": ("P-102", "force-liaison", "F-EAST"),
    "F-WEST": ("P-103", "force-liaison", "F-WEST"),
}


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _z(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def story() -> list[dict[str, Any]]:
    """The events, in recording order (recorded_at: minutes after occurring, unless late)."""
    lines: list[tuple[datetime, dict[str, Any]]] = []

    def event(
        kind: str, when: str, actor: tuple[str, str, str], referral: str = REFERENCE, lag: timedelta = timedelta(minutes=12), **fields: Any
    ) -> None:
        occurred = _t(when)
        record: dict[str, Any] = {
            "type": kind,
            "referral": referral,
            "occurred_at": _z(occurred),
            "recorded_at": _z(occurred + lag),
            "actor": dict(zip(("person", "role", "unit"), actor, strict=True)),
        }
        record.update(fields)
        lines.append((occurred + lag, record))

    # July 2012: a bulk package arrives from overseas and is passed around
    event(
        "received",
        "2012-07-16T09:10:00",
        REGISTRY,
        originator="X-OVERSEAS-POLICE",
        channel="international liaison",
        originator_reference="OVS-2012-4471",
        claimed_subject_count=2345,
        grading={"scheme": "admiralty", "value": "B2"},
        handling_conditions=["law-enforcement use only", "originator consent before onward dissemination"],
        package_hash="sha256:9c1e2f0d7a4b8e6c3d5f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d",
        custodian_unit="U-INTAKE",
    )
    event(
        "assessed",
        "2012-07-18T15:00:00",
        ANALYST,
        risk_band="HIGH",
        immediate_risk=False,
        grading={"scheme": "3x5x2", "value": "2-B-C"},
        recommended_lead_unit="U-OPSA",
        rationale="Customer records of a site selling indecent images of children; 2,345 named customers, some with access to children.",
    )
    event("ownership_offered", "2012-07-20T10:00:00", TRIAGE_MANAGER, to_unit="U-OPSA", reply_due="2012-07-25T10:00:00Z")
    event(
        "ownership_declined",
        "2012-07-25T16:30:00",
        OPSA,
        reason="No capacity: two live operations. Suggest U-OPSB as it holds the payment-data expertise.",
    )
    event(
        "escalation_raised",
        "2012-07-26T09:00:00",
        TRIAGE_MANAGER,
        to_role="head-of-tasking",
        issue="No lead unit for the overseas customer list.",
        decision_due="2012-08-02T12:00:00Z",
    )
    event(
        "decision_recorded",
        "2012-08-02T11:00:00",
        TASKING,
        outcome="DEFER",
        rationale="Await the originator's fuller data set before choosing a lead.",
        options_considered=["U-OPSA lead", "U-OPSB lead", "split by region"],
        revisit_by="2012-08-30T12:00:00Z",
    )
    event(
        "note_added",
        "2012-08-02T11:30:00",
        ANALYST,
        lag=timedelta(days=3, hours=2),
        late_reason="Tasking minutes typed up after the meeting.",
        text="Tasking meeting: U-OPSB said it would pick the package up.",
        claim={"type": "ownership_accepted", "unit": "U-OPSB"},
    )
    # sixteen months of silence; then the originator asks for an update
    event(
        "external_request_received",
        "2013-11-20T08:45:00",
        LIAISON,
        **{"from": "X-OVERSEAS-POLICE"},
        summary="Originator asks what action was taken on the 2012 customer list.",
    )
    event(
        "escalation_raised",
        "2013-11-20T10:00:00",
        LIAISON,
        to_role="head-of-tasking",
        issue="Originator chasing; package still has no owner.",
        decision_due="2013-11-22T12:00:00Z",
    )
    event(
        "decision_recorded",
        "2013-11-21T14:00:00",
        TASKING,
        outcome="ASSIGN_OWNER",
        rationale="U-OPSB to lead; assess all 2,345 names by risk.",
    )
    event("ownership_offered", "2013-11-21T14:30:00", TASKING, to_unit="U-OPSB", reply_due="2013-11-22T14:30:00Z")
    event(
        "ownership_accepted",
        "2013-11-22T09:00:00",
        OPSB,
        lag=timedelta(days=9, hours=3),
        late_reason="Accepted by e-mail to the tasking desk; entered at the weekly reconciliation.",
        reason="Accepted; triage of subjects starts at once.",
    )
    event("custody_transferred", "2013-11-22T11:00:00", REGISTRY, to_unit="U-OPSB")
    event("external_reply_sent", "2013-11-26T16:00:00", LIAISON, reply_to="X-OVERSEAS-POLICE")
    event(
        "review_recorded",
        "2013-11-29T10:00:00",
        OPSB_DI,
        progress="First supervisory review since receipt: owner confirmed, triage under way.",
        owner_confirmed="U-OPSB",
        next_review_by="2013-12-13T10:00:00Z",
    )

    # A first tranche of the customer list is registered as its own package and worked subject by subject
    event(
        "received",
        "2013-11-30T09:00:00",
        REGISTRY,
        referral=PACKAGE,
        originator="X-OVERSEAS-POLICE",
        channel="international liaison",
        originator_reference="OVS-2012-4471/T1",
        claimed_subject_count=len(SUBJECTS),
        custodian_unit="U-OPSB",
    )
    event("ownership_offered", "2013-11-30T09:10:00", TASKING, referral=PACKAGE, to_unit="U-OPSB")
    event("ownership_accepted", "2013-11-30T09:20:00", OPSB, referral=PACKAGE)
    event(
        "assessed",
        "2013-11-30T11:00:00",
        OPSB_DI,
        referral=PACKAGE,
        risk_band="HIGH",
        immediate_risk=False,
        rationale="First tranche: the subjects with access to children.",
    )
    bands = ["VERY_HIGH", "HIGH", "HIGH", "MEDIUM", "MEDIUM", "MEDIUM", "LOW", "LOW"]
    forces = ["F-NORTH", "F-EAST", "F-WEST", "F-NORTH", "F-EAST", "F-WEST", "F-NORTH", "F-EAST"]
    for n, subject in enumerate(SUBJECTS):
        event("subject_extracted", f"2013-12-02T09:{n:02d}:00", ANALYST, referral=PACKAGE, subject=subject, category="suspect")
    for n, subject in enumerate(SUBJECTS):
        event(
            "subject_triaged",
            f"2013-12-02T14:{n:02d}:00",
            ANALYST,
            referral=PACKAGE,
            subject=subject,
            risk_tool="RPT",
            risk_tool_version="3.2",
            band=bands[n],
            target_force=forces[n],
            drivers=["works with children"] if bands[n] == "VERY_HIGH" else [],
        )
    for n, subject in enumerate(SUBJECTS[:4]):
        event(
            "subject_disseminated",
            f"2013-12-03T10:{n:02d}:00",
            OPSB,
            referral=PACKAGE,
            subject=subject,
            to_force=forces[n],
            authorised_by="P-042",
            grading={"scheme": "3x5x2", "value": "2-B-C"},
            consent_reference="OVS-CONSENT-118",
        )
    event("force_acknowledged", "2013-12-03T15:00:00", FORCES["F-NORTH"], referral=PACKAGE, subject="SUBJ-01")
    event(
        "force_action_recorded",
        "2013-12-04T06:30:00",
        FORCES["F-NORTH"],
        referral=PACKAGE,
        subject="SUBJ-01",
        action="Warrant executed; devices seized; subject arrested.",
    )
    event(
        "force_rejected",
        "2013-12-04T11:00:00",
        FORCES["F-EAST"],
        referral=PACKAGE,
        subject="SUBJ-02",
        reason="Subject lives in F-WEST's area.",
    )
    event(
        "subject_disseminated", "2013-12-04T14:00:00", OPSB, referral=PACKAGE, subject="SUBJ-02", to_force="F-WEST", authorised_by="P-042"
    )
    event("force_acknowledged", "2013-12-04T16:00:00", FORCES["F-WEST"], referral=PACKAGE, subject="SUBJ-02")
    event("force_acknowledged", "2013-12-05T09:00:00", FORCES["F-NORTH"], referral=PACKAGE, subject="SUBJ-04")
    event(
        "subject_closed",
        "2013-12-05T12:00:00",
        OPSB,
        referral=PACKAGE,
        subject="SUBJ-08",
        outcome="NFA",
        rationale="Misidentified: card used fraudulently.",
    )
    # SUBJ-03 stays in transit to F-WEST: sent, never acknowledged
    lines.sort(key=lambda pair: pair[0])
    return [record for _, record in lines]


HR = ("P-001", "hr-officer", "U-HR")
AGENCY = "NCA"


def staff() -> list[dict[str, Any]]:
    """The staff directory of the story: units, people, roles held, a secondment, a retirement."""
    lines: list[dict[str, Any]] = []

    def entry(type_: str, when: str, **fields: Any) -> None:
        at = _z(_t(when))
        lines.append(
            {"type": type_, "occurred_at": at, "recorded_at": at, "actor": dict(zip(("person", "role", "unit"), HR, strict=True)), **fields}
        )

    start = "2012-01-02T09:00:00"
    entry("unit_registered", start, unit="U-HR", name="Human resources", kind="agency-unit")
    for unit, name in (
        ("U-INTAKE", "Intake and registry"),
        ("U-TRIAGE", "Triage"),
        ("U-OPSA", "Operations A"),
        ("U-OPSB", "Operations B"),
        ("U-TASKING", "Tasking"),
        ("U-LIAISON", "International liaison"),
    ):
        entry("unit_registered", start, unit=unit, name=name, kind="agency-unit")
    for force, name in (("F-NORTH", "Northshire Police"), ("F-EAST", "Eastshire Police"), ("F-WEST", "Westshire Police")):
        entry("unit_registered", start, unit=force, name=name, kind="force")
    posts = [HR, REGISTRY, ANALYST, TRIAGE_MANAGER, OPSA, OPSB, OPSB_DI, TASKING, LIAISON, *FORCES.values()]
    posts += [("P-012", "head-of-unit", "U-INTAKE"), ("P-047", "head-of-unit", "U-OPSB")]
    for person, _, unit in posts:
        employer = unit if unit.startswith("F-") else ("F-EAST" if person == OPSB[0] else AGENCY)
        entry("person_registered", start, person=person, employer=employer)
    entry("person_registered", start, person="P-048", employer=AGENCY)
    # the OPSB team manager is a detective seconded from a regional force
    entry("secondment_started", start, person=OPSB[0], to_organisation=AGENCY)
    for person, role, unit in posts:
        entry("role_assigned", start, person=person, role=role, unit=unit)
    entry("role_assigned", start, person="P-048", role="detective-sergeant", unit="U-OPSB")
    # the head of OPSB retires in the middle of the gap; a detective sergeant acts up
    entry("role_ended", "2013-03-01T17:00:00", person="P-047", role="head-of-unit", unit="U-OPSB", reason="retired")
    entry("person_left", "2013-03-01T17:00:00", person="P-047", reason="retired")
    entry("role_assigned", "2013-03-04T09:00:00", person="P-048", role="head-of-unit", unit="U-OPSB", acting=True)
    # the seconded officer goes back to the force
    entry("role_ended", "2014-06-30T17:00:00", person=OPSB[0], role=OPSB[1], unit=OPSB[2], reason="secondment ended")
    entry("secondment_ended", "2014-06-30T17:00:00", person=OPSB[0])
    return lines


def _queries(db: str) -> Iterator[tuple[str, list[str]]]:
    """What an inquiry asks, in order: (why, the command line after 'refledger --db DB')."""
    yield "Who owned it a week after it arrived? Nobody: an offer is not ownership.", ["owner", REFERENCE, "--at", "2012-07-23T12:00:00Z"]
    yield "Who owned it a year later, in the middle of the gap?", ["owner", REFERENCE, "--at", "2013-06-01T12:00:00Z"]
    yield "After the acceptance, as known now (it happened on 22 November 2013):", ["owner", REFERENCE, "--at", "2013-11-25T12:00:00Z"]
    yield (
        "…and as the ledger knew it on 25 November: the acceptance was not entered until 1 December.",
        ["owner", REFERENCE, "--at", "2013-11-25T12:00:00Z", "--as-known-at", "2013-11-25T12:00:00Z"],
    )
    yield "Ownership and custody over its whole life, gaps marked:", ["history", REFERENCE]
    yield "Every event, both clocks, late entries flagged:", ["timeline", REFERENCE]
    yield (
        "What was overdue on 1 September 2012, as a supervisor could have seen it that day:",
        ["obligations", REFERENCE, "--at", "2012-09-01T12:00:00Z"],
    )
    yield "The bulk package: where each subject is, on 6 December 2013:", ["subjects", "list", PACKAGE, "--at", "2013-12-06T12:00:00Z"]
    yield "The package at a glance:", ["package", PACKAGE, "--at", "2013-12-06T12:00:00Z"]
    yield (
        "Who answered for it in the middle of the gap? The custodian's accountable people:",
        ["accountable", REFERENCE, "--at", "2013-06-01T12:00:00Z"],
    )
    yield (
        f"The record an inquiry prepares for one manager ({OPSB[0]}, seconded from F-EAST):",
        ["person", OPSB[0], "--from", "2012-07-01", "--to", "2014-01-01"],
    )
    yield "Every actor checks out against the staff directory:", ["audit", "actors"]
    yield "…and nobody recorded what they had no authority to record:", ["audit", "authority"]
    yield "The morning audit: every ownership gap in the ledger,", ["audit", "gaps"]
    yield "every obligation overdue on 10 December 2013,", ["audit", "overdue", "--at", "2013-12-10T12:00:00Z"]
    yield "every late entry,", ["audit", "late-entries"]
    yield "and the backlog per unit.", ["backlog", "--at", "2013-12-10T12:00:00Z"]
    folder = Path(db).parent
    yield (
        "Prove the record was not altered: make a signing key, sign a checkpoint, verify against it.",
        ["keygen", "--out", str(folder / "auditor.key")],
    )
    yield "", ["checkpoint", "--key", str(folder / "auditor.key"), "--out", str(folder / "checkpoint.json")]
    yield "", ["verify", "--checkpoint", str(folder / "checkpoint.json"), "--public-key", str(folder / "auditor.key.pub")]
    yield "The investigator's case file:", ["report", REFERENCE, "--out", str(Path(db).parent / "case-file.html")]


def _available(path: list[str]) -> bool:
    from cli import main

    command: Any = main
    for name in path:
        if not isinstance(command, click.Group) or name not in command.commands:
            return False
        command = command.commands[name]
        if not isinstance(command, click.Group):
            return True
    return True


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("refledger-demo"),
    show_default=True,
    help="Where to write the demo ledger and its files.",
)
@click.option("--force", is_flag=True, help="Replace a ledger (and key) an earlier demo left in the folder.")
def demo(folder: Path, force: bool) -> None:
    """Write a fictional story into a fresh SQLite ledger and show what it answers.

    A bulk referral is offered, declined, deferred, left unowned for sixteen months, chased
    by its originator, finally accepted (recorded late) and partly disseminated.

    \b
    Example:
      refledger demo --dir /tmp/refledger-demo
    """
    from cli import main
    from ledger.importing import import_lines
    from ledger.storage import holds_ledger
    from ledger.wiring import open_ledger

    db = folder / "ledger.sqlite"
    if not force and holds_ledger(str(db)):
        raise click.ClickException(f"{folder} already holds a ledger ({db}); give --force to replace it with the demo")
    folder.mkdir(parents=True, exist_ok=True)
    # a fresh ledger each time: remove what an earlier demo left here
    for leftover in [
        *(Path(str(db) + s) for s in ("", "-wal", "-shm")),
        folder / "auditor.key",
        folder / "auditor.key.pub",
        folder / "checkpoint.json",
        folder / "case-file.html",
    ]:
        leftover.unlink(missing_ok=True)
    records = staff() + story()
    story_file = folder / "story.jsonl"
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    story_file.write_bytes(data)
    ledger, _ = open_ledger(str(db))
    try:
        import hashlib

        result = import_lines(ledger, data.splitlines(), historical=True, file_sha256=hashlib.sha256(data).hexdigest())
    finally:
        ledger.close()
    click.secho("Referral Ledger demo", bold=True)
    click.echo(
        f"""
In July 2012 an overseas force sent {REFERENCE}: a customer list naming 2,345 people. It was
assessed HIGH, offered to U-OPSA (declined), escalated and DEFERRED at tasking with a revisit
date that passed unnoticed. A note claimed U-OPSB would take it; nobody accepted. Sixteen
months later the originator asked for an update; U-OPSB was assigned and accepted, but the
acceptance was entered nine days late. A first tranche ({PACKAGE}, {len(SUBJECTS)} subjects) was
triaged and partly sent to forces; one subject is still in transit.

{result.events} events from {story_file} (the staff directory first) were recorded in {db}.
"""
    )
    for why, args in _queries(str(db)):
        if not _available(args[:2] if args[0] in ("audit", "subjects", "projections") else args[:1]):
            continue
        command_line = "refledger --db " + shlex.quote(str(db)) + " " + shlex.join(args)
        if why:
            click.secho(why, fg="cyan")
        click.secho("$ " + command_line, dim=True)
        try:
            main.main(["--db", str(db), *args], standalone_mode=False)
        except click.ClickException as error:  # a finding (e.g. exit 3) is part of the story
            click.echo(error.format_message())
        click.echo()
    click.echo(f"Ask your own questions with: refledger --db {shlex.quote(str(db))} --help")
