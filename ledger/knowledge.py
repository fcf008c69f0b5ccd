"""What the ledger knew at K: the one place that decides which events, with which values, count.

Every fold (ownership, obligations, subjects, the read models) and the aggregates' own
invariant checks read a stream through ``known``, so a rule judged when an event is recorded
and an answer given later agree on what the record says.

- **Recording time.** As known at K, only entries recorded at or before K count (None: now).
- **Corrections.** A correction names an earlier entry of the same stream (its version) and
  the fields it supersedes. From the correction's recording on, the entry is read with the
  corrected values in place of the original ones, still at the original's business time
  (``occurred_at``) and with its stream version. Before that, the original is read. Later
  corrections of the same field win. The original stays in the stream, hashed and chained.
- **Retractions.** A retracted entry (made in error) is left out from the retraction's
  recording on.
- **Attestations** change nothing a fold reads; like corrections and retractions they are
  not themselves events a rule acts on, so ``known`` leaves all three out.

``recorded_only=True`` gives the record as it stood at K, originals and amendments included
(what ``timeline`` shows); it applies the recording-time rule and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

CORRECTION: Final = "correction"
RETRACTION: Final = "retraction"
ATTESTATION: Final = "attestation"


class _Entry(Protocol):
    @property
    def recorded_at(self) -> datetime: ...

    @property
    def originator_version(self) -> int: ...


E = TypeVar("E", bound=_Entry)

#: amendment event classes → CORRECTION, RETRACTION or ATTESTATION (the aggregates register theirs)
_KINDS: dict[type[Any], str] = {}


def register(kind: str, *classes: type[Any]) -> None:
    """Declare event classes as amendments of ``kind`` (a correction, retraction or attestation)."""
    if kind not in (CORRECTION, RETRACTION, ATTESTATION):
        raise ValueError(f"unknown amendment kind {kind!r}")
    for cls in classes:
        _KINDS[cls] = kind


def amendment_kind(event: object) -> str | None:
    """CORRECTION, RETRACTION or ATTESTATION for an amendment; None for any other event."""
    return _KINDS.get(type(event))


def known(events: Iterable[E], as_known_at: datetime | None = None, *, recorded_only: bool = False) -> list[E]:
    """The events of one stream as the ledger knew them at ``as_known_at`` (now when None).

    In the order given; corrected values in place, retracted entries and amendments left out.
    """
    seen = list(events) if as_known_at is None else [e for e in events if e.recorded_at <= as_known_at]
    kinds = _KINDS
    if recorded_only or kinds.keys().isdisjoint(map(type, seen)):  # almost every stream: one C-level pass
        return seen
    amendments = [e for e in seen if type(e) in kinds]
    corrections: dict[int, dict[str, Any]] = {}
    retracted: set[int] = set()
    for amendment in sorted(amendments, key=_recording_order):
        kind = kinds[type(amendment)]
        target: int = getattr(amendment, "target_version")  # noqa: B009 (a protocol attribute of amendments)
        if kind == CORRECTION:
            corrections.setdefault(target, {}).update(getattr(amendment, "corrected"))  # noqa: B009
        elif kind == RETRACTION:
            retracted.add(target)
    found: list[E] = []
    for event in seen:
        if type(event) in kinds:
            continue
        version = event.originator_version
        if version in retracted:
            continue
        values = corrections.get(version)
        found.append(event if values is None else corrected(event, values))
    return found


def corrected(event: E, values: dict[str, Any]) -> E:
    """A copy of ``event`` reading ``values`` in place of its own (same class, version, clocks)."""
    copy = object.__new__(type(event))
    object.__setattr__(copy, "__dict__", {**event.__dict__, **values})
    return copy


def _recording_order(event: _Entry) -> tuple[datetime, int]:
    return (event.recorded_at, event.originator_version)
