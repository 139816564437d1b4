"""The parse's native tier (``native/``, a Rust extension built by ``make install`` where
cargo exists): plainly well-formed orders decoded, checked and hashed without a Python object
per field. It refuses whatever it does not read plainly (an escape in a string, an exponent in
money, a blank-looking id), and the Python fast path then decides those records exactly as it
would have. Without the extension, the Python tiers do all the work.

The extension hands back each column as Arrow buffers; pyarrow wraps them without copying and
Polars imports them, so no value becomes a Python object on the way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from consumer.core.frames import LINE_SCHEMA, MAX_QUANTITY
from consumer.core.numbers import MONEY_DIGITS, MONEY_SCALE

Decoded = tuple[list[int], pl.DataFrame, pl.DataFrame]

_MONEY = pa.decimal128(MONEY_DIGITS, MONEY_SCALE)
ORDER_TYPES = {
    "idx": pa.uint32(),
    "order_id": pa.string(),
    "user_id": pa.string(),
    "amount": _MONEY,
    "currency": pa.string(),
    "created_raw": pa.string(),
    "source": pa.string(),
    "promo": pa.string(),
    "content_hash": pa.int64(),
}
LINE_TYPES = {
    "idx": pa.uint32(),
    "line_number": pa.uint32(),
    "sku": pa.string(),
    "quantity": pa.int64(),
    "unit_price": _MONEY,
}
assert list(LINE_TYPES) == LINE_SCHEMA.names()


def tier() -> str:
    """Which tier parses plain records, for the startup log line: ``"native"`` where the
    extension is built, ``"python"`` (the fast path and the exact validator) without it."""
    return "native" if decoder() is not None else "python"


def decoder() -> Callable[[list[bytes | None]], Decoded] | None:
    """The native decoder: (positions refused, raw orders, raw lines); None when the
    extension is not built."""
    try:
        decode = importlib.import_module("consumer.core._native").decode
    except ImportError:
        return None

    def decode_values(values: list[bytes | None]) -> Decoded:
        refused, orders, lines = decode(values, MAX_QUANTITY)
        return refused, _frame(orders, ORDER_TYPES), _frame(lines, LINE_TYPES)

    return decode_values


def key_hasher() -> Callable[[pl.Series], pl.Series] | None:
    """The native ``transform.key_hashes`` of a whole column of ids (a UInt64 Series named
    ``key_hash``); None when the extension is not built.

    In Python, hashlib's MD5 and the int and list around it were about a quarter of the
    parse's instructions (make bench-parse; docs/performance.md).
    """
    try:
        key_hashes = importlib.import_module("consumer.core._native").key_hashes
    except ImportError:
        return None

    def hash_column(ids: pl.Series) -> pl.Series:
        array = ids.to_arrow()  # one chunk: Polars rechunks
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
        if array.null_count:
            raise ValueError("order ids cannot be null")
        offsets, data = array.buffers()[1:]
        # A sliced array's offsets start further in, and still index into the whole data.
        own = offsets.slice(array.offset * 8, (len(array) + 1) * 8)
        hashes = key_hashes(own.to_pybytes(), b"" if data is None else data.to_pybytes())
        wrapped = pa.Array.from_buffers(pa.uint64(), len(array), [None, pa.py_buffer(hashes)])
        return pl.Series("key_hash", wrapped)

    return hash_column


def _frame(buffers: dict[str, tuple[Any, ...]], types: dict[str, pa.DataType]) -> pl.DataFrame:
    length = len(buffers["idx"][1]) // 4
    arrays = [
        pa.Array.from_buffers(
            types[name], length, [None if b is None else pa.py_buffer(b) for b in buffers[name]]
        )
        for name in types
    ]
    frame = pl.from_arrow(pa.Table.from_arrays(arrays, names=list(types)))
    assert isinstance(frame, pl.DataFrame)
    return frame
