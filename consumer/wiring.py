"""The one place that builds a pipeline from settings: every collaborator is made here and
passed in, and the fault hooks are installed here, once, from ``ORDERS_FAULTS``."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
from contextlib import ExitStack

from consumer.commands import redrive
from consumer.core import native
from consumer.faults import NO_FAULTS, Faults
from consumer.kafka.deadletter import DeadLetters
from consumer.kafka.protocol import DeadLetterSink, Source
from consumer.kafka.reference import ReferenceTopics
from consumer.kafka.source import KafkaSource
from consumer.runtime.committer import Committer
from consumer.runtime.coverage import Coverage
from consumer.runtime.loop import Pipeline
from consumer.runtime.maintainer import start_for_member
from consumer.runtime.parsing import Parser, ProcessParser, make_parser
from consumer.runtime.reference import ReferenceFiles
from consumer.runtime.reference_feed import ReferenceFeed
from consumer.runtime.retrying import Retrier
from consumer.runtime.stats import RunStats
from consumer.runtime.storing import BatchStore
from consumer.runtime.timelag import TimeLag
from consumer.runtime.writer import BatchWriter
from consumer.serving import http
from consumer.serving.channel import Channel, socket_path
from consumer.serving.metrics import Metrics
from consumer.settings import KafkaSettings, Settings
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from consumer.warehouse.lake import LakeWarehouse
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")
GC_YOUNG_THRESHOLD = 100_000
GIL_SWITCH_SECONDS = 0.0005
M_ARENA_MAX = -8  # glibc's mallopt parameter number
MALLOC_ARENAS = 2
DEFAULT_SESSION_TIMEOUT_MS = 45_000  # librdkafka's default
CONFLICT_MARGIN_SECONDS = 10.0


def tune_process() -> None:
    """Process-wide settings measured to matter for throughput."""
    # Parsing a batch allocates tens of thousands of short-lived, acyclic objects; with the
    # default thresholds the cyclic GC rescans them many times per batch (measured: see
    # docs/performance.md). Long-lived objects are frozen out of it, and it runs less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 1000)
    # The writer thread needs the GIL back briefly after every DuckDB or Polars call; with
    # the default 5 ms switch interval it queues behind the parsing loop each time, and
    # batch writes slow down (measured: see docs/performance.md).
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


def limit_malloc_arenas() -> None:
    """Two glibc malloc arenas instead of one per thread (8 per core): librdkafka, DuckDB and
    Polars threads each grow an arena that keeps freed memory (measured: a lower peak, the
    same rate; docs/performance.md). Only arenas made after this call are affected, so it runs
    before any thread starts; a C library without mallopt is left as it is."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def conflict_grace(kafka: KafkaSettings) -> float:
    """How long a file's consumer waits for the whole topic before calling its group shared:
    past the session timeout, after which the group evicts a member that died."""
    session_ms = float(kafka.options.get("session.timeout.ms", DEFAULT_SESSION_TIMEOUT_MS))
    return session_ms / 1000 + CONFLICT_MARGIN_SECONDS


def assemble(
    settings: Settings,
    *,
    source: Source,
    warehouse: Warehouse,
    dead_letters: DeadLetterSink | None,
    metrics: Metrics,
    faults: Faults = NO_FAULTS,
    parser: Parser | None = None,
    reference_topics: ReferenceTopics | None = None,
) -> Pipeline:
    """The pipeline over the given source, warehouse and dead letters (real or fake); batches
    are parsed by ``parser`` (by default on the polling thread); the change topics of reference
    data are read by ``reference_topics``."""
    retry = Retrier(settings.batch.retry_seconds, metrics)
    stats = RunStats(metrics)
    time_lag = TimeLag()
    metrics.lag_seconds.watch(time_lag.seconds)
    committer = Committer(
        source=source, metrics=metrics, stats=stats, retry=retry, faults=faults, time_lag=time_lag
    )
    store = BatchStore(warehouse=warehouse, dead_letters=dead_letters, retry=retry, metrics=metrics)
    writer = BatchWriter(source=source, store=store, committer=committer, parser=parser)
    reference = settings.reference
    return Pipeline(
        settings=settings.batch,
        source=source,
        warehouse=warehouse,
        dead_letters=dead_letters,
        writer=writer,
        committer=committer,
        reference=ReferenceFeed(
            ReferenceFiles(
                reference.users_csv,
                reference.products_csv,
                reference.poll_seconds,
                fx_csv=reference.fx_csv,
            ),
            reference_topics,
            lambda topic: retry("reference_ledger", lambda: warehouse.ledger(topic)),
        ),
        coverage=Coverage(source, warehouse.single_writer, conflict_grace(settings.kafka)),
        metrics=metrics,
        stats=stats,
        retry=retry,
        startup_timeout=settings.kafka.startup_timeout,
    )


