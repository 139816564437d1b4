"""History, rates and reports on a real DuckDB file (CONTRACT §2, §3, §5): reference versions
written with batches of orders, read back through the views and the reports. Every expected
figure is worked out by hand in a comment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from consumer.core.plan import build_batch
from consumer.core.records import Records
from consumer.core.refbatch import TopicRecords, reference_batch
from consumer.core.refdata import PRODUCTS, RATES, USERS
from consumer.core.reporting import ReportOptions
from consumer.core.windows import Window
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from consumer.warehouse.reports import report_rows
from consumer.warehouse.sqlfiles import sql_dir

MINUS_INFINITY = datetime.min  # how the Python client returns TIMESTAMP '-infinity'


class Feed:
    """Writes batches of orders and reference records, each topic's offsets counted up."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse
        self.offsets: dict[str, int] = {}
        self.batches = 0

    def _records(self, topic: str, values: list[bytes | None]) -> Records:
        first = self.offsets.get(topic, 0)
        self.offsets[topic] = first + len(values)
        n = len(values)
        return Records(list(values), [None] * n, [0] * n, list(range(first, first + n)))

    def write(
        self,
        orders: list[bytes | None] = (),  # type: ignore[assignment]
        users: list[bytes | None] = (),  # type: ignore[assignment]
        products: list[bytes | None] = (),  # type: ignore[assignment]
        rates: list[bytes | None] = (),  # type: ignore[assignment]
        files: list[tuple[str, str, pl.DataFrame]] = (),  # type: ignore[assignment]
    ) -> Any:
        topics = [
            TopicRecords(kind, topic, None, self._records(topic, list(values)))
            for kind, topic, values in (
                (USERS, "users", users),
                (PRODUCTS, "products", products),
                (RATES, "fx", rates),
            )
            if values
        ]
        self.batches += 1
        batch = build_batch(
            self.batches,
            "orders",
            self._records("orders", list(orders)),
            reference=reference_batch(topics, files),
        )
        return self.warehouse.write_batch(batch, lambda _rejects: None, self.batches)

    def report(self, name: str, **options: Any) -> list[dict[str, Any]]:
        cursor = self.warehouse.cursor()
        return report_rows(cursor, name, None, Window(), ReportOptions(**options))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.warehouse.cursor().execute(sql).fetchall()


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    yield Feed(warehouse)
    warehouse.close()


def order(oid: str, user: str | None, at: str | None, currency: str | None, *lines: Any) -> bytes:
    doc: dict[str, Any] = {
        "order_id": oid,
        "user_id": user,
        "currency": currency,
        "items": [{"sku": s, "quantity": q, "price": p} for s, q, p in lines],
    }
    if at is not None:
        doc["created_at"] = at
    return json.dumps(doc).encode()


def user(uid: str, country: str, at: str, name: str = "N") -> bytes:
    return json.dumps({"user_id": uid, "name": name, "country": country, "updated_at": at}).encode()


def rate(day: str, currency: str, value: str) -> bytes:
    return f'{{"date": "{day}", "currency": "{currency}", "rate": {value}}}'.encode()


def countries(feed: Feed, **options: Any) -> dict[str | None, Decimal]:
    return {r["country"]: r["total_sales"] for r in feed.report("top-countries", **options)}


def test_a_late_first_version_applies_to_orders_placed_before_it(feed: Feed) -> None:
    """u1's first version (DE) arrives, and takes effect, after u1's order: it is in effect
    from the start of time, so the order counts under DE, as was and as is."""
    feed.write(orders=[order("o1", "u1", "2025-08-01T10:00:00Z", "USD", ("p1", 1, 10))])
    assert countries(feed) == {None: Decimal("10.00")}  # no version yet: an inferred user
    assert feed.rows("SELECT is_inferred FROM dim_user") == [(True,)]
    feed.write(users=[user("u1", "DE", "2025-08-05T00:00:00Z")])
    assert countries(feed) == {"DE": Decimal("10.00")}
    assert feed.rows("SELECT country, is_inferred FROM dim_user") == [("DE", False)]
    assert feed.rows("SELECT valid_from, valid_to, is_current FROM dim_user_history") == [
        (MINUS_INFINITY, None, True)
    ]


