"""The pure transform against interface §1, with expectations written by hand."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from consumer.core.plan import classify
from consumer.core.reasons import CONFLICTING_DUPLICATE, DUPLICATE, LOADED
from consumer.core.transform import parse_values

BASE: dict[str, Any] = {
    "order_id": "o-1",
    "user_id": "u-1",
    "amount": 129.9,
    "currency": "USD",
    "created_at": "2025-08-20T15:23:10Z",
    "items": [
        {"sku": "p-7", "quantity": 2, "price": 49.95},
        {"sku": "p-100", "quantity": 1, "price": 30.0},
    ],
    "metadata": {"source": "web", "promo": "BF25"},
}
MISSING = object()


def order(**changes: Any) -> bytes:
    doc = {**BASE}
    for key, value in changes.items():
        if value is MISSING:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def one_order(value: bytes) -> dict[str, Any]:
    parsed = parse_values([value])
    assert parsed.rejects.is_empty(), parsed.rejects.to_dicts()
    rows: list[dict[str, Any]] = parsed.orders.to_dicts()
    assert len(rows) == 1
    return rows[0]


def reason_of(value: bytes | None) -> str:
    parsed = parse_values([value])
    assert parsed.orders.is_empty()
    reason: str = parsed.rejects["reason"].item()
    return reason


def test_a_clean_order_is_flattened_into_one_order_and_its_lines() -> None:
    """The contract's example becomes one order row and two line rows with exact decimals."""
    parsed = parse_values([order()])
    row = parsed.orders.row(0, named=True)
    assert row["order_id"] == "o-1"
    assert row["user_id"] == "u-1"
    assert row["amount"] == Decimal("129.9")
    assert (row["currency"], row["source"], row["promo"]) == ("USD", "web", "BF25")
    assert row["created_at"] == datetime(2025, 8, 20, 15, 23, 10)
    assert row["line_count"] == 2
    assert parsed.lines.select("line_number", "sku", "quantity", "unit_price").rows() == [
        (1, "p-7", 2, Decimal("49.95")),
        (2, "p-100", 1, Decimal("30")),
    ]
    assert parsed.rejects.is_empty()


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2025-08-20T15:23:10Z", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-08-20T17:23:10+02:00", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-08-20T10:53:10-04:30", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-08-20T15:23:10.5Z", datetime(2025, 8, 20, 15, 23, 10, 500000)),
        ("2025-08-20T15:23:10.123456789+00:00", datetime(2025, 8, 20, 15, 23, 10, 123456)),
        ("2025-08-20T15:23:10", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-08-20 15:23", datetime(2025, 8, 20, 15, 23)),
        ("2025-08-21T01:23:10+1000", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-08-20t15:23:10z", datetime(2025, 8, 20, 15, 23, 10)),
        ("2025-01-01T00:30:00+01:00", datetime(2024, 12, 31, 23, 30)),
    ],
)
def test_created_at_forms_are_normalized_to_utc(created_at: str, expected: datetime) -> None:
    """Z, offsets, fractional seconds and no zone (= UTC) all become one UTC instant."""
    assert one_order(order(created_at=created_at))["created_at"] == expected


@pytest.mark.parametrize("created_at", [MISSING, None])
def test_created_at_missing_or_null_is_loaded_as_null(created_at: object) -> None:
    """An order without created_at is loaded with a NULL created_at."""
    assert one_order(order(created_at=created_at))["created_at"] is None


@pytest.mark.parametrize("items", [MISSING, None, []])
def test_items_missing_null_or_empty_give_an_order_without_lines(items: object) -> None:
    """items missing, null or [] loads the order with no fact rows."""
    parsed = parse_values([order(items=items)])
    assert parsed.orders["line_count"].to_list() == [0]
    assert parsed.lines.is_empty()


@pytest.mark.parametrize("metadata", [MISSING, None, {}])
def test_metadata_missing_null_or_empty_give_null_source_and_promo(metadata: object) -> None:
    """metadata missing, null or {} leaves source and promo NULL."""
    row = one_order(order(metadata=metadata))
    assert (row["source"], row["promo"]) == (None, None)


