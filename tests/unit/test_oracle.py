"""The test oracle itself, against expectations worked out by hand from the contract.

Orders (§1) and the reports' basics here; reference data, history, rates and dates in
test_oracle_history.py; currencies, as was, windows and time in test_oracle_reports.py.

Inputs are written as raw JSON text (so that ``2.0``, ``1e0``, ``-0.0`` or key order are exactly
what a producer would send); every expected value is spelled out literally.
"""

from __future__ import annotations

import ast
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.oracle import (
    CONFLICTING_DUPLICATE,
    EMPTY_PAYLOAD,
    INVALID_AMOUNT,
    INVALID_CREATED_AT,
    INVALID_FIELD,
    INVALID_ITEM,
    INVALID_JSON,
    MINUS_INFINITY,
    MISSING_ORDER_ID,
    NOT_AN_OBJECT,
    Expected,
    LineRow,
    OrderRow,
    ProductRow,
    Record,
    UserRow,
    UserVersion,
    canonical,
    compute_expected,
    report,
)

TOPIC = "orders"


def doc(**fields: str | None) -> str:
    """A JSON object from raw JSON texts; ``order_id`` defaults to "o-1"; None omits a field."""
    merged: dict[str, str | None] = {"order_id": '"o-1"', **fields}
    members = [f'"{name}": {text}' for name, text in merged.items() if text is not None]
    return "{" + ", ".join(members) + "}"


def item(sku: str | None = '"p-1"', quantity: str | None = "1", price: str | None = "9.99") -> str:
    """One raw JSON item; None omits a field."""
    fields = {"sku": sku, "quantity": quantity, "price": price}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not None) + "}"


def array(*texts: str) -> str:
    """A raw JSON array of raw JSON texts."""
    return "[" + ", ".join(texts) + "]"


def records(*values: str | bytes | None, partition: int = 0) -> list[Record]:
    """Records at offsets 0, 1, 2... of one partition, keyed by nothing in particular."""
    return [
        Record(TOPIC, partition, offset, b"k", v.encode() if isinstance(v, str) else v)
        for offset, v in enumerate(values)
    ]


def run(
    *values: str | bytes | None, users: Path | None = None, products: Path | None = None
) -> Expected:
    return compute_expected(records(*values), users, products)


def reason_of(value: str | bytes | None) -> str | None:
    """The reject reason of a lone record, or None if it was loaded."""
    return run(value).rejected.get((TOPIC, 0, 0))


def order_of(value: str | bytes) -> OrderRow:
    """The dim_order row of a lone record, which must be loaded."""
    expected = run(value)
    assert expected.rejected == {}, expected.rejected
    (row,) = expected.orders.values()
    return row


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Rejected records: one reason each
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, b"", b"   ", b" \t\r\n ", "\u00a0\u2003"],
    ids=["tombstone", "empty", "spaces", "json-whitespace", "unicode-whitespace"],
)
def test_empty_payload(value: str | bytes | None) -> None:
    """A tombstone, an empty value or a whitespace-only value is rejected as empty_payload."""
    assert reason_of(value) == EMPTY_PAYLOAD


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe\x00",
        '{"order_id": "o-\u00e9"}'.encode("latin-1"),
        b'\xef\xbb\xbf{"order_id": "o-1"}',
        b'{"order_id": "o-1"',
        b"{'order_id': 'o-1'}",
        b'{"order_id": "o-1",}',
        b'{"order_id": "o-1"} trailing',
        b'{"order_id": "o-1"}{"order_id": "o-2"}',
        b'{"order_id": "o-1", "amount": NaN}',
        b'{"order_id": "o-1", "amount": Infinity}',
        b'{"order_id": "o-1", "amount": -Infinity}',
        b'{"order_id": "o-1", "amount": 012}',
        b'{"order_id": "o\n1"}',
        b'{"order_id": "o-1", "note": "\\ud800"}',
        b"\x00",
        b'{"order_id": "o-1", "amount": 1e99999999999999999999}',
        b'{"order_id": "o-1", "note": 1e-99999999999999999999}',
        b'{"order_id": "o-1", "note": ' + b"9" * 4301 + b"}",
    ],
    ids=[
        "not-utf8",
        "latin1",
        "utf8-bom",
        "truncated",
        "single-quotes",
        "trailing-comma",
        "trailing-garbage",
        "two-documents",
        "nan",
        "infinity",
        "minus-infinity",
        "leading-zero",
        "raw-newline-in-string",
        "lone-surrogate-escape",
        "nul-byte",
        "exponent-beyond-decimal",
        "tiny-exponent-beyond-decimal",
        "integer-of-4301-digits",
    ],
)
def test_invalid_json(value: bytes) -> None:
    """Bytes that are not UTF-8 or not strict JSON are rejected as invalid_json."""
    assert reason_of(value) == INVALID_JSON


@pytest.mark.parametrize("value", ["[]", '[{"order_id": "o-1"}]', '"o-1"', "42", "null", "true"])
def test_not_an_object(value: str) -> None:
    """JSON that is an array, string, number, null or boolean is rejected as not_an_object."""
    assert reason_of(value) == NOT_AN_OBJECT


