"""An independent oracle: what the warehouse must contain, computed from the contract alone.

Given the raw Kafka records of the orders topic (in the order the consumer sees them per
partition), the reference CSVs and the change topics' records, :func:`compute_expected` returns
the rows that ``dim_order``, ``fact_sales``, ``dim_user``, ``dim_product``,
``dim_user_history``, ``dim_product_history``, ``fx_rates``, ``dim_date`` and
``rejected_events`` must hold, plus which records were dropped as identical re-sends.
:func:`report` computes every report of §5 from that expectation.

This module and its parts (:mod:`tests.oracle_base`, :mod:`tests.oracle_history`,
:mod:`tests.oracle_reports`) deliberately share no code with ``consumer/`` or ``producer_sim/``:
they are written from the contract (its §n below) and the team's binding decisions only, in
plain stdlib Python, so that a bug in the consumer cannot hide behind the same bug here. Only
:func:`read_topic` uses a third-party library (``confluent_kafka``).

Classification of one record's value (the first matching rule wins):

1. ``None``, empty, or only whitespace (``str.isspace`` after UTF-8 decoding) -> ``empty_payload``
2. not UTF-8, not strict JSON (no NaN/Infinity, no trailing data), a lone UTF-16 surrogate
   escape, nesting deeper than Python can handle, or a number beyond what can be read exactly
   (an integer literal of more than 4300 digits, an exponent Decimal cannot hold, about
   10**18) -> ``invalid_json`` (team rule)
3. JSON that is not an object -> ``not_an_object``
4. ``order_id`` missing, not a string, empty or whitespace-only -> ``missing_order_id``
5. ``created_at`` present, not null, and not an ISO-8601 extended timestamp
   -> ``invalid_created_at``
6. ``items`` not a list, or a bad item (no non-empty ``sku``; ``quantity`` not a number of
   integer value from 1 to 2**31-1, so ``2.0`` is 2; ``price`` not a number >= 0 as written,
   or not storable) -> ``invalid_item``
7. ``amount`` present, not null, and not a number storable in DECIMAL(18,4) -> ``invalid_amount``

Numbers (interface §1 "Numbers and money"): a JSON number is the exact decimal value written.
Money is stored rounded half-to-even to 4 decimals; "storable" means that the rounded magnitude
is below 10**14.
8. ``user_id``/``currency``/``metadata``/``metadata.source``/``metadata.promo`` of a wrong JSON
   type -> ``invalid_field`` (team extension)

Then, in input order: a valid record whose ``order_id`` is already loaded is a ``duplicate`` when
its whole parsed content equals the loaded one's, else it is rejected ``conflicting_duplicate``.
Content compares numbers by their exact value as written (``1.5``, ``1.50``, ``15e-1`` are one
value, so are ``-0.0`` and ``0``, and ``2`` and ``2.0``), not by the rounded stored value.
Each ``fact_sales`` line carries its order's ``currency`` (§3).

Reference data (§2, decisions "Reference records"); :mod:`tests.oracle_history`:

- A change-topic record is ``invalid_reference`` (in ``rejected``, with its position) unless
  its value is a UTF-8 JSON object (a tombstone is invalid: deletes are not supported) whose
  key field (``user_id``/``sku``) is a non-blank string; ``name``/``email``/``category`` are
  strings or null (``""`` is NULL); ``country`` null or ``[A-Z]{2}`` and ``signup_date`` null
  or a real ``YYYY-MM-DD`` (``""`` is neither); ``list_price`` null or a JSON number >= 0 as
  written, stored half-to-even to 4 places below 10**14; ``updated_at`` (required) a
  timestamp of the ``created_at`` grammar, to UTC. An fx record needs a real ``date``, a
  ``[A-Z]{3}`` ``currency`` and a JSON number ``rate`` > 0, rounded half-to-even to 10
  places, neither 0 after rounding nor >= 10**8; a USD rate must be 1. Missing optional
  fields are NULL; unknown fields are ignored; the record key is not trusted.
- CSVs: ``users.csv``/``products.csv`` with an optional ``updated_at`` column, an empty field
  NULL, ``country`` ``[A-Z]{2}``, ``list_price`` plain decimal text >= 0 that DECIMAL(18,4)
  holds exactly; ``fx_rates.csv`` ``date,currency,rate`` with the fx values' rules, the rate as
  plain decimal text. A bad file raises ValueError (the consumer exits 2 at start).
- Order of arrival: the CSVs first, at ``csv_loaded_at``, then each change topic's records in
  the order given (users, products and rates do not interact).

History (§2 "Rules of history", §3; decisions "History rules"):

- A version is (key, ``updated_at``, content), content being every column but the key and
  ``updated_at``, compared as stored values (NULL equals NULL). The same key and
  ``updated_at`` again: equal content is an identical re-delivery (stored once, counted as
  REDELIVERY and, for a topic record, in ``duplicates`` as dropped_duplicates holds it,
  whether from a re-read topic, a CSV and a topic, or N members); other content is a
  correction that replaces it (the later arrival wins).
- A CSV row without ``updated_at`` takes effect at the load time; it adds nothing
  (REDELIVERY) when its content equals the key's current version.
- The history shown: versions ordered by ``updated_at`` (not by arrival), each one equal to
  the version just before it dropped, computed on everything held at the end (so a late
  version between two identical ones makes the second count again). The first remaining
  version has ``valid_from`` MINUS_INFINITY (``datetime.min``, which is how DuckDB returns
  TIMESTAMP '-infinity'), a later one its ``updated_at``; ``valid_to`` is the next
  ``valid_from`` (None for the last); ``is_current`` marks the last.
- The version in effect at t is the last with ``valid_from <= t``: an order placed before
  its user's first version takes that version (late-arriving dimensions), and a version that
  arrives late re-attributes orders already loaded.
- ``dim_user``/``dim_product``: each key's current version (``is_inferred`` false), plus every
  user_id of a loaded order / sku of a loaded line without a version as a placeholder.

Rates and dates (§2, §3; decisions "Exchange rates", "dim_date"):

- ``fx_rates`` holds one rate per (date, currency), the later arrival winning (the same rate
  again is a re-delivery); a USD row (rate 1) is held like any other and changes nothing.
  rate(K, d) is 1 for USD, else K's rate with the latest date <= d, none before K's first
  rate (no back-fill): a weekend keeps Friday's rate.
- ``dim_date``: every day from the UTC date of the earliest loaded order's ``created_at`` to
  that of the latest: ``date_key`` YYYYMMDD, ``quarter``, ISO ``iso_week`` and
  ``day_of_week`` (1 = Monday), ``is_weekend`` for Saturday and Sunday.

Reports (§5; decisions "Reports"); :mod:`tests.oracle_reports`:

- Reporting currency C (default USD, three capital letters). A line of an order in currency X
  placed at t: X = C counts as q*p (whatever t); X NULL, t NULL, or no rate of X or of C on
  t's UTC date leaves it unconverted; else q*p*rate(X, d)/rate(C, d). Sums are exact
  (fractions), then ``total_sales`` is rounded half-to-even to 2 places.
- top-users, top-countries, sales-by-channel: a group appears only with a converted line;
  top-countries groups as was (the user's version in effect at ``created_at``, the current
  one when it is NULL, NULL without a user or a version) or, with ``as_is``, by the current
  version. top-products counts every line's units, with the current product name.
- sales-over-time: every UTC period (hour ``...T13:00:00Z``, day, ISO week's Monday, month's
  first day) from the earliest to the latest ``created_at``, empty ones as zeros; ``orders``
  counts orders with or without lines, ``units`` their lines, ``total_sales`` their converted
  lines. unconverted-sales: per order currency (NULL last), ``lines`` and the exact ``total``
  in that currency.
- Windows keep ``since <= created_at < until`` (no order without ``created_at`` then). Order
  by the measure (``total_sales`` as rounded) descending, ties by key ascending, NULL last;
  limit 5 by default except sales-by-channel, sales-over-time and unconverted-sales.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.oracle_base import (
    Canonical,
    Position,
    Record,
    canonical,
    json_number,
    loads_json,
    non_blank_string,
    parse_created_at,
    stored_money,
)
from tests.oracle_history import (
    INVALID_REFERENCE,
    MINUS_INFINITY,
    REDELIVERY,
    STORED,
    DateRow,
    InvalidReference,
    Kind,
    ProductVersion,
    Rate,
    ReferenceBook,
    StrPath,
    UserVersion,
    Version,
    date_rows,
    parse_reference,
    product_history,
    read_fx_csv,
    read_products_csv,
    read_users_csv,
    user_history,
)
from tests.oracle_reports import GRAINS, REPORT_KEYS, report, report_variants

__all__ = [
    "CONFLICTING_DUPLICATE",
    "EMPTY_PAYLOAD",
    "GRAINS",
    "INVALID_AMOUNT",
    "INVALID_CREATED_AT",
    "INVALID_FIELD",
    "INVALID_ITEM",
    "INVALID_JSON",
    "INVALID_REFERENCE",
    "MINUS_INFINITY",
    "MISSING_ORDER_ID",
    "NOT_AN_OBJECT",
    "REDELIVERY",
    "REJECT_REASONS",
    "REPORT_KEYS",
    "STORED",
    "Canonical",
    "DateRow",
    "Expected",
    "InvalidReference",
    "LineRow",
    "OrderRow",
    "Position",
    "ProductRow",
    "ProductVersion",
    "Rate",
    "Record",
    "Rejection",
    "UserRow",
    "UserVersion",
    "ValidOrder",
    "Version",
    "canonical",
    "compute_expected",
    "parse_created_at",
    "parse_order",
    "parse_reference",
    "read_topic",
    "report",
    "report_variants",
]

# --------------------------------------------------------------------------------------------
# Reason codes (interface §1, plus the team's `invalid_field`)
# --------------------------------------------------------------------------------------------

EMPTY_PAYLOAD: Final = "empty_payload"
INVALID_JSON: Final = "invalid_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_ORDER_ID: Final = "missing_order_id"
INVALID_CREATED_AT: Final = "invalid_created_at"
INVALID_ITEM: Final = "invalid_item"
INVALID_AMOUNT: Final = "invalid_amount"
INVALID_FIELD: Final = "invalid_field"
CONFLICTING_DUPLICATE: Final = "conflicting_duplicate"

REJECT_REASONS: Final = frozenset(
    {
        EMPTY_PAYLOAD,
        INVALID_JSON,
        NOT_AN_OBJECT,
        MISSING_ORDER_ID,
        INVALID_CREATED_AT,
        INVALID_ITEM,
        INVALID_AMOUNT,
        INVALID_FIELD,
        CONFLICTING_DUPLICATE,
        INVALID_REFERENCE,
    }
)

#: ``quantity`` must fit a 32-bit signed INTEGER.
MAX_QUANTITY: Final = 2**31 - 1


# --------------------------------------------------------------------------------------------
# Data shapes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    """One ``dim_order`` row."""

    order_id: str
    user_id: str | None
    amount: Decimal | None
    currency: str | None
    source: str | None
    promo: str | None
    created_at: datetime | None  # naive, UTC


@dataclass(frozen=True)
class LineRow:
    """One ``fact_sales`` row; ``line_number`` is the 1-based position in ``items``;
    ``currency`` is the order's (contract §3)."""

    order_id: str
    line_number: int
    sku: str
    user_id: str | None
    quantity: int
    unit_price: Decimal
    created_at: datetime | None  # naive, UTC
    currency: str | None


