"""The oracle's reference data, history, exchange rates and calendar, against expectations
worked out by hand from the contract (§2, §3) and the binding decisions of issue 25.

Inputs are raw JSON text; every expected value is spelled out literally, with the reasoning in
the docstring or a comment.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.oracle import (
    INVALID_REFERENCE,
    MINUS_INFINITY,
    REDELIVERY,
    STORED,
    DateRow,
    Expected,
    ProductRow,
    ProductVersion,
    Record,
    UserRow,
    UserVersion,
    compute_expected,
    report,
)
from tests.unit.oracle_inputs import (
    FX,
    ORDERS,
    PRODUCTS,
    USERS,
    at,
    order,
    product,
    rate,
    raw,
    records,
    user,
    world,
    write,
)

NEVER = MINUS_INFINITY


def countries(expected: Expected, **options: Any) -> list[tuple[str | None, Decimal]]:
    rows = report(expected, "top-countries", None, **options)
    return [(row["country"], row["total_sales"]) for row in rows]


def ann(country: str, start: datetime, end: datetime | None, current: bool) -> UserVersion:
    """A version of u-1 as user() writes it (name Ann, no email or signup date)."""
    return UserVersion("u-1", "Ann", None, country, None, start, end, current)


# --------------------------------------------------------------------------------------------
# History: first versions, order of versions, identical versions
# --------------------------------------------------------------------------------------------


def test_a_first_version_is_in_effect_from_the_start_of_time() -> None:
    """u-1 is FR from 08-10 and DE from 08-20. The first version starts at -infinity, so o-1,
    placed on 08-05 before any version existed, is FR (late-arriving dimension); o-2 (08-25)
    is DE. The first row's valid_to is the second's valid_from, 08-20."""
    expected = world(
        [
            order("o-1", created_at="2025-08-05T00:00:00Z", items=[("p-1", "1", "100")]),
            order("o-2", created_at="2025-08-25T00:00:00Z", items=[("p-1", "1", "10")]),
        ],
        users=[
            user(country="FR", updated_at="2025-08-10T00:00:00Z"),
            user(country="DE", updated_at="2025-08-20T00:00:00Z"),
        ],
    )
    assert expected.user_history == {
        ("u-1", NEVER): ann("FR", NEVER, at("2025-08-20"), False),
        ("u-1", at("2025-08-20")): ann("DE", at("2025-08-20"), None, True),
    }
    assert expected.users == {"u-1": UserRow("u-1", "Ann", None, "DE", None, False)}
    assert countries(expected) == [("FR", Decimal("100.00")), ("DE", Decimal("10.00"))]


def test_versions_are_placed_by_updated_at_and_a_late_one_reattributes_loaded_orders() -> None:
    """Arrival order DE (08-20), FR (08-01), ES (08-10); by updated_at FR, ES, DE.

    Phase 1, only DE held: one version from -infinity, every order DE (1 + 10 + 100 = 111).
    Phase 2, all held: FR [-inf, 08-10), ES [08-10, 08-20), DE [08-20, -); the current
    version is DE (latest updated_at), not ES (latest arrival). As was: o-1 (08-05) FR 1,
    o-2 (08-15) ES 10, o-3 (08-25) DE 100; as is: DE 111."""
    orders = [
        order("o-1", created_at="2025-08-05T00:00:00Z", items=[("p-1", "1", "1")]),
        order("o-2", created_at="2025-08-15T00:00:00Z", items=[("p-1", "1", "10")]),
        order("o-3", created_at="2025-08-25T00:00:00Z", items=[("p-1", "1", "100")]),
    ]
    de = user(country="DE", updated_at="2025-08-20T00:00:00Z")
    fr = user(country="FR", updated_at="2025-08-01T00:00:00Z")
    es = user(country="ES", updated_at="2025-08-10T00:00:00Z")

    phase_1 = world(orders, users=[de])
    assert phase_1.user_history == {("u-1", NEVER): ann("DE", NEVER, None, True)}
    assert countries(phase_1) == [("DE", Decimal("111.00"))]

    phase_2 = world(orders, users=[de, fr, es])
    assert phase_2.user_history == {
        ("u-1", NEVER): ann("FR", NEVER, at("2025-08-10"), False),
        ("u-1", at("2025-08-10")): ann("ES", at("2025-08-10"), at("2025-08-20"), False),
        ("u-1", at("2025-08-20")): ann("DE", at("2025-08-20"), None, True),
    }
    assert phase_2.users["u-1"].country == "DE"
    assert countries(phase_2) == [
        ("DE", Decimal("100.00")),
        ("ES", Decimal("10.00")),
        ("FR", Decimal("1.00")),
    ]
    assert countries(phase_2, as_is=True) == [("DE", Decimal("111.00"))]


def test_identical_consecutive_versions_collapse_until_a_late_version_separates_them() -> None:
    """FR (08-01), FR again (08-10), DE (08-20): the second FR adds nothing, so the history is
    FR [-inf, 08-20), DE [08-20, -), and o-1 (08-07) and o-2 (08-12) are both FR (1 + 10).
    The second FR is still held: when ES (08-05) arrives late, it sits between the two FRs,
    and the history becomes FR [-inf, 08-05), ES [08-05, 08-10), FR [08-10, 08-20), DE; o-1 is
    then ES (1) and o-2 FR (10)."""
    orders = [
        order("o-1", created_at="2025-08-07T00:00:00Z", items=[("p-1", "1", "1")]),
        order("o-2", created_at="2025-08-12T00:00:00Z", items=[("p-1", "1", "10")]),
    ]
    versions = [
        user(country="FR", updated_at="2025-08-01T00:00:00Z"),
        user(country="FR", updated_at="2025-08-10T00:00:00Z"),
        user(country="DE", updated_at="2025-08-20T00:00:00Z"),
    ]
    before = world(orders, users=versions)
    assert before.user_history == {
        ("u-1", NEVER): ann("FR", NEVER, at("2025-08-20"), False),
        ("u-1", at("2025-08-20")): ann("DE", at("2025-08-20"), None, True),
    }
    assert set(before.reference_outcomes.values()) == {STORED}
    assert countries(before) == [("FR", Decimal("11.00"))]

    late = user(country="ES", updated_at="2025-08-05T00:00:00Z")
    after = world(orders, users=[*versions, late])
    assert after.user_history == {
        ("u-1", NEVER): ann("FR", NEVER, at("2025-08-05"), False),
        ("u-1", at("2025-08-05")): ann("ES", at("2025-08-05"), at("2025-08-10"), False),
        ("u-1", at("2025-08-10")): ann("FR", at("2025-08-10"), at("2025-08-20"), False),
        ("u-1", at("2025-08-20")): ann("DE", at("2025-08-20"), None, True),
    }
    assert countries(after) == [("FR", Decimal("10.00")), ("ES", Decimal("1.00"))]


def test_the_same_version_from_a_csv_and_a_topic_is_stored_once(tmp_path: Path) -> None:
    """u-1's version of 2025-08-01T00:00Z comes from users.csv, then from the topic spelled
    otherwise (an offset, other key order, "" for the empty email, an extra CDC field), then
    again byte for byte from another partition (a re-read, another member): one version, the
    two records counted as re-deliveries. u-2's version at one updated_at arrives twice in one
    partition with another name: a correction, the later arrival (Rob) wins."""
    users = write(
        tmp_path / "users.csv",
        "user_id,name,email,country,signup_date,updated_at\n"
        "u-1,Ann,,FR,2024-01-31,2025-08-01T00:00:00Z\n",
    )
    again = (
        '{"op": "c", "updated_at": "2025-08-01T02:00:00+02:00", "signup_date": "2024-01-31",'
        ' "country": "FR", "email": "", "name": "Ann", "user_id": "u-1"}'
    )
    stream = [
        *records(USERS, again, user("u-2", "DE", name="Bob"), user("u-2", "DE", name="Rob")),
        *records(USERS, again, partition=1),
    ]
    expected = compute_expected([], users, user_records=stream)
    assert expected.csv_outcomes == {(str(users), 2): STORED}
    assert expected.reference_outcomes == {
        (USERS, 0, 0): REDELIVERY,
        (USERS, 0, 1): STORED,
        (USERS, 0, 2): STORED,
        (USERS, 1, 0): REDELIVERY,
    }
    assert expected.duplicates == {(USERS, 0, 0), (USERS, 1, 0)}
    assert expected.user_history == {
        ("u-1", NEVER): UserVersion("u-1", "Ann", None, "FR", date(2024, 1, 31), NEVER, None, True),
        ("u-2", NEVER): UserVersion("u-2", "Rob", None, "DE", None, NEVER, None, True),
    }
    assert expected.ambiguous_reference == set()


def test_differing_versions_of_one_instant_in_two_streams_are_flagged_ambiguous() -> None:
    """u-1 at one updated_at is FR in partition 0 and DE in partition 1: which arrives later
    (and wins) depends on the consumer's interleaving, so the oracle flags the key."""
    stream = [*records(USERS, user(country="FR")), *records(USERS, user(country="DE"), partition=1)]
    expected = compute_expected([], user_records=stream)
    assert expected.ambiguous_reference == {("users", "u-1")}