@pytest.mark.parametrize(
    "value",
    [
        "{}",
        '{"id": "o-1"}',
        doc(order_id="null"),
        doc(order_id='""'),
        doc(order_id='"  \\t "'),
        doc(order_id="42"),
        doc(order_id='["o-1"]'),
        doc(order_id='{"id": "o-1"}'),
        doc(order_id="true"),
    ],
    ids=[
        "empty-object",
        "other-name",
        "null",
        "empty",
        "blank",
        "number",
        "array",
        "object",
        "bool",
    ],
)
def test_missing_order_id(value: str) -> None:
    """An order_id that is missing, null, empty, blank or not a string: missing_order_id."""
    assert reason_of(value) == MISSING_ORDER_ID


@pytest.mark.parametrize(
    "created_at",
    [
        '"2025-08-20"',
        '"20250820T152310Z"',
        '"2025-08-20T15"',
        '"2025-08-20T1523"',
        '"2025-02-29T00:00:00Z"',
        '"2025-13-01T00:00:00Z"',
        '"2025-08-20T24:00:00Z"',
        '"2025-08-20T15:60:00Z"',
        '"2025-08-20T15:23:60Z"',
        '"2025-08-20T15:23:10+24:00"',
        '"2025-08-20T15:23:10+05:60"',
        '"2025-08-20T15:23:10.Z"',
        '"2025-08-20T15:23:10.1234567890Z"',
        '"2025-08-20T15:23.5Z"',
        '"2025-08-20T15:23:10 Z"',
        '"2025-08-20T15:23:10UTC"',
        '" 2025-08-20T15:23:10Z"',
        '"2025-08-20T15:23:10Z\\n"',
        '"0000-01-01T00:00:00Z"',
        '"0001-01-01T00:30:00+01:00"',
        '"yesterday"',
        '""',
        "1755703390",
        "true",
        '{"iso": "2025-08-20T15:23:10Z"}',
    ],
    ids=[
        "date-only",
        "basic-format",
        "hour-only",
        "no-colon",
        "feb-29-non-leap",
        "month-13",
        "hour-24",
        "minute-60",
        "second-60",
        "zone-24h",
        "zone-60min",
        "empty-fraction",
        "ten-digit-fraction",
        "fraction-without-seconds",
        "space-before-zone",
        "zone-name",
        "leading-space",
        "trailing-newline",
        "year-zero",
        "before-year-one-in-utc",
        "words",
        "empty-string",
        "epoch-number",
        "bool",
        "object",
    ],
)
def test_invalid_created_at(created_at: str) -> None:
    """A created_at that is present, not null and not an ISO-8601 timestamp is rejected."""
    assert reason_of(doc(created_at=created_at)) == INVALID_CREATED_AT


@pytest.mark.parametrize(
    "items",
    [
        "{}",
        '"p-1"',
        "1",
        "[1]",
        "[null]",
        '["p-1"]',
        array(item(sku=None)),
        array(item(sku="null")),
        array(item(sku='""')),
        array(item(sku='"   "')),
        array(item(sku="7")),
        array(item(quantity=None)),
        array(item(quantity="null")),
        array(item(quantity="0")),
        array(item(quantity="-1")),
        array(item(quantity="1.5")),
        array(item(quantity="true")),
        array(item(quantity='"1"')),
        array(item(quantity="2147483648")),
        array(item(quantity="2147483648.0")),
        array(item(quantity="0.0")),
        array(item(quantity="1e400")),
        array(item(quantity="1e-400")),
        array(item(price=None)),
        array(item(price="null")),
        array(item(price="-0.01")),
        array(item(price='"9.99"')),
        array(item(price="true")),
        array(item(price="100000000000000")),
        array(item(price="1e14")),
        array(item(price="99999999999999.99995")),
        array(item(price="1e400")),
        array(item(price="-0.00001")),
        array(item(price="-1e-400")),
        array(item(), item(quantity="0")),
    ],
    ids=[
        "object",
        "string",
        "number",
        "number-element",
        "null-element",
        "string-element",
        "sku-missing",
        "sku-null",
        "sku-empty",
        "sku-blank",
        "sku-number",
        "quantity-missing",
        "quantity-null",
        "quantity-zero",
        "quantity-negative",
        "quantity-fraction",
        "quantity-bool",
        "quantity-string",
        "quantity-over-int32",
        "quantity-over-int32-decimal",
        "quantity-zero-decimal",
        "quantity-1e400",
        "quantity-1e-400",
        "price-missing",
        "price-null",
        "price-negative",
        "price-string",
        "price-bool",
        "price-10^14",
        "price-1e14",
        "price-rounds-to-10^14",
        "price-1e400",
        "price-negative-rounding-to-zero",
        "price-negative-tiny",
        "second-item-bad",
    ],
)
def test_invalid_item(items: str) -> None:
    """items that is not a list, or holds one bad item, is rejected as invalid_item."""
    assert reason_of(doc(items=items)) == INVALID_ITEM


