"""The reports of contract §5, computed from an :class:`tests.oracle.Expected` alone.

Money is converted into one reporting currency with exact rational arithmetic
(``fractions.Fraction``), then rounded half-to-even to 2 decimals; ``top-countries`` groups as
was (the user's version in effect at the order's ``created_at``) unless ``as_is``. Stdlib only.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, Literal

from tests.oracle_base import EXACT
from tests.oracle_history import USD

if TYPE_CHECKING:
    from tests.oracle import Expected, LineRow, OrderRow
    from tests.oracle_history import UserVersion

REPORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "top-users": ("user_id", "total_sales", "currency"),
    "top-products": ("sku", "name", "units_sold"),
    "top-countries": ("country", "total_sales", "currency"),
    "sales-by-channel": ("source", "total_sales", "currency"),
    "sales-over-time": ("period", "orders", "units", "total_sales", "currency"),
    "unconverted-sales": ("currency", "lines", "total"),
}
DEFAULT_LIMIT: Final = 5
EVERY_ROW: Final = frozenset({"sales-by-channel", "sales-over-time", "unconverted-sales"})
GRAINS: Final = ("hour", "day", "week", "month")
_CURRENCY = re.compile(r"[A-Z]{3}")


class _Rates:
    """rate(K, d): 1 for USD; else K's rate with the latest date <= d; None before K's
    first rate, and for a currency with none (never back-filled)."""

    def __init__(self, fx_rates: dict[tuple[date, str], Decimal]) -> None:
        by_currency: defaultdict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for (day, currency), rate in fx_rates.items():
            by_currency[currency].append((day, rate))
        self._days = {k: [d for d, _ in sorted(v)] for k, v in by_currency.items()}
        self._rates = {k: [r for _, r in sorted(v)] for k, v in by_currency.items()}

    def on(self, currency: str, day: date) -> Decimal | None:
        if currency == USD:
            return Decimal(1)
        index = bisect.bisect_right(self._days.get(currency, []), day)
        return self._rates[currency][index - 1] if index else None


def _converted(line: LineRow, order: OrderRow, target: str, rates: _Rates) -> Fraction | None:
    """A line's value in ``target``, or None when it cannot be converted (§5)."""
    value = Fraction(line.quantity) * Fraction(line.unit_price)
    if order.currency == target:
        return value  # already in the reporting currency, whatever created_at is
    if order.currency is None or order.created_at is None:
        return None
    day = order.created_at.date()
    own, reporting = rates.on(order.currency, day), rates.on(target, day)
    if own is None or reporting is None:
        return None
    return value * Fraction(own) / Fraction(reporting)


def _cents(value: Fraction) -> Decimal:
    """Half-to-even to 2 decimals (``round`` on a Fraction rounds ties to even)."""
    return Decimal(round(value * 100)).scaleb(-2)


def _ranked(totals: dict[Any, Any]) -> list[Any]:
    """Keys by measure descending, ties by key ascending, the NULL key last."""
    keys = sorted(key for key in totals if key is not None)
    keys.sort(key=lambda key: totals[key], reverse=True)  # stable: ties keep key order
    return [*keys, None] if None in totals else keys


class _Countries:
    """A user's country as was (the version in effect at created_at, the last one with
    valid_from <= created_at; the current one when created_at is NULL) or as is (current);
    NULL when the order has no user or the user no version."""

    def __init__(self, history: dict[tuple[str, datetime], UserVersion]) -> None:
        by_user: defaultdict[str, list[UserVersion]] = defaultdict(list)
        for version in history.values():
            by_user[version.user_id].append(version)
        self._versions = {k: sorted(v, key=lambda v: v.valid_from) for k, v in by_user.items()}
        self._starts = {k: [v.valid_from for v in vs] for k, vs in self._versions.items()}

    def of(self, order: OrderRow, as_is: bool) -> str | None:
        versions = self._versions.get(order.user_id or "")
        if order.user_id is None or not versions:
            return None
        if as_is or order.created_at is None:
            return versions[-1].country
        index = bisect.bisect_right(self._starts[order.user_id], order.created_at)
        return versions[index - 1].country  # index >= 1: the first starts at -infinity


def _period(at: datetime, grain: str) -> datetime:
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = datetime(at.year, at.month, at.day)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())  # the ISO week's Monday
    return day.replace(day=1)


def _next_period(start: datetime, grain: str) -> datetime:
    if grain == "hour":
        return start + timedelta(hours=1)
    if grain in ("day", "week"):
        return start + timedelta(days=1 if grain == "day" else 7)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _period_text(start: datetime, grain: str) -> str:
    return start.strftime("%Y-%m-%dT%H:00:00Z") if grain == "hour" else start.date().isoformat()


Convert = Callable[["LineRow", "OrderRow"], Fraction | None]