def test_a_csv_row_without_updated_at_takes_effect_when_the_file_is_loaded(tmp_path: Path) -> None:
    """The file is loaded at 08-15. u-1: line 3 (no updated_at) equals the current version
    (FR of line 2) and adds nothing; DE (08-10) from the topic then gives FR, DE, with DE
    current (had line 3 been held at 08-15, FR would be current again). u-2: line 5 (ES)
    differs from DE and is held at 08-15: DE [-inf, 08-15), ES [08-15, -)."""
    users = write(
        tmp_path / "users.csv",
        "user_id,name,email,country,signup_date,updated_at\n"
        "u-1,Ann,,FR,,2025-08-01T00:00:00Z\n"
        "u-1,Ann,,FR,,\n"
        "u-2,Bob,,DE,,2025-08-01T00:00:00Z\n"
        "u-2,Bob,,ES,,\n",
    )
    expected = compute_expected(
        [],
        users,
        user_records=records(USERS, user(country="DE", updated_at="2025-08-10T00:00:00Z")),
        csv_loaded_at=at("2025-08-15"),
    )
    path = str(users)
    assert expected.csv_outcomes == {
        (path, 2): STORED,
        (path, 3): REDELIVERY,
        (path, 4): STORED,
        (path, 5): STORED,
    }
    assert expected.user_history == {
        ("u-1", NEVER): ann("FR", NEVER, at("2025-08-10"), False),
        ("u-1", at("2025-08-10")): ann("DE", at("2025-08-10"), None, True),
        ("u-2", NEVER): UserVersion("u-2", "Bob", None, "DE", None, NEVER, at("2025-08-15"), False),
        ("u-2", at("2025-08-15")): UserVersion(
            "u-2", "Bob", None, "ES", None, at("2025-08-15"), None, True
        ),
    }