@dataclass(frozen=True)
class UserRow:
    """One ``dim_user`` row: a key's current version, or a placeholder (every attribute None
    and ``is_inferred``) for a user_id of a loaded order that has no version."""

    user_id: str
    name: str | None
    email: str | None
    country: str | None
    signup_date: date | None
    is_inferred: bool


@dataclass(frozen=True)
class ProductRow:
    """One ``dim_product`` row: a key's current version, or a placeholder (every attribute
    None and ``is_inferred``) for a sku of a loaded line that has no version."""

    sku: str
    name: str | None
    category: str | None
    list_price: Decimal | None
    is_inferred: bool


@dataclass(frozen=True)
class Rejection:
    """The outcome of a record that goes to ``rejected_events``."""

    reason: str


@dataclass(frozen=True)
class ValidOrder:
    """The outcome of a record that passes every per-record rule (rules 1 to 8)."""

    order: OrderRow
    lines: tuple[LineRow, ...]
    content: Canonical  # the whole parsed record, for duplicate detection


@dataclass
class Expected:
    """What the warehouse must contain after consuming the given records."""

    orders: dict[str, OrderRow] = field(default_factory=dict)
    lines: dict[tuple[str, int], LineRow] = field(default_factory=dict)
    #: ``rejected_events``: records of every topic (orders and change topics) by position.
    rejected: dict[Position, str] = field(default_factory=dict)
    #: ``dropped_duplicates``: the orders' identical re-sends and the change topics' identical
    #: re-deliveries, by position.
    duplicates: set[Position] = field(default_factory=set)
    loaded: dict[Position, str] = field(default_factory=dict)
    users: dict[str, UserRow] = field(default_factory=dict)
    products: dict[str, ProductRow] = field(default_factory=dict)
    #: order_ids with valid records of differing content in more than one (topic, partition):
    #: which version is "first" then depends on how the consumer interleaves partitions, so
    #: tests should not assert on them (they only arise from records with no key or a wrong key).
    ambiguous_order_ids: set[str] = field(default_factory=set)
    #: order_ids whose valid records are all identical re-sends but lie in more than one
    #: (topic, partition), with every position of them: the content loaded is certain, but
    #: which copy is loaded (the others being dropped duplicates) follows the consumer's batch
    #: order. ``loaded`` and ``duplicates`` show the copy that comes first in input order.
    spread_copies: dict[str, set[Position]] = field(default_factory=dict)
    #: ``dim_user_history`` / ``dim_product_history`` keyed by (key, valid_from); a key's
    #: first version has ``valid_from`` MINUS_INFINITY.
    user_history: dict[tuple[str, datetime], UserVersion] = field(default_factory=dict)
    product_history: dict[tuple[str, datetime], ProductVersion] = field(default_factory=dict)
    #: ``fx_rates`` keyed by (date, currency).
    fx_rates: dict[tuple[date, str], Decimal] = field(default_factory=dict)
    #: ``dim_date`` keyed by date_key.
    dates: dict[int, DateRow] = field(default_factory=dict)
    #: Every change-topic record: STORED (a version or rate held), REDELIVERY (adds nothing:
    #: dropped, and counted in ``duplicates``) or INVALID_REFERENCE (also in ``rejected``);
    #: ``reference_details`` says why, in the oracle's words, for the invalid ones.
    reference_outcomes: dict[Position, str] = field(default_factory=dict)
    reference_details: dict[Position, str] = field(default_factory=dict)
    #: Every CSV row, by (file, line): STORED or REDELIVERY.
    csv_outcomes: dict[tuple[str, int], str] = field(default_factory=dict)
    #: (kind, key) whose versions or rate depend on how the consumer interleaves streams
    #: (differing content for one key and ``updated_at``, or one date and currency, in two
    #: partitions or in a CSV and a topic); fx keys read ``"EUR:2025-08-04"``.
    ambiguous_reference: set[tuple[str, str]] = field(default_factory=set)

    @property
    def outcome_counts(self) -> dict[str, int]:
        """Counts per outcome of the orders topic's records, as in
        ``pipeline_records_total{outcome=...}`` (change-topic records not included)."""
        rejected = [p for p in self.rejected if p not in self.reference_outcomes]
        duplicates = [p for p in self.duplicates if p not in self.reference_outcomes]
        return {
            "loaded": len(self.loaded),
            "duplicate": len(duplicates),
            "rejected": len(rejected),
        }


