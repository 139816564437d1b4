"""How far behind the consumer is in time (CONTRACT §7 ``pipeline_consumer_lag_seconds``): per
partition, the age of the oldest record read and not yet committed, from the records' own
Kafka timestamps; 0 when nothing read is waiting.

The loop tells it each partition's first record of every poll (``seen``) and, after each Kafka
commit, where the partitions stand (``committed``). It is read at scrape time, from the HTTP
thread, so it keeps growing while a write hangs and the loop waits for it.

What it cannot see are records not fetched yet: a partition held (paused) while a file's
consumer waits for the whole topic, or a backlog still in the broker, counts from its first
fetched record; ``pipeline_consumer_lag`` (in records) covers both.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping


class TimeLag:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # partition -> (first offset, its timestamp in ms) of each poll not yet committed
        self._waiting: dict[int, deque[tuple[int, int]]] = {}
        self._owned: set[int] = set()

    def seen(self, firsts: Mapping[int, tuple[int, int]]) -> None:
        with self._lock:
            for partition, first in firsts.items():
                self._waiting.setdefault(partition, deque()).append(first)

    def committed(self, next_offsets: Mapping[int, int]) -> None:
        """Records below these offsets are committed: they no longer count."""
        with self._lock:
            for partition, next_offset in next_offsets.items():
                waiting = self._waiting.get(partition)
                while waiting and waiting[0][0] < next_offset:
                    waiting.popleft()

    def owned(self, partitions: Iterable[int]) -> None:
        """The partitions owned now; the others are forgotten."""
        with self._lock:
            self._owned = set(partitions)
            for partition in list(self._waiting):
                if partition not in self._owned:
                    del self._waiting[partition]

    def seconds(self) -> dict[int, float]:
        """Per owned partition, the age in seconds of the oldest record not yet committed."""
        now_ms = self._clock() * 1000
        with self._lock:
            ages = {}
            for partition in self._owned:
                waiting = self._waiting.get(partition)
                ages[partition] = max(0.0, (now_ms - waiting[0][1]) / 1000) if waiting else 0.0
            return ages