def test_dimensions_hold_current_versions_and_placeholders() -> None:
    """p-1 is renamed and repriced on 08-09 (Mug 12.50 -> Cup 13); p-3's second version differs
    only by float noise in list_price (9.99000000001 is stored as 9.99), so it adds nothing.
    u-2 and p-2 appear in an order without any version: placeholders. u-3 and p-3 have versions
    but no order: they are in the dimensions all the same."""
    expected = world(
        [
            order("o-1", "u-1", items=[("p-1", "1", "10")]),
            order("o-2", "u-2", items=[("p-2", "1", "10")]),
        ],
        users=[
            user("u-1", "FR", "2025-08-01T00:00:00Z"),
            user("u-1", "DE", "2025-08-09T00:00:00Z"),
            user("u-3", "ES"),
        ],
        products=[
            product("p-1", "Mug", "12.50", "2025-08-01T00:00:00Z"),
            product("p-1", "Cup", "13", "2025-08-09T00:00:00Z"),
            product("p-3", "Pen", "9.99", "2025-08-01T00:00:00Z"),
            product("p-3", "Pen", "9.99000000001", "2025-08-05T00:00:00Z"),
        ],
    )
    assert expected.users == {
        "u-1": UserRow("u-1", "Ann", None, "DE", None, False),
        "u-3": UserRow("u-3", "Ann", None, "ES", None, False),
        "u-2": UserRow("u-2", None, None, None, None, True),
    }
    assert expected.products == {
        "p-1": ProductRow("p-1", "Cup", "kitchen", Decimal("13"), False),
        "p-3": ProductRow("p-3", "Pen", "kitchen", Decimal("9.99"), False),
        "p-2": ProductRow("p-2", None, None, None, True),
    }
    assert expected.product_history == {
        ("p-1", NEVER): ProductVersion(
            "p-1", "Mug", "kitchen", Decimal("12.5"), NEVER, at("2025-08-09"), False
        ),
        ("p-1", at("2025-08-09")): ProductVersion(
            "p-1", "Cup", "kitchen", Decimal("13"), at("2025-08-09"), None, True
        ),
        ("p-3", NEVER): ProductVersion("p-3", "Pen", "kitchen", Decimal("9.99"), NEVER, None, True),
    }
    assert report(expected, "top-products") == [
        {"sku": "p-1", "name": "Cup", "units_sold": 1},
        {"sku": "p-2", "name": None, "units_sold": 1},
    ]