@pytest.mark.parametrize(
    "amount",
    [
        '"129.90"',
        "true",
        "false",
        "[]",
        "{}",
        "1e14",
        "-100000000000000",
        "99999999999999.99995",
        "-99999999999999.99995",
        "1e400",
        "-1E+400",
    ],
    ids=[
        "string",
        "true",
        "false",
        "array",
        "object",
        "1e14",
        "minus-10^14",
        "rounds-to-10^14",
        "rounds-to-minus-10^14",
        "1e400",
        "minus-1e400",
    ],
)
def test_invalid_amount(amount: str) -> None:
    """An amount that is present, not null and not a DECIMAL(18,4) number: invalid_amount."""
    assert reason_of(doc(amount=amount)) == INVALID_AMOUNT


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": "42"},
        {"user_id": "true"},
        {"user_id": '{"id": "u-1"}'},
        {"currency": '["USD"]'},
        {"currency": "1"},
        {"metadata": '"web"'},
        {"metadata": "[]"},
        {"metadata": "1"},
        {"metadata": '{"source": 1}'},
        {"metadata": '{"source": {"name": "web"}}'},
        {"metadata": '{"promo": false}'},
    ],
    ids=[
        "user-number",
        "user-bool",
        "user-object",
        "currency-array",
        "currency-number",
        "metadata-string",
        "metadata-array",
        "metadata-number",
        "source-number",
        "source-object",
        "promo-bool",
    ],
)
def test_invalid_field(fields: dict[str, str]) -> None:
    """user_id, currency, metadata, source or promo of a wrong JSON type: invalid_field."""
    assert reason_of(doc(**fields)) == INVALID_FIELD


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"order_id": None, "created_at": '"bad"'}, MISSING_ORDER_ID),
        ({"created_at": '"bad"', "items": "{}"}, INVALID_CREATED_AT),
        ({"items": "{}", "amount": '"1"'}, INVALID_ITEM),
        ({"amount": '"1"', "user_id": "1"}, INVALID_AMOUNT),
    ],
    ids=["order_id-first", "created_at-before-items", "items-before-amount", "amount-before-field"],
)
def test_first_matching_rule_wins(fields: dict[str, str | None], reason: str) -> None:
    """With two faults, the reason is the one of the earlier rule."""
    assert reason_of(doc(**fields)) == reason


# --------------------------------------------------------------------------------------------
# Tolerated records: loaded, with hand-computed values
# --------------------------------------------------------------------------------------------


def test_the_contract_example_is_loaded_field_by_field() -> None:
    """The example event of interface §1 gives exactly these dim_order and fact_sales rows."""
    value = (
        '{"order_id": "o-000123", "user_id": "u-0042", "amount": 129.9, "currency": "USD",'
        ' "created_at": "2025-08-20T15:23:10Z",'
        ' "items": [{"sku": "p-0007", "quantity": 2, "price": 49.95},'
        ' {"sku": "p-0100", "quantity": 1, "price": 30.0}],'
        ' "metadata": {"source": "web", "promo": "BF25"}}'
    )
    expected = run(value)
    at = datetime(2025, 8, 20, 15, 23, 10)
    assert expected.orders == {
        "o-000123": OrderRow("o-000123", "u-0042", Decimal("129.9"), "USD", "web", "BF25", at)
    }
    assert expected.lines == {
        ("o-000123", 1): LineRow("o-000123", 1, "p-0007", "u-0042", 2, Decimal("49.95"), at, "USD"),
        ("o-000123", 2): LineRow("o-000123", 2, "p-0100", "u-0042", 1, Decimal("30"), at, "USD"),
    }
    assert expected.loaded == {(TOPIC, 0, 0): "o-000123"}
    assert expected.rejected == {}
    assert expected.duplicates == set()


@pytest.mark.parametrize("created_at", [None, "null"], ids=["missing", "null"])
def test_created_at_missing_or_null_is_null(created_at: str | None) -> None:
    """A missing or null created_at is loaded as NULL."""
    assert order_of(doc(created_at=created_at)).created_at is None


@pytest.mark.parametrize(
    ("created_at", "utc"),
    [
        ('"2025-08-20T15:23:10Z"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20t15:23:10z"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20 15:23:10"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T15:23:10"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T15:23"', datetime(2025, 8, 20, 15, 23)),
        ('"2025-08-20T17:23:10+02:00"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T10:53:10-0430"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T20:23:10+05"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T15:23:10-00:00"', datetime(2025, 8, 20, 15, 23, 10)),
        ('"2025-08-20T15:23:10.5Z"', datetime(2025, 8, 20, 15, 23, 10, 500000)),
        ('"2025-08-20T15:23:10.123456789Z"', datetime(2025, 8, 20, 15, 23, 10, 123456)),
        ('"2025-08-20T15:23:10,9999999Z"', datetime(2025, 8, 20, 15, 23, 10, 999999)),
        ('"2025-08-20T15:23:10.25+01:00"', datetime(2025, 8, 20, 14, 23, 10, 250000)),
        ('"2025-01-01T01:30:00+02:00"', datetime(2024, 12, 31, 23, 30)),
        ('"2024-02-29T23:00:00-01:00"', datetime(2024, 3, 1, 0, 0)),
        ('"9999-12-31T23:59:59Z"', datetime(9999, 12, 31, 23, 59, 59)),
    ],
    ids=[
        "Z",
        "lowercase-t-z",
        "space-no-zone",
        "no-zone",
        "no-seconds",
        "plus-hh:mm",
        "minus-hhmm",
        "plus-hh",
        "minus-zero",
        "fraction-1-digit",
        "fraction-9-digits-truncated",
        "comma-fraction-not-rounded",
        "fraction-and-offset",
        "offset-crosses-new-year",
        "offset-crosses-leap-day",
        "max-timestamp",
    ],
)
def test_created_at_normalized_to_naive_utc(created_at: str, utc: datetime) -> None:
    """Zones, offsets and fractions are normalized to a naive UTC datetime (no zone = UTC)."""
    value = doc(created_at=created_at, user_id='"u-1"', items=array(item()))
    expected = run(value)
    assert expected.orders["o-1"].created_at == utc
    assert expected.lines[("o-1", 1)].created_at == utc


