"""A small real DuckDB warehouse file, with the consumer's own schema, for tests of the readers
(HTTP API, ``report --html``) that need no broker. Rows are written with plain SQL: NULL keys,
a product name that is HTML, non-ASCII text, NULL ``created_at`` and three months of orders."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from consumer.warehouse.duckdb_file import migrate

PRODUCT_NAMES = (
    "Tundra Cookbook",
    '</script><b>Bold</b> & "quoted"',
    "Crème brûlée torch \u2013 漢字",
    None,
)
COUNTRIES = ("DE", "FR", "US", "JP", None)
SOURCES = ("web", "app", "store", None)
REASONS = ("invalid_json", "invalid_json", "missing_order_id", "invalid_item", "invalid_json")
RATES = (
    (date(2024, 12, 1), "EUR", Decimal("1.10")),
    (date(2025, 2, 3), "GBP", Decimal("1.25")),
    (date(2025, 2, 3), "GBP", Decimal("1.26")),
    (date(2025, 2, 10), "GBP", Decimal("1.27")),
)
ORDERS = 60
DUPLICATES = 3


def build(path: Path, seed: int = 5) -> Path:
    """Write the warehouse at ``path``; return it."""
    rng = random.Random(seed)
    now = datetime(2025, 4, 1)
    with duckdb.connect(str(path)) as con:
        migrate(con)
        for i in range(12):
            con.execute(
                "INSERT INTO user_versions (user_id, name, email, country, signup_date, "
                "updated_at, loaded_at, arrival, batch_id, file) "
                "VALUES (?, ?, ?, ?, DATE '2024-01-01', ?, ?, 0, 0, 'users.csv')",
                [f"u-{i:03d}", f"User {i}", f"u{i}@example.test", COUNTRIES[i % 5], now, now],
            )
        for i in range(8):
            if PRODUCT_NAMES[i % 4] is None:
                continue  # no version: the product is inferred from the orders
            con.execute(
                "INSERT INTO product_versions (sku, name, category, list_price, updated_at, "
                "loaded_at, arrival, batch_id, file) "
                "VALUES (?, ?, 'misc', 9.99, ?, ?, 0, 0, 'products.csv')",
                [f"p-{i:03d}", PRODUCT_NAMES[i % 4], now, now],
            )
        # EUR is worth 1.10 USD from the start: every EUR order converts into USD. GBP has
        # rates from February (twice for one day), so EUR lines of January do not convert
        # into GBP.
        for arrival, (day, currency, rate) in enumerate(RATES):
            con.execute(
                "INSERT INTO fx_rate_versions (date, currency, rate, loaded_at, arrival, "
                "batch_id, file) VALUES (?, ?, ?, ?, ?, 0, 'fx_rates.csv')",
                [day, currency, rate, now, arrival],
            )
        for n in range(ORDERS):
            created = None if n % 9 == 0 else datetime(2025, 1, 1) + timedelta(hours=37 * n)
            user = f"u-{rng.randrange(14):03d}"  # u-012 and u-013 are not in dim_user
            lines = rng.randrange(0, 4)
            amount = Decimal(0)
            for line in range(1, lines + 1):
                quantity = rng.randrange(1, 5)
                price = Decimal(rng.randrange(100, 99_999)) / 100
                amount += quantity * price
                con.execute(
                    "INSERT INTO fact_sales (order_id, line_number, sku, user_id, quantity, "
                    "unit_price, created_at, currency) VALUES (?, ?, ?, ?, ?, ?, ?, 'EUR')",
                    [f"o-{n}", line, f"p-{rng.randrange(8):03d}", user, quantity, price, created],
                )
            con.execute(
                "INSERT INTO dim_order (order_id, user_id, amount, currency, source, promo, "
                "created_at, line_count, kafka_topic, kafka_partition, kafka_offset, batch_id) "
                "VALUES (?, ?, ?, 'EUR', ?, NULL, ?, ?, 't', 0, ?, 1)",
                [f"o-{n}", user, amount, SOURCES[n % 4], created, lines, n],
            )
        for k, reason in enumerate(REASONS):
            con.execute(
                'INSERT INTO rejected_events (topic, "partition", "offset", reason, batch_id) '
                "VALUES ('t', 1, ?, ?, 1)",
                [k, reason],
            )
        for k in range(DUPLICATES):
            con.execute(
                'INSERT INTO dropped_duplicates (topic, "partition", "offset", order_id, batch_id) '
                "VALUES ('t', 2, ?, 'o-1', 1)",
                [k],
            )
    return path