class _RejectError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Field rules
# --------------------------------------------------------------------------------------------


def _quantity(value: Any) -> int | None:
    """A JSON number of integer value from 1 to MAX_QUANTITY (``2.0`` is 2), else None."""
    number = json_number(value)
    if number is None or not 1 <= number <= MAX_QUANTITY or number != number.to_integral_value():
        return None
    return int(number)


def _optional_string(container: dict[str, Any], name: str, *, empty_is_null: bool) -> str | None:
    value = container.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RejectError(INVALID_FIELD)
    if empty_is_null and value == "":
        return None
    return value


def _item(value: Any) -> tuple[str, int, Decimal]:
    if not isinstance(value, dict):
        raise _RejectError(INVALID_ITEM)
    sku = value.get("sku")
    if not non_blank_string(sku):
        raise _RejectError(INVALID_ITEM)
    quantity = _quantity(value.get("quantity"))
    if quantity is None:
        raise _RejectError(INVALID_ITEM)
    raw_price = value.get("price")
    price, number = stored_money(raw_price), json_number(raw_price)
    if price is None or number is None or number < 0:  # >= 0 as written: -0.00001 is negative
        raise _RejectError(INVALID_ITEM)
    return sku, quantity, price


def _order(document: dict[str, Any], content: Canonical) -> ValidOrder:
    """Rules 4 to 8 on a parsed JSON object; raises _RejectError."""
    order_id = document.get("order_id")
    if not non_blank_string(order_id):
        raise _RejectError(MISSING_ORDER_ID)

    created_at: datetime | None = None
    raw_created_at = document.get("created_at")
    if raw_created_at is not None:
        if isinstance(raw_created_at, str):
            created_at = parse_created_at(raw_created_at)
        if created_at is None:
            raise _RejectError(INVALID_CREATED_AT)

    raw_items = document.get("items")
    if raw_items is None:
        raw_items = []
    if not isinstance(raw_items, list):
        raise _RejectError(INVALID_ITEM)
    items = [_item(raw_item) for raw_item in raw_items]

    amount: Decimal | None = None
    raw_amount = document.get("amount")
    if raw_amount is not None:
        amount = stored_money(raw_amount)
        if amount is None:
            raise _RejectError(INVALID_AMOUNT)

    user_id = _optional_string(document, "user_id", empty_is_null=True)
    currency = _optional_string(document, "currency", empty_is_null=True)
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _RejectError(INVALID_FIELD)
    source = _optional_string(metadata, "source", empty_is_null=True)
    promo = _optional_string(metadata, "promo", empty_is_null=True)

    order = OrderRow(order_id, user_id, amount, currency, source, promo, created_at)
    lines = tuple(
        LineRow(order_id, number, sku, user_id, quantity, price, created_at, currency)
        for number, (sku, quantity, price) in enumerate(items, start=1)
    )
    return ValidOrder(order, lines, content)