def test_user_id_and_currency_missing_are_null() -> None:
    """Missing user_id and currency are NULL, and empty strings count as missing."""
    assert one_order(order(user_id=MISSING, currency=MISSING))["user_id"] is None
    row = one_order(order(user_id="", currency=""))
    assert (row["user_id"], row["currency"]) == (None, None)


def test_amount_that_differs_from_the_lines_is_kept_as_given() -> None:
    """amount is the order's own figure, even when the lines sum to something else."""
    assert one_order(order(amount=1.5))["amount"] == Decimal("1.5")


def test_extra_fields_key_order_and_escaped_unicode_are_handled() -> None:
    """Unknown fields are ignored; escaped and raw non-ASCII text decode to the same string."""
    raw = '{"zz": [1, {"a": null}], "user_id": "Jos\\u00e9", "order_id": "o-é", "items": []}'
    row = one_order(raw.encode())
    assert (row["order_id"], row["user_id"]) == ("o-é", "José")


def test_the_same_sku_twice_gives_two_lines() -> None:
    """Two items with the same sku stay two lines, numbered 1 and 2."""
    items = [{"sku": "p-1", "quantity": 1, "price": 2}, {"sku": "p-1", "quantity": 3, "price": 2}]
    lines = parse_values([order(items=items)]).lines
    assert lines.select("line_number", "sku", "quantity").rows() == [(1, "p-1", 1), (2, "p-1", 3)]


def test_a_3000_line_order_keeps_every_line_in_order() -> None:
    """A very large order is flattened completely, line numbers following the items."""
    items = [{"sku": f"p-{n % 7}", "quantity": n % 5 + 1, "price": 1.25} for n in range(3000)]
    lines = parse_values([order(items=items)]).lines
    assert lines.height == 3000
    assert lines["line_number"].to_list() == list(range(1, 3001))
    assert lines["quantity"].sum() == sum(n % 5 + 1 for n in range(3000))


