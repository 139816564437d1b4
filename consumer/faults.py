"""Fault injection at the dangerous instants of a batch. Only tests enable it.

``ORDERS_FAULTS`` holds comma-separated ``POINT@BATCHES`` entries, e.g.
``kill_after_db_commit@3`` or ``fail_db_write@2+5``. Batches count from 1 in each process.

Points that kill (the process SIGKILLs itself, as a crash would):
- ``kill_mid_write``: inside the DuckDB transaction, after the first inserts;
- ``kill_during_dlq``: after producing the batch's dead letters, before their flush;
- ``kill_after_db_commit``: after the DuckDB commit, before the Kafka commit.

Point that fails: ``fail_db_write`` raises a transient error inside the DuckDB transaction, once
per listed batch, so the retry succeeds.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

from consumer.errors import InjectedFaultError

KILL_POINTS = frozenset({"kill_mid_write", "kill_during_dlq", "kill_after_db_commit"})
FAIL_POINTS = frozenset({"fail_db_write"})


@dataclass(frozen=True)
class FaultPlan:
    points: dict[str, frozenset[int]] = field(default_factory=dict)
    fired: set[tuple[str, int]] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        points: dict[str, frozenset[int]] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            point, sep, batches = entry.partition("@")
            if point not in KILL_POINTS | FAIL_POINTS or not sep:
                known = ", ".join(sorted(KILL_POINTS | FAIL_POINTS))
                raise ValueError(f"{entry!r} is not POINT@BATCH[+BATCH...] with POINT in {known}")
            try:
                numbers = frozenset(int(n) for n in batches.split("+"))
            except ValueError:
                raise ValueError(f"{entry!r}: batches must be whole numbers") from None
            points[point] = points.get(point, frozenset()) | numbers
        return cls(points)

    def __bool__(self) -> bool:
        return bool(self.points)

    def hit(self, point: str, batch_number: int) -> None:
        """Crash or fail here if the plan says so for this batch."""
        if batch_number not in self.points.get(point, ()) or (point, batch_number) in self.fired:
            return
        self.fired.add((point, batch_number))
        if point in KILL_POINTS:
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFaultError(f"injected fault {point} at batch {batch_number}")
