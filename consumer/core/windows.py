"""Time windows of the reports: ``--since`` and ``--until`` (and the API's ``since`` and
``until``), ISO-8601 dates or timestamps, in UTC unless they carry an offset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime


def parse_instant(text: str, name: str) -> datetime:
    """A naive UTC datetime from ``YYYY-MM-DD`` or an ISO timestamp (``Z`` or ``±hh:mm``)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{name} {text!r} is not an ISO date or timestamp") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True)
class Window:
    """Orders with ``since <= created_at < until``; either end may be open. A windowed report
    leaves out orders whose ``created_at`` is NULL."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since {self.since} is not before until {self.until}")

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Window:
        return cls(
            None if since is None else parse_instant(since, "since"),
            None if until is None else parse_instant(until, "until"),
        )

    def params(self) -> dict[str, datetime | None]:
        return {"since": self.since, "until": self.until}


EVERYTHING = Window()
