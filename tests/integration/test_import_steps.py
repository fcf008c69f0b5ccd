"""An import saved in steps (aggregates forgotten between steps) records what one save records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ledger.importing as importing
from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.storage import resolve_database
from ledger.values import Actor, Stamp
from ledger.verification import verify_ledger
from tests.conftest import EXAMPLES, raw_execute, synthetic_lines


def stored(url: str) -> list[tuple[object, ...]]:
    database = resolve_database(url)
    return raw_execute(
        url, f"SELECT originator_id, originator_version, topic FROM {database.events_table} ORDER BY originator_id, originator_version"
    )


@pytest.mark.parametrize("keep", [0, 10], ids=["forget-all", "forget-least-recent"])
def test_small_steps_that_forget_streams_record_the_same_history(
    database_url: str, open_at: Callable[..., Ledger], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int
) -> None:
    # Given a file whose referrals run across many steps (lines interleaved by referral)
    lines = synthetic_lines(40)
    interleaved = [lines[i] for k in range(11) for i in range(k, len(lines), 11)]
    source = tmp_path / "interleaved.jsonl"
    source.write_bytes(b"\n".join(interleaved) + b"\n")
    # When it is imported in steps of 7 lines, keeping at most `keep` events loaded between steps
    monkeypatch.setattr(importing, "STEP_LINES", 7)
    monkeypatch.setattr(importing, "KEEP_EVENTS", keep)
    ledger = open_at()
    flush, held = Ledger.flush, []

    def flush_and_count(self: Ledger, keep_events: int) -> None:
        flush(self, keep_events=keep_events)
        assert self._batch is not None
        counted = sum(len(getattr(aggregate, "history", ())) for aggregate in self._batch.values())
        assert self._batch.held == counted  # the batch's running count is the events it holds
        held.append(counted)

    monkeypatch.setattr(Ledger, "flush", flush_and_count)
    result = importing.import_file(ledger, source)
    assert held and max(held) <= keep and (keep == 0 or max(held) > 0)  # the recent streams stayed loaded
    # Then every line is recorded once, in order, with sound chains
    assert result.events == len(interleaved)
    assert len(stored(database_url)) == len(interleaved)
    assert verify_ledger(ledger, resolve_database(database_url)).sound
    # and a re-import is still refused, by a line of a later step too
    with pytest.raises(InvalidInput, match="already imported"):
        importing.import_file(ledger, source)
    # and a bad line in a later step leaves nothing of the earlier steps
    before = stored(database_url)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes((EXAMPLES / "cybertip.jsonl").read_bytes() + b'{"type": "bogus"}\n')
    # (this ledger began live, so a historical file is now refused before its first line)
    with pytest.raises(InvalidInput, match=r"^line 46: |migration is over"):
        importing.import_file(ledger, bad, historical=True)
    assert stored(database_url) == before


def test_subjects_added_across_steps_continue_their_referral_s_directory(
    database_url: str, open_at: Callable[..., Ledger], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson
    from eventsourcing.application import EventSourcedLog

    actor = {"person": "P-1", "role": "analyst", "unit": "U-OPS1"}

    def line(kind: str, minute: int, **fields: object) -> bytes:
        at = f"2024-01-01T10:{minute:02d}:00Z"
        return orjson.dumps({"type": kind, "referral": "R-1", "occurred_at": at, "recorded_at": at, "actor": actor, **fields})

    def subjects(first: int, last: int) -> list[bytes]:
        return [line("subject_extracted", n, subject=f"S-{n}", category="suspect") for n in range(first, last + 1)]

    received = line("received", 0, originator="X-ESP", channel="portal", custodian_unit="U-OPS1")
    source = tmp_path / "subjects.jsonl"
    source.write_bytes(b"\n".join([received, *subjects(1, 9)]) + b"\n")
    # Given an import in steps of 2 lines, where a step reads its referrals' directories with its streams
    monkeypatch.setattr(importing, "STEP_LINES", 2)

    def no_query(self: object) -> None:
        raise AssertionError("a directory was read on its own")

    monkeypatch.setattr(EventSourcedLog, "get_last", no_query)
    ledger = open_at()
    # When its subjects are added across steps, and one more is added live afterwards
    importing.import_file(ledger, source, historical=True)
    monkeypatch.undo()
    ledger.extract_subject("R-1", Stamp(Actor.from_dict(actor)), "S-10", "suspect")
    # Then the subjects are listed in order, once each, on a sound chain
    assert ledger.subject_refs("R-1") == [f"S-{n}" for n in range(1, 11)]
    assert verify_ledger(ledger, resolve_database(database_url)).sound
