"""JSON numbers by their exact value (CONTRACT §1 "Numbers and money").

Both transform paths decode every JSON number that has a fraction or an exponent into a
``Decimal`` (msgspec's ``float_hook``), never into a binary64 float, and JSON integers into
``int``: the value written is the value kept. From there:

- ``round_money`` stores money as DECIMAL(18,4): half-to-even to 4 decimals, ``None`` when the
  rounded magnitude does not fit (10**14 or more);
- ``plain_money`` is the fast path's shortcut: the stored value when storing is exact, else an
  exception (the record then goes to the exact validator, which rounds or rejects it);
- ``number_identity`` and ``money_identity`` give the form in which content identity compares
  numbers: equal values, however written (``1.5``, ``1.50``, ``15e-1``; ``-0.0`` and ``0``;
  ``2`` and ``2.0``), get equal forms, and different exact values get different ones.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    Inexact,
    InvalidOperation,
)

MONEY_SCALE = 4
MONEY_DIGITS = 18
#: DECIMAL(18,4) holds magnitudes below 10**14 once rounded to 4 decimals.
MONEY_LIMIT = 10 ** (MONEY_DIGITS - MONEY_SCALE)
FOUR_PLACES = Decimal(1).scaleb(-MONEY_SCALE)
ZERO = Decimal(0).quantize(FOUR_PLACES)
#: Integral values below this magnitude are compared as ``int``; larger ones as a Decimal.
_INT_DIGITS = 18
_INT_BOUND = 10**_INT_DIGITS

# quantize() signals InvalidOperation when its result needs more than ``prec`` digits: with 18
# digits at scale 4 that is exactly "does not fit DECIMAL(18,4)", checked in one operation
# whatever the operand's exponent (1e400 fails at once, 1e-400 rounds to 0). The contexts'
# flags are never read, so sharing them is harmless.
_ROUNDING = Context(
    prec=MONEY_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation],
)
# Also traps Inexact: any rounding at all refuses, so what passes is stored exactly.
_EXACT_ONLY = Context(
    prec=MONEY_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, Inexact],
)
# normalize() rounds to the context's precision: with MAX_PREC it only strips trailing zeros.
_UNBOUNDED = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def is_number(value: object) -> bool:
    """A decoded JSON number (``true`` and ``false`` are not numbers)."""
    return type(value) is int or type(value) is Decimal


def round_money(value: int | Decimal) -> Decimal | None:
    """``value`` rounded half-to-even to 4 decimals, or None if that does not fit DECIMAL(18,4)."""
    try:
        stored = _ROUNDING.quantize(Decimal(value), FOUR_PLACES)
    except InvalidOperation:
        return None
    return stored if stored else ZERO  # -0.0000 is 0


def plain_money(value: object) -> Decimal:
    """``value`` as stored in DECIMAL(18,4), when it is a number that needs no rounding.

    Raises TypeError for anything but a number and DecimalException for a number that needs
    rounding or does not fit: only the exact validator decides those.
    """
    if type(value) is Decimal:
        stored = _EXACT_ONLY.quantize(value, FOUR_PLACES)
    elif type(value) is int:
        stored = _EXACT_ONLY.quantize(Decimal(value), FOUR_PLACES)
    else:
        raise TypeError("not a JSON number")
    return stored if stored else ZERO


def number_identity(value: int | Decimal) -> int | Decimal:
    """The form in which a JSON number compares: an ``int`` for an integral value below 10**18,
    else the Decimal with its trailing zeros stripped (exact, whatever the exponent)."""
    if isinstance(value, int):
        if -_INT_BOUND < value < _INT_BOUND:
            return value
        return _UNBOUNDED.normalize(Decimal(value))
    if not value:
        return 0
    if value.adjusted() < _INT_DIGITS and value == value.to_integral_value():
        return int(value)
    return _UNBOUNDED.normalize(value)


def money_identity(value: int | Decimal) -> int | Decimal:
    """The form in which an amount or a price compares: the stored 4-decimal value when storing
    is exact (what ``plain_money`` gives the fast path), else ``number_identity``. The two
    forms never meet: a 4-decimal form has exactly 4 decimals, the other more than 4."""
    try:
        return plain_money(value)
    except DecimalException:
        return number_identity(value)


def integral(value: object) -> int | None:
    """A JSON number whose value is an integer (``2``, ``2.0``, ``20e-1``) as an int, else None.
    Magnitudes of 10**18 or more give None: no caller needs them, and 1e999999 must stay cheap."""
    if type(value) is int:
        return value
    if (
        type(value) is Decimal
        and (not value or value.adjusted() < _INT_DIGITS)
        and value == value.to_integral_value()
    ):
        return int(value)
    return None
