"""The options every report takes besides its window (CONTRACT §5): the reporting currency,
as was or as is, and the grain of ``sales-over-time``."""

from __future__ import annotations

import re
from dataclasses import dataclass

GRAINS = ("hour", "day", "week", "month")
DEFAULT_CURRENCY = "USD"
DEFAULT_GRAIN = "day"
_CURRENCY = re.compile(r"[A-Z]{3}")
TRUTHS = {"1": True, "true": True, "0": False, "false": False}


@dataclass(frozen=True)
class ReportOptions:
    """``currency``: three capital letters (ISO 4217 style); ``as_is``: group by the current
    version of a dimension instead of the one in effect when the order was placed."""

    currency: str = DEFAULT_CURRENCY
    as_is: bool = False
    grain: str = DEFAULT_GRAIN

    def __post_init__(self) -> None:
        if not _CURRENCY.fullmatch(self.currency):
            raise ValueError(f"currency {self.currency!r} is not three capital letters, e.g. USD")
        if self.grain not in GRAINS:
            raise ValueError(f"grain {self.grain!r} is not one of {', '.join(GRAINS)}")

    def params(self) -> dict[str, str | bool]:
        return {"currency": self.currency, "as_is": self.as_is, "grain": self.grain}

    @classmethod
    def parse(
        cls, currency: str | None = None, as_is: str | bool | None = None, grain: str | None = None
    ) -> ReportOptions:
        """From text (the API's query string, the local channel): ``as_is`` is ``1``/``true``
        or ``0``/``false``; a missing option takes its default. ValueError names a bad one."""
        if isinstance(as_is, str):
            if as_is.lower() not in TRUTHS:
                raise ValueError(f"as_is must be 1, 0, true or false, got {as_is!r}")
            as_is = TRUTHS[as_is.lower()]
        return cls(
            DEFAULT_CURRENCY if currency is None else currency,
            bool(as_is),
            DEFAULT_GRAIN if grain is None else grain,
        )


DEFAULT_OPTIONS = ReportOptions()