@pytest.mark.parametrize("items", [None, "null", "[]"], ids=["missing", "null", "empty"])
def test_items_missing_null_or_empty_give_an_order_without_lines(items: str | None) -> None:
    """items missing, null or [] loads the order with no fact_sales rows."""
    expected = run(doc(items=items, amount="10"))
    assert expected.orders["o-1"].amount == Decimal("10")
    assert expected.lines == {}
    assert expected.loaded == {(TOPIC, 0, 0): "o-1"}


@pytest.mark.parametrize(
    "metadata", [None, "null", "{}", '{"source": null, "promo": null}', '{"other": 1}']
)
def test_metadata_missing_null_or_empty_gives_null_source_and_promo(metadata: str | None) -> None:
    """metadata missing, null, {} (or without source and promo) gives NULL source and promo."""
    row = order_of(doc(metadata=metadata))
    assert (row.source, row.promo) == (None, None)


@pytest.mark.parametrize(
    ("metadata", "source", "promo"),
    [
        ('{"source": "web", "promo": "BF25", "campaign": 7}', "web", "BF25"),
        ('{"source": "", "promo": ""}', None, None),
        ('{"source": " app "}', " app ", None),
    ],
    ids=["strings-and-extra-key", "empty-strings-are-null", "spaces-kept"],
)
def test_metadata_strings_are_kept_as_given(
    metadata: str, source: str | None, promo: str | None
) -> None:
    """source and promo strings are kept exactly, empty ones become NULL; extra keys ignored."""
    row = order_of(doc(metadata=metadata))
    assert (row.source, row.promo) == (source, promo)


@pytest.mark.parametrize(
    "value", [doc(), doc(user_id='""', currency='""')], ids=["missing", "empty"]
)
def test_user_id_and_currency_missing_or_empty_are_null(value: str) -> None:
    """user_id and currency that are missing or empty strings are NULL."""
    row = order_of(value)
    assert (row.user_id, row.currency) == (None, None)


def test_null_user_id_gives_lines_with_null_user() -> None:
    """An order with a null user_id has lines with a NULL user_id."""
    expected = run(doc(user_id="null", items=array(item())))
    assert expected.lines[("o-1", 1)].user_id is None


def test_amount_that_differs_from_the_lines_is_loaded_as_given() -> None:
    """amount is the order's own figure even when the lines sum to something else."""
    value = doc(amount="1.5", items=array(item(quantity="2", price="49.95")))
    assert order_of(value).amount == Decimal("1.5")


@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        ("130", Decimal("130")),
        ("-10.25", Decimal("-10.25")),
        ("0", Decimal("0")),
        ("-0.0", Decimal("0")),
        ("1.50000", Decimal("1.5")),
        ("1.2E2", Decimal("120")),
        ("99999999999999.9999", Decimal("99999999999999.9999")),
        ("-99999999999999.9999", Decimal("-99999999999999.9999")),
        ("99999999999999.99994", Decimal("99999999999999.9999")),
        ("128.45000000000002", Decimal("128.45")),
        ("0.30000000000000004", Decimal("0.3")),
        ("0.00005", Decimal("0")),
        ("0.00015", Decimal("0.0002")),
        ("0.00025", Decimal("0.0002")),
        ("-0.00015", Decimal("-0.0002")),
        ("-0.00005", Decimal("0")),
        ("0.000050001", Decimal("0.0001")),
        ("1e-400", Decimal("0")),
    ],
    ids=[
        "integer",
        "negative",
        "zero",
        "minus-zero",
        "exact-trailing-zeros",
        "exponent",
        "max",
        "min",
        "rounds-down-to-max",
        "float-noise",
        "float-noise-tenths",
        "tie-to-even-zero",
        "tie-up-to-even",
        "tie-down-to-even",
        "negative-tie-to-even",
        "negative-tie-to-zero",
        "above-tie",
        "tiny",
    ],
)
def test_amount_numbers_are_stored_half_to_even_to_4_decimals(amount: str, stored: Decimal) -> None:
    """Any JSON number below 10**14 once rounded is loaded, half-to-even to 4 decimals."""
    row = order_of(doc(amount=amount))
    assert isinstance(row.amount, Decimal)
    assert row.amount == stored


def test_item_boundaries_are_accepted() -> None:
    """quantity 2**31-1, price 0, the largest price, exact trailing zeros and 1E2 are valid."""
    items = [
        item(sku='"p-1"', quantity="2147483647", price="0"),
        item(sku='"p-2"', quantity="1", price="99999999999999.9999"),
        item(sku='"p-3"', quantity="1", price="1.50000"),
        item(sku='"p-4"', quantity="1", price="1E2"),
        item(sku='"p-5"', quantity="2.0", price="0.30000000000000004"),
        item(sku='"p-6"', quantity="3e0", price="-0.0"),
        item(sku='"p-7"', quantity="1", price="0.00015"),
    ]
    expected = run(doc(items="[" + ", ".join(items) + "]"))
    assert [(line.sku, line.quantity, line.unit_price) for line in expected.lines.values()] == [
        ("p-1", 2147483647, Decimal("0")),
        ("p-2", 1, Decimal("99999999999999.9999")),
        ("p-3", 1, Decimal("1.5")),
        ("p-4", 1, Decimal("100")),
        ("p-5", 2, Decimal("0.3")),
        ("p-6", 3, Decimal("0")),
        ("p-7", 1, Decimal("0.0002")),
    ]