# --------------------------------------------------------------------------------------------
# invalid_reference
# --------------------------------------------------------------------------------------------

A_USER = {
    "user_id": '"u-1"',
    "name": '"Ann"',
    "email": '"ann@example.com"',
    "country": '"FR"',
    "signup_date": '"2024-01-31"',
    "updated_at": '"2025-08-01T00:00:00Z"',
}
A_PRODUCT = {
    "sku": '"p-1"',
    "name": '"Mug"',
    "category": '"kitchen"',
    "list_price": "12.5",
    "updated_at": '"2025-08-01T00:00:00Z"',
}
A_RATE = {"date": '"2025-08-01"', "currency": '"EUR"', "rate": "1.1"}
MISSING = None


def with_field(base: dict[str, str], name: str, text: str | None) -> str:
    return raw(**{**base, name: text})


BAD_TIMESTAMPS = [
    MISSING,
    "null",
    '"2025-08-01"',
    '"yesterday"',
    "1754006400",
    '"2025-08-01T25:00Z"',
]
BAD_COUNTRIES = ['"fr"', '"FRA"', '""', '"F1"', "33", '"ÉS"']
BAD_DATES = ['"2025-02-29"', '"2025-8-1"', '"2025-08-01T00:00:00Z"', "20250801", '""']
BAD_PRICES = ["-1", "-0.00001", '"12.50"', "true", "1e14", "99999999999999.99995", "1e400"]
BAD_FX_DATES = [MISSING, '"2025-02-30"', '"2025-08-01T00:00:00Z"', "20250801", '"01/08/2025"']
BAD_CURRENCIES = [MISSING, '"eur"', '"EURO"', "null", '""', "978"]
BAD_RATES = [MISSING, "0", "-1.1", '"1.1"', "true", "null", "0.00000000005", "100000000"]
BAD_RATES += ["99999999.99999999995", "1e400"]

INVALID_USERS = [
    (None, "tombstone"),
    (b"", "JSON"),
    (b"   ", "JSON"),
    (b"\xff\xfe", "JSON"),
    (b"user u-1", "JSON"),
    (b'{"user_id": "u-1", "name": "\\ud800", "updated_at": "2025-08-01T00:00:00Z"}', "JSON"),
    (b'{"user_id": "u-1", "updated_at": "2025-08-01T00:00:00Z", "x": NaN}', "JSON"),
    (b'[{"user_id": "u-1"}]', "object"),
    (b'"u-1"', "object"),
    *[(with_field(A_USER, "user_id", v), "user_id") for v in [MISSING, "null", '""', '" "', "7"]],
    (with_field(A_USER, "name", "5"), "name"),
    (with_field(A_USER, "email", '["a@b"]'), "email"),
    *[(with_field(A_USER, "country", v), "country") for v in BAD_COUNTRIES],
    *[(with_field(A_USER, "signup_date", v), "signup_date") for v in BAD_DATES],
    *[(with_field(A_USER, "updated_at", v), "updated_at") for v in BAD_TIMESTAMPS],
]
INVALID_PRODUCTS = [
    (None, "tombstone"),
    (b"{", "JSON"),
    (b"[]", "object"),
    *[(with_field(A_PRODUCT, "sku", v), "sku") for v in [MISSING, '""', "1"]],
    (with_field(A_PRODUCT, "name", "false"), "name"),
    (with_field(A_PRODUCT, "category", "true"), "category"),
    *[(with_field(A_PRODUCT, "list_price", v), "list_price") for v in BAD_PRICES],
    (with_field(A_PRODUCT, "updated_at", MISSING), "updated_at"),
]
INVALID_RATES = [
    (None, "tombstone"),
    (b"1.1", "object"),
    *[(with_field(A_RATE, "date", v), "date") for v in BAD_FX_DATES],
    *[(with_field(A_RATE, "currency", v), "currency") for v in BAD_CURRENCIES],
    *[(with_field(A_RATE, "rate", v), "rate") for v in BAD_RATES],
    (raw(date='"2025-08-01"', currency='"USD"', rate="1.1"), "USD"),
    (raw(date='"2025-08-01"', currency='"USD"', rate="0.99999999994"), "USD"),
]


