"""``refledger report REF``: the investigator's case file (HTML, Markdown, PDF).

Thin: read the referral's events, verify the ledger (``ledger.verification``), build the case
file with ``projections.report`` and write it; the summary goes through ``emit``.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.output import emit, output_options
from commands.session import FindingsExit, instant_option, session

if TYPE_CHECKING:
    from projections.report import CaseFile

_FILE = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(dir_okay=False, exists=True, path_type=Path)
_MARKDOWN_SUFFIXES = (".md", ".markdown")
STDOUT = Path("-")
MARKDOWN = "md"


@click.command("report")
@click.argument("reference", metavar="[REFERRAL]", required=False)
@click.option(
    "--portfolio",
    is_flag=True,
    help="The morning page instead of a case file: open referrals per unit by age, running gaps, overdue by rule and unit, late entries awaiting attestation.",
)
@click.option(
    "--at", "at_text", metavar="T", help="The report's instant: the case as it stood at T (ISO 8601 with zone, or a date; default now)."
)
@click.option(
    "--as-known-at",
    "known_text",
    metavar="K",
    help="Only events recorded by K count: the case file the ledger would have given at K (default: as known now).",
)
@click.option("--out", "out", type=_FILE, metavar="FILE", help="Write the case file to FILE (- for standard output).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists (a symbolic link is never followed).")
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["html", "md"]),
    help="html: one self-contained page with the ownership chart; md: Markdown text (default: md for .md files, else html).",
)
@click.option(
    "--pdf",
    "pdf",
    type=_FILE,
    metavar="FILE",
    help="Print the HTML case file to a PDF (A4) with headless Chromium (with or without --out).",
)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=_EXISTING,
    metavar="FILE",
    help="Verify against this checkpoint file (default: the newest stored).",
)
@click.option("--public-key", metavar="PUB", help="The public key the checkpoint must be signed with (PEM file, or 64 hex characters).")
@click.option(
    "--no-verify", is_flag=True, help="Do not verify the ledger (verification reads every event); the report says it was not checked."
)
@output_options(tabular=False)
def report_command(
    reference: str | None,
    portfolio: bool,
    at_text: str | None,
    known_text: str | None,
    out: Path | None,
    force: bool,
    report_format: str | None,
    pdf: Path | None,
    checkpoint_file: Path | None,
    public_key: str | None,
    no_verify: bool,
    fmt: str | None,
) -> None:
    """Write an investigator's case file for one referral: who held it when, where it fell
    between chairs, what was overdue, and whether the record verified.

    The HTML file is self-contained (inline CSS and SVG; it makes no request, opens offline
    and prints on A4). It holds a summary (owner, days unowned, breaches by rule, late
    entries, verification and the checkpoint it was checked against), a chart of owners and
    custodians over time with gaps, offers, declines, decisions, reviews, external requests
    and late entries marked, the obligations, disputed claims, subjects and the full
    timeline with both clocks. Every figure comes from the same folds as owner, history,
    obligations and timeline. Exit 3 when the ledger does not verify (the file is written
    and says so).

    With --portfolio (and no REFERRAL) it writes the morning page for a head of unit: one
    self-contained page, as known at --at, with a chart and a table per section (backlog
    by age band per unit, running gaps on a time axis, overdue by rule and by unit, late
    entries awaiting attestation), every figure as backlog and audit answer it.

    \b
    Example:
      refledger report R-2012-0716 --out case-file.html
      refledger report --portfolio --out morning.html --pdf morning.pdf
      refledger report R-2012-0716 --at 2013-12-01 --as-known-at 2013-12-01 --out then.md
      refledger report R-2012-0716 --pdf case-file.pdf --checkpoint checkpoint.json --public-key auditor.key.pub
    """
    from commands.integrity import _public_key, _read
    from ledger.checkpointing import latest_checkpoint
    from ledger.transparency import load_checkpoint
    from ledger.verification import verify_ledger
    from projections.report import HTML, ChromiumMissing, case_file, find_chromium, integrity_statement, render

    if out is None and pdf is None:
        raise click.UsageError("say where to write the case file: --out FILE (or - for standard output), --pdf FILE, or both")
    if portfolio:
        if reference is not None:
            raise click.UsageError("--portfolio covers every referral; leave out REFERRAL")
        if report_format == MARKDOWN or known_text is not None or checkpoint_file is not None or public_key is not None:
            raise click.UsageError(
                "--portfolio writes HTML (and PDF) as known at --at; --format md, --as-known-at, --checkpoint and --public-key are for case files"
            )
        _portfolio_page(at_text, out, pdf, fmt)
        return
    if reference is None:
        raise click.UsageError("name the REFERRAL of the case file, or give --portfolio for the morning page")
    chosen = report_format or (MARKDOWN if out is not None and out.suffix.lower() in _MARKDOWN_SUFFIXES else HTML)
    if pdf is not None and find_chromium() is None:
        # before any work: a PDF was asked for and cannot be made
        raise ChromiumMissing(
            "--pdf needs headless Chromium and none was found: install it (Debian: apt-get install chromium) or set REFLEDGER_CHROMIUM to its path"
        )
    checkpoint = load_checkpoint(_read(checkpoint_file, "checkpoint"), str(checkpoint_file)) if checkpoint_file else None
    pinned = _public_key(public_key)
    if no_verify and checkpoint is not None:
        raise click.UsageError("--checkpoint is for verifying; it cannot go with --no-verify")

    current = session()
    ledger, database = current.open()
    at = instant_option(at_text, "--at") or _now_in_whole_seconds(ledger.clock())
    as_known_at = instant_option(known_text, "--as-known-at")
    from commands.records import free_text

    events, subjects = free_text(ledger, reference, ledger.referral_events(reference), ledger.subject_events(reference), "report")
    verification = None if no_verify else verify_ledger(ledger, database, checkpoint, pinned)
    latest = None if no_verify else latest_checkpoint(ledger, database)
    from projections.accountable import Directory

    case = case_file(
        events,
        subjects,
        at=at,
        as_known_at=as_known_at,
        policy=current.policy,
        integrity=integrity_statement(verification, latest, events, pinned),
        generated_at=ledger.clock().replace(microsecond=0),
        directory=Directory(ledger, as_known_at),
    )
    document = render(case, chosen)
    written = None
    if out == STDOUT:
        click.echo(document, nl=False)
    elif out is not None:
        _write(out, document)
        written = str(out)
    if pdf is not None:
        _write_pdf(case, document if chosen == HTML else None, pdf)
    if out != STDOUT:
        data = {
            "referral": case.reference,
            "out": written,
            "format": chosen,
            "pdf": str(pdf) if pdf is not None else None,
            "bytes": len(document.encode()),
            "summary": _summary(case),
        }
        emit(fmt, data, text=report_sentence(case, [p for p in (written, str(pdf) if pdf else None) if p]))
    if verification is not None and not verification.sound:
        first = verification.first_bad
        raise FindingsExit(f"Verification failed: {first.describe() if first else 'see the report'}; the case file says so")


def _now_in_whole_seconds(now: datetime) -> datetime:
    """Now, rounded up to the second: printed throughout the document, and never before an
    entry recorded a moment ago (``report`` straight after ``receive`` must see the receipt)."""
    whole = now.replace(microsecond=0)
    return whole if whole == now else whole + timedelta(seconds=1)


def _portfolio_page(at_text: str | None, out: Path | None, pdf: Path | None, fmt: str | None) -> None:
    from commands.audit import read_models
    from ledger.values import iso
    from projections.portfolio import morning_page, morning_summary, render_morning
    from projections.report import ChromiumMissing, find_chromium, print_to_pdf

    if pdf is not None and find_chromium() is None:
        raise ChromiumMissing(
            "--pdf needs headless Chromium and none was found: install it (Debian: apt-get install chromium) or set REFLEDGER_CHROMIUM to its path"
        )
    models = read_models()
    at = instant_option(at_text, "--at") or _now_in_whole_seconds(models.ledger.clock())
    page = morning_page(models, at, generated_at=_now_in_whole_seconds(models.ledger.clock()))
    document = render_morning(page)
    written = []
    if out == STDOUT:
        click.echo(document, nl=False)
    elif out is not None:
        _write(out, document)
        written.append(str(out))
    if pdf is not None:
        with tempfile.TemporaryDirectory(prefix="refledger-report-") as folder:
            html = Path(folder) / "morning.html"
            html.write_text(document, encoding="utf-8")
            print_to_pdf(html, pdf)
        written.append(str(pdf))
    if out == STDOUT:
        return
    summary = morning_summary(page)
    lines = [f"Wrote the morning page to {path}" for path in written]
    lines.append(
        f"As at {iso(at)}, as known then: {_count(summary['open_referrals'], 'open referral')} ({summary['unowned']} unowned), "
        f"{_count(summary['running_gaps'], 'running gap')}, {_count(summary['overdue'], 'obligation')} overdue, "
        f"{_count(summary['awaiting_attestation'], 'late entry', 'late entries')} awaiting attestation."
    )
    emit(
        fmt,
        {"out": str(out) if out else None, "pdf": str(pdf) if pdf else None, "bytes": len(document.encode()), "summary": summary},
        text="\n".join(lines),
    )


def _summary(case: CaseFile) -> dict[str, Any]:
    from projections.report import case_file_summary

    return case_file_summary(case)


def _write(path: Path, text: str) -> None:
    from commands.output import write_out

    write_out(path, text.encode("utf-8"), force=click.get_current_context().params.get("force", False))


def _write_pdf(case: CaseFile, html: str | None, pdf: Path) -> None:
    from projections.report import print_to_pdf, render_html

    with tempfile.TemporaryDirectory(prefix="refledger-report-") as folder:
        page = Path(folder) / f"{case.reference}.html"
        page.write_text(html if html is not None else render_html(case), encoding="utf-8")
        print_to_pdf(page, pdf)


def report_sentence(case: CaseFile, paths: list[str]) -> str:
    """What was written, and the headline numbers, for people."""
    from ledger.values import iso

    owner = case.owner.owner
    holder = f"owner {owner.unit}" if owner is not None else "no owner"
    counts = case.status_counts
    integrity = case.integrity
    if integrity is None or not integrity.checked:
        verified = "ledger not verified"
    elif integrity.sound:
        point = integrity.checkpoint
        verified = "ledger verified" + (
            f" against the checkpoint of {_count(point.size, 'event')}" if point is not None and point.holds else ""
        )
    else:
        verified = "ledger NOT verified"
    lines = [f"Wrote the case file of {case.reference} to {path}" for path in paths]
    lines.append(
        f"As at {iso(case.at)}, {case.knowledge}: {holder}, custodian {case.owner.custodian.unit}; "
        f"{case.unowned_days:.2f} days unowned in {_count(len(case.history.gaps), 'gap')}; "
        f"{_count(counts['breached'], 'obligation')} breached, {counts['open-overdue']} open and overdue; "
        f"{_count(len(case.late), 'late entry', 'late entries')}; {_count(len(case.history.disputed_claims), 'disputed claim')}; {verified}."
    )
    return "\n".join(lines)


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"
