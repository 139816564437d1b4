"""Reference data files (interface §2): read and validate users.csv, products.csv and
fx_rates.csv with Polars, and notice when they change.

A users or products file may carry ``updated_at``: each row is then a version of its key that
took effect at that instant, and a key may have several rows. Without the column a row takes
effect when the file's content is first loaded, and a key has one row (the last one counts)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from consumer.core.exact import parse_created_at
from consumer.core.frames import MONEY
from consumer.core.refdata import (
    PRODUCTS,
    RATE,
    RATES,
    USERS,
    BadReferenceError,
    check_rate_row,
    parse_rate,
)
from consumer.errors import ConfigError
from orders_common.logs import get_logger

USER_COLUMNS = ("user_id", "name", "email", "country", "signup_date")
PRODUCT_COLUMNS = ("sku", "name", "category", "list_price")
RATE_COLUMNS = ("date", "currency", "rate")
UPDATED_AT = "updated_at"
HEADER_LINES = 1

log = get_logger(__name__)


def read_users(path: Path) -> pl.DataFrame:
    """user_id, name, email, country (ISO alpha-2 or empty), signup_date (YYYY-MM-DD or empty)."""
    raw = _read(path, USER_COLUMNS, "user_id")
    users = raw.with_columns(
        pl.col("signup_date").str.to_date("%Y-%m-%d", strict=False).alias("signup_date"),
    )
    _reject_rows(
        path,
        raw,
        users["signup_date"].is_null() & raw["signup_date"].is_not_null(),
        "signup_date",
        "is not YYYY-MM-DD",
    )
    bad_country = raw["country"].is_not_null() & ~raw["country"].str.contains(r"^[A-Z]{2}$")
    _reject_rows(path, raw, bad_country, "country", "is not an ISO 3166-1 alpha-2 code")
    return _versions(path, users, "user_id")


def read_products(path: Path) -> pl.DataFrame:
    """sku, name, category, list_price (a decimal >= 0 with at most 4 decimals, or empty)."""
    raw = _read(path, PRODUCT_COLUMNS, "sku")
    bad_price = raw["list_price"].is_not_null() & ~raw["list_price"].str.contains(
        r"^\d{1,14}(\.\d{1,4})?$"
    )
    _reject_rows(path, raw, bad_price, "list_price", "is not a decimal >= 0 with <= 4 decimals")
    products = raw.with_columns(pl.col("list_price").cast(MONEY))
    return _versions(path, products, "sku")


def read_rates(path: Path) -> pl.DataFrame:
    """date (YYYY-MM-DD), currency (three capital letters), rate (a decimal > 0: on that date
    one unit is worth that many US dollars); a (date, currency) twice: the last row counts."""
    raw = _read(path, RATE_COLUMNS, "currency", optional=())
    dates = raw["date"].str.to_date("%Y-%m-%d", strict=False)
    _reject_rows(path, raw, dates.is_null(), "date", "is not YYYY-MM-DD")
    _reject_rows(
        path, raw, ~raw["currency"].str.contains(r"^[A-Z]{3}$"), "currency",
        "is not three capital letters",
    )  # fmt: skip
    rates = []
    for row, (currency, text) in enumerate(raw.select("currency", "rate").iter_rows()):
        try:
            if text is None or not re.fullmatch(r"\d+(\.\d+)?", text):
                raise BadReferenceError(f"rate {text!r} is not a decimal > 0")
            rates.append(parse_rate(Decimal(text)))
            check_rate_row(currency, rates[-1])
        except BadReferenceError as bad:
            raise ConfigError(f"{path} line {row + HEADER_LINES + 1}: {bad}") from None
    frame = pl.DataFrame(
        {"date": dates, "currency": raw["currency"], "rate": rates},
        schema={"date": pl.Date, "currency": pl.String, "rate": RATE},
    )
    return _last_per_key(path, frame, ["date", "currency"])


def _read(
    path: Path, columns: tuple[str, ...], key: str, optional: tuple[str, ...] = (UPDATED_AT,)
) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot read as UTF-8 CSV: {first_line}") from exc
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ConfigError(
            f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(columns)}"
        )
    kept = [*columns, *(name for name in optional if name in frame.columns)]
    frame = frame.select(
        [pl.col(name).str.strip_chars().replace("", None).alias(name) for name in kept]
    )
    _reject_rows(path, frame, frame[key].is_null(), key, "is empty")
    return frame


def _reject_rows(
    path: Path, frame: pl.DataFrame, bad: pl.Series, column: str, problem: str
) -> None:
    positions = bad.arg_true()
    if positions.len():
        row = int(positions[0])
        raise ConfigError(
            f"{path} line {row + HEADER_LINES + 1}: {column} {frame[column][row]!r} {problem}"
            + (f" (and {positions.len() - 1} more rows)" if positions.len() > 1 else "")
        )


def _versions(path: Path, frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """With ``updated_at``: every row is a version (ISO-8601, UTC unless it has an offset; one
    given twice counts once); without it, one row per key, ``updated_at`` NULL (taken when the
    content is first loaded)."""
    if UPDATED_AT not in frame.columns:
        return _last_per_key(path, frame, key).with_columns(
            pl.lit(None, pl.Datetime("us")).alias(UPDATED_AT)
        )
    stamps = []
    for row, text in enumerate(frame[UPDATED_AT].to_list()):
        try:
            stamps.append(parse_created_at(text))
        except ValueError:
            raise ConfigError(
                f"{path} line {row + HEADER_LINES + 1}: {UPDATED_AT} {text!r} is not an "
                "ISO-8601 timestamp"
            ) from None
    dated = frame.with_columns(pl.Series(UPDATED_AT, stamps, pl.Datetime("us")))
    return dated.unique(maintain_order=True)


def _last_per_key(path: Path, frame: pl.DataFrame, key: str | list[str]) -> pl.DataFrame:
    unique = frame.unique(subset=key, keep="last", maintain_order=True)
    if unique.height != frame.height:
        log.warning(
            "reference_duplicate_keys",
            file=str(path),
            key=key,
            duplicates=frame.height - unique.height,
            kept="last",
        )
    return unique


@dataclass(frozen=True)
class Reference:
    """The files' rows: (kind, file name, frame) each, and when each file was last changed."""

    files: list[tuple[str, str, pl.DataFrame]]
    mtimes: dict[Path, float]


