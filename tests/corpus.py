"""Hand-written hostile records: every tolerated and every rejected case of interface §1.

Order ids start with ``edge-`` so they never collide with a simulated stream. Every version of
one order id is returned in sequence and keyed alike, so a keyed producer keeps them in one
partition. Records are (key, value) pairs.
"""

from __future__ import annotations

import json
from typing import Any

Record = tuple[bytes | None, bytes | None]


def _doc(order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "user_id": "u-edge",
        "amount": 10.5,
        "currency": "EUR",
        "created_at": "2025-08-20T15:23:10Z",
        "items": [{"sku": "p-edge", "quantity": 1, "price": 10.5}],
        "metadata": {"source": "web", "promo": None},
        **fields,
    }


def _keyed(order_id: str, value: bytes) -> Record:
    return order_id.encode(), value


def _dump(doc: dict[str, Any], **options: Any) -> bytes:
    return json.dumps(doc, **options).encode()


def tolerated() -> list[Record]:
    records = []
    timestamps = [
        "2025-08-20T15:23:10+02:00",
        "2025-08-20T15:23:10.123456-05:30",
        "2025-08-20T15:23:10",
        "2025-08-20 15:23:10.5Z",
        "2025-12-31T23:30:00-01:00",
    ]
    for n, stamp in enumerate(timestamps):
        records.append(_keyed(f"edge-ts-{n}", _dump(_doc(f"edge-ts-{n}", created_at=stamp))))
    shapes: dict[str, dict[str, Any]] = {
        "created-null": {"created_at": None},
        "items-null": {"items": None},
        "items-empty": {"items": []},
        "metadata-null": {"metadata": None},
        "metadata-empty": {"metadata": {}},
        "amount-mismatch": {"amount": 999.99},
        "extra-fields": {"coupon": {"code": "X", "n": [1, 2]}, "z": None},
        "same-sku-twice": {"items": [{"sku": "p-edge", "quantity": 1, "price": 1.5}] * 2},
        "late-user-and-sku": {
            "user_id": "u-edge-late",
            "items": [{"sku": "p-edge-late", "quantity": 3, "price": 2.25}],
        },
        "unicode": {
            "user_id": "u-édge-ß",
            "currency": "€",
            "metadata": {"source": "app", "promo": "NAVIDAD-ñ-雪"},
        },
    }
    for name, fields in shapes.items():
        order_id = f"edge-{name}"
        records.append(_keyed(order_id, _dump(_doc(order_id, **fields), ensure_ascii=False)))
    for field in ("created_at", "items", "metadata", "user_id", "currency", "amount"):
        doc = _doc(f"edge-no-{field}")
        del doc[field]
        records.append(_keyed(doc["order_id"], _dump(doc)))
    big = _doc(
        "edge-3000-lines",
        items=[
            {"sku": f"p-edge-{n % 50}", "quantity": n % 4 + 1, "price": round(1 + n % 97 * 0.25, 2)}
            for n in range(3000)
        ],
    )
    records.append(_keyed("edge-3000-lines", _dump(big)))
    records.append((None, _dump(_doc("edge-no-key"))))
    records.append((b"not-the-order-id", _dump(_doc("edge-wrong-key"))))
    return records


def resends() -> list[Record]:
    """An original, identical re-sends written differently, and conflicting versions."""
    doc = _doc("edge-resend", user_id="u-ré", amount=20.25)
    return [
        _keyed("edge-resend", _dump(doc, ensure_ascii=False)),
        _keyed("edge-resend", _dump(dict(reversed(doc.items())), indent=2)),
        _keyed("edge-resend", _dump(doc, ensure_ascii=True, separators=(",", ":"))),
        _keyed("edge-resend", _dump({**doc, "amount": 21.25})),
        _keyed("edge-resend", _dump({**doc, "items": []})),
        _keyed("edge-resend", _dump(doc)),
    ]


