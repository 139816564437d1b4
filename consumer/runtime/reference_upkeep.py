"""The reference data in the warehouse: the files' rows upserted at start, and again when a
file changes (``reference`` reads and validates them)."""

from __future__ import annotations

from collections.abc import Callable

from consumer.errors import PipelineError
from consumer.runtime.reference import Reference, ReferenceFiles
from consumer.runtime.retrying import Retrier
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")


class ReferenceUpkeep:
    """The reference data in the warehouse: upserted at start, and again when a file changes."""

    def __init__(self, files: ReferenceFiles, warehouse: Warehouse, retry: Retrier) -> None:
        self._files = files
        self._warehouse = warehouse
        self._retry = retry

    def read(self) -> Reference | None:
        """Read and validate the files (ConfigError on bad input); None when there are none."""
        return self._files.read()

    def upsert(self, reference: Reference | None) -> None:
        if reference is None:
            return
        self._retry(
            "reference_upsert",
            lambda: self._warehouse.upsert_reference(reference.users, reference.products),
            on_retry=self._warehouse.reconnect,
        )
        self._files.loaded(reference)

    def reload_if_changed(self, before_upsert: Callable[[], None]) -> None:
        """Re-read and upsert the files if one changed; bad data keeps the previous."""
        try:
            if self._files.changed():
                reference = self._files.read()
                before_upsert()
                self.upsert(reference)
        except (OSError, PipelineError) as exc:
            log.error("reference_reload_failed", error=str(exc), kept="the previous data")
