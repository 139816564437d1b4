"""The native tier takes plain orders and gives the Python fast path's rows for them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core import native
from consumer.core.transform import parse_values
from tests.unit.test_fastpath import Number, encoded, orders

ROOT = Path(__file__).resolve().parents[2]
decode = native.decoder()
needs_native = pytest.mark.skipif(decode is None, reason="the native tier is not built")

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ ", min_size=0, max_size=10)
# Any text, so that some strings need an escape (and the native tier refuses them).
names = st.one_of(ids, st.text(max_size=6), st.sampled_from(["Köln Hbf", "NAVIDAD🎄", "新春"]))
optional_names = st.one_of(names, st.none())
plain_money = st.one_of(
    st.integers(-(10**14), 10**14),
    st.integers(0, 4).flatmap(
        lambda places: st.decimals(
            min_value=-(10**14), max_value=10**14, places=places, allow_nan=False
        )
    ),
    st.sampled_from(["0.0", "-0.0", "-0", "1.50", "1.5000", "1.50000", "0.00001", "12e1"]),
)
stamps = st.one_of(
    st.sampled_from(
        ["2025-08-20T15:23:10Z", "2025-08-20T15:23:10.943+05:45", "2025-02-30T00:00:00Z"]
    ),
    st.none(),
    names,
)
plain_items = st.lists(
    st.fixed_dictionaries(
        {
            "sku": ids,
            "quantity": st.one_of(st.integers(1, 5), st.sampled_from([0, -1, 2**31 - 1, 2**31])),
            "price": plain_money,
        },
        optional={"gift_wrap": st.one_of(st.booleans(), st.none())},
    ),
    max_size=4,
)
plain_orders = st.fixed_dictionaries(
    {"order_id": ids},
    optional={
        "user_id": optional_names,
        "currency": optional_names,
        "amount": st.one_of(plain_money, st.none()),
        "created_at": stamps,
        "items": st.one_of(plain_items, st.none()),
        "metadata": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "source": optional_names,
                    "promo": optional_names,
                    "store": optional_names,
                },
            ),
            st.none(),
        ),
    },
)


def money_literal(doc: dict[str, Any]) -> dict[str, Any]:
    """Decimals and strings in money fields become Numbers (written as literals)."""

    def lit(value: Any) -> Any:
        if isinstance(value, Decimal):
            return Number(format(value, "f"))
        if isinstance(value, str):
            return Number(value)
        return value

    out = dict(doc)
    if "amount" in out:
        out["amount"] = lit(out["amount"])
    if out.get("items"):
        out["items"] = [dict(item, price=lit(item["price"])) for item in out["items"]]
    return out


def same_frames(values: list[bytes | None]) -> None:
    with_native = parse_values(values)
    without = parse_values(values, use_native=False)
    assert with_native.orders.equals(without.orders), (with_native.orders, without.orders)
    assert with_native.lines.equals(without.lines), (with_native.lines, without.lines)
    assert with_native.rejects.equals(without.rejects), (with_native.rejects, without.rejects)


def test_the_native_tier_is_built_where_a_rust_of_its_rust_version_is() -> None:
    """make install builds the extension on a machine whose Rust is at least native/Cargo.toml's
    rust-version (elsewhere it warns, and the Python tiers run: skipped, so failed in CI)."""
    if shutil.which("rustc") is None:
        pytest.skip("Rust is not installed: the Python tiers parse everything")
    said = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=False)
    found = re.match(r"rustc (\d+)\.(\d+)", said.stdout)
    crate = tomllib.loads((ROOT / "native" / "Cargo.toml").read_text())["package"]
    needed = tuple(int(part) for part in crate["rust-version"].split("."))
    if found is None or (int(found[1]), int(found[2])) < needed:
        answer = (said.stdout or said.stderr or "no answer").strip().splitlines()[0]
        pytest.skip(f"rustc --version: {answer}; not Rust {crate['rust-version']} or later")
    assert native.decoder() is not None, "run make install (python -m tools.native)"


@needs_native
@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "400")), deadline=None)
@given(st.lists(st.tuples(plain_orders, st.booleans()), min_size=1, max_size=12))
def test_plain_orders_give_the_same_rows_and_hashes_with_the_native_tier(
    docs: list[tuple[dict[str, Any], bool]],
) -> None:
    """Orders the native tier mostly takes: rows, content hashes and rejects are the Python
    fast path's, whether the native tier took each record or handed it on."""
    values: list[bytes | None] = [
        encoded(money_literal(doc), ascii_only=False, spaced=spaced) for doc, spaced in docs
    ]
    same_frames(values)


