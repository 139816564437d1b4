"""Builders of raw records for the oracle's unit tests: orders and change-topic records as JSON
text (so that the spelling of a number or a timestamp is exactly what a producer sends)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.oracle import Expected, Record, compute_expected

ORDERS, USERS, PRODUCTS, FX = "orders", "users-cdc", "products-cdc", "fx-cdc"


def at(text: str) -> datetime:
    """A naive UTC datetime from ``YYYY-MM-DD[THH:MM[:SS]]``."""
    return datetime.fromisoformat(text)


def records(topic: str, *values: str | bytes | None, partition: int = 0) -> list[Record]:
    """Records at offsets 0, 1, 2... of one partition, keyed by nothing in particular."""
    return [
        Record(topic, partition, offset, b"k", v.encode() if isinstance(v, str) else v)
        for offset, v in enumerate(values)
    ]


def order(
    order_id: str,
    user_id: str | None = "u-1",
    *,
    created_at: str | None = None,
    currency: str | None = "USD",
    items: Iterable[tuple[str, str, str]] = (("p-1", "1", "10"),),
    source: str | None = None,
) -> str:
    """One order as JSON; ``items`` are (sku, quantity, price) with raw JSON numbers; a None
    field is left out."""
    lines = ", ".join(f'{{"sku": "{s}", "quantity": {q}, "price": {p}}}' for s, q, p in items)
    fields = {
        "order_id": json.dumps(order_id),
        "user_id": None if user_id is None else json.dumps(user_id),
        "created_at": None if created_at is None else json.dumps(created_at),
        "currency": None if currency is None else json.dumps(currency),
        "items": f"[{lines}]",
        "metadata": None if source is None else json.dumps({"source": source}),
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not None) + "}"


def user(
    user_id: str = "u-1",
    country: str | None = "FR",
    updated_at: str = "2025-08-01T00:00:00Z",
    name: str | None = "Ann",
    **extra: Any,
) -> str:
    """One users change-topic record as JSON."""
    fields = {"user_id": user_id, "name": name, "email": None, "country": country}
    return json.dumps({**fields, "signup_date": None, "updated_at": updated_at, **extra})


def product(
    sku: str = "p-1",
    name: str | None = "Mug",
    list_price: str = "12.5",
    updated_at: str = "2025-08-01T00:00:00Z",
) -> str:
    """One products change-topic record as JSON; ``list_price`` is a raw JSON number."""
    head = json.dumps({"sku": sku, "name": name, "category": "kitchen"})[:-1]
    return f'{head}, "list_price": {list_price}, "updated_at": "{updated_at}"}}'


def rate(day: str, currency: str, value: str) -> str:
    """One fx change-topic record; ``value`` is a raw JSON number."""
    return f'{{"date": "{day}", "currency": "{currency}", "rate": {value}}}'


def raw(**fields: str | None) -> str:
    """A JSON object from raw JSON texts; None leaves a field out."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not None) + "}"


def world(
    orders: Iterable[str] = (),
    users: Iterable[str | bytes | None] = (),
    products: Iterable[str | bytes | None] = (),
    rates: Iterable[str | bytes | None] = (),
    **options: Any,
) -> Expected:
    """The oracle over one partition of each topic."""
    return compute_expected(
        records(ORDERS, *orders),
        user_records=records(USERS, *users),
        product_records=records(PRODUCTS, *products),
        fx_records=records(FX, *rates),
        **options,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
