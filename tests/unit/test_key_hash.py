"""The lookup key of processed_orders, computed by the parse, is the one stored all along."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core import native
from consumer.core.transform import key_hashes, parse_values

native_hashes = native.key_hasher()
needs_native = pytest.mark.skipif(native_hashes is None, reason="the native tier is not built")


def test_the_key_hash_is_the_low_half_of_the_md5_digest_little_endian() -> None:
    """RFC 1321's test vector: MD5("abc") = 900150983cd24fb0 d6963f7d28e17f72."""
    assert key_hashes(["abc"]) == [int.from_bytes(bytes.fromhex("d6963f7d28e17f72"), "little")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), max_size=20))
def test_key_hashes_are_what_duckdb_s_md5_number_lower_gives(ids: list[str]) -> None:
    """Equal to the SQL function that filled key_hash before: old and new rows still match."""
    keys = pl.DataFrame({"order_id": ids}, schema={"order_id": pl.String})
    con = duckdb.connect()
    con.register("keys", keys)
    stored = con.sql("SELECT md5_number_lower(order_id) AS h FROM keys").pl()["h"].to_list()
    assert key_hashes(ids) == stored


def test_parsed_orders_carry_their_key_hash() -> None:
    """Each valid order comes out of the parse with the key of its id, on every path."""
    values: list[bytes | None] = [b'{"order_id": "o-1"}', b'{"order_id": "o-\\u00e9"}']
    for fast in (True, False):
        orders = parse_values(values, fast=fast).orders
        assert orders["key_hash"].to_list() == key_hashes(["o-1", "o-é"])


@needs_native
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=30),
    st.integers(min_value=0, max_value=5),
)
def test_the_native_key_hashes_of_a_column_are_hashlib_s(ids: list[str], skip: int) -> None:
    """The native tier's hashes of a whole column, sliced or not, equal the MD5 of hashlib."""
    assert native_hashes is not None
    column = pl.Series("order_id", ids, dtype=pl.String)
    hashed = native_hashes(column[skip:])
    assert hashed.dtype == pl.UInt64
    assert hashed.to_list() == key_hashes(ids[skip:])


@needs_native
def test_the_native_key_hash_of_abc_is_rfc_1321_s() -> None:
    """MD5("abc")'s low half, through the native tier."""
    assert native_hashes is not None
    hashed = native_hashes(pl.Series(["abc"]))
    assert hashed.to_list() == [int.from_bytes(bytes.fromhex("d6963f7d28e17f72"), "little")]