class ReferenceFiles:
    """The reference CSVs a consumer follows: read at start, re-read on change."""

    def __init__(
        self,
        users_csv: Path | None,
        products_csv: Path | None,
        poll_seconds: float,
        fx_csv: Path | None = None,
    ) -> None:
        self._paths = [
            (kind, path, read)
            for kind, path, read in (
                (USERS, users_csv, read_users),
                (PRODUCTS, products_csv, read_products),
                (RATES, fx_csv, read_rates),
            )
            if path is not None
        ]
        self._poll_seconds = poll_seconds
        self._loaded: dict[Path, float] = {}
        self._checked = time.monotonic()

    def read(self) -> Reference | None:
        """Read and validate the CSVs (ConfigError on bad input); None when there are none."""
        if not self._paths:
            return None
        # The times are taken before reading: a change made while reading is read again.
        mtimes = {path: path.stat().st_mtime for _, path, _ in self._paths}
        files = [(kind, path.name, read(path)) for kind, path, read in self._paths]
        return Reference(files, mtimes)

    def loaded(self, reference: Reference) -> None:
        self._loaded = reference.mtimes
        log.info(
            "reference_loaded",
            **{f"{kind}_rows": frame.height for kind, _, frame in reference.files},
        )

    def changed(self) -> bool:
        """Whether a file changed since it was loaded; checked at most every poll interval."""
        if time.monotonic() - self._checked < self._poll_seconds:
            return False
        self._checked = time.monotonic()
        return any(f.stat().st_mtime != m for f, m in self._loaded.items())
