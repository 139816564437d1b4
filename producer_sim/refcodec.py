"""The records of the change topics (docs/interface.md, decisions of issue 25), and respellings.

users: ``{"user_id", "name", "email", "country", "signup_date", "updated_at"}``, keyed by
user_id; products: ``{"sku", "name", "category", "list_price", "updated_at"}``, keyed by sku;
fx: ``{"date", "currency", "rate"}``, keyed by ``CURRENCY:YYYY-MM-DD``. Numbers are written as
the decimals they are (``12.99``, ``1.0912``), never through a binary float.
"""

from __future__ import annotations

import random
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import NamedTuple

from producer_sim.encoding import COMPACT, RESEND_STYLES, JsonStyle
from producer_sim.fx import Rate
from producer_sim.history import ProductVersion, UserVersion
from producer_sim.reference import format_cents, timestamp_text


class Num(str):
    """A JSON number, kept as the decimal text it is written with."""

    __slots__ = ()


Field = tuple[str, str]  # (name, value): a Num is written as a number, any other str as a string


class Record(NamedTuple):
    key: bytes
    fields: tuple[Field, ...]


def user_record(version: UserVersion) -> Record:
    fields = (
        ("user_id", version.user_id),
        ("name", version.name),
        ("email", version.email),
        ("country", version.country),
        ("signup_date", version.signup_date),
        ("updated_at", timestamp_text(version.updated_at)),
    )
    return Record(version.user_id.encode(), fields)


def product_record(version: ProductVersion) -> Record:
    fields = (
        ("sku", version.sku),
        ("name", version.name),
        ("category", version.category),
        ("list_price", Num(format_cents(version.list_price_cents))),
        ("updated_at", timestamp_text(version.updated_at)),
    )
    return Record(version.sku.encode(), fields)


def rate_record(rate: Rate) -> Record:
    date = rate.date.isoformat()
    fields = (("date", date), ("currency", rate.currency), ("rate", Num(rate.text)))
    return Record(f"{rate.currency}:{date}".encode(), fields)


def encode(fields: tuple[Field, ...], style: JsonStyle = COMPACT) -> bytes:
    quote = encode_basestring_ascii if style.ascii_only else encode_basestring
    parts = [
        f"{quote(name)}{style.key_sep}{value if isinstance(value, Num) else quote(value)}"
        for name, value in fields
    ]
    if style.indent:
        inner = "\n" + " " * style.indent
        body = "{" + inner + ("," + inner).join(parts) + "\n}"
    else:
        body = "{" + style.item_sep.join(parts) + "}"
    return f"{style.around}{body}{style.around}".encode()


def respell_number(text: str, rng: random.Random) -> str:
    """The same decimal value written otherwise: ``12.99`` as ``12.990`` or ``1299e-2``."""
    whole, _, decimals = text.partition(".")
    if rng.random() < 0.5:
        return f"{whole}.{decimals or '0'}0"
    digits = (whole + decimals).lstrip("0") or "0"
    return f"{digits}e-{len(decimals)}" if decimals else f"{digits}e0"


def respelled(fields: tuple[Field, ...], rng: random.Random) -> bytes:
    """Another spelling of the same values: other blanks, key order, escapes or numbers."""
    how = rng.random()
    if how < 0.4:
        fields = tuple(
            (name, Num(respell_number(value, rng)) if isinstance(value, Num) else value)
            for name, value in fields
        )
    if how >= 0.3:
        shuffled = list(fields)
        rng.shuffle(shuffled)
        fields = tuple(shuffled) if shuffled != list(fields) else tuple(reversed(fields))
    return encode(fields, rng.choice(RESEND_STYLES))
