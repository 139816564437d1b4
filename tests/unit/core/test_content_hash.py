"""Pinned content hashes: known inputs, their canonical form as docs/content-hash.md defines it
(written out by hand here), and the hash of that form, computed in this file with hashlib, not
by the code under test. Every tier that computes hashes is checked against them: the native
tier (Rust), the Python fast path, the exact path, and the parse as wired.

Each input also names the tiers that take it, so that a tier that stops taking a record (and
so stops being checked) fails here instead of passing with nothing compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumer.core import fastpath, native
from consumer.core.exact import RecordColumns
from consumer.core.transform import parse_values

ROOT = Path(__file__).resolve().parents[3]
NATIVE, FAST, EXACT = "native", "fast path", "exact path"
ALL = frozenset({NATIVE, FAST, EXACT})
PYTHON = frozenset({FAST, EXACT})
ONLY_EXACT = frozenset({EXACT})


@dataclass(frozen=True)
class Vector:
    name: str
    canonical: bytes  # by hand, from docs/content-hash.md
    content_hash: int  # pinned
    inputs: tuple[tuple[bytes, frozenset[str]], ...]  # spellings of one content, and who takes each


VECTORS = (
    Vector(
        "the documented example",
        b'{"amount":59.1000,"created_at":"2025-08-01T03:48:19.923Z","currency":"EUR","items":'
        b'[{"price":19.7000,"quantity":3,"sku":"p-1"}],"metadata":{"promo":null,"source":"app"},'
        b'"order_id":"o-1","user_id":"u-1"}',
        8844205163216989584,
        (
            (
                b'{"order_id": "o-1", "user_id": "u-1", "amount": 59.10, "currency": "EUR", '
                b'"created_at": "2025-08-01T03:48:19.923Z", "items": [{"sku": "p-1", '
                b'"quantity": 3, "price": 19.70}], "metadata": {"source": "app", "promo": null}}',
                ALL,
            ),
            (
                b'{"metadata":{"promo":null,"source":"app"},"items":[{"price":1970e-2,'
                b'"quantity":3,"sku":"p-1"}],"created_at":"2025-08-01T03:48:19.923Z",'
                b'"amount":5.91e1,"currency":"\\u0045UR","user_id":"u-1","order_id":"o-1"}',
                PYTHON,
            ),
        ),
    ),
    Vector(
        "an id alone",
        b'{"order_id":"o-2"}',
        8855440123160408139,
        ((b'{"order_id":"o-2"}', ALL), (b' {\n"order_id" : "o-2"\t} ', ALL)),
    ),
    Vector(
        "money spelt many ways, and an extra field the warehouse ignores",
        b'{"amount":5.0000,"items":[{"gift_wrap":true,"price":5.0000,"quantity":1,"sku":"p-9"}],'
        b'"order_id":"o-3"}',
        3610373678761333709,
        (
            (
                b'{"order_id":"o-3","amount":5,"items":[{"sku":"p-9","quantity":1,"price":5.0,'
                b'"gift_wrap":true}]}',
                ALL,
            ),
            (
                b'{"order_id":"o-3","amount":5.00000,"items":[{"gift_wrap":true,"price":5,'
                b'"quantity":1,"sku":"p-9"}]}',
                ALL,
            ),
            (
                b'{"order_id":"o-3","amount":0.5e1,"items":[{"sku":"p-9","quantity":1,'
                b'"price":500E-2,"gift_wrap":true}]}',
                PYTHON,
            ),
        ),
    ),
    Vector(
        "negative zero and nulls",
        b'{"amount":0.0000,"created_at":null,"currency":null,"items":null,"metadata":null,'
        b'"order_id":"o-4","user_id":null}',
        -5399820513443072689,
        tuple(
            (
                b'{"order_id":"o-4","amount":%s,"user_id":null,"items":null,"metadata":null,'
                b'"created_at":null,"currency":null}' % zero,
                ALL,
            )
            for zero in (b"-0.0", b"0", b"-0")
        ),
    ),
    Vector(
        "escapes",
        '{"metadata":{"promo":"a\\tb\\u0001\\u001f"},"order_id":"o-5","user_id":"é\\"/\\\\"}'.encode(),
        6697024172390535972,
        (
            (
                b'{"order_id":"o-5","user_id":"\\u00e9\\"\\/\\\\",'
                b'"metadata":{"promo":"a\\tb\\u0001\\u001F"}}',
                PYTHON,
            ),
            (
                '{"order_id":"o-5","user_id":"é\\"/\\\\","metadata":{"promo":"a\\u0009b\\u0001\\u001f"}}'.encode(),
                PYTHON,
            ),
        ),
    ),
    Vector(
        "raw and escaped non-ASCII text",
        '{"currency":"€","metadata":{"source":"新春","store":"Köln"},"order_id":"o-6"}'.encode(),
        -9112440068336788821,
        (
            (
                '{"order_id":"o-6","currency":"€","metadata":{"source":"新春","store":"Köln"}}'.encode(),
                ALL,
            ),
            (
                b'{"order_id":"o-6","currency":"\\u20ac","metadata":{"store":"K\\u00f6ln",'
                b'"source":"\\u65b0\\u6625"}}',
                PYTHON,
            ),
        ),
    ),
    Vector(
        "float noise in money: compared by its exact value",
        b'{"amount":128.45000000000002,"items":[{"price":0.30000000000000004,"quantity":1,'
        b'"sku":"p"}],"order_id":"o-7"}',
        3076601401610716042,
        (
            (
                b'{"order_id":"o-7","amount":128.45000000000002,"items":[{"sku":"p","quantity":1,'
                b'"price":0.30000000000000004}]}',
                ONLY_EXACT,
            ),
            (
                b'{"order_id":"o-7","amount":1.2845000000000002e2,"items":[{"sku":"p",'
                b'"quantity":1,"price":30000000000000004E-17}]}',
                ONLY_EXACT,
            ),
        ),
    ),
    Vector(
        "unknown fields and other numbers",
        b'{"Alpha":{"n":1,"t":true},"items":[{"price":3.0000,"quantity":2,"sku":"p"}],'
        b'"order_id":"o-8","zeta":[1.5,2,0,1E+20,123456789012345678901,1E-7,1E+18,'
        b"999999999999999999,0.000001]}",
        6266363583665922193,
        (
            (
                b'{"order_id":"o-8","zeta":[1.50,2.0,-0.0,1e20,123456789012345678901,1E-7,'
                b'1000000000000000000,999999999999999999,0.0000010],"Alpha":{"n":10E-1,'
                b'"t":true},"items":[{"sku":"p","quantity":2.0,"price":3}]}',
                ONLY_EXACT,
            ),
        ),
    ),
    Vector(
        "a repeated key keeps its last value",
        b'{"currency":"EUR","order_id":"o-9"}',
        6634487970774192459,
        (
            (b'{"order_id":"o-9","currency":"USD","currency":"EUR"}', PYTHON),
            (b'{"order_id":"o-9","currency":"EUR"}', ALL),
        ),
    ),
)

# Another content than a vector's: each must hash to something else in every tier that takes it.
DIFFERENT = (
    b'{"order_id":"o-1","user_id":"u-1","amount":59.10,"currency":"EUR",'
    b'"created_at":"2025-08-01T03:48:19.923Z","items":[{"sku":"p-1","quantity":3,"price":19.71}],'
    b'"metadata":{"source":"app","promo":null}}',
    b'{"order_id":"o-1","user_id":"u-1","amount":59.10,"currency":"EUR",'
    b'"created_at":"2025-08-01T03:48:19.923Z","items":[{"sku":"p-1","quantity":3,"price":19.70}],'
    b'"metadata":{"source":"app"}}',
    b'{"order_id":"o-1","user_id":"u-1","amount":59.10,"currency":"EUR",'
    b'"created_at":"2025-08-01T03:48:19.923Z","items":[{"sku":"p-1","quantity":3,"price":19.70}],'
    b'"metadata":{"source":"app","promo":"BF25"}}',
    b'{"order_id":"o-2","items":[]}',
    b'{"order_id":"o-2","items":null}',
    b'{"order_id":"o-7","amount":128.45,"items":[{"sku":"p","quantity":1,"price":0.3}]}',
)
PINNED = {v.content_hash for v in VECTORS}


def blake2b_8(canonical: bytes) -> int:
    """The documented hash, written here from docs/content-hash.md."""
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "little", signed=True)


def cases(tier: str) -> list[tuple[str, bytes, int, bool]]:
    """(vector, input, pinned hash, whether ``tier`` takes the input)."""
    return [(v.name, raw, v.content_hash, tier in who) for v in VECTORS for raw, who in v.inputs]


def by_tier_native(values: list[bytes | None]) -> dict[int, int]:
    decode = native.decoder()
    if decode is None:
        pytest.skip("the native tier is not built (make install builds it where Rust 1.87+ is)")
    _refused, orders, _lines = decode(values)
    return dict(zip(orders["idx"].to_list(), orders["content_hash"].to_list(), strict=True))


def by_tier_fast(values: list[bytes | None]) -> dict[int, int]:
    decoded = fastpath.decode(values)
    return dict(zip(decoded.idx, decoded.hashes, strict=True))


def by_tier_exact(values: list[bytes | None]) -> dict[int, int]:
    exact = RecordColumns()
    for idx, value in enumerate(values):
        exact.add(idx, value)
    assert exact.rejects["idx"] == [], exact.rejects
    return dict(zip(exact.orders["idx"], exact.orders["content_hash"], strict=True))


TIERS = {NATIVE: by_tier_native, FAST: by_tier_fast, EXACT: by_tier_exact}


def test_the_pinned_hashes_are_blake2b_8_of_the_documented_canonical_forms() -> None:
    for vector in VECTORS:
        assert blake2b_8(vector.canonical) == vector.content_hash, vector.name


def test_the_documented_example_is_the_first_vector() -> None:
    """docs/content-hash.md shows the first vector's canonical form and hash, as they are here."""
    doc = (ROOT / "docs" / "content-hash.md").read_text()
    first = VECTORS[0]
    assert first.canonical.decode() in doc.splitlines()
    assert f"`{first.content_hash}`" in doc


