"""One writer per file (interface §4): a consumer writing a DuckDB file must read the whole
topic, so it shares its group with nobody.

A member reads nothing until it holds every partition of the topic. A member that never held
them all within ``grace`` seconds of joining is the later one: it stops, naming the others.
The grace outlasts a session timeout, so that a restarted consumer whose previous process
died is not refused while the group still counts the dead one. Once the whole topic was held,
a later rebalance that takes partitions away is only reported: the ledger keeps the file
exactly-once, and the later member is the one that stops.
"""

from __future__ import annotations

import time

from consumer.errors import GroupConflictError
from consumer.kafka.protocol import Source
from orders_common.logs import get_logger

log = get_logger("consumer")


class Coverage:
    def __init__(self, source: Source, single_writer: bool, grace: float) -> None:
        self._source = source
        self._enforced = single_writer
        self._grace = grace
        self.confirmed = not single_writer
        self._joined_at: float | None = None
        self._shared_reported = False

    def joined(self) -> None:
        self._joined_at = time.monotonic()

    def _whole_topic(self) -> bool:
        total = self._source.partition_count
        return total > 0 and set(range(total)) <= self._source.assigned

    def assigned(self, partitions: list[int]) -> None:
        """Called after partitions were assigned (from inside the source's poll)."""
        if not self._enforced:
            return
        if self._whole_topic():
            if not self.confirmed:
                log.info("whole_topic_assigned", topic=self._source.topic)
                self._source.release()
            self.confirmed = True
            self._shared_reported = False
        elif not self.confirmed:
            self._source.hold(partitions)

    def check(self) -> None:
        """Raise GroupConflictError once the grace has passed without the whole topic."""
        if not self._enforced:
            return
        if self.confirmed:
            if not self._whole_topic() and not self._shared_reported:
                self._shared_reported = True
                log.warning(
                    "group_shared",
                    topic=self._source.topic,
                    owned=sorted(self._source.assigned),
                    note="another member joined this file's group; it will be refused",
                )
            return
        if self._joined_at is None or time.monotonic() - self._joined_at < self._grace:
            return
        others = ", ".join(self._source.other_members()) or "another member"
        raise GroupConflictError(
            f"consumer group {self._source.group_id!r} is shared with {others}: a DuckDB file "
            "must hold the whole topic "
            "(one consumer per group); use another --group-id, or a DuckLake warehouse "
            "(--catalog) for several consumers"
        )
