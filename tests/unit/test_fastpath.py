"""The typed fast path and the exact validator agree on every record."""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core import fastpath
from consumer.core.transform import parse_values

MISSING = object()

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2025-08-20T15:23:10Z",
            "2025-08-20T15:23:10.5+02:00",
            "2025-08-20T15:23:10.1234567-05:30",
            "2025-08-20T15:23:10",
            "2025-02-29T10:00:00Z",
            "2024-02-29T23:59:59-23:59",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00Z",
            "2025-08-20 15:23:10Z",
            "2025-08-20T15:23Z",
            "2025-08-20T15:23:10+0200",
            "2025-08-20t15:23:10z",
            "2025-08-20T24:00:00Z",
            "2025-08-20T15:23:60Z",
            "2025-08-20",
            "2025-08-20T15:23:10Z\n",
            "yesterday",
            "",
        ]
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        st.sampled_from(["", "Z", "+00:00", "-12:30", "+23:59", ".000001Z", ".999999999"]),
    ),
    st.integers(),
    st.none(),
)


class Number:
    """A JSON number literal, written into the document exactly as given (see ``encoded``)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def written(value: Decimal, style: int) -> Number:
    """One of several ways to write the same value: plain, padded, exponent, scientific."""
    if style == 0:
        return Number(format(value, "f"))
    if style == 1:
        text = format(value, "f")
        return Number(text + ("0" * 3 if "." in text else ".000"))
    if style == 2:
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        mantissa = "".join(map(str, digits)) or "0"
        return Number(f"{'-' if sign else ''}{mantissa}e{exponent}")
    return Number(format(value, "e").replace("e+", "E"))


decimals = st.one_of(
    st.integers(0, 8).flatmap(
        lambda places: st.decimals(min_value=-(10**15), max_value=10**15, places=places)
    ),
    st.sampled_from(
        [
            "0.00005",
            "0.00015",
            "-0.0",
            "99999999999999.9999",
            "99999999999999.99995",
            "1e14",
            "1e400",
            "1e-400",
            "128.45000000000002",
        ]
    ).map(Decimal),
)
numbers = st.builds(written, decimals, st.integers(0, 3))
money = st.one_of(
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    numbers,
    st.sampled_from([0.1, 49.95, 0.0001, 0.00015, 99999999999.9999, 1e11, -0.0, 2.0]),
    st.sampled_from(["9.99", True, None, [1]]),
    st.sampled_from(["NaN", "Infinity", "1e99999999999999999999"]).map(Number),
)
items = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "sku": st.one_of(text, st.sampled_from(["p-1", " ", ""]), st.integers()),
            "quantity": st.one_of(
                st.integers(-2, 2**31 + 2),
                st.sampled_from([1.0, True, "2"]),
                st.sampled_from(["2.0", "20e-1", "1.5", "0.0", "1e400", "2147483648.0"]).map(
                    Number
                ),
            ),
            "price": money,
            "gift_wrap": st.one_of(st.booleans(), st.none(), st.integers(0, 1), text),
            "extra": st.just(1),
        },
    ),
    max_size=4,
)
strings = st.one_of(text, st.sampled_from(["", "web", "u-1"]), st.none(), st.integers())
orders = st.fixed_dictionaries(
    {"order_id": st.one_of(st.sampled_from(["o-1", "o-2", " ", ""]), text, st.integers())},
    optional={
        "user_id": strings,
        "currency": strings,
        "amount": money,
        "created_at": timestamps,
        "items": st.one_of(items, st.none(), st.just({"sku": "p"})),
        "metadata": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "source": strings,
                    "promo": strings,
                    "store": strings,
                    "channel": st.just("x"),
                },
            ),
            st.none(),
            st.just("web"),
        ),
        "unknown": st.just({"nested": [1, 2]}),
    },
)


def encoded(doc: dict[str, Any], ascii_only: bool, spaced: bool) -> bytes:
    """``doc`` as JSON text, each ``Number`` written as its literal."""
    literals: list[str] = []

    def placeholder(number: object) -> str:
        assert isinstance(number, Number)
        literals.append(number.literal)
        return f"@@number{len(literals) - 1}@@"

    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(doc, ensure_ascii=ascii_only, separators=separators, default=placeholder)
    return re.sub(r'"@@number(\d+)@@"', lambda m: literals[int(m[1])], text).encode()


def comparable(values: list[bytes | None], fast: bool) -> tuple[Any, ...]:
    parsed = parse_values(values, fast=fast)
    return (parsed.orders, parsed.lines, parsed.rejects.select("idx", "reason"))


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "400")), deadline=None)
@given(
    st.lists(st.tuples(orders, st.booleans(), st.booleans()), min_size=1, max_size=12),
    st.lists(st.one_of(st.binary(max_size=40), st.none()), max_size=3),
)
def test_fast_and_exact_paths_give_identical_frames(
    docs: list[tuple[dict[str, Any], bool, bool]], raw: list[bytes | None]
) -> None:
    """For any mix of valid, invalid and random records, the fast path equals the exact one."""
    values: list[bytes | None] = [encoded(doc, a, s) for doc, a, s in docs] + raw
    fast_frames = comparable(values, fast=True)
    exact_frames = comparable(values, fast=False)
    for fast_frame, exact_frame in zip(fast_frames, exact_frames, strict=True):
        assert fast_frame.equals(exact_frame), (fast_frame, exact_frame)


def test_well_formed_orders_really_take_the_fast_path() -> None:
    """A clean order, with or without optional fields, gift_wrap or store, is not refused."""
    clean = {
        "order_id": "o-1",
        "user_id": "u",
        "amount": 1.5,
        "currency": "EUR",
        "created_at": "2025-08-20T15:23:10.5+02:00",
        "items": [{"sku": "p", "quantity": 1, "price": 1.5}],
        "metadata": {"source": "web", "promo": None},
    }
    extras = {
        "order_id": "o-4",
        "items": [{"sku": "p", "quantity": 1, "price": 2, "gift_wrap": True}],
        "metadata": {"source": "store", "promo": None, "store": "Köln Hbf"},
    }
    values = [
        json.dumps(clean).encode(),
        b'{"order_id": "o-2"}',
        b'{"order_id": "o-3", "x": 1}',
        json.dumps(extras).encode(),
    ]
    assert fastpath.decode(values).refused == [2]


def test_the_fast_path_checks_calendar_dates_and_negative_prices() -> None:
    """Typed-valid records with a date that does not exist or a negative price are rejected."""
    values = [
        b'{"order_id": "a", "created_at": "2025-02-30T00:00:00Z"}',
        b'{"order_id": "b", "items": [{"sku": "p", "quantity": 1, "price": -1.5}]}',
        b'{"order_id": "d", "amount": 1.25, "user_id": ""}',
    ]
    parsed = parse_values(values)
    assert fastpath.decode(values).refused == []
    assert parsed.rejects.select("idx", "reason").rows() == [
        (0, "invalid_created_at"),
        (1, "invalid_item"),
    ]
    assert parsed.orders.select("order_id", "user_id").rows() == [("d", None)]


def test_money_that_needs_rounding_or_does_not_fit_goes_to_the_exact_validator() -> None:
    """The fast path keeps only money stored without rounding; the rest is decided exactly."""
    values = [
        b'{"order_id": "a", "items": [{"sku": "p", "quantity": 1, "price": 0.00001}]}',
        b'{"order_id": "b", "amount": 1e14}',
        b'{"order_id": "c", "amount": "1.5"}',
        b'{"order_id": "d", "amount": 128.45000000000002}',
        b'{"order_id": "e", "amount": 1.50, "items": [{"sku": "p", "quantity": 1, "price": 7}]}',
        b'{"order_id": "f", "amount": 99999999999999.9999, "items": []}',
    ]
    assert fastpath.decode(values).refused == [0, 1, 2, 3]


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "400")), deadline=None)
@given(
    st.lists(st.tuples(decimals, st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=4),
    st.booleans(),
)
def test_one_content_written_two_ways_has_one_hash_on_both_paths(
    numbers: list[tuple[Decimal, int, int]], extra: bool
) -> None:
    """Amount, prices and extra numbers written in other forms give the same content hash."""

    def document(side: int) -> bytes:
        forms = [written(value, styles[side]) for value, *styles in numbers]
        doc: dict[str, Any] = {
            "order_id": "o-1",
            "amount": forms[0],
            "items": [{"sku": "p", "quantity": 1, "price": form} for form in forms[1:]],
        }
        if extra:
            doc["extra"] = forms
        return encoded(doc, ascii_only=False, spaced=bool(side))

    values: list[bytes | None] = [document(0), document(1)]
    fast, exact = parse_values(values), parse_values(values, fast=False)
    assert fast.orders.equals(exact.orders)
    assert fast.rejects.select("idx", "reason").equals(exact.rejects.select("idx", "reason"))
    if fast.orders.height == 2:
        assert fast.orders["content_hash"].n_unique() == 1
    else:
        assert fast.rejects.height == 2


def test_blank_ids_and_other_timestamp_forms_are_left_to_the_exact_validator() -> None:
    """Blank ids or skus (as str.strip sees them) and non-RFC 3339 stamps are decided exactly."""
    item = '"items": [{"sku": "p", "quantity": 1, "price": 1}]'
    values: list[bytes | None] = [
        b'{"order_id": " \\u2003"}',
        b'{"order_id": "\\u001c"}',
        b'{"order_id": "a", "items": [{"sku": "\\t", "quantity": 1, "price": 1}]}',
        b'{"order_id": "b", "created_at": "2025-08-20 15:23:10Z"}',
        b'{"order_id": "c", "created_at": "2025-08-20T15:23:10Z\\n"}',
        b'{"order_id": "d", "created_at": "2025-08-20T15:23:10+0200", ' + item.encode() + b"}",
        b'{"order_id": "e", "created_at": "2025-08-20T15:23:10Z", ' + item.encode() + b"}",
    ]
    decoded = fastpath.decode(values)
    *_, late = fastpath.frames(*fastpath.raw_frames(*fastpath.columns(decoded)))
    assert sorted(decoded.refused + late) == [0, 1, 2, 3, 4, 5]
    for fast_frame, exact_frame in zip(
        comparable(values, fast=True), comparable(values, fast=False), strict=True
    ):
        assert fast_frame.equals(exact_frame), (fast_frame, exact_frame)
    assert parse_values(values).orders["order_id"].to_list() == ["b", "d", "e"]


def test_extra_fields_of_the_fast_path_count_in_content_identity() -> None:
    """gift_wrap and store change the content hash, on the fast path as on the exact one."""
    plain = {"order_id": "o", "items": [{"sku": "p", "quantity": 1, "price": 2.5}]}
    wrapped = {"order_id": "o", "items": [{"sku": "p", "quantity": 1, "price": 2.5}]}
    wrapped["items"][0]["gift_wrap"] = True  # type: ignore[index]
    stored = dict(plain, metadata={"source": "store", "store": "Köln Hbf"})
    sourced = dict(plain, metadata={"source": "store"})
    values: list[bytes | None] = [json.dumps(d).encode() for d in (plain, wrapped, stored, sourced)]
    assert fastpath.decode(values).refused == []
    fast, exact = parse_values(values), parse_values(values, fast=False)
    assert fast.orders["content_hash"].to_list() == exact.orders["content_hash"].to_list()
    assert fast.orders["content_hash"].n_unique() == 4
