"""The reference data a consumer writes (CONTRACT §2): the CSV files' rows and the change
topics' records, handed to the batches that write them in their own transactions.

One consumer writes the reference data of a warehouse: the one consumer of a DuckDB file, or
the lake member that owns partition 0 of the orders topic (its epoch fences those writes). It
reads every partition of the change topics (``kafka.reference``) from where the warehouse's
ledger of each stands. Reports join an order to the version in effect when it was placed at
read time, so no other member needs the reference data: when partition 0 moves, its new owner
carries on from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable

from consumer.core.positions import LedgerRow
from consumer.core.records import Records
from consumer.core.refbatch import ReferenceBatch, TopicRecords, TopicStand, reference_batch
from consumer.errors import PipelineError
from consumer.kafka.reference import ReferenceTopics
from consumer.runtime.reference import Reference, ReferenceFiles
from orders_common.logs import get_logger

log = get_logger("consumer")
Ledger = Callable[[str], dict[int, LedgerRow]]
# Records taken from the change topics per loop turn (the rest waits in librdkafka's queue).
POLL_RECORDS = 5_000


class ReferenceFeed:
    def __init__(
        self, files: ReferenceFiles, topics: ReferenceTopics | None, ledger: Ledger
    ) -> None:
        self._files = files
        self._topics = topics
        self._ledger = ledger
        self._writing = False
        self._pending: Reference | None = None  # files' rows not handed to a batch yet
        self._buffer: dict[str, Records] = {}
        self._reported_gaps: set[tuple[str, int]] = set()

    def start(self) -> None:
        """Read and validate the files: a bad one is a configuration error (exit 2)."""
        self._pending = self._files.read()

    @property
    def writing(self) -> bool:
        return self._writing

    def take_over(self) -> None:
        """This consumer writes the reference data now: the files' rows go to its next batch
        (each adds only what the warehouse lacks), the topics are read from their ledgers."""
        if self._writing:
            return
        self._writing = True
        if self._pending is None:
            self._pending = self._read_files()
        if self._topics is not None:
            self._topics.start(self._ledger)
        log.info("reference_writer", writing=True)

    def give_up(self) -> None:
        """Another consumer writes the reference data now: what was read and not handed over
        is dropped (the new writer reads it again from the ledger)."""
        if not self._writing:
            return
        self._writing = False
        self._buffer.clear()
        if self._topics is not None:
            self._topics.stop()
        log.info("reference_writer", writing=False)

    def collect(self) -> None:
        """Take what the topics have (never waits) and notice changed files."""
        if not self._writing:
            return
        if self._topics is not None:
            for topic, records in self._topics.poll(POLL_RECORDS).items():
                self._buffer.setdefault(topic, Records()).extend(records)
        if self._pending is None and self._files.changed():
            self._pending = self._read_files()

    def ready(self) -> bool:
        """Whether there is reference data to write in a batch."""
        return self._writing and (self._pending is not None or bool(self._buffer))

    def take(self) -> ReferenceBatch | None:
        """The reference rows for the next batch, with where each topic's reading stands after
        them (its ledger); None when there is nothing to write."""
        if not self.ready():
            return None
        files, self._pending = self._pending, None
        buffered, self._buffer = self._buffer, {}
        parts, stands = [], {}
        topics = self._topics
        if topics is not None and buffered:
            reading = topics.positions()
            for topic, records in buffered.items():
                kind, topic_id = topics.kinds[topic], topics.topic_ids.get(topic)
                parts.append(TopicRecords(kind, topic, topic_id, records))
                stands[topic] = self._stand(topic, records, reading.get(topic, {}))
        if files is not None:
            self._files.loaded(files)
        return reference_batch(parts, files.files if files else [], stands)

    def caught_up(self) -> bool:
        """Every partition of the change topics read to its end (always, for a consumer that
        does not write the reference data)."""
        if not self._writing or self._topics is None:
            return True
        if self._buffer or self._pending is not None:
            return False
        reading = self._topics.positions()
        return all(
            reading.get(topic, {}).get(p, self._topics.starts[topic][p].offset) >= high
            for topic, ends in self._topics.ends().items()
            for p, high in ends.items()
        )

    def close(self) -> None:
        if self._topics is not None:
            self._topics.close()

    def _stand(self, topic: str, records: Records, reading: dict[int, int]) -> TopicStand:
        assert self._topics is not None
        starts = self._topics.starts[topic]
        after: dict[int, int] = {}
        for partition, offset in zip(records.partitions, records.offsets, strict=True):
            after[partition] = max(after.get(partition, 0), offset + 1)
        for partition, position in reading.items():
            if partition in after and position > after[partition]:
                after[partition] = position  # past transaction markers
        skipped = {}
        for partition in after:
            gap = starts[partition].skipped
            if gap is not None and (topic, partition) not in self._reported_gaps:
                self._reported_gaps.add((topic, partition))
                skipped[partition] = gap
        first = {p: starts[p].first_offset for p in after}
        return TopicStand(self._topics.topic_ids.get(topic), after, first, skipped)

    def _read_files(self) -> Reference | None:
        try:
            return self._files.read()
        except (OSError, PipelineError) as exc:
            log.error("reference_reload_failed", error=str(exc), kept="the previous data")
            return None
