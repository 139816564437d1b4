"""Exchange rates: how many US dollars one unit of a currency is worth, day by day.

EUR, GBP, CAD and BRL have a rate on every weekday (none on Saturdays and Sundays, when
Friday's applies), from a week before the stream starts on; MXN has none at all, and USD needs
none. Each currency walks on its own, mean-reverting around a realistic level, from an RNG
seeded by the currency alone: the rates are the same in every run and for every seed.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from types import MappingProxyType
from typing import NamedTuple

from producer_sim import vocab

RATES_START = dt.date(2025, 7, 25)  # a Friday, one week before the first order
# USD per unit, daily volatility of the log rate, decimals quoted.
LEVELS = MappingProxyType(
    {
        "EUR": (1.09, 0.004, 4),
        "GBP": (1.27, 0.004, 4),
        "CAD": (0.73, 0.003, 4),
        "BRL": (0.18, 0.009, 5),
    }
)
FX_CURRENCIES: tuple[str, ...] = tuple(LEVELS)
PULL = 0.02  # share of the distance to the level a rate closes each day


def currency_of(country: str) -> str:
    """An order's currency, from its user's country (EUR, GBP, CAD, BRL, MXN, else USD)."""
    if country in vocab.EURO_COUNTRIES:
        return "EUR"
    return vocab.COUNTRY_CURRENCY.get(country, "USD")


class Rate(NamedTuple):
    day: int  # the weekday's number, 0 for RATES_START
    date: dt.date
    currency: str
    text: str  # the rate as a decimal, e.g. "1.0912"


def weekday(day: int) -> dt.date:
    """The date of weekday number ``day`` (0 is RATES_START, a Friday)."""
    weeks, rest = divmod(day + 4, 5)  # count from the Monday before RATES_START
    return RATES_START + dt.timedelta(days=7 * weeks + rest - 4)


def day_on_or_before(date: dt.date) -> int:
    """The number of the last weekday on or before ``date``; -1 before RATES_START."""
    days = (date - RATES_START).days + 4  # days since the Monday before RATES_START
    if days < 4:
        return -1
    weeks, rest = divmod(days, 7)
    return weeks * 5 + min(rest, 4) - 4


class Rates:
    """The rates of every currency, generated day by day as far as asked for."""

    def __init__(self) -> None:
        self._rngs = {c: random.Random(f"orders-sim:fx:{c}") for c in FX_CURRENCIES}
        self._logs = {c: math.log(level) for c, (level, _, _) in LEVELS.items()}
        self._texts: dict[str, list[str]] = {c: [] for c in FX_CURRENCIES}

    def rate(self, currency: str, day: int) -> Rate:
        texts = self._texts[currency]
        level, volatility, decimals = LEVELS[currency]
        while len(texts) <= day:
            log = self._logs[currency]
            log += PULL * (math.log(level) - log) + self._rngs[currency].gauss(0.0, volatility)
            self._logs[currency] = log
            texts.append(f"{math.exp(log):.{decimals}f}")
        return Rate(day, weekday(day), currency, texts[day])

    def day(self, day: int) -> list[Rate]:
        """The rates of weekday ``day``, one per currency, in FX_CURRENCIES order."""
        return [self.rate(currency, day) for currency in FX_CURRENCIES]

    def through(self, last: dt.date) -> list[Rate]:
        """Every rate dated on or before ``last``, by date then currency."""
        rates = [rate for day in range(day_on_or_before(last) + 1) for rate in self.day(day)]
        return sorted(rates, key=lambda r: (r.date, r.currency))
