"""Reference records from change topics (CONTRACT §2): what is a version, what is
``invalid_reference``, and how values are stored. Expected values are worked out by hand."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from consumer.core.refdata import PRODUCTS, RATES, USERS, parse_reference


def one(kind: str, value: bytes | None) -> dict[str, object] | str:
    """The stored row of one record, or the reject's detail."""
    parsed = parse_reference(kind, [value])
    if parsed.rejects.height:
        assert parsed.rejects["reason"].to_list() == ["invalid_reference"]
        return str(parsed.rejects["detail"][0])
    row = parsed.rows.row(0, named=True)
    del row["idx"]
    return row


def doc(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_user_version_with_every_field_and_an_offset_in_updated_at() -> None:
    assert one(
        USERS,
        doc(
            user_id="u-1",
            name="Ana",
            email="ana@x.io",
            country="FR",
            signup_date="2024-02-29",
            updated_at="2025-08-03T10:00:00+02:00",
            op="u",
            ts_ms=1,
        ),
    ) == {
        "user_id": "u-1",
        "name": "Ana",
        "email": "ana@x.io",
        "country": "FR",
        "signup_date": date(2024, 2, 29),
        "updated_at": datetime(2025, 8, 3, 8, 0),  # 10:00 at +02:00 is 08:00 UTC
    }


def test_missing_null_and_empty_optional_fields_are_null() -> None:
    row = one(USERS, doc(user_id="u-1", name="", country=None, updated_at="2025-08-03T10:00:00"))
    assert isinstance(row, dict)
    assert (row["name"], row["email"], row["country"], row["signup_date"]) == (None,) * 4
    # An empty country or sign-up date is not a country or a date (a name may be empty).
    for field in ("country", "signup_date"):
        detail = one(USERS, doc(user_id="u-1", updated_at="2025-08-03T10:00:00", **{field: ""}))
        assert isinstance(detail, str) and field in detail


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "tombstone"),
        (b"", "not a UTF-8 JSON value"),
        (b"\xff\xfe", "not a UTF-8 JSON value"),
        (b"[1, 2]", "list is not an object"),
        (doc(name="no key", updated_at="2025-08-03T10:00:00Z"), "user_id"),
        (doc(user_id="  ", updated_at="2025-08-03T10:00:00Z"), "user_id"),
        (doc(user_id=7, updated_at="2025-08-03T10:00:00Z"), "user_id"),
        (doc(user_id="u-1"), "updated_at is missing"),
        (doc(user_id="u-1", updated_at="2025-08-03"), "updated_at"),  # a date is no timestamp
        (doc(user_id="u-1", updated_at="yesterday"), "updated_at"),
        (doc(user_id="u-1", updated_at="2025-08-03T10:00:00Z", country="fra"), "country"),
        (doc(user_id="u-1", updated_at="2025-08-03T10:00:00Z", country="fr"), "country"),
        (
            doc(user_id="u-1", updated_at="2025-08-03T10:00:00Z", signup_date="2025-02-30"),
            "signup_date",
        ),
        (doc(user_id="u-1", updated_at="2025-08-03T10:00:00Z", name=5), "name"),
    ],
)
def test_invalid_user_records(value: bytes | None, field: str) -> None:
    detail = one(USERS, value)
    assert isinstance(detail, str) and field in detail


def test_a_product_price_is_money_rounded_half_to_even() -> None:
    row = one(
        PRODUCTS, b'{"sku": "p-1", "list_price": 19.99005, "updated_at": "2025-08-01T00:00Z"}'
    )
    assert isinstance(row, dict) and row["list_price"] == Decimal("19.9900")  # 0.00005 -> even
    for bad in (b"-0.01", b"true", b'"19.99"', b"1e14"):
        detail = one(
            PRODUCTS,
            b'{"sku": "p-1", "list_price": ' + bad + b', "updated_at": "2025-08-01T00:00Z"}',
        )
        assert isinstance(detail, str) and "list_price" in detail, bad


def test_rates_are_stored_to_ten_decimals_and_usd_is_one() -> None:
    row = one(RATES, b'{"date": "2025-08-01", "currency": "EUR", "rate": 1.09120000005}')
    assert row == {"date": date(2025, 8, 1), "currency": "EUR", "rate": Decimal("1.0912000000")}
    assert isinstance(one(RATES, b'{"date": "2025-08-01", "currency": "USD", "rate": 1.0}'), dict)
    for bad, field in (
        (b'{"date": "2025-08-01", "currency": "USD", "rate": 1.01}', "USD rate must be 1"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": 0}', "rate"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": 0.00000000004}', "rate"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": -1.1}', "rate"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": 100000000}', "rate"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": true}', "rate"),
        (b'{"date": "2025-08-01", "currency": "EUR", "rate": "1.1"}', "rate"),
        (b'{"date": "2025-08-01", "currency": "eur", "rate": 1.1}', "currency"),
        (b'{"date": "2025-08-01", "currency": "EURO", "rate": 1.1}', "currency"),
        (b'{"date": "2025-8-1", "currency": "EUR", "rate": 1.1}', "date"),
        (b'{"date": "2025-02-29", "currency": "EUR", "rate": 1.1}', "date"),
        (b'{"currency": "EUR", "rate": 1.1}', "date"),
    ):
        detail = one(RATES, bad)
        assert isinstance(detail, str) and field in detail, bad


def test_valid_and_invalid_records_keep_their_positions() -> None:
    parsed = parse_reference(
        USERS, [doc(user_id="a", updated_at="2025-08-01T00:00Z"), None, doc(user_id="b")]
    )
    assert parsed.rows["idx"].to_list() == [0]
    assert parsed.rejects["idx"].to_list() == [1, 2]
