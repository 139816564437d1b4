"""The account of a run: what reached the topic, what was aborted, and which ids were new."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from producer_sim.api import ApiExhaustedError
from producer_sim.config import ALL_KINDS, BASE_KINDS, REFERENCE_KINDS

RESENDS = ("resend_identical", "resend_conflicting")


@dataclass
class Tally:
    """Records sent but not yet settled: one transaction, or a single record without them."""

    by_kind: Counter[str] = field(default_factory=Counter)
    new_orders: int = 0
    replayed_orders: int = 0
    # Transactional runs only: (key, number) of base orders, (key, kind) of re-sends.
    bases: list[tuple[bytes, int]] = field(default_factory=list)
    resends: list[tuple[bytes, str]] = field(default_factory=list)

    def clear(self) -> None:
        self.by_kind.clear()
        self.new_orders = self.replayed_orders = 0
        self.bases.clear()
        self.resends.clear()

    @property
    def records(self) -> int:
        return sum(self.by_kind.values())


@dataclass
class RunReport:
    """``by_kind`` counts what was published (committed, in a transactional run).

    ``new_orders`` are base orders whose id this topic had not been sent before by this seed, as
    far as the state file knows; ``replayed_orders`` are base orders sent again on purpose (a
    bounded run of a seed again, or ``--replay``). Re-sends inside the stream are in ``by_kind``.
    """

    topic: str
    target_orders: int
    by_kind: Counter[str] = field(default_factory=Counter)
    aborted_by_kind: Counter[str] = field(default_factory=Counter)
    # Committed re-sends whose original was aborted: the first version a reader sees, so they
    # load as new orders (still counted under their kind in ``by_kind``).
    revived_by_kind: Counter[str] = field(default_factory=Counter)
    new_orders: int = 0
    replayed_orders: int = 0
    transactions: int = 0
    aborted_transactions: int = 0
    transactional: bool = False
    pages: int = 0
    delivery_failures: int = 0
    first_delivery_error: str | None = None
    api_error: ApiExhaustedError | None = None
    stopped: bool = False
    elapsed: float = 0.0
    # The change topics: their names by stream, and what went out, by kind (never aborted).
    reference_topics: dict[str, str] = field(default_factory=dict)
    reference_by_kind: Counter[str] = field(default_factory=Counter)

    def settle(self, tally: Tally, committed: bool) -> None:
        """Count a settled tally as published, or as aborted; then empty it."""
        if committed:
            self.by_kind.update(tally.by_kind)
            self.new_orders += tally.new_orders
            self.replayed_orders += tally.replayed_orders
        else:
            self.aborted_by_kind.update(tally.by_kind)
        tally.clear()

    @property
    def records(self) -> int:
        return sum(self.by_kind.values())

    @property
    def orders(self) -> int:
        return sum(n for kind, n in self.by_kind.items() if kind in BASE_KINDS)

    @property
    def aborted(self) -> int:
        return sum(self.aborted_by_kind.values())

    @property
    def revived(self) -> int:
        return sum(self.revived_by_kind.values())

    @property
    def resends(self) -> int:
        return sum(self.by_kind[kind] for kind in RESENDS)

    @property
    def malformed(self) -> int:
        return sum(n for kind, n in self.by_kind.items() if kind.startswith("malformed:"))

    @property
    def all_records(self) -> int:
        """Records to every topic: the orders topic and the change topics."""
        return self.records + self.reference_by_kind.total()

    @property
    def rate(self) -> float:
        return self.all_records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.api_error is not None or self.delivery_failures else 0

    def failure(self) -> str | None:
        """One line saying why the run failed, or None."""
        if self.api_error is not None:
            return (
                f"{self.api_error}; the {self.all_records:,} records of the {self.pages} "
                "page(s) before it were published and flushed"
            )
        if self.delivery_failures:
            return (
                f"{self.delivery_failures:,} of {self.all_records:,} records were not delivered "
                f"to topic {self.topic!r}{' or the change topics' if self.reference_topics else ''}"
                f" (first error: {self.first_delivery_error})"
            )
        return None

    def summary(self) -> str:
        how = "stopped by signal after publishing" if self.stopped else "published"
        text = (
            f"{how} {self.records:,} records ({self.orders:,} orders, {self.pages} pages) to "
            f"topic {self.topic!r} in {self.elapsed:.1f}s: {self.new_orders:,} new order ids, "
            f"{self.replayed_orders:,} orders re-sent from an earlier run, {self.resends:,} "
            f"deliberate re-sends ({self.by_kind['resend_identical']:,} identical, "
            f"{self.by_kind['resend_conflicting']:,} conflicting), {self.malformed:,} malformed"
        )
        if self.transactional:
            text += (
                f"; {self.transactions:,} transactions committed, {self.aborted_transactions:,} "
                f"aborted on purpose ({self.aborted:,} records, not published; "
                f"{self.revived:,} later re-sends of their orders load as new orders)"
            )
        for stream, topic in self.reference_topics.items():
            count = self.reference_by_kind
            records = sum(n for kind, n in count.items() if kind.startswith(f"{stream}:"))
            what = "rates" if stream == "fx" else f"{stream[:-1]} versions"
            fates = [f"{count[f'{stream}:late']:,} late"]
            if stream != "fx":
                fates.append(f"{count[f'{stream}:out_of_order']:,} out of order")
            fates.append(f"{count[f'{stream}:repeat']:,} repeated")
            if count[f"{stream}:snapshot"]:
                fates.append(f"{count[f'{stream}:snapshot']:,} in a snapshot")
            text += f"; {records:,} records of {what} to {topic!r} ({', '.join(fates)})"
        return text + (f"; {self.rate:,.0f} records/s, {self.delivery_failures:,} delivery errors")

    def log_fields(self) -> dict[str, Any]:
        """The summary as fields of the ``publish_summary`` log line."""
        fields: dict[str, Any] = {
            "topic": self.topic,
            "records": self.records,
            "orders": self.orders,
            "new_orders": self.new_orders,
            "replayed_orders": self.replayed_orders,
            "resends": self.resends,
            "malformed": self.malformed,
            "pages": self.pages,
            "by_kind": {kind: self.by_kind[kind] for kind in ALL_KINDS if self.by_kind[kind]},
            "delivery_failures": self.delivery_failures,
            "stopped": self.stopped,
            "elapsed_seconds": round(self.elapsed, 3),
            "records_per_second": round(self.rate, 1),
        }
        if self.reference_topics:
            fields["reference_topics"] = self.reference_topics
            fields["reference_by_kind"] = {
                kind: self.reference_by_kind[kind]
                for kind in REFERENCE_KINDS
                if self.reference_by_kind[kind]
            }
        if self.transactional:
            fields.update(
                transactions=self.transactions,
                aborted_transactions=self.aborted_transactions,
                aborted_records=self.aborted,
                aborted_by_kind={k: n for k, n in self.aborted_by_kind.items() if n},
                resends_of_aborted=self.revived,
                resends_of_aborted_by_kind={k: n for k, n in self.revived_by_kind.items() if n},
            )
        return fields