def malformed() -> list[Record]:
    """At least one record per reject reason, several shapes each."""
    bad_items: list[Any] = [
        {"sku": "p"},
        ["p"],
        [{"quantity": 1, "price": 1}],
        [{"sku": "", "quantity": 1, "price": 1}],
        [{"sku": "p", "quantity": 0, "price": 1}],
        [{"sku": "p", "quantity": 1.5, "price": 1}],
        [{"sku": "p", "quantity": "2", "price": 1}],
        [{"sku": "p", "quantity": True, "price": 1}],
        [{"sku": "p", "quantity": 1, "price": -1}],
        [{"sku": "p", "quantity": 1, "price": "9.99"}],
        [None],
    ]
    records: list[Record] = [
        (b"edge-empty", None),
        (b"edge-empty", b""),
        (None, b"   \n"),
        (None, b"\xff\xfe\x00garbage"),
        (b"edge-trunc", b'{"order_id": "edge-trunc", "items": ['),
        (None, b"[1, 2, 3]"),
        (None, b'"just a string"'),
        (None, b"12.5"),
        (None, _dump({"user_id": "u-1", "items": []})),
        (None, _dump(_doc(""))),
        (None, _dump({**_doc("x"), "order_id": 12345})),
    ]
    for n, stamp in enumerate(["yesterday", "2025-13-45T10:00:00Z", "2025-08-20", 1724167390]):
        order_id = f"edge-bad-ts-{n}"
        records.append(_keyed(order_id, _dump(_doc(order_id, created_at=stamp))))
    for n, items in enumerate(bad_items):
        order_id = f"edge-bad-item-{n}"
        records.append(_keyed(order_id, _dump(_doc(order_id, items=items))))
    for n, amount in enumerate(["12.50", True, {"value": 1}]):
        order_id = f"edge-bad-amount-{n}"
        records.append(_keyed(order_id, _dump(_doc(order_id, amount=amount))))
    for n, fields in enumerate([{"user_id": 7}, {"metadata": "web"}]):
        order_id = f"edge-bad-field-{n}"
        records.append(_keyed(order_id, _dump(_doc(order_id, **fields))))
    # A rejected record must not block a later valid one with the same order_id.
    records.append(_keyed("edge-later-valid", _dump(_doc("edge-later-valid", amount="oops"))))
    records.append(_keyed("edge-later-valid", _dump(_doc("edge-later-valid"))))
    return records


def _numbers_doc(order_id: str, amount: str, price: str, quantity: str = "1") -> bytes:
    """An order with its numbers written as the raw JSON literals given."""
    return (
        f'{{"order_id": "{order_id}", "user_id": "u-edge", "amount": {amount},'
        f' "created_at": "2025-08-20T15:23:10Z",'
        f' "items": [{{"sku": "p-edge", "quantity": {quantity}, "price": {price}}}]}}'
    ).encode()


def numbers() -> list[Record]:
    """interface §1 "Numbers and money": float noise rounded, ties to even, the range, exact
    values in re-sends (-0.0 is 0, 1.50 is 1.5, 128.45000000000002 is not 128.45)."""
    loaded = {
        "noise": ("128.45000000000002", "0.30000000000000004", "1"),
        "tie-even-down": ("0.00005", "0.00025", "1"),
        "tie-even-up": ("0.00015", "2.71835", "1"),
        "largest": ("99999999999999.9999", "99999999999999.99994", "1"),
        "tiny": ("1e-400", "5e-5", "2.0"),
        # quantity times price beyond DECIMAL(18,4): the reports must still add it up exactly
        "big-line": ("1", "99999999999999.9999", "2147483647"),
    }
    records = [
        _keyed(f"edge-num-{name}", _numbers_doc(f"edge-num-{name}", *literals))
        for name, literals in loaded.items()
    ]
    for name, (amount, price) in {
        "amount-1e14": ("1e14", "1"),
        "amount-rounds-to-1e14": ("99999999999999.99995", "1"),
        "amount-1e400": ("1e400", "1"),
        "price-1e14": ("1", "100000000000000"),
        "price-negative-tiny": ("1", "-0.00001"),
        "exponent-beyond-decimal": ("1e99999999999999999999", "1"),
    }.items():
        records.append(_keyed(f"edge-num-{name}", _numbers_doc(f"edge-num-{name}", amount, price)))
    for name, versions in {
        "zero": [("-0.0", "-0.0"), ("0.0", "0"), ("0", "-0e3")],
        "trailing": [("1.50", "2.5"), ("1.5", "2.50000"), ("15e-1", "25E-1")],
        "noise-vs-rounded": [("128.45000000000002", "1"), ("128.45", "1")],
    }.items():
        order_id = f"edge-num-resend-{name}"
        records += [_keyed(order_id, _numbers_doc(order_id, *pair)) for pair in versions]
    return records


def edge_records() -> list[Record]:
    return tolerated() + resends() + malformed() + numbers()