def parse_order(value: bytes | None) -> ValidOrder | Rejection:
    """Classify one record value on its own (rules 1 to 8; duplicates need the history)."""
    if value is None:
        return Rejection(EMPTY_PAYLOAD)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(INVALID_JSON)
    if text.strip() == "":
        return Rejection(EMPTY_PAYLOAD)
    try:
        document = loads_json(text)
        content = canonical(document)
    except (ValueError, RecursionError, ArithmeticError):
        # JSONDecodeError is a ValueError; ArithmeticError is decimal's InvalidOperation for an
        # exponent beyond what Decimal can hold (around 10**18).
        return Rejection(INVALID_JSON)
    if not isinstance(document, dict):
        return Rejection(NOT_AN_OBJECT)
    try:
        return _order(document, content)
    except _RejectError as rejection:
        return Rejection(rejection.reason)


# --------------------------------------------------------------------------------------------
# The whole stream
# --------------------------------------------------------------------------------------------


def _classify_orders(expected: Expected, records: Iterable[Record]) -> list[Position]:
    """Orders topic, in input order (§1); returns every position seen."""
    loaded_content: dict[str, Canonical] = {}
    partitions_of: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    contents_of: defaultdict[str, set[Canonical]] = defaultdict(set)
    copies_of: defaultdict[str, set[Position]] = defaultdict(set)
    positions: list[Position] = []

    for record in records:
        position = record.position
        positions.append(position)
        outcome = parse_order(record.value)
        if isinstance(outcome, Rejection):
            expected.rejected[position] = outcome.reason
            continue
        order_id = outcome.order.order_id
        partitions_of[order_id].add((record.topic, record.partition))
        contents_of[order_id].add(outcome.content)
        copies_of[order_id].add(position)
        if order_id in loaded_content:
            if loaded_content[order_id] == outcome.content:
                expected.duplicates.add(position)
            else:
                expected.rejected[position] = CONFLICTING_DUPLICATE
            continue
        loaded_content[order_id] = outcome.content
        expected.loaded[position] = order_id
        expected.orders[order_id] = outcome.order
        for line in outcome.lines:
            expected.lines[(line.order_id, line.line_number)] = line

    # Delivery guarantee (interface §4): each record in exactly one place.
    outcomes = [set(expected.loaded), expected.duplicates, set(expected.rejected)]
    assert sum(map(len, outcomes)) == len(positions), "a record has two outcomes"
    assert set().union(*outcomes) == set(positions), "a record has no outcome"

    spread = {oid for oid, parts in partitions_of.items() if len(parts) > 1}
    expected.ambiguous_order_ids = {oid for oid in spread if len(contents_of[oid]) > 1}
    expected.spread_copies = {
        oid: copies_of[oid] for oid in spread if oid not in expected.ambiguous_order_ids
    }
    return positions