@pytest.mark.parametrize(
    ("topic", "value", "field"),
    [
        *[(USERS, v, f) for v, f in INVALID_USERS],
        *[(PRODUCTS, v, f) for v, f in INVALID_PRODUCTS],
        *[(FX, v, f) for v, f in INVALID_RATES],
    ],
)
def test_an_invalid_reference_record_is_rejected_at_its_position(
    topic: str, value: str | bytes | None, field: str
) -> None:
    """Each record breaks one rule (decisions, "Reference records"): it is rejected as
    invalid_reference at its own (topic, partition, offset), and the detail names the field;
    the valid record after it is still held (the pipeline goes on)."""
    valid = {
        USERS: raw(**A_USER),
        PRODUCTS: raw(**A_PRODUCT),
        FX: raw(**A_RATE),
    }[topic]
    stream = records(topic, value, valid)
    kind = {USERS: "user_records", PRODUCTS: "product_records", FX: "fx_records"}[topic]
    expected = compute_expected([], **{kind: stream})  # type: ignore[arg-type]
    assert expected.rejected == {(topic, 0, 0): INVALID_REFERENCE}
    assert expected.reference_outcomes == {(topic, 0, 0): INVALID_REFERENCE, (topic, 0, 1): STORED}
    assert field in expected.reference_details[(topic, 0, 0)]
    assert expected.outcome_counts == {"loaded": 0, "duplicate": 0, "rejected": 0}


def test_valid_edge_records_are_stored_with_their_values() -> None:
    """Unknown fields and the record key are ignored; "" name is NULL, a missing field is NULL;
    an updated_at without zone is UTC; list_price -0.0 is 0 and 12.34565 rounds half-to-even to
    12.3456; a rate of 1.23456789015 rounds to 1.2345678902, 0.00000000015 to 0.0000000002,
    99999999.99999999994 to 99999999.9999999999; a USD rate of 1.0 is valid."""
    users = [
        '{"user_id": "u-1", "name": "", "country": null, "signup_date": null,'
        ' "updated_at": "2025-08-01 10:00", "op": "u", "ts_ms": 1754042400000}',
    ]
    products = [
        product("p-1", "Mug", "-0.0"),
        product("p-2", None, "12.34565"),
        raw(sku='"p-3"', updated_at='"2025-08-01T00:00:00Z"'),
    ]
    rates = [
        rate("2025-08-01", "EUR", "1.23456789015"),
        rate("2025-08-01", "JPY", "0.00000000015"),
        rate("2025-08-01", "XAU", "99999999.99999999994"),
        rate("2025-08-01", "USD", "1.0"),
    ]
    stream = [Record(USERS, 0, 0, b"wrong-key", users[0].encode())]
    expected = compute_expected(
        [],
        user_records=stream,
        product_records=records(PRODUCTS, *products),
        fx_records=records(FX, *rates),
    )
    assert expected.rejected == {}
    assert expected.user_history == {
        ("u-1", NEVER): UserVersion("u-1", None, None, None, None, NEVER, None, True)
    }
    assert {sku: (p.name, p.category, p.list_price) for sku, p in expected.products.items()} == {
        "p-1": ("Mug", "kitchen", Decimal("0")),
        "p-2": (None, "kitchen", Decimal("12.3456")),
        "p-3": (None, None, None),
    }
    assert expected.fx_rates == {
        (date(2025, 8, 1), "EUR"): Decimal("1.2345678902"),
        (date(2025, 8, 1), "JPY"): Decimal("0.0000000002"),
        (date(2025, 8, 1), "XAU"): Decimal("99999999.9999999999"),
        (date(2025, 8, 1), "USD"): Decimal("1"),
    }