def test_an_out_of_order_version_re_attributes_orders_already_loaded(feed: Feed) -> None:
    """Versions DE (Aug 1) and FR (Aug 10) are loaded with two orders of Aug 3 and Aug 12;
    IT (Aug 2) arrives last and takes over Aug 2 to Aug 10: the Aug 3 order moves to IT."""
    feed.write(
        orders=[
            order("o1", "u1", "2025-08-03T00:00:00Z", "USD", ("p1", 1, 10)),
            order("o2", "u1", "2025-08-12T00:00:00Z", "USD", ("p1", 2, 10)),
        ],
        users=[user("u1", "DE", "2025-08-01T00:00:00Z"), user("u1", "FR", "2025-08-10T00:00:00Z")],
    )
    assert countries(feed) == {"DE": Decimal("10.00"), "FR": Decimal("20.00")}
    feed.write(users=[user("u1", "IT", "2025-08-02T00:00:00Z")])
    assert countries(feed) == {"IT": Decimal("10.00"), "FR": Decimal("20.00")}
    assert countries(feed, as_is=True) == {"FR": Decimal("30.00")}
    assert feed.rows(
        "SELECT country, valid_from, valid_to, is_current FROM dim_user_history ORDER BY 2"
    ) == [
        ("DE", MINUS_INFINITY, datetime(2025, 8, 2), False),
        ("IT", datetime(2025, 8, 2), datetime(2025, 8, 10), False),
        ("FR", datetime(2025, 8, 10), None, True),
    ]


def test_identical_consecutive_versions_collapse_until_a_late_one_separates_them(
    feed: Feed,
) -> None:
    """DE (Aug 1) then DE again (Aug 5): one version. FR (Aug 3) arriving late splits them:
    DE, FR, DE; an order of Aug 6 then counts under the second DE, one of Aug 4 under FR."""
    feed.write(
        orders=[
            order("o1", "u1", "2025-08-04T00:00:00Z", "USD", ("p1", 1, 1)),
            order("o2", "u1", "2025-08-06T00:00:00Z", "USD", ("p1", 1, 2)),
        ],
        users=[user("u1", "DE", "2025-08-01T00:00:00Z"), user("u1", "DE", "2025-08-05T00:00:00Z")],
    )
    assert feed.rows("SELECT count(*) FROM dim_user_history") == [(1,)]
    assert feed.rows("SELECT count(*) FROM user_versions") == [(2,)]  # both kept: see below
    feed.write(users=[user("u1", "FR", "2025-08-03T00:00:00Z")])
    assert feed.rows("SELECT country FROM dim_user_history ORDER BY valid_from") == [
        ("DE",),
        ("FR",),
        ("DE",),
    ]
    assert countries(feed) == {"FR": Decimal("1.00"), "DE": Decimal("2.00")}


def test_a_version_delivered_again_is_counted_not_stored(feed: Feed) -> None:
    feed.write(users=[user("u1", "DE", "2025-08-01T00:00:00Z")])
    feed.write(users=[user("u1", "DE", "2025-08-01T00:00:00Z")])  # a re-read topic
    assert feed.rows("SELECT count(*) FROM user_versions") == [(1,)]
    assert feed.rows('SELECT topic, "offset", order_id FROM dropped_duplicates') == [
        ("users", 1, "u1")
    ]


def test_a_csv_without_updated_at_adds_a_version_only_when_its_content_changes(
    feed: Feed,
) -> None:
    def users_csv(country: str) -> list[tuple[str, str, pl.DataFrame]]:
        frame = pl.DataFrame(
            {
                "user_id": ["u1"],
                "name": ["N"],
                "email": [None],
                "country": [country],
                "signup_date": [None],
                "updated_at": [None],
            },
            schema={
                "user_id": pl.String,
                "name": pl.String,
                "email": pl.String,
                "country": pl.String,
                "signup_date": pl.Date,
                "updated_at": pl.Datetime("us"),
            },
        )
        return [(USERS, "users.csv", frame)]

    feed.write(files=users_csv("DE"))
    feed.write(files=users_csv("DE"))  # read again at a restart: nothing new
    assert feed.rows("SELECT country, file FROM user_versions") == [("DE", "users.csv")]
    feed.write(files=users_csv("FR"))
    assert feed.rows("SELECT country FROM dim_user_history ORDER BY valid_from") == [
        ("DE",),
        ("FR",),
    ]


