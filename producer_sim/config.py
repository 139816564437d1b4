"""Run settings: one frozen value, built once from flags and environment, validated on creation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from orders_common.kafka import check_bootstrap

ProgressMode = Literal["auto", "always", "never"]

# Each base order carries at most one of these variations (they are mutually exclusive), so the
# kind of every record is unambiguous and its expected fate in the consumer is known.
ORDER_VARIATIONS: tuple[str, ...] = (
    "amount_mismatch",
    "created_at_null",
    "created_at_missing",
    "items_missing",
    "items_null",
    "items_empty",
    "metadata_missing",
    "metadata_null",
    "metadata_empty",
    "user_id_missing",
    "currency_missing",
    "late_user",
    "late_sku",
    "duplicate_sku",
    "extra_fields",
)
# Extra records, drawn independently after each base order.
EXTRA_RECORDS: tuple[str, ...] = ("resend_identical", "resend_conflicting", "malformed")

REJECT_REASONS: tuple[str, ...] = (
    "empty_payload",
    "invalid_json",
    "not_an_object",
    "missing_order_id",
    "invalid_created_at",
    "invalid_item",
    "invalid_amount",
)
CLEAN = "clean"
MALFORMED_KINDS: tuple[str, ...] = tuple(f"malformed:{reason}" for reason in REJECT_REASONS)
ALL_KINDS: tuple[str, ...] = (
    CLEAN,
    *ORDER_VARIATIONS,
    "resend_identical",
    "resend_conflicting",
    *MALFORMED_KINDS,
)
BASE_KINDS = frozenset((CLEAN, *ORDER_VARIATIONS))
# The change topics (--users-topic, --products-topic, --fx-topic): a record's kind is
# "<stream>:<what happened to it>" (``producer_sim.feed``).
REFERENCE_STREAMS: tuple[str, ...] = ("users", "products", "fx")
REFERENCE_FATES: tuple[str, ...] = ("on_time", "late", "out_of_order", "repeat", "snapshot")
REFERENCE_KINDS: tuple[str, ...] = tuple(
    f"{stream}:{fate}"
    for stream in REFERENCE_STREAMS
    for fate in REFERENCE_FATES
    if not (stream == "fx" and fate == "out_of_order")  # rates have one value per key
)


STREAM_OF_KIND: Mapping[str, str] = MappingProxyType(
    {kind: kind.partition(":")[0] for kind in REFERENCE_KINDS}
)


def reference_stream(kind: str) -> str | None:
    """The change topic a record of ``kind`` goes to (users, products, fx), or None: orders."""
    return STREAM_OF_KIND.get(kind)


@dataclass(frozen=True)
class MessRates:
    """Probability of each messy case, per base order."""

    amount_mismatch: float = 0.02
    created_at_null: float = 0.01
    created_at_missing: float = 0.01
    items_missing: float = 0.005
    items_null: float = 0.005
    items_empty: float = 0.005
    metadata_missing: float = 0.01
    metadata_null: float = 0.01
    metadata_empty: float = 0.01
    user_id_missing: float = 0.005
    currency_missing: float = 0.005
    late_user: float = 0.004
    late_sku: float = 0.004
    duplicate_sku: float = 0.01
    extra_fields: float = 0.02
    resend_identical: float = 0.03
    resend_conflicting: float = 0.01
    malformed: float = 0.01

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the {item.name} rate must be between 0 and 1, got {value}")
        variations = sum(getattr(self, name) for name in ORDER_VARIATIONS)
        if variations > 1.0 + 1e-9:
            raise ValueError(
                f"the per-order variation rates (--amount-mismatch-rate ... --extra-fields-rate) "
                f"add up to {variations:.3f}; they must not exceed 1"
            )
        if self.resend_identical + self.resend_conflicting > 1.0 + 1e-9:
            raise ValueError("the two re-send rates must not add up to more than 1")

    @classmethod
    def none(cls) -> MessRates:
        """A tidy stream: every record is a clean, distinct order."""
        return cls(**{item.name: 0.0 for item in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Settings:
    """Everything a run needs. Defaults are the documented CLI defaults."""

    seed: int = 42
    orders: int = 10_000  # base orders; 0 means an endless stream
    days: float = 28.0  # the span of a bounded run's created_at, from 2025-08-01T00:00Z
    rates: MessRates = field(default_factory=MessRates)
    page_size: int = 500
    api_failure_rate: float = 0.02
    retry_attempts: int = 4
    retry_base_delay: float = 0.2
    retry_max_delay: float = 5.0
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "orders"
    users_topic: str | None = None  # change topics; None: not published
    products_topic: str | None = None
    fx_topic: str | None = None
    partitions: int = 3
    rate: float = 0.0  # records per second; 0 means as fast as possible
    reference_dir: Path | None = None
    late_reference_dir: Path | None = None
    connect_timeout: float = 30.0
    delivery_timeout: float = 120.0
    progress: ProgressMode = "auto"
    state_dir: Path | None = None  # where endless runs keep their resume point; None: nowhere
    replay: bool = False  # an endless run starts at the first record, whatever the state says
    transactional: bool = False
    transaction_size: int | None = None  # records per transaction; None: the default (100)
    abort_rate: float | None = None  # share of transactions aborted on purpose; None: 0

    def __post_init__(self) -> None:
        checks = (
            (self.orders >= 0, f"--orders must be 0 (endless) or more, got {self.orders}"),
            (
                MIN_DAYS <= self.days <= MAX_DAYS,
                f"--days must be between {MIN_DAYS:g} and {MAX_DAYS:g}, got {self.days:g}",
            ),
            (self.page_size >= 1, f"--page-size must be at least 1, got {self.page_size}"),
            (
                0.0 <= self.api_failure_rate <= 1.0,
                f"--api-failure-rate must be between 0 and 1, got {self.api_failure_rate}",
            ),
            (
                self.retry_attempts >= 1,
                f"--retry-attempts must be at least 1, got {self.retry_attempts}",
            ),
            (
                self.retry_base_delay >= 0 and self.retry_max_delay >= 0,
                "--retry-base-delay and --retry-max-delay must not be negative",
            ),
            (self.partitions >= 1, f"--partitions must be at least 1, got {self.partitions}"),
            (self.rate >= 0, f"--rate must be 0 (unlimited) or more, got {self.rate}"),
            (
                self.connect_timeout > 0 and self.delivery_timeout > 0,
                "--connect-timeout and --delivery-timeout must be positive",
            ),
            (bool(self.topic.strip()), "--topic must not be empty"),
            *self._topic_checks(),
            (
                not self.replay or self.orders == 0,
                "--replay applies to endless runs (--orders 0); a bounded run always starts "
                "at the first order",
            ),
            (
                self.transactional or (self.transaction_size is None and self.abort_rate is None),
                "--transaction-size and --abort-rate need --transactional",
            ),
            (
                self.transaction_size is None or self.transaction_size >= 1,
                f"--transaction-size must be at least 1, got {self.transaction_size}",
            ),
            (
                self.abort_rate is None or 0.0 <= self.abort_rate <= 1.0,
                f"--abort-rate must be between 0 and 1, got {self.abort_rate}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        try:
            check_bootstrap(self.bootstrap_servers)
        except ValueError as error:
            raise ValueError(f"--bootstrap-servers: {error}") from None

    def _topic_checks(self) -> list[tuple[bool, str]]:
        checks = []
        seen = {self.topic: "--topic"}
        for stream in REFERENCE_STREAMS:
            name = self.topic_of(stream)
            flag = f"--{stream}-topic"
            if name is None:
                continue
            checks.append((bool(name.strip()), f"{flag} must not be empty"))
            checks.append(
                (name not in seen, f"{flag} {name!r} is the same topic as {seen.get(name)}")
            )
            seen.setdefault(name, flag)
        return checks

    def topic_of(self, stream: str) -> str | None:
        """The topic of ``stream``: orders, or one of REFERENCE_STREAMS (None if not published)."""
        if stream == "orders":
            return self.topic
        name: str | None = getattr(self, f"{stream}_topic")
        return name

    @property
    def reference_streams(self) -> tuple[str, ...]:
        """The change topics this run publishes (users, products, fx), in that order."""
        return tuple(s for s in REFERENCE_STREAMS if self.topic_of(s) is not None)


MIN_DAYS = 0.01
MAX_DAYS = 3_650.0
MAX_USERS = 200_000
MAX_PRODUCTS = 10_000


def reference_sizes(orders: int) -> tuple[int, int]:
    """(users, products) that exist once ``orders`` base orders are out; 0 (endless): all."""
    if orders == 0:
        return MAX_USERS, MAX_PRODUCTS
    return min(max(orders // 5, 50), MAX_USERS), min(max(orders // 40, 20), MAX_PRODUCTS)