def test_extra_fields_key_order_and_escaped_unicode_are_handled() -> None:
    """Unknown fields are ignored, key order is free, escaped and raw unicode are the same."""
    escaped = (
        '{"zzz": [1, {"a": null}], "items": [{"price": 2.5, "qty_hint": "x", "quantity": 3,'
        ' "sku": "p-caf\\u00e9"}], "user_id": "u-\\u00e9", "order_id": "o-\\u00e9\\ud83d\\ude00"}'
    )
    expected = run(escaped)
    assert list(expected.orders) == ["o-\u00e9\U0001f600"]
    assert expected.lines == {
        ("o-\u00e9\U0001f600", 1): LineRow(
            "o-\u00e9\U0001f600", 1, "p-caf\u00e9", "u-\u00e9", 3, Decimal("2.5"), None, None
        )
    }
    raw = '{"order_id": "o-\u00e9\U0001f600", "user_id": "u-\u00e9"}'
    assert order_of(raw).order_id == "o-\u00e9\U0001f600"


def test_same_sku_twice_gives_two_lines() -> None:
    """The same sku twice in one order gives lines 1 and 2, each with its own figures."""
    items = array(item(quantity="1", price="10"), item(quantity="3", price="9.5"))
    expected = run(doc(user_id='"u-1"', items=items))
    assert expected.lines == {
        ("o-1", 1): LineRow("o-1", 1, "p-1", "u-1", 1, Decimal("10"), None, None),
        ("o-1", 2): LineRow("o-1", 2, "p-1", "u-1", 3, Decimal("9.5"), None, None),
    }


def test_record_key_is_not_trusted() -> None:
    """Records with no key or a wrong key are processed from the order_id in the value."""
    stream = [
        Record(TOPIC, 0, 0, None, doc(order_id='"o-1"').encode()),
        Record(TOPIC, 0, 1, b"o-999", doc(order_id='"o-2"').encode()),
    ]
    expected = compute_expected(stream)
    assert expected.loaded == {(TOPIC, 0, 0): "o-1", (TOPIC, 0, 1): "o-2"}


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------


def test_identical_resend_is_a_duplicate_despite_whitespace_key_order_and_escaping() -> None:
    """Re-sends differing only in whitespace, key order or escaping are dropped as duplicates."""
    first = (
        '{"order_id":"o-1","user_id":"u-\u00e9","amount":1.50,'
        '"items":[{"sku":"p-1","quantity":2,"price":2}]}'
    )
    spaced = (
        '{ "order_id" : "o-1" ,\n "user_id" : "u-\u00e9" , "amount" : 1.50 ,'
        ' "items" : [ { "sku" : "p-1" , "quantity" : 2 , "price" : 2 } ] }\n'
    )
    reordered = (
        '{"items":[{"price":2,"quantity":2,"sku":"p-1"}],"amount":1.50,'
        '"user_id":"u-\\u00e9","order_id":"\\u006f-1"}'
    )
    expected = run(first, spaced, reordered)
    assert expected.loaded == {(TOPIC, 0, 0): "o-1"}
    assert expected.duplicates == {(TOPIC, 0, 1), (TOPIC, 0, 2)}
    assert expected.rejected == {}
    assert list(expected.lines) == [("o-1", 1)]


def test_numbers_compare_by_exact_value_but_true_is_not_one() -> None:
    """1.50 equals 1.5, 15e-1 and 1.5e0; 2 equals 2.0 and 20E-1; true is not 1."""
    expected = run(
        doc(amount="1.50", extra="2.0"),
        doc(amount="1.5", extra="2.00"),
        doc(amount="15e-1", extra="20E-1"),
        doc(amount="1.5e0", extra="2"),
        doc(amount="1.5", extra="true"),
    )
    assert expected.duplicates == {(TOPIC, 0, 1), (TOPIC, 0, 2), (TOPIC, 0, 3)}
    assert expected.rejected == {(TOPIC, 0, 4): CONFLICTING_DUPLICATE}


def test_minus_zero_then_zero_is_an_identical_resend() -> None:
    """-0.0 equals 0.0 and 0 (interface §1): the re-send is dropped, not conflicting."""
    expected = run(
        doc(amount="-0.0", items=array(item(price="-0.0"))),
        doc(amount="0.0", items=array(item(price="0"))),
    )
    assert expected.duplicates == {(TOPIC, 0, 1)}
    assert expected.rejected == {}


def test_resends_compare_the_value_written_not_the_value_stored() -> None:
    """128.45000000000002 and 128.45 are stored alike but are different values: conflicting."""
    expected = run(
        doc(amount="128.45000000000002"),
        doc(amount="128.450000000000020"),
        doc(amount="128.45"),
    )
    assert expected.duplicates == {(TOPIC, 0, 1)}
    assert expected.rejected == {(TOPIC, 0, 2): CONFLICTING_DUPLICATE}
    assert expected.orders["o-1"].amount == Decimal("128.45")