def test_money_in_one_currency_with_weekend_gaps_and_a_currency_without_rates(
    feed: Feed,
) -> None:
    """EUR rates: Fri Aug 1 1.10, Mon Aug 4 1.20 (none on the weekend). Orders:
    o1 Sat Aug 2, 10 EUR -> Friday's rate, 11.00 USD;
    o2 Mon Aug 4, 5 USD;
    o3 Thu Jul 31, 10 EUR -> no EUR rate yet: unconverted;
    o4 MXN (no rates at all): unconverted; o5 no currency: unconverted;
    o6 EUR without created_at: unconverted in USD, taken as it is in EUR.
    In EUR: o1 10.00, o2 5 / 1.2 = 4.1666.. -> 4.17, o6 3.00; o3 is EUR too: as it is, 10.00."""
    feed.write(
        orders=[
            order("o1", "u1", "2025-08-02T12:00:00Z", "EUR", ("p1", 2, 5)),
            order("o2", "u1", "2025-08-04T12:00:00Z", "USD", ("p1", 1, 5)),
            order("o3", "u1", "2025-07-31T12:00:00Z", "EUR", ("p1", 1, 10)),
            order("o4", "u1", "2025-08-02T12:00:00Z", "MXN", ("p1", 1, 7)),
            order("o5", "u1", "2025-08-02T12:00:00Z", None, ("p1", 1, 9)),
            order("o6", "u1", None, "EUR", ("p1", 1, 3)),
        ],
        rates=[rate("2025-08-01", "EUR", "1.10"), rate("2025-08-04", "EUR", "1.20")],
    )
    assert feed.report("top-users") == [
        {"user_id": "u1", "total_sales": Decimal("16.00"), "currency": "USD"}
    ]
    assert feed.report("top-users", currency="EUR") == [
        {"user_id": "u1", "total_sales": Decimal("27.17"), "currency": "EUR"}
    ]
    assert feed.report("unconverted-sales") == [
        {"currency": "EUR", "lines": 2, "total": Decimal("13")},
        {"currency": "MXN", "lines": 1, "total": Decimal("7")},
        {"currency": None, "lines": 1, "total": Decimal("9")},
    ]
    assert feed.report("unconverted-sales", currency="EUR") == [
        {"currency": "MXN", "lines": 1, "total": Decimal("7")},
        {"currency": None, "lines": 1, "total": Decimal("9")},
    ]


def test_sales_over_time_lists_every_period_with_empty_ones_as_zeros(feed: Feed) -> None:
    """Orders on Fri Aug 1 (2 units, 10 USD), Mon Aug 4 (1 unit, 4 USD) and Mon Aug 11 13:30
    (MXN, unconverted, 3 units); by week: Jul 28, Aug 4, Aug 11; by day Aug 1 ... Aug 11."""
    feed.write(
        orders=[
            order("o1", "u1", "2025-08-01T09:00:00Z", "USD", ("p1", 2, 5)),
            order("o2", "u1", "2025-08-04T09:00:00+02:00", "USD", ("p1", 1, 4)),
            order("o3", "u1", "2025-08-11T13:30:00Z", "MXN", ("p1", 3, 1)),
            order("o4", "u1", None, "USD", ("p1", 5, 1)),
        ]
    )
    weeks = feed.report("sales-over-time", grain="week")
    assert [(r["period"], r["orders"], r["units"], r["total_sales"]) for r in weeks] == [
        ("2025-07-28", 1, 2, Decimal("10.00")),
        ("2025-08-04", 1, 1, Decimal("4.00")),
        ("2025-08-11", 1, 3, Decimal("0.00")),
    ]
    days = feed.report("sales-over-time")
    assert len(days) == 11 and days[1] == {
        "period": "2025-08-02",
        "orders": 0,
        "units": 0,
        "total_sales": Decimal("0.00"),
        "currency": "USD",
    }
    hours = feed.report("sales-over-time", grain="hour")
    assert hours[0]["period"] == "2025-08-01T09:00:00Z" and hours[-1]["period"] == (
        "2025-08-11T13:00:00Z"
    )
    months = feed.report("sales-over-time", grain="month")
    assert [(r["period"], r["orders"]) for r in months] == [("2025-08-01", 3)]


