"""The ledger on each backend: import, append-only storage, atomic failure, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput, StorageError
from ledger.importing import import_file
from ledger.storage import resolve_database
from ledger.wiring import open_ledger
from tests.conftest import EXAMPLES, count_events, raw_execute, synthetic_lines


def test_the_worked_example_imports_and_a_second_import_is_refused(open_at: Callable[..., Ledger], database_url: str) -> None:
    ledger = open_at()
    result = import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    assert (result.events, result.referrals) == (45, 2)
    stored = count_events(database_url)
    assert stored == 45 + 4 + 1  # one subject-directory entry per subject, and the import's own record
    with pytest.raises(InvalidInput, match="already imported"):
        import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    assert count_events(database_url) == stored


def test_a_sixty_event_file_imports(open_at: Callable[..., Ledger], database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sixty.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(6, notes_per_referral=7)) + b"\n")
    result = import_file(open_at(), path)
    assert result.events == 60
    assert count_events(database_url) == 60


def test_a_large_file_imports_in_one_transaction(open_at: Callable[..., Ledger], database_url: str, tmp_path: Path) -> None:
    """Larger than one INSERT chunk on PostgreSQL (a save of thousands of events once stalled there)."""
    from ledger.storage_postgres import CHUNK

    path = tmp_path / "large.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(CHUNK // 2)))  # 5.5 chunks of events
    result = import_file(open_at(), path)
    assert result.events == 11 * (CHUNK // 2) > 5 * CHUNK
    assert count_events(database_url) == result.events


def test_a_large_save_returns_each_events_notification_id_and_a_clash_stores_none_of_it(
    open_at: Callable[..., Ledger], database_url: str, tmp_path: Path
) -> None:
    """The recorder's contract for a save of several chunks (on PostgreSQL, COPY statements):
    the notification ids come back in the save's order, after those already stored; a
    stream version that exists already refuses the whole save."""
    from eventsourcing.persistence import IntegrityError, StoredEvent

    from ledger.storage_postgres import CHUNK

    ledger = open_at()
    path = tmp_path / "large.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(CHUNK // 4)))  # 2.75 chunks of events
    import_file(ledger, path)
    stored = ledger.recorder.select_notifications(start=None, limit=10 * CHUNK)
    before = ledger.recorder.max_notification_id()
    assert [n.id for n in stored][-1] == before and len(stored) > 2 * CHUNK
    # the same states again as new streams (the login check on PostgreSQL reads each state)
    copies = [StoredEvent(uuid.uuid4(), n.originator_version, n.topic, n.state) for n in stored]
    ids = ledger.recorder.insert_events(copies)
    after = ledger.recorder.select_notifications(start=before + 1, limit=10 * CHUNK)
    assert ids == [n.id for n in after] and ids[0] > before
    assert [(n.originator_id, n.originator_version) for n in after] == [(c.originator_id, c.originator_version) for c in copies]
    clash = [StoredEvent(uuid.uuid4(), n.originator_version, n.topic, n.state) for n in stored[:-1]] + [copies[-1]]
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_events(clash)
    assert ledger.recorder.max_notification_id() == ids[-1]
    assert count_events(database_url) == 2 * len(stored)


@pytest.mark.parametrize("statement", ["UPDATE {table} SET topic = 'x'", "DELETE FROM {table}"])
def test_the_database_refuses_to_change_stored_events(open_at: Callable[..., Ledger], database_url: str, statement: str) -> None:
    import_file(open_at(), EXAMPLES / "cybertip.jsonl", historical=True)
    table = resolve_database(database_url).events_table
    with pytest.raises(Exception, match="append-only"):
        raw_execute(database_url, statement.format(table=table))
    assert count_events(database_url) == 50


def test_a_bad_line_keeps_nothing_of_the_file(open_at: Callable[..., Ledger], database_url: str, tmp_path: Path) -> None:
    lines = synthetic_lines(10, notes_per_referral=7)
    assert len(lines) == 100
    lines[16] = lines[16][:-5]  # line 17 is cut short
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))
    ledger = open_at()
    with pytest.raises(InvalidInput, match=r"^line 17: malformed JSON"):
        import_file(ledger, path)
    assert count_events(database_url) == 0


def test_a_rule_broken_late_in_a_file_keeps_nothing(open_at: Callable[..., Ledger], database_url: str, tmp_path: Path) -> None:
    lines = synthetic_lines(5, notes_per_referral=7)
    lines.append(lines[2])  # a second acceptance with no open offer
    path = tmp_path / "rule.jsonl"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InvalidInput, match=r"^line 51: .*no offer of ownership was open"):
        import_file(open_at(), path)
    assert count_events(database_url) == 0


def test_an_unreachable_postgresql_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match=r"^cannot connect to PostgreSQL at postgresql://127.0.0.1:1/test: "):
        open_ledger("postgresql://postgres@127.0.0.1:1/test")


def _writing_has_started(database_url: str) -> bool:
    database = resolve_database(database_url)
    if database.backend == "sqlite":
        wal = Path(database.location + "-wal")
        return wal.exists() and wal.stat().st_size > 2_000_000
    pattern = f'%INSERT INTO "{database.schema}"."ledger_events"%'
    rows = raw_execute(database_url, f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '{pattern}' AND state = 'active'")
    return bool(rows[0][0])


def test_killing_an_import_mid_write_leaves_the_ledger_as_it_was(database_url: str, tmp_path: Path) -> None:
    ledger, _ = open_ledger(database_url)
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    ledger.close()
    before = count_events(database_url)
    path = tmp_path / "large.jsonl"
    path.write_bytes(b"\n".join(synthetic_lines(10_000)))  # 110,000 events
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "--db", database_url, "import", str(path)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        for _ in range(12_000):  # up to two minutes, in 10 ms waits on the process itself
            if _writing_has_started(database_url):
                break
            try:
                process.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the import ended before it could be killed: {process.stderr.read() if process.stderr else ''!r}")
        else:
            pytest.fail("the import never started writing")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert count_events(database_url) == before
    reopened, _ = open_ledger(database_url)
    try:
        assert [type(e).__name__ for e in reopened.referral_events("R-2024-0311")][:2] == ["Received", "Assessed"]
    finally:
        reopened.close()


@pytest.mark.postgres
def test_reading_does_not_wait_for_an_import_in_progress(postgres_schema_url: str) -> None:
    """An import holds the events table's lock for its whole transaction; opening the
    ledger to read must not queue behind it (it changes nothing when the guards are in place)."""
    import threading

    from ledger.storage import connect_postgres

    ledger, database = open_ledger(postgres_schema_url)
    import_file(ledger, EXAMPLES / "cybertip.jsonl", historical=True)
    ledger.close()
    with connect_postgres(database) as importer:
        importer.execute("BEGIN")
        importer.execute(f'LOCK TABLE "{database.schema}".ledger_events IN EXCLUSIVE MODE')
        answers: list[int] = []

        def read() -> None:
            reader, _ = open_ledger(postgres_schema_url)
            answers.append(len(reader.referral_events("R-2024-0311")))
            reader.close()

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(timeout=20)
        importer.execute("ROLLBACK")
    assert answers == [17], "the reader waited for the import's lock"