def _load_reference(
    expected: Expected,
    csvs: list[tuple[Kind, StrPath | None]],
    topics: list[tuple[Kind, Iterable[Record]]],
    loaded_at: datetime,
) -> tuple[ReferenceBook, list[Position]]:
    """The CSV files first (read at start, §2), then each change topic's records in the order
    given; the kinds do not interact, so only the order within a kind matters."""
    book = ReferenceBook()
    for kind, path in csvs:
        if path is None:
            continue
        deliveries: list[tuple[int, Version | Rate]]
        if kind == "users":
            deliveries = [*read_users_csv(path)]
        elif kind == "products":
            deliveries = [*read_products_csv(path)]
        else:
            deliveries = [*read_fx_csv(path)]
        stream = (str(path), 0)
        for line, delivery in deliveries:
            if isinstance(delivery, Rate):
                outcome = book.add_rate(delivery, stream)
            else:
                outcome = book.add_version(delivery, loaded_at, stream)
            expected.csv_outcomes[(str(path), line)] = outcome

    positions: list[Position] = []
    for kind, records in topics:
        for record in records:
            position = record.position
            positions.append(position)
            stream = (record.topic, record.partition)
            parsed = parse_reference(kind, record.value)
            if isinstance(parsed, InvalidReference):
                expected.rejected[position] = INVALID_REFERENCE
                expected.reference_details[position] = parsed.detail
                outcome = INVALID_REFERENCE
            elif isinstance(parsed, Rate):
                outcome = book.add_rate(parsed, stream)
            else:  # updated_at is required on a topic: loaded_at is not used
                outcome = book.add_version(parsed, loaded_at, stream)
            expected.reference_outcomes[position] = outcome
            if outcome == REDELIVERY:
                expected.duplicates.add(position)
    return book, positions