@pytest.mark.parametrize("tier", list(TIERS))
def test_every_tier_gives_the_pinned_hash_of_each_input_it_takes(tier: str) -> None:
    table = cases(tier)
    hashes = TIERS[tier]([raw for _, raw, _, _ in table])
    for idx, (name, raw, pinned, takes) in enumerate(table):
        assert (idx in hashes) == takes, f"{tier} {'refused' if takes else 'took'} {raw!r}"
        if takes:
            assert hashes[idx] == pinned, f"{tier}, {name}: {raw!r}"


@pytest.mark.parametrize("tier", list(TIERS))
def test_other_contents_hash_to_other_values(tier: str) -> None:
    hashes = TIERS[tier](list(DIFFERENT))
    assert hashes, f"{tier} took none of them"
    assert not set(hashes.values()) & PINNED
    assert len(set(hashes.values())) == len(hashes)


def test_the_parse_as_wired_gives_the_pinned_hashes() -> None:
    """parse_values, every tier in its place (the native one where built), row by row."""
    table = cases(EXACT)
    parsed = parse_values([raw for _, raw, _, _ in table])
    assert parsed.rejects.is_empty(), parsed.rejects
    orders = parsed.orders
    got = dict(zip(orders["idx"].to_list(), orders["content_hash"].to_list(), strict=True))
    assert got == {idx: pinned for idx, (_, _, pinned, _) in enumerate(table)}
