"""An HR extract as CSV (one row per role held, from/to) → staff directory records.

Each row becomes records in the import format (``person_registered`` for a person not yet in
the directory, ``role_assigned`` at ``from``, ``role_ended`` at ``to``) that go through
``ledger.importing.parse_record`` and are recorded in one transaction, like a JSON Lines
import: a bad row is reported by its line and nothing of the file is kept. Columns follow the
house CSV style of ``ledger.subject_csv`` (unknown columns refused, header checked).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.subject_csv import CsvLayout, read_csv

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.values import Actor

STAFF_LAYOUT = CsvLayout(("person", "employer", "role", "unit", "from"), ("to", "acting", "login"))
_TRUE, _FALSE = ("yes", "true", "1", "y"), ("no", "false", "0", "n", "")


def staff_records(cells: dict[str, str], line: int) -> list[dict[str, Any]]:
    """role_assigned (and role_ended when the row has ``to``) for one row."""
    from ledger.errors import InvalidInput

    acting = cells.get("acting", "").lower()
    if acting not in _TRUE + _FALSE:
        raise InvalidInput(f"line {line}: acting {cells['acting']!r} must be yes or no")
    for column in STAFF_LAYOUT.required:
        if column not in cells:
            raise InvalidInput(f"line {line}: missing {column}")
    held = {"person": cells["person"], "role": cells["role"], "unit": cells["unit"]}
    records: list[dict[str, Any]] = [{"type": "role_assigned", "occurred_at": cells["from"], **held, "acting": acting in _TRUE}]
    if "to" in cells:
        records.append({"type": "role_ended", "occurred_at": cells["to"], **held})
    return records


def import_staff_csv(ledger: Ledger, path: Path, actor: Actor) -> dict[str, Any]:
    """Record every row of an HR extract, or none. People not yet registered are registered at their earliest ``from``."""
    from ledger.errors import InvalidInput, LedgerError
    from ledger.importing import parse_record, record_commands
    from ledger.values import parse_instant

    checked = read_csv(path, STAFF_LAYOUT)
    reason = f"loaded from the HR extract {path.name}"
    people: dict[str, tuple[str, dict[str, Any]]] = {}
    pending: list[tuple[str, int, dict[str, Any]]] = []
    for line, cells in checked.rows:
        try:
            for record in staff_records(cells, line):
                pending.append((record["occurred_at"], line, record))
            start = parse_instant(cells["from"], "from").isoformat()
            registration = {
                "type": "person_registered",
                "occurred_at": cells["from"],
                "person": cells["person"],
                "employer": cells["employer"],
            }
            if "login" in cells:
                registration["login"] = cells["login"]
            known = people.get(cells["person"])
            if known is None or start < known[0]:
                people[cells["person"]] = (start, {**registration, "line": line})
        except LedgerError as error:
            raise InvalidInput(str(error) if str(error).startswith("line ") else f"line {line}: {error}") from None
    for person, (_, registration) in people.items():
        if ledger.person_state(person) is None:
            first_line = int(registration.pop("line"))
            pending.append((registration["occurred_at"], first_line, registration))
    commands = []
    # in business order (a registration before the roles, an assignment before its end)
    order = {"person_registered": 0, "role_ended": 1, "role_assigned": 2}
    for _, line, record in sorted(pending, key=lambda p: (parse_instant(p[0], "from"), order[p[2]["type"]], p[1])):
        record = {**record, "actor": actor.as_dict(), "late_reason": reason}
        try:
            commands.append((line, parse_record(record, source={"file": checked.sha256, "line": line})))
        except LedgerError as error:
            raise InvalidInput(f"line {line}: {error}") from None
    record_commands(ledger, commands, checked.sha256)
    return {"file": str(path), "sha256": checked.sha256, "rows": len(checked.rows), "events": len(commands)}
