"""What the runtime needs of a warehouse, whatever stores it (a DuckDB file, a lakehouse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import polars as pl

from consumer.core.plan import Batch, BatchResult
from consumer.core.positions import LedgerRow

BeforeCommit = Callable[[pl.DataFrame], None]


class Warehouse(Protocol):
    """One writer's handle on the star schema and the pipeline's state.

    ``write_batch`` is the batch's one transaction: it looks up the batch's order ids among
    those already loaded, plans the batch (``consumer.core.plan``), writes every frame and the
    offsets ledger, calls ``before_commit`` with the final rejects, and commits. Anything raised
    rolls it all back. It is called from the writer thread; ``ledger`` may be called from the
    polling thread at the same time.
    """

    @property
    def description(self) -> str:
        """Where the data lives, for log lines."""
        ...

    def instance_id(self) -> str:
        """A stable id of this warehouse (static group membership derives from it)."""
        ...

    @property
    def single_writer(self) -> bool:
        """True when one consumer must read the whole topic into this warehouse (a file)."""
        ...

    def ledger(self, topic: str) -> dict[int, LedgerRow]:
        """Per partition, the next offset to read and the topic id, as committed with the data."""
        ...

    def claim(
        self, topic: str, partitions: list[int], partition_count: int
    ) -> dict[int, LedgerRow]:
        """Become the writer of these partitions (a lake fences their previous owner); their
        ledger rows, read after the claim."""
        ...

    def release(self, partitions: list[int]) -> None:
        """These partitions were given away."""
        ...

    def next_batch_id(self) -> int:
        """An id no other batch of this warehouse has, nor will have."""
        ...

    def cursor(self) -> Any:
        """A read connection of its own, on which the star schema's tables resolve."""
        ...

    def committed_result(self, batch_id: int) -> BatchResult | None:
        """What batch ``batch_id`` wrote, if its transaction committed (after an ambiguous
        COMMIT, this tells whether to write it again)."""
        ...

    def write_batch(
        self, batch: Batch, before_commit: BeforeCommit, number: int
    ) -> BatchResult: ...

    def reconnect(self) -> None:
        """Start over with a fresh connection, after a failed transaction."""
        ...

    def close(self) -> None: ...


class Accounts(Protocol):
    """What a warehouse says it holds of a topic, read back on a read-only connection (for
    ``audit``); each kind of warehouse provides its own (``accounts.of_file``, ``of_lake``)."""

    def ledger(self, topic: str) -> dict[int, LedgerRow]:
        """Per partition read, the ledger row committed with the data."""
        ...

    def places(self, topic: str, topic_id: str | None) -> dict[int, dict[str, dict[int, int]]]:
        """partition -> outcome (loaded, duplicate, rejected) -> offset -> rows."""
        ...

    def skipped(self, topic: str, topic_id: str | None) -> dict[int, int]:
        """partition -> offsets recorded as deleted by retention before they were read."""
        ...
