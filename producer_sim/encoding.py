"""JSON text for order events, in several spellings of the same content.

Every float in a simulated order is money held as exact cents, so floats are always written with
exactly two decimals (``30.00``, never ``30.0`` or ``30.000000000000004``). Integers (quantities,
and the deliberate ``-1`` price of a malformed item) are written as integers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from types import MappingProxyType
from typing import Any

Json = Any  # None | bool | int | float | str | list[Json] | dict[str, Json]


@dataclass(frozen=True)
class JsonStyle:
    """How to spell a document: escaping, separators, indentation and surrounding blanks."""

    name: str
    ascii_only: bool = False
    item_sep: str = ","
    key_sep: str = ":"
    indent: int = 0
    around: str = ""  # blanks before and after the document


COMPACT = JsonStyle("compact")
# Alternative spellings of an identical re-send; the consumer must see the same content.
RESEND_STYLES: tuple[JsonStyle, ...] = (
    JsonStyle("spaced", item_sep=", ", key_sep=": "),
    JsonStyle("pretty", item_sep=",", key_sep=": ", indent=2, around="\n"),
    JsonStyle("loose", item_sep=" , ", key_sep=" : ", around=" "),
    JsonStyle("escaped", ascii_only=True),
    JsonStyle("escaped_spaced", ascii_only=True, item_sep=", ", key_sep=": "),
)


_KEYS = MappingProxyType(
    {
        key: encode_basestring(key)
        for key in (
            "order_id",
            "user_id",
            "amount",
            "currency",
            "created_at",
            "items",
            "metadata",
            "sku",
            "quantity",
            "price",
            "source",
            "promo",
        )
    }
)


def encode(value: Json, style: JsonStyle = COMPACT) -> bytes:
    """UTF-8 JSON text of ``value`` in ``style``."""
    text = _compact(value) if style is COMPACT else _styled(value, style, 0)
    if style.around:
        text = f"{style.around}{text}{style.around}"
    return text.encode()


def _compact(value: Json) -> str:
    # The hot path of the whole simulator: scalars are handled inline, without a call each.
    kind = type(value)
    if kind is dict:
        parts = []
        for key, item in value.items():
            item_kind = type(item)
            if item_kind is str:
                text = encode_basestring(item)
            elif item_kind is float:
                text = f"{item:.2f}"
            elif item_kind is int:
                text = str(item)
            elif item is None:
                text = "null"
            else:
                text = _compact(item)
            parts.append(f"{_KEYS.get(key) or encode_basestring(key)}:{text}")
        return "{" + ",".join(parts) + "}"
    if kind is list:
        return "[" + ",".join([_compact(item) for item in value]) + "]"
    if kind is str:
        return encode_basestring(value)
    return _scalar(value)


def _scalar(value: Json) -> str:
    kind = type(value)
    if kind is float:
        return f"{value:.2f}"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    raise TypeError(f"cannot encode {kind.__name__} in an order event")


def _styled(value: Json, style: JsonStyle, depth: int) -> str:
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value) if style.ascii_only else encode_basestring(value)
    if kind is dict or kind is list:
        if kind is dict:
            parts = [
                f"{_styled(k, style, depth)}{style.key_sep}{_styled(v, style, depth + 1)}"
                for k, v in value.items()
            ]
        else:
            parts = [_styled(v, style, depth + 1) for v in value]
        opening, closing = ("{", "}") if kind is dict else ("[", "]")
        if not parts:
            return opening + closing
        if not style.indent:
            return opening + style.item_sep.join(parts) + closing
        inner = "\n" + " " * (style.indent * (depth + 1))
        outer = "\n" + " " * (style.indent * depth)
        return opening + inner + (style.item_sep.rstrip() + inner).join(parts) + outer + closing
    return _scalar(value)


def shuffled_keys(value: Json, rng: random.Random) -> Json:
    """A copy whose objects list their keys in another order (the content is unchanged)."""
    if type(value) is dict:
        items = list(value.items())
        original = [k for k, _ in items]
        rng.shuffle(items)
        if len(items) > 1 and [k for k, _ in items] == original:
            items.reverse()
        return {k: shuffled_keys(v, rng) for k, v in items}
    if type(value) is list:
        return [shuffled_keys(v, rng) for v in value]
    return value