def test_a_version_takes_effect_at_its_utc_instant() -> None:
    """2025-08-10T01:00:00+02:00 is 08-09T23:00 UTC: an order at 08-09T23:30Z already has the
    new version (DE), and so has one placed at 23:00:00Z exactly (valid_from <= t); one at
    08-09T22:30Z still has the old one (FR). DE = 2 + 4, FR = 1."""
    expected = world(
        [
            order("o-1", created_at="2025-08-09T22:30:00Z", items=[("p-1", "1", "1")]),
            order("o-2", created_at="2025-08-09T23:30:00Z", items=[("p-1", "1", "2")]),
            order("o-3", created_at="2025-08-09T23:00:00Z", items=[("p-1", "1", "4")]),
        ],
        users=[user(country="FR"), user(country="DE", updated_at="2025-08-10T01:00:00+02:00")],
    )
    assert ("u-1", at("2025-08-09T23:00")) in expected.user_history
    assert countries(expected) == [("DE", Decimal("6.00")), ("FR", Decimal("1.00"))]


# --------------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("users.csv", "user_id,name,email,country,signup_date\nu-1,A,,fr,\n"),
        ("users.csv", "user_id,name,email,country,signup_date\nu-1,A,,FR,2025-02-29\n"),
        ("users.csv", "user_id,name,email,country,signup_date,updated_at\nu-1,A,,FR,,2025-08-01\n"),
        ("users.csv", "user_id,name,email,country\nu-1,A,,FR\n"),
        ("products.csv", "sku,name,category,list_price\np-1,Mug,k,-1\n"),
        ("products.csv", "sku,name,category,list_price\np-1,Mug,k,1.23456\n"),
        ("products.csv", "sku,name,category,list_price\n,Mug,k,1\n"),
        ("fx_rates.csv", "date,currency,rate\n2025-08-01,EUR,1e-3\n"),
        ("fx_rates.csv", "date,currency,rate\n2025-08-01,EUR,\n"),
        ("fx_rates.csv", "date,currency,rate\n2025-08-01,EUR,0\n"),
        ("fx_rates.csv", "date,currency,rate\n2025-08-01,eur,1.1\n"),
        ("fx_rates.csv", "date,currency,rate\n2025/08/01,EUR,1.1\n"),
        ("fx_rates.csv", "date,currency,rate\n2025-08-01,USD,2\n"),
        ("fx_rates.csv", "date,currency\n2025-08-01,EUR\n"),
    ],
    ids=[
        "country-lowercase",
        "signup-not-a-date",
        "updated-at-date-only",
        "users-header-lacks-signup_date",
        "price-negative",
        "price-5-decimals",
        "empty-sku",
        "rate-exponent",
        "rate-empty",
        "rate-zero",
        "currency-lowercase",
        "date-slashes",
        "usd-not-1",
        "fx-header-lacks-rate",
    ],
)
def test_a_bad_csv_file_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    """A bad reference file raises (the consumer's one-line exit 2 at start), naming the file."""
    path = write(tmp_path / name, text)
    arguments = {"users.csv": "users_csv", "products.csv": "products_csv"}
    with pytest.raises(ValueError, match=name):
        compute_expected([], **{arguments.get(name, "fx_csv"): path})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# fx_rates
# --------------------------------------------------------------------------------------------