def compute_expected(
    records: Iterable[Record],
    users_csv: StrPath | None = None,
    products_csv: StrPath | None = None,
    *,
    fx_csv: StrPath | None = None,
    user_records: Iterable[Record] = (),
    product_records: Iterable[Record] = (),
    fx_records: Iterable[Record] = (),
    csv_loaded_at: datetime | None = None,
) -> Expected:
    """What the warehouse must hold once every record has been consumed and the reference
    data loaded.

    ``records`` is the orders topic, in the order the consumer sees it per partition. The
    CSVs (any may be None) are loaded first, at ``csv_loaded_at`` (naive UTC; default: now),
    which is when a row without ``updated_at`` takes effect. ``user_records``,
    ``product_records`` and ``fx_records`` are the change topics' records, each in the order
    the warehouse reads them. Reference versions that arrive after the orders that need them
    still apply to those orders: the tables and reports depend on what is held at the end.
    """
    expected = Expected()
    positions = _classify_orders(expected, records)
    loaded_at = csv_loaded_at or datetime.now(UTC).replace(tzinfo=None)
    book, reference_positions = _load_reference(
        expected,
        [("users", users_csv), ("products", products_csv), ("fx", fx_csv)],
        [("users", user_records), ("products", product_records), ("fx", fx_records)],
        loaded_at,
    )
    every = [*positions, *reference_positions]
    if len(set(every)) != len(every):
        raise ValueError("the same (topic, partition, offset) was given more than once")
    expected.ambiguous_reference = book.ambiguous

    expected.user_history = user_history(book)
    expected.product_history = product_history(book)
    expected.fx_rates = dict(book.rates)
    expected.dates = date_rows(
        order.created_at.date()
        for order in expected.orders.values()
        if order.created_at is not None
    )
    for version in expected.user_history.values():
        if version.is_current:
            expected.users[version.user_id] = UserRow(
                version.user_id, version.name, version.email, version.country,
                version.signup_date, is_inferred=False,
            )  # fmt: skip
    for product in expected.product_history.values():
        if product.is_current:
            expected.products[product.sku] = ProductRow(
                product.sku, product.name, product.category, product.list_price,
                is_inferred=False,
            )  # fmt: skip
    for order in expected.orders.values():
        if order.user_id is not None and order.user_id not in expected.users:
            expected.users[order.user_id] = UserRow(order.user_id, None, None, None, None, True)
    for line in expected.lines.values():
        if line.sku not in expected.products:
            expected.products[line.sku] = ProductRow(line.sku, None, None, None, True)
    return expected


