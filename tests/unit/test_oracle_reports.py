"""The oracle's reports of contract §5: one reporting currency, as was and as is, windows,
sales over time and unconverted sales, against figures worked out by hand (each in the test's
docstring or a comment)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.oracle import Expected, report, report_variants
from tests.unit.oracle_inputs import at, order, rate, user, world

D = Decimal


def money(rows: list[dict[str, Any]], key: str) -> list[tuple[Any, Decimal, str]]:
    return [(row[key], row["total_sales"], row["currency"]) for row in rows]


def unconverted(expected: Expected, currency: str = "USD") -> list[tuple[Any, int, Decimal]]:
    rows = report(expected, "unconverted-sales", currency=currency)
    return [(row["currency"], row["lines"], row["total"]) for row in rows]


def over_time(expected: Expected, **options: Any) -> list[tuple[str, int, int, Decimal, str]]:
    rows = report(expected, "sales-over-time", **options)
    return [(r["period"], r["orders"], r["units"], r["total_sales"], r["currency"]) for r in rows]


@pytest.fixture
def six_currencies() -> Expected:
    """Rates: EUR 1.10 on Fri 2025-08-01 and 1.20 on Mon 08-04; GBP 1.25 on 08-01; MXN none.

    o-1 u-1 USD 08-01T10:00  p-1 2 x 10.00 = 20 USD
    o-2 u-1 EUR 08-02T12:00  p-1 1 x 100   = 100 EUR (a Saturday: Friday's 1.10)
    o-3 u-2 EUR 07-31T12:00  p-2 1 x 50    = 50 EUR (before EUR's first rate)
    o-4 u-2 MXN 08-04T09:00  p-2 3 x 7.5   = 22.5 MXN (no rates at all)
    o-5 u-3 --- 08-04T09:00  p-1 1 x 9     = 9, no currency
    o-6 u-3 USD no created_at p-1 1 x 5    = 5 USD
    o-7 u-2 GBP 08-05T00:30  p-2 2 x 3.3333 = 6.6666 GBP (GBP 1.25, EUR 1.20 on Tue 08-05)
    o-8 u-3 EUR no created_at p-1 1 x 40   = 40 EUR
    """
    return world(
        [
            order("o-1", "u-1", created_at="2025-08-01T10:00:00Z", items=[("p-1", "2", "10.00")]),
            order("o-2", "u-1", created_at="2025-08-02T12:00:00Z", currency="EUR",
                  items=[("p-1", "1", "100")]),
            order("o-3", "u-2", created_at="2025-07-31T12:00:00Z", currency="EUR",
                  items=[("p-2", "1", "50")]),
            order("o-4", "u-2", created_at="2025-08-04T09:00:00Z", currency="MXN",
                  items=[("p-2", "3", "7.5")]),
            order("o-5", "u-3", created_at="2025-08-04T09:00:00Z", currency=None,
                  items=[("p-1", "1", "9")]),
            order("o-6", "u-3", items=[("p-1", "1", "5")]),
            order("o-7", "u-2", created_at="2025-08-05T00:30:00Z", currency="GBP",
                  items=[("p-2", "2", "3.3333")]),
            order("o-8", "u-3", currency="EUR", items=[("p-1", "1", "40")]),
        ],
        rates=[
            rate("2025-08-01", "EUR", "1.10"),
            rate("2025-08-04", "EUR", "1.20"),
            rate("2025-08-01", "GBP", "1.25"),
        ],
    )  # fmt: skip


def test_usd_converts_each_line_at_its_dates_rate(six_currencies: Expected) -> None:
    """In USD: u-1 = 20 + 100 x 1.10 = 130; u-2 = 6.6666 x 1.25 = 8.33325 -> 8.33 (o-3 has no
    rate yet, o-4 none at all); u-3 = 5 (o-6 is USD: taken as it is without a created_at; o-5
    has no currency; o-8 needs a rate and has no created_at). sales-by-channel (all NULL
    source): 20 + 110 + 5 + 8.33325 = 143.33325 -> 143.33."""
    assert money(report(six_currencies, "top-users"), "user_id") == [
        ("u-1", D("130.00"), "USD"),
        ("u-2", D("8.33"), "USD"),
        ("u-3", D("5.00"), "USD"),
    ]
    assert money(report(six_currencies, "sales-by-channel"), "source") == [
        (None, D("143.33"), "USD")
    ]
    # EUR: o-3 50 + o-8 40 = 90 in 2 lines; MXN 22.5; no currency: 9, last.
    assert unconverted(six_currencies) == [
        ("EUR", 2, D("90")),
        ("MXN", 1, D("22.5")),
        (None, 1, D("9")),
    ]


def test_eur_converts_through_the_usd_rates(six_currencies: Expected) -> None:
    """In EUR: o-1 20 USD / 1.10 = 18.1818...; o-2 100 and o-3 50 and o-8 40 are already EUR
    (taken as they are, even o-3 before any EUR rate and o-8 without created_at); o-7 6.6666 x
    1.25 / 1.20 = 6.944375. u-1 = 118.1818... -> 118.18; u-2 = 56.944375 -> 56.94; u-3 = 40.
    Unconverted: MXN 22.5, USD 5 (o-6 needs EUR's rate and has no created_at), NULL 9.
    Channel: 18.1818... + 100 + 50 + 6.944375 + 40 = 215.1261931... -> 215.13."""
    assert money(report(six_currencies, "top-users", currency="EUR"), "user_id") == [
        ("u-1", D("118.18"), "EUR"),
        ("u-2", D("56.94"), "EUR"),
        ("u-3", D("40.00"), "EUR"),
    ]
    assert money(report(six_currencies, "sales-by-channel", currency="EUR"), "source") == [
        (None, D("215.13"), "EUR")
    ]
    assert unconverted(six_currencies, "EUR") == [
        ("MXN", 1, D("22.5")),
        ("USD", 1, D("5")),
        (None, 1, D("9")),
    ]


def test_sales_over_time_counts_every_order_and_converts_what_it_can(
    six_currencies: Expected,
) -> None:
    """Days 07-31 .. 08-05, 08-03 empty; orders without created_at (o-6, o-8) in none.
    USD: 07-31 o-3 (1 unit, unconverted: 0.00); 08-01 o-1 (2 units, 20); 08-02 o-2 (1, 110);
    08-04 o-4 + o-5 (2 orders, 4 units, neither converted); 08-05 o-7 (2 units, 8.33325).
    EUR: 07-31 50; 08-01 18.18; 08-02 100; 08-05 6.944375 -> 6.94."""
    assert over_time(six_currencies) == [
        ("2025-07-31", 1, 1, D("0.00"), "USD"),
        ("2025-08-01", 1, 2, D("20.00"), "USD"),
        ("2025-08-02", 1, 1, D("110.00"), "USD"),
        ("2025-08-03", 0, 0, D("0.00"), "USD"),
        ("2025-08-04", 2, 4, D("0.00"), "USD"),
        ("2025-08-05", 1, 2, D("8.33"), "USD"),
    ]
    assert [row[3] for row in over_time(six_currencies, currency="EUR")] == [
        D("50.00"),
        D("18.18"),
        D("100.00"),
        D("0.00"),
        D("0.00"),
        D("6.94"),
    ]


def test_top_products_counts_every_line_with_the_current_name(six_currencies: Expected) -> None:
    """Units count converted or not: p-1 = 2 + 1 + 1 + 1 + 1 = 6 (o-1, o-2, o-5, o-6, o-8),
    p-2 = 1 + 3 + 2 = 6 (o-3, o-4, o-7); a tie, so by sku. No product version: NULL names."""
    assert report(six_currencies, "top-products") == [
        {"sku": "p-1", "name": None, "units_sold": 6},
        {"sku": "p-2", "name": None, "units_sold": 6},
    ]


def test_windows_keep_since_inclusive_until_exclusive(six_currencies: Expected) -> None:
    """[08-02T12:00, 08-04T09:00): only o-2 (at since exactly); o-4 and o-5 (at until exactly)
    and every order without created_at are out; an aware bound is taken in UTC.
    [08-03, -): o-4, o-5, o-7; the periods start at the earliest order inside (08-04), not at
    since."""
    window: dict[str, Any] = {"since": at("2025-08-02T12:00"), "until": at("2025-08-04T09:00")}
    assert money(report(six_currencies, "top-users", **window), "user_id") == [
        ("u-1", D("110.00"), "USD")
    ]
    assert over_time(six_currencies, **window) == [("2025-08-02", 1, 1, D("110.00"), "USD")]
    plus_two = timezone(timedelta(hours=2))  # 14:00+02:00 is since, 12:00 UTC
    aware = {"since": datetime(2025, 8, 2, 14, tzinfo=plus_two), "until": window["until"]}
    assert over_time(six_currencies, **aware) == [("2025-08-02", 1, 1, D("110.00"), "USD")]
    assert unconverted(six_currencies) != []
    assert report(six_currencies, "unconverted-sales", **window) == []
    assert report(six_currencies, "top-products", **window) == [
        {"sku": "p-1", "name": None, "units_sold": 1}
    ]
    later: dict[str, Any] = {"since": at("2025-08-03")}
    assert money(report(six_currencies, "top-users", **later), "user_id") == [
        ("u-2", D("8.33"), "USD")
    ]
    assert over_time(six_currencies, **later) == [
        ("2025-08-04", 2, 4, D("0.00"), "USD"),
        ("2025-08-05", 1, 2, D("8.33"), "USD"),
    ]


# --------------------------------------------------------------------------------------------
# Rates with gaps, currencies without rates, orders without created_at or currency
# --------------------------------------------------------------------------------------------


def test_a_weekend_keeps_fridays_rate_and_nothing_applies_before_the_first() -> None:
    """EUR: Thu 08-07 1.10, Fri 08-08 1.20, Mon 08-11 1.40; each order 100 EUR.
    Fri -> 120; Sat -> 120; Sun 23:59 -> 120; 2025-08-11T01:00+02:00 is Sun 23:00 UTC -> 120;
    Mon 00:00 -> 140; Wed 08-06 is before the first rate: unconverted."""
    days = {
        "u-fri": "2025-08-08T12:00:00Z",
        "u-sat": "2025-08-09T12:00:00Z",
        "u-sun": "2025-08-10T23:59:00Z",
        "u-sun-utc": "2025-08-11T01:00:00+02:00",
        "u-mon": "2025-08-11T00:00:00Z",
        "u-wed": "2025-08-06T12:00:00Z",
    }
    expected = world(
        [
            order(f"o-{uid}", uid, created_at=t, currency="EUR", items=[("p-1", "1", "100")])
            for uid, t in days.items()
        ],
        rates=[
            rate("2025-08-11", "EUR", "1.40"),
            rate("2025-08-07", "EUR", "1.10"),
            rate("2025-08-08", "EUR", "1.20"),
        ],
    )
    assert money(report(expected, "top-users", None), "user_id") == [
        ("u-mon", D("140.00"), "USD"),
        ("u-fri", D("120.00"), "USD"),
        ("u-sat", D("120.00"), "USD"),
        ("u-sun", D("120.00"), "USD"),
        ("u-sun-utc", D("120.00"), "USD"),
    ]
    assert unconverted(expected) == [("EUR", 1, D("100"))]


def test_a_currency_without_rates_is_never_converted_but_can_be_reported_in() -> None:
    """MXN has no rate. In USD: o-1 (200 MXN) is unconverted, u-2 has 10. In MXN (accepted):
    o-1 counts as it is, 200, and the USD line needs an MXN rate: unconverted. In EUR (1.25 on
    08-01): 10 / 1.25 = 8."""
    expected = world(
        [
            order("o-1", "u-1", created_at="2025-08-04T00:00:00Z", currency="MXN",
                  items=[("p-1", "1", "200")]),
            order("o-2", "u-2", created_at="2025-08-04T00:00:00Z", items=[("p-1", "1", "10")]),
        ],
        rates=[rate("2025-08-01", "EUR", "1.25")],
    )  # fmt: skip
    assert money(report(expected, "top-users"), "user_id") == [("u-2", D("10.00"), "USD")]
    assert unconverted(expected) == [("MXN", 1, D("200"))]
    assert money(report(expected, "top-users", currency="MXN"), "user_id") == [
        ("u-1", D("200.00"), "MXN")
    ]
    assert unconverted(expected, "MXN") == [("USD", 1, D("10"))]
    assert money(report(expected, "top-users", currency="EUR"), "user_id") == [
        ("u-2", D("8.00"), "EUR")
    ]


def test_orders_without_created_at_or_currency() -> None:
    """EUR 1.5 on 08-01. o-1 (no currency, 08-01, 10): unconverted. o-2 (USD, no created_at,
    20): converted as it is. o-3 (EUR, no created_at, 30): needs a rate, unconverted. o-4 (EUR,
    08-01, 40): 60. u-1 = 20, u-2 = 60. Over time: only 08-01, with o-1 and o-4 (2 orders,
    2 units, 60). Unconverted: EUR 30, then the NULL currency 10 last."""
    expected = world(
        [
            order("o-1", "u-1", created_at="2025-08-01T00:00:00Z", currency=None,
                  items=[("p-1", "1", "10")]),
            order("o-2", "u-1", items=[("p-1", "1", "20")]),
            order("o-3", "u-2", currency="EUR", items=[("p-1", "1", "30")]),
            order("o-4", "u-2", created_at="2025-08-01T00:00:00Z", currency="EUR",
                  items=[("p-1", "1", "40")]),
        ],
        rates=[rate("2025-08-01", "EUR", "1.5")],
    )  # fmt: skip
    assert money(report(expected, "top-users"), "user_id") == [
        ("u-2", D("60.00"), "USD"),
        ("u-1", D("20.00"), "USD"),
    ]
    assert over_time(expected) == [("2025-08-01", 2, 2, D("60.00"), "USD")]
    assert unconverted(expected) == [("EUR", 1, D("30")), (None, 1, D("10"))]
    assert report(expected, "top-products") == [{"sku": "p-1", "name": None, "units_sold": 4}]


def test_a_group_with_no_converted_line_is_not_listed() -> None:
    """u-1's only order is MXN: no top-users row, no top-countries row for FR, no channel row
    for app; u-2 (USD, DE, web) is listed."""
    expected = world(
        [
            order("o-1", "u-1", created_at="2025-08-01T00:00:00Z", currency="MXN", source="app"),
            order("o-2", "u-2", created_at="2025-08-01T00:00:00Z", source="web"),
        ],
        users=[user("u-1", "FR"), user("u-2", "DE")],
    )
    assert money(report(expected, "top-users"), "user_id") == [("u-2", D("10.00"), "USD")]
    assert money(report(expected, "top-countries"), "country") == [("DE", D("10.00"), "USD")]
    assert money(report(expected, "sales-by-channel"), "source") == [("web", D("10.00"), "USD")]


# --------------------------------------------------------------------------------------------
# As was, as is
# --------------------------------------------------------------------------------------------


def test_top_countries_as_was_and_as_is() -> None:
    """u-1 is DE until 08-10, FR from then; u-2 is FR; u-9 has no version.
    o-1 u-1 08-05 100 (DE as was); o-2 u-1 08-15 30 (FR); o-3 u-2 08-06 50 (FR); o-4 u-1 without
    created_at 7 (the current version: FR); o-5 no user 1 and o-6 u-9 2: NULL.
    As was: DE 100, FR 87, NULL 3. As is: FR 187, NULL 3."""
    expected = world(
        [
            order("o-1", "u-1", created_at="2025-08-05T00:00:00Z", items=[("p-1", "1", "100")]),
            order("o-2", "u-1", created_at="2025-08-15T00:00:00Z", items=[("p-1", "1", "30")]),
            order("o-3", "u-2", created_at="2025-08-06T00:00:00Z", items=[("p-1", "1", "50")]),
            order("o-4", "u-1", items=[("p-1", "1", "7")]),
            order("o-5", None, created_at="2025-08-06T00:00:00Z", items=[("p-1", "1", "1")]),
            order("o-6", "u-9", created_at="2025-08-06T00:00:00Z", items=[("p-1", "1", "2")]),
        ],
        users=[
            user("u-1", "DE", "2025-07-01T00:00:00Z"),
            user("u-1", "FR", "2025-08-10T00:00:00Z"),
            user("u-2", "FR", "2025-07-01T00:00:00Z"),
        ],
    )
    assert money(report(expected, "top-countries"), "country") == [
        ("DE", D("100.00"), "USD"),
        ("FR", D("87.00"), "USD"),
        (None, D("3.00"), "USD"),
    ]
    assert money(report(expected, "top-countries", as_is=True), "country") == [
        ("FR", D("187.00"), "USD"),
        (None, D("3.00"), "USD"),
    ]


# --------------------------------------------------------------------------------------------
# sales-over-time grains
# --------------------------------------------------------------------------------------------


def test_sales_over_time_by_day_and_by_iso_week() -> None:
    """o-1 Fri 08-01T10:00 2 x 10 = 20; o-2 08-01T23:59:59 MXN (1 unit, unconverted);
    o-3 2025-08-02T00:30+01:00 = 08-01T23:30 UTC, no lines; o-4 Sun 08-03T23:59:59 1 x 1;
    o-5 Mon 08-04T00:00 3 x 1.005 = 3.015 -> 3.02; o-6 without created_at is in no period.
    Days: 08-01 3 orders 3 units 20; 08-02 empty; 08-03 1, 1, 1; 08-04 1, 3, 3.02.
    Weeks start on the ISO Monday: 07-28 holds 08-01..08-03 (4, 4, 21), 08-04 the rest."""
    expected = world(
        [
            order("o-1", created_at="2025-08-01T10:00:00Z", items=[("p-1", "2", "10")]),
            order("o-2", created_at="2025-08-01T23:59:59Z", currency="MXN",
                  items=[("p-1", "1", "5")]),
            order("o-3", created_at="2025-08-02T00:30:00+01:00", items=[]),
            order("o-4", created_at="2025-08-03T23:59:59Z", items=[("p-1", "1", "1")]),
            order("o-5", created_at="2025-08-04T00:00:00Z", items=[("p-1", "3", "1.005")]),
            order("o-6", items=[("p-1", "1", "100")]),
        ]
    )  # fmt: skip
    assert over_time(expected) == [
        ("2025-08-01", 3, 3, D("20.00"), "USD"),
        ("2025-08-02", 0, 0, D("0.00"), "USD"),
        ("2025-08-03", 1, 1, D("1.00"), "USD"),
        ("2025-08-04", 1, 3, D("3.02"), "USD"),
    ]
    assert over_time(expected, grain="week") == [
        ("2025-07-28", 4, 4, D("21.00"), "USD"),
        ("2025-08-04", 1, 3, D("3.02"), "USD"),
    ]


def test_sales_over_time_by_month_across_a_new_year() -> None:
    """2025-11-15; 2025-11-30T23:00-02:00 = 12-01T01:00 UTC (December); 2026-02-01: months
    2025-11-01, 2025-12-01, 2026-01-01 (empty), 2026-02-01; each order 1 x 1."""
    expected = world(
        [
            order("o-1", created_at="2025-11-15T00:00:00Z", items=[("p-1", "1", "1")]),
            order("o-2", created_at="2025-11-30T23:00:00-02:00", items=[("p-1", "1", "1")]),
            order("o-3", created_at="2026-02-01T00:00:00Z", items=[("p-1", "1", "1")]),
        ]
    )
    assert over_time(expected, grain="month") == [
        ("2025-11-01", 1, 1, D("1.00"), "USD"),
        ("2025-12-01", 1, 1, D("1.00"), "USD"),
        ("2026-01-01", 0, 0, D("0.00"), "USD"),
        ("2026-02-01", 1, 1, D("1.00"), "USD"),
    ]


def test_sales_over_time_by_hour() -> None:
    """13:05 and 13:59:59.999999 fall in the 13:00 hour, 15:00:00 starts its own; 14:00 is
    empty. Periods are written 2025-08-01T13:00:00Z."""
    expected = world(
        [
            order("o-1", created_at="2025-08-01T13:05:00Z", items=[("p-1", "1", "1")]),
            order("o-2", created_at="2025-08-01T13:59:59.999999Z", items=[("p-1", "2", "1")]),
            order("o-3", created_at="2025-08-01T15:00:00Z", items=[("p-1", "1", "4")]),
        ]
    )
    assert over_time(expected, grain="hour") == [
        ("2025-08-01T13:00:00Z", 2, 3, D("3.00"), "USD"),
        ("2025-08-01T14:00:00Z", 0, 0, D("0.00"), "USD"),
        ("2025-08-01T15:00:00Z", 1, 1, D("4.00"), "USD"),
    ]


def test_sales_over_time_without_a_created_at_has_no_rows() -> None:
    """No order with a created_at: no periods at all."""
    assert report(world([order("o-1")]), "sales-over-time") == []


# --------------------------------------------------------------------------------------------
# Shapes, order and limits
# --------------------------------------------------------------------------------------------


def test_every_report_has_exactly_the_contract_keys(six_currencies: Expected) -> None:
    """Keys in the contract's order (§5); money as Decimal, counts as int."""
    keys = {
        "top-users": ["user_id", "total_sales", "currency"],
        "top-products": ["sku", "name", "units_sold"],
        "top-countries": ["country", "total_sales", "currency"],
        "sales-by-channel": ["source", "total_sales", "currency"],
        "sales-over-time": ["period", "orders", "units", "total_sales", "currency"],
        "unconverted-sales": ["currency", "lines", "total"],
    }
    for name, columns in keys.items():
        rows = report(six_currencies, name)
        assert rows, name
        assert all(list(row) == columns for row in rows), name
        for row in rows:
            for column in ("total_sales", "total"):
                assert column not in row or isinstance(row[column], Decimal)
            for column in ("orders", "units", "lines", "units_sold"):
                assert column not in row or type(row[column]) is int


def test_order_is_by_the_rounded_measure_then_the_key() -> None:
    """u-a 10.001 and u-b 10.004 both show 10.00: a tie, broken by key (u-a first)."""
    expected = world(
        [
            order("o-1", "u-b", items=[("p-1", "1", "10.004")]),
            order("o-2", "u-a", items=[("p-1", "1", "10.001")]),
        ]
    )
    assert money(report(expected, "top-users"), "user_id") == [
        ("u-a", D("10.00"), "USD"),
        ("u-b", D("10.00"), "USD"),
    ]


def test_unconverted_sales_is_exact_and_ordered_by_total_then_currency() -> None:
    """BRL and JPY tie at 5 (BRL first), CAD is 3 x 0.0001 = 0.0003 exactly (never rounded),
    the NULL currency's 100 comes last anyway."""
    expected = world(
        [
            order("o-1", currency="JPY", items=[("p-1", "1", "5")]),
            order("o-2", currency="BRL", items=[("p-1", "1", "2"), ("p-2", "1", "3")]),
            order("o-3", currency="CAD", items=[("p-1", "3", "0.0001")]),
            order("o-4", currency=None, items=[("p-1", "1", "100")]),
        ]
    )
    assert unconverted(expected) == [
        ("BRL", 2, D("5")),
        ("JPY", 1, D("5")),
        ("CAD", 1, D("0.0003")),
        (None, 1, D("100")),
    ]


def test_limits_default_to_five_except_for_the_every_row_reports() -> None:
    """Seven currencies without rates over seven days (and a USD order on the first):
    unconverted-sales and sales-over-time list all 7 rows unless a limit is given; seven
    users: top-users shows 5 by default."""
    codes = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"]
    expected = world(
        [
            order(f"o-{n}", f"u-{n}", created_at=f"2025-08-0{n + 1}T00:00:00Z", currency=code)
            for n, code in enumerate(codes)
        ]
        + [order("o-9", "u-9", created_at="2025-08-01T00:00:00Z")]
    )
    assert len(report(expected, "unconverted-sales")) == 7
    assert len(report(expected, "sales-over-time")) == 7
    assert len(report(expected, "unconverted-sales", limit=3)) == 3
    every = world([order(f"o-{n}", f"u-{n}") for n in range(7)])
    assert len(report(every, "top-users")) == 5
    assert len(report(every, "top-users", None)) == 7


@pytest.mark.parametrize(
    "options",
    [{"currency": "usd"}, {"currency": "US"}, {"currency": "EURO"}, {"grain": "year"}],
    ids=["lowercase", "two-letters", "four-letters", "unknown-grain"],
)
def test_bad_options_are_refused(six_currencies: Expected, options: dict[str, str]) -> None:
    """A reporting currency that is not three capital letters, or an unknown grain, raises."""
    with pytest.raises(ValueError, match=r"currency|grain"):
        report(six_currencies, "sales-over-time", **options)  # type: ignore[arg-type]


def test_report_variants_cover_every_report_currency_view_and_grain() -> None:
    """USD and EUR: top-users, sales-by-channel and unconverted-sales once each per currency
    (6), top-countries as was and as is (4), sales-over-time at 4 grains (8), top-products,
    which has no money, once: 19 variants."""
    variants = report_variants()
    assert len(variants) == 19
    assert ("top-countries", {"currency": "EUR", "as_is": True}) in variants
    assert ("sales-over-time", {"currency": "USD", "grain": "hour"}) in variants
    assert ("top-products", {"currency": "USD"}) in variants
    assert ("unconverted-sales", {"currency": "EUR"}) in variants