def test_canonical_content_ignores_formatting_only() -> None:
    """canonical() is equal for reordered keys and equal numbers, different for other values."""
    assert canonical({"a": 1, "b": [Decimal("2.0"), None]}) == canonical(
        {"b": [Decimal("2"), None], "a": 1}
    )
    assert canonical({"a": 1}) == canonical({"a": Decimal("1.0")})
    assert canonical({"a": 0}) == canonical({"a": Decimal("-0.0")})
    assert canonical({"a": Decimal("1.5")}) != canonical({"a": Decimal("1.50001")})
    assert canonical({"a": [1, 2]}) != canonical({"a": [2, 1]})
    assert canonical({"a": True}) != canonical({"a": 1})
    assert canonical({"a": "1"}) != canonical({"a": 1})
    assert canonical({"a": None}) != canonical({})


@pytest.mark.parametrize(
    "changed",
    [
        doc(amount="11"),
        doc(amount="10", currency='"EUR"'),
        doc(amount="10", note='"new field"'),
        doc(amount="10", items=array(item())),
        doc(amount="10", user_id="null"),
    ],
    ids=["amount", "added-currency", "added-extra-field", "added-items", "added-null-field"],
)
def test_different_resend_is_a_conflicting_duplicate_and_the_first_version_stays(
    changed: str,
) -> None:
    """A re-send whose content differs in any value or field is rejected; the first stays."""
    expected = run(doc(amount="10"), changed)
    assert expected.rejected == {(TOPIC, 0, 1): CONFLICTING_DUPLICATE}
    assert expected.orders == {"o-1": OrderRow("o-1", None, Decimal("10"), None, None, None, None)}
    assert expected.lines == {}
    assert expected.loaded == {(TOPIC, 0, 0): "o-1"}


def test_later_copies_compare_with_the_loaded_version_only() -> None:
    """After a conflict, a copy of the first version is a duplicate; of the conflict, it is not."""
    first, second = doc(amount="10"), doc(amount="20")
    expected = run(first, second, first, second)
    assert expected.loaded == {(TOPIC, 0, 0): "o-1"}
    assert expected.duplicates == {(TOPIC, 0, 2)}
    assert expected.rejected == {
        (TOPIC, 0, 1): CONFLICTING_DUPLICATE,
        (TOPIC, 0, 3): CONFLICTING_DUPLICATE,
    }


def test_a_rejected_record_does_not_block_a_later_valid_one() -> None:
    """Rejected records never count as loaded: the next valid version with that id is loaded."""
    expected = run(
        doc(created_at='"2025-08-20"'),
        doc(items="{}"),
        doc(amount="7"),
        doc(amount="7"),
    )
    assert expected.rejected == {(TOPIC, 0, 0): INVALID_CREATED_AT, (TOPIC, 0, 1): INVALID_ITEM}
    assert expected.loaded == {(TOPIC, 0, 2): "o-1"}
    assert expected.duplicates == {(TOPIC, 0, 3)}
    assert expected.orders["o-1"].amount == Decimal("7")


def test_every_record_has_exactly_one_outcome() -> None:
    """Loaded, duplicate and rejected positions partition the input, and are counted."""
    expected = run(doc(), doc(), doc(amount="1"), None, doc(order_id='"o-2"'))
    assert expected.outcome_counts == {"loaded": 2, "duplicate": 1, "rejected": 2}
    assert expected.loaded == {(TOPIC, 0, 0): "o-1", (TOPIC, 0, 4): "o-2"}


def test_a_position_given_twice_is_refused() -> None:
    """The same (topic, partition, offset) twice is an input error, not a duplicate."""
    same = Record(TOPIC, 0, 5, None, doc().encode())
    with pytest.raises(ValueError, match="more than once"):
        compute_expected([same, same])


def test_an_order_id_in_two_partitions_is_flagged_ambiguous() -> None:
    """Valid versions of one order_id in two partitions make its "first" version ambiguous."""
    stream = [*records(doc(), doc(order_id='"o-2"')), *records(doc(amount="3"), partition=1)]
    expected = compute_expected(stream)
    assert expected.ambiguous_order_ids == {"o-1"}
    assert expected.rejected == {(TOPIC, 1, 0): CONFLICTING_DUPLICATE}


# --------------------------------------------------------------------------------------------
# Reference data and placeholders
# --------------------------------------------------------------------------------------------

USERS_CSV = (
    "user_id,name,email,country,signup_date\n"
    'u-1,"Doe, Jane",jane@example.com,FR,2024-01-31\n'
    'u-9,"Said ""Sam"" Ali",sam@example.com,,\n'
)
PRODUCTS_CSV = "sku,name,category,list_price\np-1,Mug,kitchen,12.50\np-9,Pen,,\n"


def test_reference_rows_come_from_the_csvs_and_absent_ids_get_placeholders(
    tmp_path: Path,
) -> None:
    """CSV rows are loaded as given; ids of loaded orders absent from them become placeholders."""
    users = write(tmp_path / "users.csv", USERS_CSV)
    products = write(tmp_path / "products.csv", PRODUCTS_CSV)
    expected = run(
        doc(order_id='"o-1"', user_id='"u-1"', items=array(item(sku='"p-1"'))),
        doc(order_id='"o-2"', user_id='"u-2"', items=array(item(sku='"p-2"'))),
        doc(order_id='"o-3"', user_id='"u-3"', items="{}"),
        doc(order_id='"o-4"', items=array(item(sku='"p-1"'))),
        users=users,
        products=products,
    )
    assert expected.users == {
        "u-1": UserRow("u-1", "Doe, Jane", "jane@example.com", "FR", date(2024, 1, 31), False),
        "u-9": UserRow("u-9", 'Said "Sam" Ali', "sam@example.com", None, None, False),
        "u-2": UserRow("u-2", None, None, None, None, True),
    }
    assert expected.products == {
        "p-1": ProductRow("p-1", "Mug", "kitchen", Decimal("12.5"), False),
        "p-9": ProductRow("p-9", "Pen", None, None, False),
        "p-2": ProductRow("p-2", None, None, None, True),
    }


