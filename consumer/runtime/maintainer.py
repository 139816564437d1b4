"""Scheduled lake maintenance: ``orders-consumer maintain --every S`` in the foreground, or a
thread of ``run --maintain-every S`` in each member, where only the owner of partition 0 does
the work (a cheap election: the ledger of partition 0 names its owner, and exactly one member
holds it at a time; during a rebalance two passes may overlap, which costs a retried conflict,
never data).

The maintainer has a connection of its own, so a pass never holds the batch writer's.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from datetime import timedelta

import duckdb

from consumer.errors import PipelineError, TransientError
from consumer.settings import WarehouseSettings
from consumer.warehouse import lake
from consumer.warehouse.extensions import lake_error
from consumer.warehouse.maintenance import MaintainSettings, Report, maintain, owns_partition_zero
from orders_common.logs import get_logger

log = get_logger("maintenance")


class Maintainer:
    def __init__(
        self,
        catalog: str,
        data_path: str | None,
        settings: MaintainSettings,
        *,
        topic: str | None = None,
        member: str | None = None,
    ) -> None:
        self._catalog, self._data_path = catalog, data_path
        self._settings = settings
        self._topic, self._member = topic, member
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def once(self) -> Report | None:
        """One pass; ``None`` when this member is not the elected one."""
        if self._con is None:
            self._con = lake.connect(self._catalog, self._data_path, read_only=False)
        if self._topic is not None and self._member is not None:
            try:
                elected = owns_partition_zero(self._con, self._topic, self._member)
            except duckdb.Error as exc:
                raise lake_error(exc, "cannot read the ledger of partition 0") from exc
            if not elected:
                log.debug("maintenance_not_elected", member=self._member)
                return None
        return maintain(self._con, self._settings)

    def every(self, seconds: float, *, fail_fast: bool) -> None:
        """A pass every ``seconds`` until ``stop``; a transient failure waits for the next one.
        With ``fail_fast`` any other failure propagates (a command), else it is logged (a
        member's thread must not take the consumer down)."""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.once()
            except TransientError as exc:
                log.warning("maintenance_failed", error=str(exc), error_type=type(exc).__name__)
                self._reset()
            except PipelineError as exc:
                if fail_fast:
                    raise
                log.error("maintenance_failed", error=str(exc), error_type=type(exc).__name__)
                self._reset()
            self._stop.wait(max(0.0, seconds - (time.monotonic() - started)))

    def start(self, seconds: float) -> None:
        """Run ``every(seconds)`` in a daemon thread (a member's schedule)."""
        self._thread = threading.Thread(
            target=self.every, args=(seconds,), kwargs={"fail_fast": False},
            name="lake-maintenance", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the pass under way (from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._reset()

    def _reset(self) -> None:
        if self._con is not None:
            with suppress(duckdb.Error):
                self._con.close()
            self._con = None


def start_for_member(where: WarehouseSettings, topic: str, member: str) -> Maintainer | None:
    """The maintenance thread of a lake member run with ``--maintain-every`` (else None)."""
    if where.catalog is None or where.maintain_every is None:
        return None
    settings = MaintainSettings(older_than=timedelta(seconds=where.maintain_older_than))
    maintainer = Maintainer(where.catalog, where.data_path, settings, topic=topic, member=member)
    maintainer.start(where.maintain_every)
    log.info("maintenance_scheduled", every_s=where.maintain_every, member=member)
    return maintainer