# --------------------------------------------------------------------------------------------
# Reading a topic (integration tests)
# --------------------------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Record]:
    """Every record a ``read_committed`` reader gets from every partition of ``topic``, from
    the low watermark to the high watermark taken at the start, sorted by (partition, offset).

    Uses ``assign`` with explicit offsets and never commits. Raises TimeoutError if the end
    is not reached within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"oracle-reader-{uuid.uuid4().hex}",  # required; never committed to
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            # What the consumer must load: committed records only (interface §5). librdkafka's
            # default too, stated so that the oracle never depends on a default.
            "isolation.level": "read_committed",
        }
    )
    records: list[Record] = []
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            error = None if topic_metadata is None else topic_metadata.error
            raise KafkaException(error or f"topic {topic!r} not found")
        ends: dict[int, int] = {}
        start: list[Any] = []
        for partition in sorted(topic_metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
            if high > low:
                ends[partition] = high
                start.append(TopicPartition(topic, partition, low))
        pending = set(ends)
        if start:
            consumer.assign(start)
        last_error: Any = None
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"reading {topic!r} took more than {timeout}s: partitions {sorted(pending)}"
                    f" unfinished (last transient error: {last_error})"
                )
            for message in consumer.consume(1000, timeout=min(1.0, left)):
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None:
                    raise KafkaException(message.error() or "a message without a position")
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if partition in ends and offset >= ends[partition]:
                            pending.discard(partition)
                        continue
                    if error.fatal():
                        raise KafkaException(error)
                    last_error = error  # transient: librdkafka retries by itself
                    continue
                if partition not in ends or offset >= ends[partition]:
                    continue  # written after we took the watermarks
                records.append(Record(topic, partition, offset, message.key(), message.value()))
                if offset >= ends[partition] - 1:
                    pending.discard(partition)
    finally:
        consumer.close()
    records.sort(key=lambda record: (record.partition, record.offset))
    return records