def open_warehouse(settings: Settings, faults: Faults) -> DuckDBWarehouse | LakeWarehouse:
    where = settings.warehouse
    if where.catalog is not None:
        return LakeWarehouse(
            where.catalog, where.data_path, faults=faults, member=settings.kafka.group_instance_id
        )
    assert where.db_path is not None
    return DuckDBWarehouse(where.db_path, faults=faults, memory_limit=where.memory_limit)


def open_channel(warehouse: DuckDBWarehouse) -> Channel | None:
    """The local channel beside the file, through which ``query`` and ``sql`` read it while
    this process holds it, and ``redrive`` runs in it; a consumer without one still runs
    (reads then wait for it)."""
    try:
        return Channel(
            socket_path(warehouse.path),
            warehouse.cursor,
            lambda request: redrive.answer(warehouse, request),
        )
    except OSError as exc:  # e.g. a path too long for a Unix socket
        log.warning("local_channel_unavailable", error=str(exc))
        return None


def run(settings: Settings, faults: Faults | None = None) -> None:
    """Build every part from ``settings``, run the pipeline to its end, and close them all."""
    limit_malloc_arenas()
    faults = Faults.from_env() if faults is None else faults
    metrics = Metrics()
    kafka = settings.kafka
    with ExitStack() as stack:
        warehouse = open_warehouse(settings, faults)
        stack.callback(warehouse.close)
        if settings.http.port is not None:
            server = http.serve(metrics, settings.http.port, settings.http.host, warehouse.cursor)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
        channel = open_channel(warehouse) if isinstance(warehouse, DuckDBWarehouse) else None
        if channel is not None:
            stack.callback(channel.close)
        instance_id = None
        if kafka.static_membership and not (
            settings.warehouse.is_lake and not kafka.group_instance_id
        ):
            # A lake's members share the warehouse: static membership needs an id of each's own.
            instance_id = kafka.group_instance_id or f"orders-consumer-{warehouse.instance_id()}"
        dead_letters = (
            DeadLetters(kafka, kafka.dlq_topic, faults=faults) if kafka.dlq_topic else None
        )
        parser = make_parser(settings.batch.parse_workers)
        stack.callback(parser.close)  # also closed by the pipeline; here if it never ran
        if isinstance(parser, ProcessParser):
            metrics.parse_workers.watch(parser.worker_pids)
        pipeline = assemble(
            settings,
            source=KafkaSource(kafka, instance_id),
            warehouse=warehouse,
            dead_letters=dead_letters,
            metrics=metrics,
            faults=faults,
            parser=parser,
            reference_topics=(
                ReferenceTopics(kafka, settings.reference.topics())
                if settings.reference.topics()
                else None
            ),
        )
        if isinstance(warehouse, LakeWarehouse):
            maintainer = start_for_member(settings.warehouse, kafka.topic, warehouse.member)
            if maintainer is not None:
                stack.callback(maintainer.stop)
        tune_process()
        log.info(
            "consumer_started",
            topic=kafka.topic,
            group_id=kafka.group_id,
            group_instance_id=instance_id,
            db=warehouse.description,
            dlq_topic=kafka.dlq_topic,
            batch_max_records=settings.batch.max_records,
            batch_max_seconds=settings.batch.max_seconds,
            parse_workers=settings.batch.parse_workers,
            parse_tier=native.tier(),
        )
        pipeline.run()
