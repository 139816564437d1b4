"""Numbers and money (interface §1): exact values, half-to-even rounding, the range, re-sends.

Inputs are raw JSON text, so that ``1.50``, ``15e-1`` or ``-0.0`` are exactly what the consumer
reads; expected values are written by hand from the contract.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from consumer.core.plan import classify
from consumer.core.reasons import CONFLICTING_DUPLICATE, DUPLICATE, LOADED
from consumer.core.transform import Parsed, parse_values


def doc(
    amount: str = "10", price: str = "2.5", quantity: str = "1", order_id: str = "o-1"
) -> bytes:
    return (
        f'{{"order_id": "{order_id}", "amount": {amount},'
        f' "items": [{{"sku": "p-1", "quantity": {quantity}, "price": {price}}}]}}'
    ).encode()


def both_paths(values: list[bytes]) -> list[Parsed]:
    """The batch through the fast path (with its fallback) and through the exact one only."""
    return [parse_values(values), parse_values(values, fast=False)]


def stored(amount: str = "10", price: str = "2.5") -> tuple[Decimal, Decimal]:
    """(amount, unit_price) as loaded, asserting both paths agree."""
    results = set()
    for parsed in both_paths([doc(amount, price)]):
        assert parsed.rejects.is_empty(), parsed.rejects.to_dicts()
        results.add((parsed.orders["amount"].item(), parsed.lines["unit_price"].item()))
    assert len(results) == 1
    return results.pop()


def reasons(value: bytes) -> set[str]:
    """The reject reason of one record, by each path."""
    found = set()
    for parsed in both_paths([value]):
        assert parsed.orders.is_empty()
        found.add(parsed.rejects["reason"].item())
    return found


def outcomes(*values: bytes) -> list[str]:
    """What becomes of each record of one batch into an empty warehouse, by each path."""
    results = set()
    for parsed in both_paths(list(values)):
        assert parsed.rejects.is_empty(), parsed.rejects.to_dicts()
        empty = pl.DataFrame(schema={"order_id": pl.String, "content_hash": pl.Int64})
        results.add(tuple(classify(parsed.orders, empty)["outcome"].to_list()))
    assert len(results) == 1
    return list(results.pop())


@pytest.mark.parametrize(
    ("amount", "price", "want_amount", "want_price"),
    [
        ("128.45000000000002", "0.30000000000000004", "128.45", "0.3"),
        ("0.1", "0.7000000000000001", "0.1", "0.7"),
        ("59.989999999999995", "1.0000000000000002", "59.99", "1"),
    ],
)
def test_float_noise_is_loaded_rounded_never_rejected(
    amount: str, price: str, want_amount: str, want_price: str
) -> None:
    """Binary64 noise such as 128.45000000000002 loads as 128.45 (amount and price alike)."""
    assert stored(amount, price) == (Decimal(want_amount), Decimal(want_price))


@pytest.mark.parametrize(
    ("written", "want"),
    [
        ("0.00005", "0.0000"),
        ("0.00015", "0.0002"),
        ("0.00025", "0.0002"),
        ("0.00035", "0.0004"),
        ("0.000050000001", "0.0001"),
        ("2.71825", "2.7182"),
        ("2.71835", "2.7184"),
        ("12.34565", "12.3456"),
        ("99999999999999.99994", "99999999999999.9999"),
        ("5e-5", "0.0000"),
        ("15E-5", "0.0002"),
        ("1e-400", "0.0000"),
    ],
)
def test_more_than_four_decimals_round_half_to_even(written: str, want: str) -> None:
    """A tie at the 5th decimal goes to the even 4th decimal; anything above a tie rounds up."""
    assert stored(amount=written, price=written) == (Decimal(want), Decimal(want))


@pytest.mark.parametrize(
    ("amount", "want"), [("-0.00005", "0"), ("-0.00015", "-0.0002"), ("-12.34565", "-12.3456")]
)
def test_negative_amounts_round_half_to_even_too(amount: str, want: str) -> None:
    """amount may be negative (a refund); it rounds the same way, and -0.0000 is stored as 0."""
    assert stored(amount=amount)[0] == Decimal(want)


@pytest.mark.parametrize(
    "amount",
    ["100000000000000", "1e14", "-1e14", "99999999999999.99995", "-99999999999999.99995", "1e400"],
)
def test_an_amount_that_does_not_fit_decimal_18_4_is_invalid_amount(amount: str) -> None:
    """10**14 or more once rounded (1e400 included) is invalid_amount, on both paths."""
    assert reasons(doc(amount=amount)) == {"invalid_amount"}


@pytest.mark.parametrize("price", ["100000000000000", "1e14", "99999999999999.99995", "1E+400"])
def test_a_price_that_does_not_fit_decimal_18_4_is_invalid_item(price: str) -> None:
    """10**14 or more once rounded is invalid_item for a price."""
    assert reasons(doc(price=price)) == {"invalid_item"}


@pytest.mark.parametrize("price", ["-0.00001", "-0.0001", "-1e-400"])
def test_a_price_below_zero_is_invalid_even_when_it_rounds_to_zero(price: str) -> None:
    """A price must be a number >= 0 as written; -0.00001 is negative, though it rounds to 0."""
    assert reasons(doc(price=price)) == {"invalid_item"}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e99999999999999999999"])
def test_non_json_constants_and_unreadable_exponents_are_invalid_json(literal: str) -> None:
    """NaN and Infinity are not JSON; an exponent beyond Decimal's range is refused, no crash."""
    assert reasons(doc(amount=literal)) == {"invalid_json"}


