"""The case file: built from the same folds as the queries, rendered as HTML with an SVG chart and as Markdown.

Given one referral (declined offer, a DEFER, a disputed claim, a late acceptance, a release),
then the document: its numbers equal the folds' answers, the HTML parses and asks for
nothing outside itself, and the chart has one bar per ownership interval and marks the gaps.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.knowledge import known as visible
from ledger.policy import DEFAULT_POLICY
from ledger.referral import LedgerEvent
from projections.late_entries import late_entries
from projections.obligations import obligations_at
from projections.ownership import owner_at, ownership_history
from projections.report import (
    PLOT_LEFT,
    PLOT_RIGHT,
    CaseFile,
    case_file,
    case_file_summary,
    integrity_statement,
    render,
    render_html,
    render_markdown,
)
from tests.scenario import REFERENCE, at, given, rec, received

LATE = "Entered from the meeting minutes."
CLAIM = {"type": "ownership_accepted", "unit": "U-OPS2"}
T = datetime.fromisoformat(at(25))
GENERATED = datetime(2026, 1, 1, tzinfo=UTC)

#: In recording order. Unowned from receipt until U-OPS2's acceptance on day 14 (recorded a
#: day late), owned until its release on day 20, then unowned again. A note of day 4 claims
#: U-OPS2 accepted (recorded 8 days late: needs attestation).
STORY = [
    received(at(1)),
    rec("assessed", at(1, 14), "U-TRIAGE", risk_band="HIGH", immediate_risk=False, rationale="Customer list"),
    rec("ownership_offered", at(2), "U-INTAKE", to_unit="U-OPS1", reply_due=at(4)),
    rec("ownership_declined", at(3), "U-OPS1", reason="No capacity"),
    rec("escalation_raised", at(3, 12), "U-INTAKE", to_role="head-of-tasking", issue="No lead unit", decision_due=at(5)),
    rec("decision_recorded", at(4), "U-INTAKE", outcome="DEFER", rationale="Await more data", revisit_by=at(10)),
    rec("external_request_received", at(12), "U-INTAKE", summary="Any news?", **{"from": "X-FORCE"}),
    rec("note_added", at(4, 12), "U-TRIAGE", recorded=at(12, 13), late_reason=LATE, text="U-OPS2 | said yes", claim=CLAIM),
    rec("decision_recorded", at(12, 14), "U-INTAKE", outcome="ASSIGN_OWNER", rationale="U-OPS2 to lead"),
    rec("ownership_offered", at(13), "U-INTAKE", to_unit="U-OPS2"),
    rec("custody_transferred", at(14, 12), "U-INTAKE", to_unit="U-OPS2"),
    rec("ownership_accepted", at(14), "U-OPS2", recorded=at(15, 10), late_reason=LATE),
    rec("review_recorded", at(16), "U-OPS2", progress="Under way", owner_confirmed="U-OPS2"),
    rec("external_reply_sent", at(17), "U-INTAKE", reply_to="X-FORCE"),
    rec("ownership_released", at(20), "U-OPS2", reason="Outside our remit"),
]


@pytest.fixture(scope="module")
def story() -> Ledger:
    return given(*STORY).ledger


def events(ledger: Ledger) -> list[LedgerEvent]:
    return ledger.referral_events(REFERENCE)


def build(ledger: Ledger, at_: datetime = T, as_known_at: datetime | None = None, **options: Any) -> CaseFile:
    return case_file(events(ledger), ledger.subject_events(REFERENCE), at=at_, as_known_at=as_known_at, generated_at=GENERATED, **options)


# --- the numbers come from the folds -----------------------------------------------------------


def test_the_summary_equals_the_folds_answers(story: Ledger) -> None:
    case = build(story)
    summary = case_file_summary(case)

    history = ownership_history(events(story), until=T)
    owner = owner_at(events(story), T)
    obligations = obligations_at(events(story), {}, T, as_known_now=True)
    late = late_entries(events(story), {})
    assert summary["owner"] is None and owner.owner is None
    assert summary["custodian"] == {"unit": "U-OPS2", "since": at(14, 12)}
    assert summary["unowned_days"] == round(history.unowned_time(T).total_seconds() / 86400, 2) == 13.0 + 5.0
    assert summary["gaps"] == len(history.gaps) == 2
    assert summary["obligations"] == {
        s: sum(1 for o in obligations if o.status == s) for s in ("met", "discharged", "breached", "open-overdue", "open-not-due")
    }
    assert summary["breaches_by_rule"] == {
        rule: {"breached": sum(1 for o in obligations if o.rule == rule and o.status == "breached"),
               "open-overdue": sum(1 for o in obligations if o.rule == rule and o.status == "open-overdue")}
        for rule in {o.rule for o in obligations if o.status in ("breached", "open-overdue")}
    }  # fmt: skip
    assert (summary["late_entries"], summary["needing_attestation"]) == (len(late), 1) == (2, 1)
    assert summary["disputed_claims"] == 1
    assert summary["events"] == len(STORY)
    assert summary["verification"] is None


def test_breaches_name_the_rules_that_failed(story: Ledger) -> None:
    breaches = case_file_summary(build(story))["breaches_by_rule"]

    assert breaches["owner-accepted"] == {"breached": 1, "open-overdue": 1}  # due day 3 met on day 14; the release's clock is still open
    assert breaches["deferred-revisit"] == {"breached": 1, "open-overdue": 0}  # revisit due day 10, decided day 12
    assert "initial-assessment" not in breaches


def test_as_known_at_leaves_out_what_was_recorded_later(story: Ledger) -> None:
    # on day 15 at 09:00 the acceptance of day 14 had not been entered yet
    known = datetime.fromisoformat(at(15, 9))
    case = build(story, at_=known, as_known_at=known)
    summary = case_file_summary(case)

    assert summary["owner"] is None
    assert summary["gaps"] == 1 and case.history.gaps[0].end is None
    assert summary["unowned_days"] == 14.0
    assert summary["late_entries"] == 1  # the note; the acceptance is not yet known
    assert summary["obligations"] == {
        s: sum(1 for o in obligations_at(visible(events(story), known), {}, known, as_known_now=True) if o.status == s)
        for s in ("met", "discharged", "breached", "open-overdue", "open-not-due")
    }
    assert "as known at 2024-03-15T09:00:00Z" in render_html(case)


def test_the_findings_say_it_in_words(story: Ledger) -> None:
    findings = build(story).findings

    assert findings[0].startswith(f"Nobody owned {REFERENCE} for 18.00 days in 2 gaps; the longest ran 13.00 days")
    assert any("claims ownership accepted by U-OPS2; the events do not show it" in f for f in findings)
    assert any(f.startswith("2 entries were recorded late; 1 needs") for f in findings)


# --- the HTML ------------------------------------------------------------------------------------


VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "track", "embed", "param"}


class Tree(HTMLParser):
    """Checks that every element is closed in order, and collects what a self-contained page must not have."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.open[-1] if self.open else None}>")
            return
        self.open.pop()


