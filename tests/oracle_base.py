"""The oracle's building blocks: raw Kafka records, strict JSON with exact numbers, canonical
content, ISO-8601 timestamps and fixed-point decimals (contract §1 "Numbers and money", reused
for the reference data of §2). Stdlib only; shared by :mod:`tests.oracle`,
:mod:`tests.oracle_history` and :mod:`tests.oracle_reports`, and written, like them, from the
contract alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final, TypeAlias, TypeGuard

#: Money is DECIMAL(18,4): 4 decimal places, 14 digits before the point.
MONEY_SCALE: Final = 4
MONEY_LIMIT: Final = 10**14
#: Plenty of digits so that products and sums of money are exact.
EXACT: Final = Context(prec=400)
#: Half-to-even rounding, with room for any value below the limits used here.
ROUND: Final = Context(prec=100, rounding=ROUND_HALF_EVEN)

Canonical: TypeAlias = tuple[Any, ...]
"""A hashable, order- and formatting-independent form of a parsed JSON value."""

Position: TypeAlias = tuple[str, int, int]
"""``(topic, partition, offset)`` of one Kafka record."""


@dataclass(frozen=True)
class Record:
    """One raw Kafka record, exactly as read from the topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def position(self) -> Position:
        return (self.topic, self.partition, self.offset)


# --------------------------------------------------------------------------------------------
# JSON parsing and canonical content
# --------------------------------------------------------------------------------------------


def _parse_int(text: str) -> int:
    """A JSON integer literal; more than 4300 digits (Python's int() limit) is refused as
    unreadable, a team rule: no money or quantity comes near it."""
    return int(text)  # ValueError beyond 4300 digits


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str) -> Any:
    """Strict JSON with every number as an exact int or Decimal; ValueError on NaN/Infinity,
    trailing data or an integer of more than 4300 digits."""
    return json.loads(
        text, parse_float=Decimal, parse_int=_parse_int, parse_constant=_refuse_constant
    )


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _canonical_string(text: str) -> str:
    if _SURROGATE.search(text):
        raise ValueError("lone UTF-16 surrogate escape: not Unicode text")
    return text


def _canonical_number(number: int | Decimal) -> Canonical:
    """The exact value of a JSON number, however written: 2, 2.0, 2.000, 20e-1 and 0.2E1 give
    the same key, and -0.0, 0 and 0e5 give the key of zero."""
    sign, digit_tuple, exponent = Decimal(number).as_tuple()
    assert isinstance(exponent, int), "JSON numbers are finite"
    digits = list(digit_tuple)
    if not any(digits):
        return ("num", 0, (0,), 0)
    while digits[-1] == 0:
        digits.pop()
        exponent += 1
    return ("num", sign, tuple(digits), exponent)


def canonical(value: Any) -> Canonical:
    """A hashable form of a parsed JSON value, such that two values are "the same content"
    exactly when their canonical forms are equal.

    Key order and formatting vanish with parsing; numbers compare by exact value (``1.50`` is
    ``1.5``, ``1E2`` is ``100``, ``2`` is ``2.0``, ``-0.0`` is ``0``: interface §1), but
    ``true`` is not ``1``. Raises ValueError on a string holding a lone surrogate (from a
    ``\\ud800``-style escape).
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | Decimal):
        return _canonical_number(value)
    if isinstance(value, str):
        return ("str", _canonical_string(value))
    if isinstance(value, list):
        return ("list", tuple(canonical(element) for element in value))
    if isinstance(value, dict):
        members = [(_canonical_string(k), canonical(v)) for k, v in value.items()]
        return ("obj", tuple(sorted(members, key=lambda member: member[0])))
    raise TypeError(f"not a parsed JSON value: {value!r}")


# --------------------------------------------------------------------------------------------
# Timestamps and dates
# --------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|(?P<zone_sign>[+-])(?P<zone_hour>[0-9]{2})(?::?(?P<zone_minute>[0-9]{2}))?)?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_created_at(text: str) -> datetime | None:
    """An ISO-8601 extended timestamp as a naive UTC datetime, or None if it is not one.

    ``YYYY-MM-DD`` + ``T``/``t``/space + ``hh:mm`` + optional ``:ss`` + optional fraction of the
    seconds (``.`` or ``,``, 1-9 digits, truncated to microseconds) + optional zone (``Z``,
    ``z``, ``±hh:mm``, ``±hhmm``, ``±hh``). No zone means UTC.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    fraction = match["fraction"] or ""
    try:
        local = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            int(fraction[:6].ljust(6, "0")),
        )
    except ValueError:  # no such date, hour 24, minute or second 60, year 0000
        return None
    offset = timedelta(0)
    if match["zone_sign"] is not None:
        zone_hour = int(match["zone_hour"])
        zone_minute = int(match["zone_minute"] or 0)
        if zone_hour > 23 or zone_minute > 59:
            return None
        offset = timedelta(hours=zone_hour, minutes=zone_minute)
        if match["zone_sign"] == "-":
            offset = -offset
    try:
        return local - offset
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 once in UTC
        return None


def parse_date(text: str) -> date | None:
    """``YYYY-MM-DD`` that is a real calendar date (so not 2025-02-29, not year 0000)."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def json_number(value: Any) -> Decimal | None:
    """A parsed JSON number as a Decimal (``true`` is not a number), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return None


def fixed_point(number: Decimal, places: int, limit: int) -> Decimal | None:
    """``number`` rounded half-to-even to ``places`` decimals, or None when the rounded
    magnitude is ``limit`` or more. Zero comes back without a sign."""
    if number.copy_abs() >= limit:  # also keeps 1e400 from quantize
        return None
    stored = number.quantize(Decimal(1).scaleb(-places), context=ROUND)
    if stored.copy_abs() >= limit:  # 99999999999999.99995 rounds up to 10**14
        return None
    return stored.copy_abs() if stored.is_zero() else stored


def stored_money(value: Any) -> Decimal | None:
    """A JSON number as DECIMAL(18,4) stores it (half-to-even to 4 places), or None when it is
    not a number or its rounded magnitude is 10**14 or more."""
    number = json_number(value)
    return None if number is None else fixed_point(number, MONEY_SCALE, MONEY_LIMIT)


def non_blank_string(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""