def test_minus_zero_and_zero_are_one_value_on_load() -> None:
    """-0.0 is stored as 0 for amount and price."""
    assert stored("-0.0", "-0.0") == (Decimal(0), Decimal(0))


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (doc(amount="-0.0", price="-0.0"), doc(amount="0.0", price="0")),
        (doc(amount="0", price="0.0"), doc(amount="-0", price="-0e3")),
        (doc(amount="1.50"), doc(amount="1.5")),
        (doc(amount="1.5"), doc(amount="15e-1")),
        (doc(price="2.5"), doc(price="2.50000")),
        (doc(price="2"), doc(price="2.0")),
        (doc(amount="100"), doc(amount="1E2")),
        (doc(amount="128.45000000000002"), doc(amount="128.450000000000020")),
        (doc(quantity="2"), doc(quantity="2.0")),
    ],
    ids=[
        "minus-zero",
        "zero-forms",
        "1.50",
        "15e-1",
        "trailing-zeros",
        "int-price",
        "1E2",
        "noise-padded",
        "quantity-2.0",
    ],
)
def test_a_resend_with_the_same_values_written_differently_is_a_duplicate(
    first: bytes, again: bytes
) -> None:
    """Numbers compare by value: the re-send is dropped as identical, not conflicting."""
    assert outcomes(first, again) == [LOADED, DUPLICATE]


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (doc(amount="128.45000000000002"), doc(amount="128.45")),
        (doc(price="0.30000000000000004"), doc(price="0.3")),
        (doc(price="0.00005"), doc(price="0")),
        (doc(amount="1.5"), doc(amount="1.51")),
        (doc(quantity="2"), doc(quantity="3")),
    ],
    ids=["amount-noise", "price-noise", "rounds-to-zero", "amount", "quantity"],
)
def test_a_resend_with_a_different_exact_value_is_conflicting(first: bytes, again: bytes) -> None:
    """The exact values written compare, not the stored ones: 128.45000000000002 is not 128.45."""
    assert outcomes(first, again) == [LOADED, CONFLICTING_DUPLICATE]


def test_numbers_in_unknown_fields_compare_by_value_too() -> None:
    """An extra field's number written another way is the same content; another value is not."""
    base = b'{"order_id": "o-1", "extra": {"n": [1.0, -0.0, 123456789012345678901234567890]}}'
    same = b'{"order_id": "o-1", "extra": {"n": [1, 0, 1.23456789012345678901234567890e29]}}'
    other = b'{"order_id": "o-1", "extra": {"n": [1, 0, 123456789012345678901234567891]}}'
    assert outcomes(base, same, other) == [LOADED, DUPLICATE, CONFLICTING_DUPLICATE]


def test_true_is_not_the_number_one() -> None:
    """A boolean in an extra field is not the number 1 (JSON types still differ)."""
    first = b'{"order_id": "o-1", "extra": 1}'
    again = b'{"order_id": "o-1", "extra": true}'
    assert outcomes(first, again) == [LOADED, CONFLICTING_DUPLICATE]


@pytest.mark.parametrize("quantity", ["2.0", "20e-1", "2.000"])
def test_an_integer_valued_quantity_is_that_integer(quantity: str) -> None:
    """quantity 2.0 is the JSON integer 2 by value (docs/interface.md §1): loaded as 2."""
    for parsed in both_paths([doc(quantity=quantity)]):
        assert parsed.lines["quantity"].to_list() == [2]


@pytest.mark.parametrize("quantity", ["1.5", "0.0", "-1.0", "1e-400", "2147483648.0", "1e400"])
def test_a_quantity_that_is_not_an_integer_from_1_is_invalid_item(quantity: str) -> None:
    """A fraction, zero, a negative value or one beyond 2**31-1 stays invalid_item."""
    assert reasons(doc(quantity=quantity)) == {"invalid_item"}