def parse(html: str) -> Tree:
    tree = Tree()
    tree.feed(html)
    tree.close()
    return tree


def test_the_html_parses_and_asks_for_nothing_outside_itself(story: Ledger) -> None:
    html = render_html(build(story))
    tree = parse(html)

    assert tree.problems == [] and tree.open == []
    assert html.startswith("<!DOCTYPE html>")
    names = [tag for tag, _ in tree.tags]
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    assert names.count("style") == 1
    for tag, attrs in tree.tags:
        for name in ("src", "href", "xlink:href", "action"):
            assert attrs.get(name) is None, f"<{tag} {name}=…> would load something"
    assert "http:" not in html and "https:" not in html and "@import" not in html and "url(" not in html.replace("url(#gap-hatch)", "")


def test_text_from_the_events_is_escaped(story: Ledger) -> None:
    ledger = given(received(), rec("note_added", at(2), "U-TRIAGE", text="<script>alert(1)</script> & more")).ledger
    html = render_html(build(ledger))

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def chart_of(html: str) -> ElementTree.Element:
    """The chart's SVG as XML (it is written as well-formed XML)."""
    found = re.search(r'<svg class="chart" viewBox=.*?</svg>', html, re.S)
    assert found is not None
    return ElementTree.fromstring(found.group(0))


def bars(svg: ElementTree.Element, kind: str) -> list[ElementTree.Element]:
    return [e for e in svg.iter("rect") if (e.get("class") or "").split() == ["bar", kind]]


def test_the_chart_has_one_bar_per_ownership_interval_and_marks_each_gap(story: Ledger) -> None:
    case = build(story)
    svg = chart_of(render_html(case))

    owners, gaps, custody = bars(svg, "owner"), bars(svg, "gap"), bars(svg, "custody")
    assert [bar.get("data-unit") for bar in owners] == [i.unit for i in case.history.ownership] == ["U-OPS2"]
    assert len(gaps) == len(case.history.gaps) == 2
    assert [bar.get("data-unit") for bar in custody] == ["U-INTAKE", "U-OPS2"]
    assert all(gap.get("fill") == "url(#gap-hatch)" for gap in gaps)
    # the bars tile the owner lane in time order: gap, owner, gap
    lane = sorted(owners + gaps, key=lambda bar: float(bar.get("x") or 0))
    assert [bar.get("class") for bar in lane] == ["bar gap", "bar owner", "bar gap"]
    for left, right in itertools.pairwise(lane):
        assert float(left.get("x") or 0) + float(left.get("width") or 0) == pytest.approx(float(right.get("x") or 0), abs=0.02)
    titles = [group.findtext("title") or "" for group in svg.iter("g") if group.get("class") == "span gap"]
    assert titles == [f"NO OWNER: {at(1)} to {at(14)}, 13.00 days", f"NO OWNER: {at(20)} to {at(25)} (running), 5.00 days"]


