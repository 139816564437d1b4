"""Reference data over time (issue 25): versions, rates and orders placed in time, judged from
the bytes of the stream and of the CSVs by an independent reading (``tests.unit.refstream``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from producer_sim.config import Settings, reference_stream
from producer_sim.events import generate_records
from producer_sim.history import History
from producer_sim.reference import generate_reference, write_rates, write_reference
from tests.unit.refstream import Reading, currency_of, instant, read, stamp_text

SEED, ORDERS = 31, 6_000
TOPICS: dict[str, Any] = {"users_topic": "users", "products_topic": "products", "fx_topic": "fx"}
START = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
END = START + dt.timedelta(days=28)


def lines(settings: Settings) -> list[tuple[str | None, bytes | None, bytes | None]]:
    return [(reference_stream(r.kind), r.key, r.value) for r in generate_records(settings)]


@pytest.fixture(scope="module")
def reading() -> Reading:
    return read(lines(Settings(seed=SEED, orders=ORDERS, **TOPICS)))


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_orders_follow_the_currency_of_their_users_version_in_effect(reading: Reading) -> None:
    """Every order's currency is that of its user's country at its created_at; users who moved
    bought in both currencies, so as was and as is really differ."""
    checked, before_and_after = 0, set()
    for order in reading.orders:
        if {"user_id", "currency"} - set(order) or order.get("created_at") is None:
            continue
        at = instant(order["created_at"])
        _, (_, _, country, _) = reading.version_at("users", order["user_id"], at)
        assert order["currency"] == currency_of(country), order
        checked += 1
        history = reading.versions[("users", order["user_id"])]
        if len({currency_of(content[2]) for _, content in history}) > 1:
            before_and_after.add((order["user_id"], order["currency"]))
    assert checked > 0.9 * ORDERS
    movers = Counter(user for user, _ in before_and_after)
    assert sum(n > 1 for n in movers.values()) >= 5  # bought before and after a move


def test_order_prices_follow_the_list_price_in_effect(reading: Reading) -> None:
    """Without a promo a line costs the list price in effect (a few within 5% of it): repriced
    products sell at their old price before the change and at the new one after."""
    lines_seen = at_list = 0
    prices_by_sku: dict[str, set[Decimal]] = {}
    for order in reading.orders:
        metadata = order.get("metadata") or {"promo": "unknown"}  # no metadata: promo unknown
        if order.get("created_at") is None or metadata["promo"] is not None:
            continue
        at = instant(order["created_at"])
        for line in order.get("items") or []:
            _, (_, _, list_price) = reading.version_at("products", line["sku"], at)
            lines_seen += 1
            at_list += line["price"] == list_price
            assert abs(line["price"] - list_price) <= list_price * Decimal("0.05") + 1
            prices_by_sku.setdefault(line["sku"], set()).add(line["price"])
    assert at_list > 0.85 * lines_seen
    repriced = [
        sku
        for (stream, sku), history in reading.versions.items()
        if stream == "products" and len({c[2] for _, c in history}) > 1
    ]
    assert sum(len(prices_by_sku.get(sku, ())) > 1 for sku in repriced) >= 5


def test_history_has_moves_renames_reprices_and_first_versions_before_the_start(
    reading: Reading,
) -> None:
    """First versions predate the first order; later ones fall inside the 28 days; a share of
    users move and products are renamed and repriced; some touches change nothing."""
    moved = renamed = repriced = touched = 0
    users = products = 0
    for (stream, _), history in reading.versions.items():
        (first, _), *later = history
        assert first < START, history
        assert all(START <= when < END for when, _ in later), history
        pairs = list(itertools.pairwise(history))
        touched += any(a[1] == b[1] for a, b in pairs)
        if stream == "users":
            users += 1
            moved += any(a[1][2] != b[1][2] for a, b in pairs)
        else:
            products += 1
            renamed += any(a[1][0] != b[1][0] for a, b in pairs)
            repriced += any(a[1][2] != b[1][2] for a, b in pairs)
    assert 0.05 < moved / users < 0.3
    assert 0.05 < repriced / products < 0.5 and renamed > 0 and touched > 0


def test_rates_are_weekdays_only_realistic_and_none_for_mxn(reading: Reading) -> None:
    """EUR, GBP, CAD and BRL on every weekday from 2025-07-25 through the run, none on
    weekends, none for MXN or USD; levels near the real ones, small daily moves."""
    days = sorted({day for _, day in reading.rates})
    assert days[0] == dt.date(2025, 7, 25) and days[-1] == dt.date(2025, 8, 28)
    weekdays = [
        days[0] + dt.timedelta(days=n)
        for n in range((days[-1] - days[0]).days + 1)
        if (days[0] + dt.timedelta(days=n)).weekday() < 5
    ]
    assert days == weekdays
    assert {currency for currency, _ in reading.rates} == {"EUR", "GBP", "CAD", "BRL"}
    assert len(reading.rates) == 4 * len(weekdays)
    levels = {"EUR": 1.09, "GBP": 1.27, "CAD": 0.73, "BRL": 0.18}
    for currency, level in levels.items():
        series = [float(reading.rates[(currency, day)]) for day in days]
        assert all(abs(math.log(rate / level)) < 0.1 for rate in series), currency
        moves = [abs(math.log(b / a)) for a, b in itertools.pairwise(series)]
        assert max(moves) < 0.04 and len(set(series)) > len(series) // 2, currency
    mxn = [o for o in reading.orders if o.get("currency") == "MXN"]
    assert mxn  # MXN orders exist, and no rate can convert them


def test_csvs_hold_each_keys_latest_version_and_the_topics_every_version(
    reading: Reading, tmp_path: Path
) -> None:
    """users.csv and products.csv hold the newest version of each key the topics carry, with its
    updated_at; fx_rates.csv every rate; the late keys are in the topics, not in the CSVs; and
    the topics hold every version of the history up to the end of the run."""
    reference = generate_reference(ORDERS)
    write_reference(reference, tmp_path, days=28)
    write_rates(tmp_path, days=28)
    for stream, name, key, fields in (
        ("users", "users.csv", "user_id", ("name", "email", "country", "signup_date")),
        ("products", "products.csv", "sku", ("name", "category", "list_price")),
    ):
        rows = csv_rows(tmp_path / name)
        in_topic = {k for s, k in reading.versions if s == stream}
        assert len(rows) == len({row[key] for row in rows})
        for row in rows:
            updated_at, content = reading.versions[(stream, row[key])][-1]
            assert row["updated_at"] == stamp_text(updated_at)
            values = tuple(Decimal(row[f]) if f == "list_price" else row[f] for f in fields)
            assert values == content, row
        late = in_topic - {row[key] for row in rows}
        assert late and all(k.startswith(("u-9", "p-9")) for k in late)
    rates = {(r["currency"], dt.date.fromisoformat(r["date"])): r["rate"] for r in
             csv_rows(tmp_path / "fx_rates.csv")}  # fmt: skip
    assert {k: Decimal(v) for k, v in rates.items()} == reading.rates
    # Cross-check with the history the simulator keeps: the topics miss none of its versions.
    history, end = History(reference), int(END.timestamp()) * 1_000_000
    for index, user in enumerate(reference.users):
        kept = history.user(index)
        times = [kept.version(n).updated_at for n in range(kept.index_at(end - 1) + 1)]
        published = reading.versions[("users", user.user_id)]
        assert [int(t.timestamp()) * 1_000_000 for t, _ in published] == times, user


def test_orders_spread_over_the_days_in_time_order() -> None:
    """--days 28 and --days 3 bound the created_at of base orders; every day has orders; time
    only grows; an endless run goes at about 2.5 s an order."""
    for days in (28, 3):
        settings = Settings(seed=4, orders=3_000, days=days)
        stamps = [
            instant(doc["created_at"])
            for doc in read(lines(settings)).orders
            if doc.get("created_at") is not None
        ]
        end = START + dt.timedelta(days=days)
        assert all(START <= moment < end for moment in stamps)
        assert {moment.date() for moment in stamps} == {
            (START + dt.timedelta(days=n)).date() for n in range(days)
        }
        assert all(b >= a - dt.timedelta(seconds=1) for a, b in itertools.pairwise(stamps))
    endless = read(
        (None, r.key, r.value)
        for r, _ in zip(generate_records(Settings(seed=4, orders=0)), range(2_100), strict=False)
    ).orders
    timed = [
        (int(doc["order_id"].rsplit("-", 1)[1]), instant(doc["created_at"]))
        for doc in endless
        if doc.get("created_at") is not None
    ]
    (first, start), (last, end) = timed[0], timed[-1]
    assert 2.3 < (end - start).total_seconds() / (last - first) < 2.7