def test_fx_rates_hold_one_rate_a_day_and_currency_the_later_arrival_winning(
    tmp_path: Path,
) -> None:
    """fx_rates.csv gives 07-31 (EUR 1.09, GBP 1.24). The topic: EUR 08-01 1.10 (held), 1.1000
    (the same value: a re-delivery, dropped and counted), 1.12 (a correction: wins), GBP 08-01
    1.25, USD 08-01 1 (valid, held like any rate), USD 08-01 1.0 (a re-delivery)."""
    fx = write(
        tmp_path / "fx_rates.csv",
        "date,currency,rate\n2025-07-31,EUR,1.09\n2025-07-31,GBP,1.24\n",
    )
    stream = records(
        FX,
        rate("2025-08-01", "EUR", "1.10"),
        rate("2025-08-01", "EUR", "1.1000"),
        rate("2025-08-01", "EUR", "1.12"),
        rate("2025-08-01", "GBP", "1.25"),
        rate("2025-08-01", "USD", "1"),
        rate("2025-08-01", "USD", "1.0"),
    )
    expected = compute_expected([], fx_csv=fx, fx_records=stream)
    assert expected.fx_rates == {
        (date(2025, 7, 31), "EUR"): Decimal("1.09"),
        (date(2025, 7, 31), "GBP"): Decimal("1.24"),
        (date(2025, 8, 1), "EUR"): Decimal("1.12"),
        (date(2025, 8, 1), "GBP"): Decimal("1.25"),
        (date(2025, 8, 1), "USD"): Decimal("1"),
    }
    assert [expected.reference_outcomes[(FX, 0, n)] for n in range(6)] == [
        STORED,
        REDELIVERY,
        STORED,
        STORED,
        STORED,
        REDELIVERY,
    ]
    assert expected.duplicates == {(FX, 0, 1), (FX, 0, 5)}
    assert expected.outcome_counts == {"loaded": 0, "duplicate": 0, "rejected": 0}
    assert expected.csv_outcomes == {(str(fx), 2): STORED, (str(fx), 3): STORED}


# --------------------------------------------------------------------------------------------
# dim_date
# --------------------------------------------------------------------------------------------


def test_dim_date_covers_every_day_with_iso_weeks_across_the_new_year() -> None:
    """Orders at 2020-12-30T22:00Z and 2021-01-04T01:00+02:00 (= 2021-01-03T23:00Z, a Sunday)
    give 2020-12-30 .. 2021-01-03. 2020 has 53 ISO weeks (it began on a Wednesday and is a leap
    year), so 2021-01-01 to 01-03 are still week 53; Wed = 3 ... Sun = 7; Sat and Sun are the
    weekend. A rejected order and an order without created_at add no day."""
    expected = world(
        [
            order("o-1", created_at="2020-12-30T22:00:00Z"),
            order("o-2", created_at="2021-01-04T01:00:00+02:00"),
            order("o-3"),
            '{"order_id": "o-4", "created_at": "2021-02-01T00:00:00Z", "items": {}}',
        ]
    )
    assert expected.dates == {
        20201230: DateRow(20201230, date(2020, 12, 30), 2020, 4, 12, 53, 3, False),
        20201231: DateRow(20201231, date(2020, 12, 31), 2020, 4, 12, 53, 4, False),
        20210101: DateRow(20210101, date(2021, 1, 1), 2021, 1, 1, 53, 5, False),
        20210102: DateRow(20210102, date(2021, 1, 2), 2021, 1, 1, 53, 6, True),
        20210103: DateRow(20210103, date(2021, 1, 3), 2021, 1, 1, 53, 7, True),
    }


def test_dim_date_week_one_can_start_in_december() -> None:
    """2024-12-29 is a Sunday of ISO week 52; 2024-12-30, a Monday, starts week 1 (of 2025)
    while its year is 2024; quarter 4. Mid-year: 2025-05-01 is a Thursday of week 18, Q2."""
    expected = world(
        [
            order("o-1", created_at="2024-12-29T12:00:00Z"),
            order("o-2", created_at="2024-12-30T12:00:00Z"),
        ]
    )
    assert expected.dates == {
        20241229: DateRow(20241229, date(2024, 12, 29), 2024, 4, 12, 52, 7, True),
        20241230: DateRow(20241230, date(2024, 12, 30), 2024, 4, 12, 1, 1, False),
    }
    may = world([order("o-1", created_at="2025-05-01T00:00:00Z")])
    assert may.dates == {20250501: DateRow(20250501, date(2025, 5, 1), 2025, 2, 5, 18, 4, False)}


def test_dim_date_is_empty_without_a_created_at() -> None:
    """No loaded order with a created_at: no calendar rows."""
    assert world([order("o-1")]).dates == {}
    assert compute_expected(records(ORDERS, order("o-1", created_at="bad"))).dates == {}