def test_lines_of_a_batch_come_in_record_then_line_order_whichever_path_parsed_them() -> None:
    """Lines are ordered by record and line number when fast-path and exact-path records
    (money needing rounding goes to the exact validator) alternate in one batch."""
    values = []
    for n in range(6):
        price = 1.00005 if n % 2 else 1.5  # odd records need rounding: the exact path
        items = [{"sku": f"p-{n}-{k}", "quantity": 1, "price": price} for k in range(4 - n % 3)]
        values.append(order(order_id=f"o-{n}", items=items))
    lines = parse_values(values).lines
    expected = [(n, k + 1, f"p-{n}-{k}") for n in range(6) for k in range(4 - n % 3)]
    assert lines.select("idx", "line_number", "sku").rows() == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_payload"),
        (b"", "empty_payload"),
        (b"  \n\t ", "empty_payload"),
        ("\u00a0".encode(), "empty_payload"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'\xc9{"order_id": "o-1"}', "invalid_json"),
        (b'{"order_id": "o-\xc9"}', "invalid_json"),
        (b'{"order_id": "o-1"', "invalid_json"),
        (b'{"order_id": "o-1", "amount": NaN}', "invalid_json"),
        (b'{"order_id": "o-1"} trailing', "invalid_json"),
        (b'{"order_id": "\\ud800"}', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"o-1"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (order(order_id=MISSING), "missing_order_id"),
        (order(order_id=""), "missing_order_id"),
        (order(order_id="   "), "missing_order_id"),
        (order(order_id=123), "missing_order_id"),
        (order(order_id=None), "missing_order_id"),
        (order(created_at="yesterday"), "invalid_created_at"),
        (order(created_at="2025-13-45T10:00:00Z"), "invalid_created_at"),
        (order(created_at="2025-02-29T10:00:00Z"), "invalid_created_at"),
        (order(created_at="2025-08-20"), "invalid_created_at"),
        (order(created_at="2025-08-20T24:00:00Z"), "invalid_created_at"),
        (order(created_at=""), "invalid_created_at"),
        (order(created_at=1724167390), "invalid_created_at"),
        (order(items={"sku": "p-1"}), "invalid_item"),
        (order(items=["p-1"]), "invalid_item"),
        (order(items=[{"quantity": 1, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": " ", "quantity": 1, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": 0, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": -1, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": 1.5, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": "2", "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": True, "price": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": 1}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": 1, "price": -0.01}]), "invalid_item"),
        (order(items=[{"sku": "p", "quantity": 1, "price": "9.99"}]), "invalid_item"),
        (order(amount="12.50"), "invalid_amount"),
        (order(amount=True), "invalid_amount"),
        (order(amount=[1]), "invalid_amount"),
        (order(amount=1e14), "invalid_amount"),
        (order(user_id=42), "invalid_field"),
        (order(metadata="web"), "invalid_field"),
        (order(metadata={"source": 1}), "invalid_field"),
    ],
)
def test_each_malformed_record_is_rejected_with_its_reason(
    value: bytes | None, reason: str
) -> None:
    """Every reject case of interface §1 gives its reason code and no order or line."""
    assert reason_of(value) == reason


def test_the_first_failing_rule_names_the_reason() -> None:
    """A record with a bad created_at and a bad item is rejected for created_at (rule order)."""
    value = order(created_at="soon", items=[{"sku": "", "quantity": 0, "price": -1}])
    assert reason_of(value) == "invalid_created_at"


def test_money_accepts_integers_and_four_decimals_exactly() -> None:
    """Integer prices and prices with up to 4 decimals are stored exactly, up to 10**14."""
    items = [{"sku": "a", "quantity": 1, "price": 7}, {"sku": "b", "quantity": 1, "price": 0.0001}]
    value = order(items=items).replace(b"129.9", b"99999999999999.9999")
    parsed = parse_values([value])
    assert parsed.orders["amount"].to_list() == [Decimal("99999999999999.9999")]
    assert parsed.lines["unit_price"].to_list() == [Decimal("7"), Decimal("0.0001")]


def test_rejects_keep_their_position_and_valid_records_are_unaffected() -> None:
    """A batch mixing good and bad records returns each at its own index."""
    parsed = parse_values([order(order_id="a"), b"{", None, order(order_id="b")])
    assert parsed.orders["idx"].to_list() == [0, 3]
    assert parsed.rejects.select("idx", "reason").rows() == [
        (1, "invalid_json"),
        (2, "empty_payload"),
    ]
    assert all(parsed.rejects["detail"].str.len_chars() > 0)


def test_content_hash_ignores_whitespace_key_order_and_escaping() -> None:
    """The same content written three ways has one hash; a changed value has another."""
    compact = b'{"order_id":"o-1","user_id":"Jos\xc3\xa9","amount":1.50}'
    spaced = b'{ "amount" : 1.5 ,\n "user_id" : "Jos\\u00e9", "order_id" : "o-1" }'
    changed = b'{"order_id":"o-1","user_id":"Jose","amount":1.50}'
    hashes = parse_values([compact, spaced, changed]).orders["content_hash"].to_list()
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def frame(rows: list[tuple[int, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"idx": pl.UInt32, "order_id": pl.String, "content_hash": pl.Int64},
        orient="row",
    )


def loaded(rows: list[tuple[str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"order_id": pl.String, "content_hash": pl.Int64}, orient="row"
    )


def test_classify_loads_the_first_version_and_compares_later_ones_with_it() -> None:
    """In one batch: first loaded, identical re-send duplicate, different one conflicting."""
    batch = frame([(0, "a", 1), (1, "b", 5), (2, "a", 1), (3, "a", 2), (4, "b", 5)])
    outcome = classify(batch, loaded([]))["outcome"].to_list()
    assert outcome == [LOADED, LOADED, DUPLICATE, CONFLICTING_DUPLICATE, DUPLICATE]


def test_classify_compares_with_the_version_loaded_by_an_earlier_batch() -> None:
    """An order loaded earlier is never loaded again; a batch's first copy is compared to it."""
    batch = frame([(0, "a", 2), (1, "a", 1), (2, "c", 9)])
    outcome = classify(batch, loaded([("a", 1)]))["outcome"].to_list()
    assert outcome == [CONFLICTING_DUPLICATE, DUPLICATE, LOADED]


def test_classify_ignores_input_order_and_uses_record_positions() -> None:
    """Rows given out of order are classified by their idx, and come back sorted by idx."""
    batch = frame([(7, "a", 2), (3, "a", 1)])
    result = classify(batch, loaded([]))
    assert result.select("idx", "outcome").rows() == [(3, LOADED), (7, CONFLICTING_DUPLICATE)]
