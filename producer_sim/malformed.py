"""Malformed records: one for every reject reason of interface §1, each with exactly one defect.

A malformed record that still carries a string ``order_id`` gets a fresh ``ox-`` id that no other
record uses, so its rejection can never be confused with a duplicate or block a valid order.
Variants of a reason take turns, so every variant shows up in any stream of a fair size.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from producer_sim import vocab
from producer_sim.encoding import Json, encode
from producer_sim.orders import OrderFactory, cents, seed_scope
from producer_sim.reference import format_cents

Payload = tuple[bytes | None, bytes | None]  # (key, value)


class _Missing:
    """Marks a field to delete rather than to set."""


_MISSING: Json = _Missing()


def stray_order_id(seed: int, number: int) -> str:
    return f"ox-{seed_scope(seed)}-{number:07d}"


class MalformedFactory:
    """Makes the next malformed record; reasons are drawn at random, variants rotate."""

    def __init__(self, orders: OrderFactory, rng: random.Random, seed: int) -> None:
        self._orders = orders
        self._seed = seed
        self._rng = rng
        self._serial = 0
        self._variants: dict[str, tuple[Callable[[], Payload], ...]] = {
            "empty_payload": (self._tombstone, self._empty, self._blank),
            "invalid_json": (self._truncated, self._latin1, self._html, self._binary),
            "not_an_object": (self._array, self._string, self._number, self._empty_array),
            "missing_order_id": tuple(
                self._order_id_as(value) for value in (_MISSING, "", 12345, None)
            ),
            "invalid_created_at": tuple(
                self._created_at_as(value)
                for value in ("yesterday", "2025-13-45T10:00:00Z", 1755700990, "20/08/2025 15:23")
            ),
            "invalid_item": (
                self._items_object,
                self._items_string,
                self._item_string,
                *(
                    self._item_field_as(name, value)
                    for name, value in (
                        ("sku", _MISSING),
                        ("sku", ""),
                        ("sku", None),
                        ("quantity", 0),
                        ("quantity", -1),
                        ("quantity", 1.5),
                        ("quantity", "2"),
                        ("quantity", True),
                        ("price", -1),
                        ("price", "9.99"),
                    )
                ),
            ),
            "invalid_amount": (self._amount_string, self._amount_bool),
        }
        self._turns = dict.fromkeys(self._variants, 0)
        self._reasons = tuple(self._variants)

    def record(self) -> tuple[str, bytes | None, bytes | None]:
        """(reason, key, value) of the next malformed record."""
        reason = self._reasons[self._rng.randrange(len(self._reasons))]
        variants = self._variants[reason]
        turn = self._turns[reason]
        self._turns[reason] = turn + 1
        key, value = variants[turn % len(variants)]()
        return reason, key, value

    def _order(self) -> tuple[str, dict[str, Json]]:
        self._serial += 1
        oid = stray_order_id(self._seed, self._serial)
        return oid, self._orders.order(oid)

    # empty_payload
    def _tombstone(self) -> Payload:
        return None, None

    def _empty(self) -> Payload:
        return None, b""

    def _blank(self) -> Payload:
        return None, self._rng.choice((b" ", b"\n", b" \t\r\n "))

    # invalid_json
    def _truncated(self) -> Payload:
        oid, order = self._order()
        text = encode(order)
        keep = len(encode({"order_id": oid})) + 1  # still shows its order_id
        return oid.encode(), text[: self._rng.randint(keep, len(text) - 2)]

    def _latin1(self) -> Payload:
        oid, order = self._order()
        order["shipping"] = {"city": self._rng.choice(vocab.LATIN1_CITIES)}
        # A legacy system re-encoded the text: "Málaga" becomes b"M\xe1laga", not UTF-8.
        return oid.encode(), encode(order).decode().encode("latin-1", errors="replace")

    def _html(self) -> Payload:
        return None, (
            b"<html><head><title>502 Bad Gateway</title></head>"
            b"<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
        )

    def _binary(self) -> Payload:
        noise = bytes(self._rng.randrange(256) for _ in range(24))
        return None, b"\x89PNG\r\n\x1a\n" + noise

    # not_an_object
    def _array(self) -> Payload:
        return None, encode([self._order()[1], self._order()[1]])

    def _string(self) -> Payload:
        oid, _ = self._order()
        return None, encode(f"order {oid} created")

    def _number(self) -> Payload:
        return None, str(self._rng.randrange(1, 10**6)).encode()

    def _empty_array(self) -> Payload:
        return None, b"[]"

    # missing_order_id
    def _order_id_as(self, value: Json) -> Callable[[], Payload]:
        def make() -> Payload:
            _, order = self._order()
            if value is _MISSING:
                del order["order_id"]
            else:
                order["order_id"] = value
            return None, encode(order)

        return make

    # invalid_created_at
    def _created_at_as(self, value: Json) -> Callable[[], Payload]:
        def make() -> Payload:
            oid, order = self._order()
            order["created_at"] = value
            return oid.encode(), encode(order)

        return make

    # invalid_item
    def _items_object(self) -> Payload:
        oid, order = self._order()
        order["items"] = order["items"][0]
        return oid.encode(), encode(order)

    def _items_string(self) -> Payload:
        oid, order = self._order()
        first = order["items"][0]
        order["items"] = f"{first['sku']} x{first['quantity']}"
        return oid.encode(), encode(order)

    def _item_string(self) -> Payload:
        oid, order = self._order()
        items = order["items"]
        items.insert(self._rng.randrange(len(items) + 1), items[0]["sku"])
        return oid.encode(), encode(order)

    def _item_field_as(self, name: str, value: Json) -> Callable[[], Payload]:
        def make() -> Payload:
            oid, order = self._order()
            item = self._rng.choice(order["items"])
            if value is _MISSING:
                del item[name]
            else:
                item[name] = value
            return oid.encode(), encode(order)

        return make

    # invalid_amount
    def _amount_string(self) -> Payload:
        oid, order = self._order()
        order["amount"] = format_cents(cents(order["amount"]))
        return oid.encode(), encode(order)

    def _amount_bool(self) -> Payload:
        oid, order = self._order()
        order["amount"] = True
        return oid.encode(), encode(order)
