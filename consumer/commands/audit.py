"""``orders-consumer audit`` (interface §5): per partition, every offset the warehouse has read
is accounted for exactly once, with no gap up to its ledger.

The warehouse says where each offset went; the topic, read again, says which offsets hold
records: a ``read_committed`` reader skips transaction markers and aborted records, and a
``read_uncommitted`` pass tells the aborted ones apart where there are gaps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from confluent_kafka.admin import AdminClient

from consumer.core.accounting import PartitionAudit, PartitionFacts, audit_partition
from consumer.kafka import cluster
from consumer.kafka.offsets import TopicReader
from consumer.settings import KafkaSettings
from consumer.warehouse.protocol import Accounts
from orders_common import kafka
from orders_common.logs import get_logger

log = get_logger("consumer.audit")
OUTCOMES = ("loaded", "duplicate", "rejected")
COLUMNS = (
    "partition", "log_start", "first_read", "ledger", "end", "lag", "loaded", "duplicate",
    "rejected", "markers", "aborted", "retention_skipped", "deleted_since_read", "status",
)  # fmt: skip


def audit(held: Accounts, settings: KafkaSettings, timeout: float = 30.0) -> list[PartitionAudit]:
    """Audit every partition of ``settings.topic`` that the warehouse has read (``held``: what
    it says it holds)."""
    topic = settings.topic
    reader = TopicReader(settings)
    admin = AdminClient(
        kafka.client_config(
            settings.bootstrap_servers, "orders-consumer-audit", service="consumer",
            options=settings.options,
        )
    )  # fmt: skip
    marks = reader.watermarks(timeout)
    topic_id = cluster.topic_id(admin, topic) if marks else None
    ledger = held.ledger(topic)
    places = held.places(topic, topic_id)
    skipped = held.skipped(topic, topic_id)
    results = []
    for partition in sorted(set(marks) | set(ledger)):
        low, high = marks.get(partition, (0, 0))
        row = ledger.get(partition)
        stale = (
            row is not None and None not in (row.topic_id, topic_id) and row.topic_id != topic_id
        )
        if row is None or stale:
            results.append(_unread(partition, low, high))
            continue
        first = row.first_offset or 0
        start = max(first, low)
        data = reader.offsets(partition, start, row.next_offset, "read_committed")
        aborted: set[int] = set()
        if len(data) < row.next_offset - start:
            aborted = reader.offsets(partition, start, row.next_offset, "read_uncommitted") - data
        facts = PartitionFacts(
            partition=partition,
            log_start=low,
            end=high,
            first_read=first,
            ledger=row.next_offset,
            places={o: places.get(partition, {}).get(o, {}) for o in OUTCOMES},
            data=data,
            aborted=aborted,
            skipped=skipped.get(partition, 0),
        )
        results.append(audit_partition(facts))
    return results


def _unread(partition: int, low: int, high: int) -> PartitionAudit:
    """A partition the warehouse has not read yet (or only an older topic of that name)."""
    return PartitionAudit(partition, low, low, low, high, {"unread": max(0, high - low)})


def rows(audits: Sequence[PartitionAudit], *, detail: bool = True) -> list[dict[str, Any]]:
    """One row per partition; with ``detail``, the offsets of each problem too."""
    out = []
    for a in audits:
        row: dict[str, Any] = {
            "partition": a.partition,
            "log_start": a.log_start,
            "first_read": a.first_read,
            "ledger": a.ledger,
            "end": a.end,
            "lag": a.lag,
        }
        for name in COLUMNS[6:-1]:
            row[name] = a.counts.get(name, 0)
        row["status"] = "complete" if a.complete else "INCOMPLETE"
        if "unread" in a.counts:
            row["status"] = "unread"
        if detail and not a.complete:
            row["missing"], row["doubled"] = a.missing, a.doubled
            row["not_records"] = a.not_records
        out.append(row)
    return out


def to_json(audits: Sequence[PartitionAudit]) -> str:
    return json.dumps(rows(audits), indent=1)
