"""Validation rules a test may relax, to stand for a rule relaxed in a later release: ``redrive``
then loads exactly the rejected records that pass now (issue 26). Set from ``ORDERS_TEST_RELAX``
(comma-separated names) by the commands that parse records; never in production."""

from __future__ import annotations

from collections.abc import Iterable

RELAXABLE = {
    "date_only_created_at": "a created_at that is a date alone (YYYY-MM-DD) is midnight UTC",
}
_relaxed: set[str] = set()


def relax(names: Iterable[str]) -> None:
    """Relax these rules (ValueError naming an unknown one)."""
    for name in filter(None, (n.strip() for n in names)):
        if name not in RELAXABLE:
            raise ValueError(f"{name!r} is not a relaxable rule ({', '.join(RELAXABLE)})")
        _relaxed.add(name)


def relaxed(name: str) -> bool:
    return name in _relaxed


def reset() -> None:
    _relaxed.clear()