@needs_native
@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "400")), deadline=None)
@given(
    st.lists(st.tuples(orders, st.booleans(), st.booleans()), min_size=1, max_size=12),
    st.lists(st.one_of(st.binary(max_size=40), st.none()), max_size=3),
)
def test_any_records_give_the_same_frames_with_the_native_tier(
    docs: list[tuple[dict[str, Any], bool, bool]], raw: list[bytes | None]
) -> None:
    """Messy, invalid and random records: the native tier changes no frame."""
    values: list[bytes | None] = [encoded(doc, a, s) for doc, a, s in docs] + raw
    same_frames(values)


PLAIN = [
    b'{"order_id": "o-1", "user_id": "u-1", "amount": 59.10, "currency": "EUR", '
    b'"created_at": "2025-08-01T03:48:19.923Z", "items": [{"sku": "p-1", "quantity": 3, '
    b'"price": 19.70}], "metadata": {"source": "app", "promo": null}}',
    b'{"order_id":"o-2","items":[{"price":5,"quantity":1,"sku":"p","gift_wrap":true}],'
    b'"metadata":{"store":"K\xc3\xb6ln Hbf","source":"store"}}',
    b'{"order_id": "o-3", "amount": null, "items": null, "metadata": null, "user_id": null}',
    b'{"order_id": "o-4", "amount": -0.0, "items": []}',
    b' {"order_id": "o-5", "amount": 99999999999999.9999}\n',
    b'{"order_id": "o-6", "created_at": "2025-02-30T00:00:00Z", "user_id": ""}',
    b'{"order_id": "o-7", "items": [{"sku": "p", "quantity": 1, "price": -1.5}]}',
]
NOT_PLAIN = [
    b'{"order_id": "o-\\u0031"}',  # an escape
    b'{"order_id": "o-1", "amount": 1.5e1}',  # an exponent
    b'{"order_id": "o-1", "amount": 0.00001}',  # needs rounding
    b'{"order_id": "o-1", "amount": 100000000000000}',  # does not fit
    b'{"order_id": "o-1", "amount": "1.5"}',  # not a number
    b'{"order_id": "o-1", "amount": true}',
    b'{"order_id": "o-1", "order_id": "o-2"}',  # a repeated field
    b'{"order_id": "o-1", "channel": "web"}',  # an unknown field
    b'{"order_id": "o-1", "metadata": {"channel": "web"}}',
    b'{"order_id": "o-1"} x',  # trailing text
    b'{"order_id": "o-1"',
    b'{"order_id": " o-1"}',  # a space at an end of an id
    b'{"order_id": "\xc3\xa9"}',  # a non-ASCII end
    b'{"order_id": ""}',
    b'{"order_id": 1}',
    b'{"user_id": "u"}',  # no order_id
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 0, "price": 1}]}',
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 1.0, "price": 1}]}',
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 2147483648, "price": 1}]}',
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 1}]}',  # no price
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 1, "price": 01}]}',
    b'{"order_id": "o", "items": [{"sku": "p", "quantity": 1, "price": 1, "gift_wrap": 1}]}',
    b'{"order_id": "o", "items": {"sku": "p"}}',
    b'{"order_id": "o\xff"}',  # not UTF-8
    b'["o-1"]',
    b"",
    None,
]


@needs_native
def test_the_native_tier_takes_plain_records_and_refuses_the_rest() -> None:
    """Plain orders are taken; escapes, exponents, rounding, repeats, unknown fields, odd ids,
    quantities and types, bad UTF-8 and non-objects are handed on; the frames do not change."""
    assert decode is not None
    refused, orders, lines = decode(PLAIN + NOT_PLAIN)
    assert refused == list(range(len(PLAIN), len(PLAIN) + len(NOT_PLAIN)))
    assert orders["order_id"].to_list() == [f"o-{n}" for n in range(1, 8)]
    assert lines.height == 3
    same_frames(PLAIN + NOT_PLAIN)