def _over_time(
    orders: list[OrderRow],
    lines: dict[str, list[LineRow]],
    convert: Convert,
    grain: str,
    target: str,
) -> list[dict[str, Any]]:
    stamped = [order for order in orders if order.created_at is not None]
    if not stamped:
        return []
    counts: defaultdict[datetime, list[Any]] = defaultdict(lambda: [0, 0, Fraction(0)])
    for order in stamped:
        assert order.created_at is not None
        figures = counts[_period(order.created_at, grain)]
        figures[0] += 1
        for line in lines[order.order_id]:
            figures[1] += line.quantity
            value = convert(line, order)
            figures[2] += 0 if value is None else value
    rows = []
    start, last = min(counts), max(counts)
    while start <= last:
        n, units, total = counts.get(start, [0, 0, Fraction(0)])
        rows.append(
            {
                "period": _period_text(start, grain),
                "orders": n,
                "units": units,
                "total_sales": _cents(total),
                "currency": target,
            }
        )
        start = _next_period(start, grain)
    return rows


def _naive_utc(moment: datetime | None) -> datetime | None:
    """Orders' timestamps are naive UTC; an aware bound is converted to match."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def report(
    expected: Expected,
    name: str,
    limit: int | Literal["default"] | None = "default",
    *,
    currency: str = USD,
    as_is: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    grain: str = "day",
) -> list[dict[str, Any]]:
    """The rows ``consumer query NAME --format json`` must print, as dicts with exactly the
    contract's keys in its order. ``total_sales`` is a Decimal rounded to 2 places, ``total``
    an exact Decimal. ``limit="default"`` means 5, or every row for sales-by-channel,
    sales-over-time and unconverted-sales; ``None`` means every row. ``since``/``until``
    (naive means UTC): an order counts when ``since <= created_at < until`` (none without
    ``created_at`` once either is given). ``as_is`` changes top-countries only."""
    if name not in REPORT_KEYS:
        raise ValueError(f"unknown report {name!r}")
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"reporting currency {currency!r} is not three capital letters")
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}")
    if limit == "default":
        limit = None if name in EVERY_ROW else DEFAULT_LIMIT
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    since, until = _naive_utc(since), _naive_utc(until)

    def kept(order: OrderRow) -> bool:
        if since is None and until is None:
            return True
        at = order.created_at
        return at is not None and (since is None or since <= at) and (until is None or at < until)

    orders = [order for order in expected.orders.values() if kept(order)]
    lines: defaultdict[str, list[LineRow]] = defaultdict(list)
    for line in expected.lines.values():
        lines[line.order_id].append(line)
    rates = _Rates(expected.fx_rates)
    countries = _Countries(expected.user_history)

    def convert(line: LineRow, order: OrderRow) -> Fraction | None:
        return _converted(line, order, currency, rates)

    rows: list[dict[str, Any]]
    if name == "sales-over-time":
        rows = _over_time(orders, lines, convert, grain, currency)
    elif name == "top-products":
        units: defaultdict[str, int] = defaultdict(int)
        for order in orders:
            for line in lines[order.order_id]:
                units[line.sku] += line.quantity
        rows = []
        for sku in _ranked(units):
            product = expected.products.get(sku)
            rows.append(
                {"sku": sku, "name": None if product is None else product.name,
                 "units_sold": units[sku]}
            )  # fmt: skip
    elif name == "unconverted-sales":
        left: dict[str | None, list[Any]] = {}
        for order in orders:
            for line in lines[order.order_id]:
                if convert(line, order) is None:
                    figures = left.setdefault(order.currency, [0, Decimal(0)])
                    figures[0] += 1
                    with localcontext(EXACT):
                        figures[1] += line.quantity * line.unit_price
        rows = [
            {"currency": key, "lines": left[key][0], "total": left[key][1]}
            for key in _ranked({key: figures[1] for key, figures in left.items()})
        ]
    else:
        totals: dict[str | None, Fraction] = {}
        for order in orders:
            if name == "top-users":
                key = order.user_id
            elif name == "top-countries":
                key = countries.of(order, as_is)
            else:
                key = order.source
            for line in lines[order.order_id]:
                value = convert(line, order)
                if value is not None:  # a group needs at least one converted line
                    totals[key] = totals.get(key, Fraction(0)) + value
        rounded = {key: _cents(total) for key, total in totals.items()}
        key_name = REPORT_KEYS[name][0]
        rows = [
            {key_name: key, "total_sales": rounded[key], "currency": currency}
            for key in _ranked(rounded)
        ]
    return rows if limit is None else rows[:limit]


def report_variants(currencies: tuple[str, ...] = (USD, "EUR")) -> list[tuple[str, dict[str, Any]]]:
    """Every report of §5 with every option that changes it, as (name, keyword arguments of
    :func:`report`): each report in each reporting currency, top-countries as was and as is,
    sales-over-time at every grain (the acceptance answer of issue 25, USD and EUR)."""
    variants: list[tuple[str, dict[str, Any]]] = []
    for name in REPORT_KEYS:
        for currency in currencies if name != "top-products" else (USD,):
            if name == "top-countries":
                variants += [(name, {"currency": currency, "as_is": a}) for a in (False, True)]
            elif name == "sales-over-time":
                variants += [(name, {"currency": currency, "grain": g}) for g in GRAINS]
            else:
                variants.append((name, {"currency": currency}))
    return variants