def test_dim_date_covers_every_order_date(feed: Feed) -> None:
    feed.write(
        orders=[
            order("o1", "u1", "2025-12-31T23:00:00Z", "USD"),
            order("o2", "u1", "2026-01-02T01:00:00+05:00", "USD"),  # Jan 1, 20:00 UTC
        ]
    )
    assert feed.rows("SELECT * FROM dim_date ORDER BY date_key") == [
        (20251231, date(2025, 12, 31), 2025, 4, 12, 1, 3, False),  # ISO week 1 of 2026
        (20260101, date(2026, 1, 1), 2026, 1, 1, 1, 4, False),
    ]


def test_the_reporting_currency_is_checked() -> None:
    for bad in ("usd", "EURO", "", "U$D"):
        with pytest.raises(ValueError, match="three capital letters"):
            ReportOptions(currency=bad)
    with pytest.raises(ValueError, match="grain"):
        ReportOptions(grain="year")


def test_a_file_made_before_history_is_migrated_at_start(tmp_path: Path) -> None:
    """A file of the earlier schema (scripts 001-003: dim_user and dim_product tables with
    placeholders, fact_sales without currency) opened by this version: its reference rows
    become each key's first version, placeholders become inferred keys of the views, lines get
    their order's currency, and the reports read it."""
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        for version in (1, 2, 3):
            script = next(sql_dir().glob(f"{version:03d}_*.sql"))
            con.execute(script.read_text())
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        con.execute("INSERT INTO pipeline_meta VALUES ('instance_id', 'old')")
        con.execute(
            "INSERT INTO dim_user VALUES ('u1', 'Ada', NULL, 'FR', NULL, false, '2025-01-01'),"
            " ('u9', NULL, NULL, NULL, NULL, true, '2025-01-01')"
        )
        con.execute(
            "INSERT INTO dim_product VALUES ('p1', 'Pen', 'office', 1.5, false, '2025-01-01')"
        )
        con.execute(
            "INSERT INTO dim_order (order_id, user_id, amount, currency, created_at, line_count, "
            "kafka_topic, kafka_partition, kafka_offset, batch_id) VALUES "
            "('o1', 'u1', 3, 'USD', '2025-08-01 10:00', 1, 'orders', 0, 0, 1), "
            "('o2', 'u9', 2, 'EUR', '2025-08-01 11:00', 1, 'orders', 0, 1, 1)"
        )
        con.execute(
            "INSERT INTO fact_sales VALUES ('o1', 1, 'p1', 'u1', 2, 1.5, '2025-08-01 10:00'), "
            "('o2', 1, 'p2', 'u9', 1, 2, '2025-08-01 11:00')"
        )
    warehouse = DuckDBWarehouse(path)
    try:
        feed = Feed(warehouse)
        assert feed.rows("SELECT user_id, country, is_inferred FROM dim_user ORDER BY 1") == [
            ("u1", "FR", False),
            ("u9", None, True),
        ]
        assert feed.rows("SELECT sku, name, is_inferred FROM dim_product ORDER BY 1") == [
            ("p1", "Pen", False),
            ("p2", None, True),
        ]
        assert feed.rows("SELECT order_id, currency FROM fact_sales ORDER BY 1") == [
            ("o1", "USD"),
            ("o2", "EUR"),
        ]
        assert countries(feed) == {"FR": Decimal("3.00")}  # o2 is EUR: no rate, unconverted
        assert feed.report("unconverted-sales") == [
            {"currency": "EUR", "lines": 1, "total": Decimal("2")}
        ]
    finally:
        warehouse.close()
