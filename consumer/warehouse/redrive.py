"""Redrive (issue 26): rejected records read again under today's rules, in the warehouse's own
transactions. A record that passes now is loaded as if it had arrived at its own offset (its
``dim_order`` row keeps its topic, partition and offset), or dropped as an identical re-send of
an order loaded meanwhile; it leaves ``rejected_events`` in the same transaction and is noted
in ``redriven_events``, so every offset stays accounted for exactly once and ``audit`` can say
which ones were redriven. A record that still fails stays rejected (with today's reason).

The statements are the same on both kinds of warehouse; each kind runs a chunk in a
transaction of its own that also serialises with its consumers' batches (see ``redrive_chunk``
of each), because a consumer may load an order of the same ``order_id`` meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

from consumer.core.plan import build_batch, plan_batch
from consumer.core.records import Records
from consumer.core.refdata import INVALID_REFERENCE
from consumer.core.transform import parse_values
from consumer.warehouse import statements

Step = Callable[[str], None]
Key = tuple[str, int, int]  # (topic id or "", partition, offset) of a reject


@dataclass(frozen=True)
class Selection:
    """Which rejects to read again: one topic's, of these reasons (every reason of an order
    record when empty), rejected within [since, until) (their batch's commit time)."""

    topic: str
    reasons: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Tally:
    examined: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # still rejected, by today's reason
    last: Key | None = None  # the reject read last

    def add(self, other: Tally) -> None:
        self.examined += other.examined
        self.loaded += other.loaded
        self.duplicate += other.duplicate
        self.rejected.update(other.rejected)
        self.last = other.last

    def summary(self) -> dict[str, object]:
        return {
            "examined": self.examined,
            "loaded": self.loaded,
            "duplicate": self.duplicate,
            "still_rejected": sum(self.rejected.values()),
            "still_rejected_by_reason": dict(sorted(self.rejected.items())),
        }


def one_topic_id(rows: pl.DataFrame) -> pl.DataFrame:
    """The first rows that share the first row's topic id (a topic re-created under its name
    is another topic: its records are loaded under their own id)."""
    if rows.is_empty():
        return rows
    return rows.filter(pl.col("topic_id") == rows["topic_id"][0])


def candidates(
    con: duckdb.DuckDBPyConnection, selection: Selection, after: Key | None, limit: int
) -> pl.DataFrame:
    """The next rejects to read again, in (topic id, partition, offset) order after ``after``."""
    reasons = list(selection.reasons)
    topic_id, partition, offset = after if after is not None else ("", -1, -1)
    return con.sql(
        'SELECT coalesce(r.topic_id, \'\') AS topic_id, r."partition", r."offset", r.reason, '
        "r.kafka_key AS key, r.payload AS value FROM rejected_events AS r "
        "JOIN load_batches AS b ON b.batch_id = r.batch_id "
        "WHERE r.topic = $topic AND r.reason <> $reference "
        "AND (len($reasons) = 0 OR list_contains($reasons, r.reason)) "
        "AND ($since IS NULL OR b.committed_at >= $since) "
        "AND ($until IS NULL OR b.committed_at < $until) "
        "AND (coalesce(r.topic_id, '') > $tid OR (coalesce(r.topic_id, '') = $tid AND "
        '(r."partition" > $p OR (r."partition" = $p AND r."offset" > $o)))) '
        'ORDER BY 1, r."partition", r."offset" LIMIT $limit',
        params={
            "topic": selection.topic, "reference": INVALID_REFERENCE, "reasons": reasons,
            "since": selection.since, "until": selection.until, "tid": topic_id,
            "p": partition, "o": offset, "limit": limit,
        },
    ).pl()  # fmt: skip


def redrive_rows(
    con: duckdb.DuckDBPyConnection,
    rows: pl.DataFrame,
    topic: str,
    batch_id: int,
    now: datetime,
    *,
    dry_run: bool,
    by_rowid: bool = True,
    step: Step = lambda _name: None,
) -> Tally:
    """Read ``rows`` (rejects of one topic id, from ``candidates``) again and, unless
    ``dry_run``, move those that pass now, in the caller's transaction."""
    tally = Tally(examined=rows.height)
    if rows.is_empty():
        return tally
    last = rows.row(-1)
    tally.last = (str(last[0]), int(last[1]), int(last[2]))
    topic_id = str(rows["topic_id"][0]) or None
    values, keys = rows["value"].to_list(), rows["key"].to_list()
    records = Records(values, keys, rows["partition"].to_list(), rows["offset"].to_list())
    batch = build_batch(
        batch_id, topic, records, {}, topic_id=topic_id, parsed=parse_values(values)
    )
    known = statements.loaded_before(
        con, batch.parsed.orders.select("order_id", "key_hash"), by_rowid=by_rowid
    )
    plan = plan_batch(batch, known)
    tally.loaded, tally.duplicate = plan.loaded.height, plan.duplicates.height
    tally.rejected.update(plan.rejects["reason"].to_list())
    if dry_run:
        return tally
    statements.insert_loaded(con, plan, step)
    moved = pl.concat(
        [
            plan.loaded.select("partition", "offset", pl.lit("loaded").alias("outcome")),
            plan.duplicates.select("partition", "offset", pl.lit("duplicate").alias("outcome")),
        ]
    ).join(rows.select("partition", "offset", "reason"), on=["partition", "offset"])
    con.register("b_moved", moved)
    con.register("b_again", plan.duplicates)
    con.register("b_still", plan.rejects.join(rows.select("partition", "offset"),
                                              on=["partition", "offset"]))  # fmt: skip
    ids = {"topic": topic, "topic_id": topic_id, "batch": batch_id, "now": now}
    con.execute(
        'INSERT INTO dropped_duplicates SELECT $topic, "partition", "offset", order_id, $batch, '
        "$topic_id FROM b_again",
        {k: ids[k] for k in ("topic", "topic_id", "batch")},
    )
    con.execute(
        'INSERT INTO redriven_events SELECT $topic, $topic_id, "partition", "offset", reason, '
        "outcome, $batch, $now FROM b_moved",
        ids,
    )
    where = "r.topic = $topic AND r.topic_id IS NOT DISTINCT FROM $topic_id"
    con.execute(
        f"DELETE FROM rejected_events AS r WHERE {where} AND EXISTS (SELECT 1 FROM b_moved AS m "
        'WHERE m."partition" = r."partition" AND m."offset" = r."offset")',
        {k: ids[k] for k in ("topic", "topic_id")},
    )
    # Still rejected, perhaps for another reason under today's rules: it says so now.
    con.execute(
        f"UPDATE rejected_events AS r SET reason = s.reason, detail = s.detail FROM b_still AS s "
        f'WHERE {where} AND s."partition" = r."partition" AND s."offset" = r."offset" '
        "AND s.reason IS DISTINCT FROM r.reason",
        {k: ids[k] for k in ("topic", "topic_id")},
    )
    con.execute(
        "INSERT INTO load_batches VALUES ($batch, $now, $records, $loaded, $dups, $rejected, "
        "$facts)",
        {"batch": batch_id, "now": now, "records": rows.height, "loaded": tally.loaded,
         "dups": tally.duplicate, "rejected": plan.rejects.height, "facts": plan.lines.height},
    )  # fmt: skip
    for name in ("b_moved", "b_again", "b_still"):
        con.unregister(name)
    step("redriven_events")
    return tally