def test_without_csvs_every_referenced_id_is_a_placeholder() -> None:
    """With no reference data, dim_user and dim_product hold placeholders only."""
    expected = run(doc(user_id='"u-1"', items=array(item(sku='"p-1"'), item(sku='"p-1"'))))
    assert expected.users == {"u-1": UserRow("u-1", None, None, None, None, True)}
    assert expected.products == {"p-1": ProductRow("p-1", None, None, None, True)}


def test_the_same_key_twice_in_a_csv_without_updated_at_keeps_the_later_row(
    tmp_path: Path,
) -> None:
    """Both rows take effect when the file is loaded: the same key at the same time with other
    content is a correction, so the later line is the one version (decisions, history rules)."""
    users = write(tmp_path / "users.csv", USERS_CSV + "u-1,Other,o@example.com,DE,2024-02-01\n")
    expected = run(doc(), users=users)
    assert expected.users["u-1"] == UserRow(
        "u-1", "Other", "o@example.com", "DE", date(2024, 2, 1), False
    )
    assert [v for v in expected.user_history.values() if v.user_id == "u-1"] == [
        UserVersion("u-1", "Other", "o@example.com", "DE", date(2024, 2, 1), MINUS_INFINITY,
                    None, True)
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Expected:
    """Six orders worked through by hand in the report tests below."""
    users = write(
        tmp_path / "users.csv",
        "user_id,name,email,country,signup_date\n"
        "u-a,A,a@example.com,FR,2024-01-01\n"
        "u-b,B,b@example.com,DE,2024-01-01\n"
        "u-d,D,d@example.com,US,2024-01-01\n"
        "u-e,E,e@example.com,,2024-01-01\n",
    )
    products = write(
        tmp_path / "products.csv",
        "sku,name,category,list_price\np-1,Mug,k,1\np-2,Pen,o,1\np-4,Free sticker,o,0\n",
    )
    web, app, usd = '{"source": "web"}', '{"source": "app"}', '"USD"'
    return run(
        # u-b, web: p-1 2 x 10.00 = 20 and p-2 1 x 5 = 5
        doc(
            order_id='"o-1"',
            user_id='"u-b"',
            currency=usd,
            metadata=web,
            items=array(item('"p-1"', "2", "10.00"), item('"p-2"', "1", "5")),
        ),
        # u-a, app: p-1 1 x 25 = 25
        doc(
            order_id='"o-2"',
            user_id='"u-a"',
            currency=usd,
            metadata=app,
            items=array(item('"p-1"', "1", "25")),
        ),
        # no user, no source: p-3 (not in CSV) 3 x 100 = 300
        doc(order_id='"o-3"', currency=usd, items=array(item('"p-3"', "3", "100"))),
        # u-c (placeholder), web: p-2 4 x 1.25 = 5
        doc(
            order_id='"o-4"',
            user_id='"u-c"',
            currency=usd,
            metadata=web,
            items=array(item('"p-2"', "4", "1.25")),
        ),
        # u-d, mobile, no lines: appears in no report
        doc(order_id='"o-5"', user_id='"u-d"', metadata='{"source": "mobile"}', amount="99"),
        # u-e (no country), app: p-4 1 x 0 = 0
        doc(
            order_id='"o-6"',
            user_id='"u-e"',
            currency=usd,
            metadata=app,
            items=array(item('"p-4"', "1", "0")),
        ),
        users=users,
        products=products,
    )


def test_top_users_ties_by_key_and_null_last(shop: Expected) -> None:
    """top-users: by total desc, u-a before u-b on a tie, the NULL user last despite 300."""
    assert report(shop, "top-users") == [
        {"user_id": "u-a", "total_sales": Decimal("25.00"), "currency": "USD"},
        {"user_id": "u-b", "total_sales": Decimal("25.00"), "currency": "USD"},
        {"user_id": "u-c", "total_sales": Decimal("5.00"), "currency": "USD"},
        {"user_id": "u-e", "total_sales": Decimal("0.00"), "currency": "USD"},
        {"user_id": None, "total_sales": Decimal("300.00"), "currency": "USD"},
    ]


def test_top_products_counts_units_with_names(shop: Expected) -> None:
    """top-products: units per sku, ties by sku, name NULL for a placeholder product."""
    assert report(shop, "top-products") == [
        {"sku": "p-2", "name": "Pen", "units_sold": 5},
        {"sku": "p-1", "name": "Mug", "units_sold": 3},
        {"sku": "p-3", "name": None, "units_sold": 3},
        {"sku": "p-4", "name": "Free sticker", "units_sold": 1},
    ]


def test_top_countries_groups_unknown_countries_as_null(shop: Expected) -> None:
    """top-countries: NULL user, placeholder user and blank country all fall in the NULL row."""
    assert report(shop, "top-countries") == [
        {"country": "DE", "total_sales": Decimal("25.00"), "currency": "USD"},
        {"country": "FR", "total_sales": Decimal("25.00"), "currency": "USD"},
        {"country": None, "total_sales": Decimal("305.00"), "currency": "USD"},
    ]


def test_sales_by_channel_lists_channels_with_lines(shop: Expected) -> None:
    """sales-by-channel: per source, NULL source last, a channel without lines absent."""
    assert report(shop, "sales-by-channel") == [
        {"source": "web", "total_sales": Decimal("30.00"), "currency": "USD"},
        {"source": "app", "total_sales": Decimal("25.00"), "currency": "USD"},
        {"source": None, "total_sales": Decimal("300.00"), "currency": "USD"},
    ]


def test_report_rows_have_exactly_the_contract_keys_and_decimal_money(shop: Expected) -> None:
    """Each report's rows carry exactly the contract's keys, money as Decimal."""
    keys = {
        "top-users": ["user_id", "total_sales", "currency"],
        "top-products": ["sku", "name", "units_sold"],
        "top-countries": ["country", "total_sales", "currency"],
        "sales-by-channel": ["source", "total_sales", "currency"],
    }
    for name, columns in keys.items():
        rows = report(shop, name)
        assert rows
        assert all(list(row) == columns for row in rows), name
        if "total_sales" in columns:
            assert all(isinstance(row["total_sales"], Decimal) for row in rows)
            assert all(row["currency"] == "USD" for row in rows)


def test_limit_defaults_to_five_except_for_sales_by_channel() -> None:
    """Seven groups: 5 rows by default, all for sales-by-channel, or as many as asked."""
    values = [
        doc(
            order_id=f'"o-{n}"',
            user_id=f'"u-{n}"',
            currency='"USD"',
            metadata=f'{{"source": "s-{n}"}}',
            items=array(item(price=str(n))),
        )
        for n in range(1, 8)
    ]
    expected = run(*values)
    assert [row["user_id"] for row in report(expected, "top-users")] == [
        "u-7",
        "u-6",
        "u-5",
        "u-4",
        "u-3",
    ]
    assert len(report(expected, "top-products")) == 1
    assert len(report(expected, "sales-by-channel")) == 7
    assert len(report(expected, "top-users", limit=None)) == 7
    assert [row["source"] for row in report(expected, "sales-by-channel", limit=2)] == [
        "s-7",
        "s-6",
    ]
    assert report(expected, "top-users", limit=0) == []


def test_limit_can_cut_off_the_null_row() -> None:
    """The NULL row sorts last, so a limit applies to it like to any other row."""
    expected = run(
        doc(order_id='"o-1"', user_id='"u-1"', currency='"USD"', items=array(item(price="1"))),
        doc(order_id='"o-2"', currency='"USD"', items=array(item(price="50"))),
    )
    assert report(expected, "top-users", limit=1) == [
        {"user_id": "u-1", "total_sales": Decimal("1.00"), "currency": "USD"}
    ]


def test_money_totals_are_exact_then_rounded_half_to_even() -> None:
    """Sums are exact, then rounded half-to-even to 2 places (§5):
    u-1: 0.1 + 0.1 + 0.1 + 0.005 = 0.305 exactly -> 0.30 (floats give 0.30500000000000005,
    half-up gives 0.31); u-2: 0.1 * 3 + 0.025 = 0.325 -> 0.32 (floats: 0.32500000000000007);
    u-3: 0.015 -> 0.02 (the tie goes to the even 2)."""
    tenth = item(price="0.1")
    expected = run(
        doc(order_id='"o-1"', user_id='"u-1"', currency='"USD"',
            items=array(tenth, tenth, tenth, item(price="0.005"))),
        doc(order_id='"o-2"', user_id='"u-2"', currency='"USD"',
            items=array(tenth, tenth, tenth, item(price="0.025"))),
        doc(order_id='"o-3"', user_id='"u-3"', currency='"USD"', items=array(item(price="0.015"))),
    )  # fmt: skip
    assert report(expected, "top-users") == [
        {"user_id": "u-2", "total_sales": Decimal("0.32"), "currency": "USD"},
        {"user_id": "u-1", "total_sales": Decimal("0.30"), "currency": "USD"},
        {"user_id": "u-3", "total_sales": Decimal("0.02"), "currency": "USD"},
    ]


def test_unknown_report_name_is_refused(shop: Expected) -> None:
    """A report name outside the contract raises ValueError."""
    with pytest.raises(ValueError, match="unknown report"):
        report(shop, "top-everything")


def test_the_oracle_imports_only_the_stdlib_and_its_own_parts() -> None:
    """The oracle stays independent of the code it checks: its modules import the standard
    library, each other and (for read_topic) confluent_kafka, nothing from consumer/ or
    producer_sim/."""
    allowed = {*sys.stdlib_module_names, "confluent_kafka", "tests"}
    parts = sorted(Path(__file__).resolve().parents[1].glob("oracle*.py"))
    assert [p.name for p in parts] == [
        "oracle.py",
        "oracle_base.py",
        "oracle_history.py",
        "oracle_reports.py",
    ]
    for part in parts:
        for node in ast.walk(ast.parse(part.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed, f"{part.name} imports {name}"
                assert top != "tests" or name.startswith("tests.oracle"), f"{part.name}: {name}"