def test_the_chart_marks_offers_declines_decisions_reviews_requests_claims_and_late_entries(story: Ledger) -> None:
    chart = build(story).chart
    svg = chart_of(render_html(build(story)))

    kinds = [marker.kind for marker in chart.markers]
    assert kinds == ["offer", "decline", "escalation", "defer", "request", "decision", "offer", "review", "reply"]
    assert len([g for g in svg.iter("g") if (g.get("class") or "").startswith("event ")]) == len(chart.markers)
    assert [claim.title for claim in chart.claims] == [
        f"Disputed claim, {at(4, 12)}: a note claims ownership accepted by U-OPS2; the events do not show it"
    ]
    assert [(lag.attest, lag.label) for lag in chart.lags] == [(True, "note added +8.04 d"), (False, "ownership accepted +1.04 d")]
    overdue = {span.label.split()[0] for span in chart.overdue}
    assert overdue == {"owner-accepted", "escalation-decided", "deferred-revisit", "supervisory-review"}
    assert all(PLOT_LEFT <= marker.x <= PLOT_RIGHT for marker in chart.markers)


def test_a_report_asked_for_long_after_the_last_event_stops_the_chart_soon_after_it(story: Ledger) -> None:
    near = build(story).chart
    far = build(story, at_=T + timedelta(days=3650)).chart

    assert not near.clipped and near.end == T
    assert far.clipped and far.end < T + timedelta(days=40)
    running = [bar for bar in far.bars if bar.continues]
    assert [bar.kind for bar in running] == ["gap", "custody"]
    assert "continues to" in render_html(build(story, at_=T + timedelta(days=3650)))


def test_a_referral_received_a_moment_ago_still_draws(story: Ledger) -> None:
    ledger = given(received()).ledger
    case = build(ledger, at_=datetime.fromisoformat(at(1)))

    assert [bar.kind for bar in case.chart.bars] == ["gap", "custody"]
    assert case.chart.end > case.chart.start
    assert parse(render_html(case)).problems == []


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_has_the_same_sections_and_escapes_table_cells(story: Ledger) -> None:
    text = render_markdown(build(story))

    for heading in (
        "# Case file R-TEST-1",
        "## Summary",
        "## Owners, gaps and custodians",
        "## Disputed claims",
        "## Obligations at",
        "## Timeline",
        "## Integrity",
    ):
        assert heading in text
    assert "| Days unowned | **18.00** in 2 gap(s)" in text
    assert "| **NO OWNER** |  |  | 2024-03-01T09:00:00Z | 2024-03-14T09:00:00Z | 13.00 |" in text
    assert "U-OPS2 \\| said yes" in text  # a pipe in free text does not split the table
    assert "<svg" not in text
    assert render(build(story), "md") == text


def test_an_unknown_format_is_refused(story: Ledger) -> None:
    from ledger.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown report format 'pdf'"):
        render(build(story), "pdf")


# --- integrity ---------------------------------------------------------------------------------


def test_without_verification_the_report_says_so_and_still_pins_the_referral_head(story: Ledger) -> None:
    statement = integrity_statement(None, None, events(story))
    case = build(story, integrity=statement)
    html = render_html(case)

    assert statement.checked is False and len(statement.referral_head) == 64
    assert 'data-summary="verification">Not verified<' in html
    assert statement.referral_head in html
    assert case_file_summary(case)["verification"] == {
        "checked": False,
        "ok": None,
        "events": None,
        "root": None,
        "findings_total": 0,
        "first_problem": None,
        "checkpoint": None,
        "referral_head": statement.referral_head,
    }


def test_the_policy_in_force_is_named(story: Ledger) -> None:
    case = build(story, policy=DEFAULT_POLICY)

    assert case.policy == DEFAULT_POLICY.version
    assert DEFAULT_POLICY.version in render_html(case)


# --- the case file, polished (issue 13 §7) ---------------------------------------------------

#: the subject's triage starts its dissemination clock; nothing is sent by the report's instant
SUBJECT_STORY = [
    *STORY,
    rec("subject_extracted", at(2, 10), "U-TRIAGE", subject="SUBJ-1", category="suspect"),
    rec("subject_triaged", at(2, 11), "U-TRIAGE", subject="SUBJ-1", risk_tool="RPT", risk_tool_version="3.2", band="HIGH"),
]


@pytest.fixture(scope="module")
def subject_story() -> Ledger:
    return given(*SUBJECT_STORY).ledger


def test_a_subjects_overdue_obligation_has_a_bar_in_the_overdue_lane(subject_story: Ledger) -> None:
    case = build(subject_story)
    overdue = [o for o in case.obligations if o.subject == "SUBJ-1" and o.status == "open-overdue"]
    assert [o.rule for o in overdue] == ["dissemination"], "the story leaves SUBJ-1's dissemination overdue"

    svg = chart_of(render_html(case))
    titles = [g.findtext("title") or "" for g in svg.iter("g") if (g.get("class") or "").split()[:1] == ["overdue"]]
    assert any(title.startswith("SUBJ-1 dissemination: due ") and "still open" in title for title in titles), titles
    labels = [span.label for span in case.chart.overdue if span.label.startswith("SUBJ-1 ")]
    assert labels == [f"SUBJ-1 dissemination {overdue[0].days_late:.2f} d, open"]
    # the referral's own overdue bars are all still drawn
    assert {span.label.split()[0] for span in case.chart.overdue} >= {"owner-accepted", "escalation-decided", "deferred-revisit"}


def _extent(label: str, x: float) -> tuple[float, float]:
    from projections.report import _CHAR

    return x, x + len(label) * _CHAR


def test_labels_sit_beside_their_own_bars(subject_story: Ledger) -> None:
    chart = build(subject_story).chart
    spans = [(span.label, span.label_x, span.label_inside, span.x, span.x + span.width, span.y) for span in chart.overdue]
    spans += [(lag.label, lag.label_x, False, lag.x1 - 4, lag.x2 + 6, lag.y) for lag in chart.lags]
    assert len(spans) >= 6
    for label, label_x, inside, x1, x2, row in spans:
        left, right = _extent(label, label_x)
        if inside:
            assert x1 <= left and right <= x2 + 1, label
        else:
            # just after the bar, or just before it
            assert x2 <= left <= x2 + 8 or x1 - 8 <= right <= x1 + 0.5, (label, left, right, x1, x2)
        # no other bar of the same row lies under the label
        for other, _, _, y1, y2, other_row in spans:
            if other != label and other_row == row:
                assert right <= y1 or left >= y2, (label, other)


def _legend(html: str) -> set[str]:
    return set(re.findall(r'<li data-legend="([\w-]+)"', html))


def test_the_legend_lists_only_what_the_chart_shows(story: Ledger, subject_story: Ledger) -> None:
    for ledger in (story, subject_story):
        case = build(ledger)
        html = render_html(case)
        svg = chart_of(html)
        drawn = {"closure" if kind == "reopening" else kind for kind in (m.kind for m in case.chart.markers)}
        classes = {tuple((g.get("class") or "").split()) for g in svg.iter("g")}
        legend = _legend(html)
        assert legend == set(case.chart.shown)
        # each legend entry stands for something in the SVG
        for entry in legend:
            if entry == "gap":
                assert bars(svg, "gap")
            elif entry == "claim":
                assert ("claim",) in classes
            elif entry == "lag":
                assert any(c[:1] == ("lag",) for c in classes)
            elif entry == "overdue-met":
                assert ("overdue",) in classes
            elif entry == "overdue-open":
                assert ("overdue", "open") in classes
            else:
                assert entry in drawn and ("event", entry) in classes, entry
        # the story has no withdrawal, closure or accountable people: the legend says nothing of them
        assert not legend & {"withdrawal", "closure", "person"}


def test_event_names_read_as_words(story: Ledger) -> None:
    from ledger.importing import RECORD_TYPES

    html = render_html(build(story))
    text = re.sub(r"<style>.*?</style>|<code>.*?</code>|<[^>]+>", " ", html, flags=re.S)
    names = {record.type for record in RECORD_TYPES if "_" in record.type}
    assert names and not [name for name in names if re.search(rf"\b{name}\b", text)]
    assert "claims ownership accepted by U-OPS2" in text


def test_codes_and_instants_do_not_break_at_their_hyphens(story: Ledger) -> None:
    html = render_html(build(story))
    findings = re.search(r'<ul class="findings">(.*?)</ul>', html, re.S)
    assert findings is not None
    bare = re.sub(r'<span class="nb">[^<]*</span>', "", findings.group(1))
    assert not re.findall(r"\w-\w", bare), "a hyphenated code in the findings is not kept on one line"
    assert '<span class="nb">U-OPS2</span>' in findings.group(1) and ".nb { white-space: nowrap; }" in html


def test_the_markdown_has_no_stray_separator(story: Ledger, subject_story: Ledger) -> None:
    for ledger in (story, subject_story):
        text = render_markdown(build(ledger))
        assert "; " in text  # lists are joined with "; " …
        for line in text.splitlines():  # … and never leave one dangling
            assert not re.search(r";\s*\||\|\s*;|;\s*;|\(\s*;|;\s*\)|;\s*$|^\s*;", line), line
