"""``orders-consumer`` / ``python -m consumer``: the ``run`` and ``query`` commands.

Exit codes: 0 success; 1 run-time failure (broker unreachable, database locked or unwritable);
2 bad usage or configuration. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from consumer.app import Pipeline
from consumer.clikit import OneLineParser, add_env_flag, fail
from consumer.config import Settings, faults_from_env, parse_kafka_options
from consumer.errors import ConfigError, PipelineError
from consumer.logs import configure_logging, get_logger
from consumer.metrics import Metrics
from consumer.reports import REPORTS, run_report, to_csv, to_json, to_table
from consumer.sink import Warehouse

PROG = "orders-consumer"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser(
        "run",
        help="consume the topic into the DuckDB star schema",
        description="Consume order events in micro-batches into DuckDB; SIGTERM/SIGINT drains, "
        "commits and exits 0. Every flag also reads the environment variable shown.",
    )
    add_env_flag(
        run,
        "--bootstrap-servers",
        env=["ORDERS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
        required=True,
        metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers",
    )
    add_env_flag(run, "--topic", env="ORDERS_TOPIC", default="orders", help="topic to consume")
    add_env_flag(
        run,
        "--group-id",
        env="ORDERS_GROUP_ID",
        required=True,
        metavar="G",
        help="consumer group id",
    )
    add_env_flag(
        run,
        "--db",
        env="ORDERS_DB",
        required=True,
        type=Path,
        metavar="PATH",
        help="DuckDB file (created if missing; one consumer process per file)",
    )
    add_env_flag(
        run,
        "--users-csv",
        env="ORDERS_USERS_CSV",
        type=Path,
        metavar="F",
        help="users.csv to upsert into dim_user at start and whenever it changes",
    )
    add_env_flag(
        run,
        "--products-csv",
        env="ORDERS_PRODUCTS_CSV",
        type=Path,
        metavar="F",
        help="products.csv to upsert into dim_product at start and whenever it changes",
    )
    add_env_flag(
        run,
        "--until-idle",
        env="ORDERS_UNTIL_IDLE",
        type=float,
        metavar="SECONDS",
        help="exit 0 once every assigned partition is read to its end and nothing new "
        "arrived for SECONDS (default: run until signalled)",
    )
    add_env_flag(
        run,
        "--metrics-port",
        env="ORDERS_METRICS_PORT",
        type=int,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz on this port",
    )
    add_env_flag(
        run,
        "--batch-max-records",
        env="ORDERS_BATCH_MAX_RECORDS",
        type=int,
        default=20_000,
        metavar="N",
        help="records per micro-batch, at most",
    )
    add_env_flag(
        run,
        "--batch-max-seconds",
        env="ORDERS_BATCH_MAX_SECONDS",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds a micro-batch may wait for records after its first one",
    )
    add_env_flag(
        run,
        "--dlq-topic",
        env="ORDERS_DLQ_TOPIC",
        metavar="T",
        help="dead-letter topic (default: <topic>.dlq)",
    )
    run.add_argument(
        "--no-dlq",
        action="store_true",
        help="keep rejects only in rejected_events, without a dead-letter topic",
    )
    add_env_flag(
        run,
        "--group-instance-id",
        env="ORDERS_GROUP_INSTANCE_ID",
        metavar="ID",
        help="static group membership id (default: derived from the database, so a "
        "restart gets its partitions back at once); 'none' disables it",
    )
    add_env_flag(
        run,
        "--startup-timeout",
        env="ORDERS_STARTUP_TIMEOUT",
        type=float,
        default=30.0,
        metavar="S",
        help="how long to wait for the broker at start",
    )
    add_env_flag(
        run,
        "--retry-seconds",
        env="ORDERS_RETRY_SECONDS",
        type=float,
        default=300.0,
        metavar="S",
        help="give up a failing write or commit after retrying this long",
    )
    add_env_flag(
        run,
        "--reference-poll-seconds",
        env="ORDERS_REFERENCE_POLL_SECONDS",
        type=float,
        default=30.0,
        metavar="S",
        help="how often to check the reference CSVs for changes",
    )
    run.add_argument(
        "--kafka-option",
        action="append",
        default=[pair for pair in os.environ.get("ORDERS_KAFKA_OPTIONS", "").split(";") if pair],
        metavar="KEY=VALUE",
        help="extra librdkafka setting, e.g. security.protocol=SASL_SSL (repeatable) "
        "[env: $ORDERS_KAFKA_OPTIONS, KEY=VALUE pairs separated by ';']",
    )
    add_log_flags(run)
    run.set_defaults(handler=_run)

    query = commands.add_parser(
        "query",
        help="print one of the four reports",
        description="Print a report: " + ", ".join(REPORTS) + ".",
    )
    query.add_argument("name", choices=list(REPORTS), help="the report")
    add_env_flag(
        query,
        "--db",
        env="ORDERS_DB",
        required=True,
        type=Path,
        metavar="PATH",
        help="DuckDB file written by `run`",
    )
    query.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="output format (default: table)",
    )
    query.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="rows to print (default 5; sales-by-channel lists every channel)",
    )
    query.set_defaults(handler=_query)
    return parser


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    add_env_flag(
        parser,
        "--log-format",
        env="ORDERS_LOG_FORMAT",
        default="auto",
        choices=["auto", "json", "console"],
        help="log rendering: JSON lines, or readable text when stdout is a terminal",
    )
    add_env_flag(
        parser,
        "--log-level",
        env="ORDERS_LOG_LEVEL",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    instance_id = args.group_instance_id
    return Settings(
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        group_id=args.group_id,
        db_path=args.db,
        users_csv=args.users_csv,
        products_csv=args.products_csv,
        until_idle=args.until_idle,
        metrics_port=args.metrics_port,
        batch_max_records=args.batch_max_records,
        batch_max_seconds=args.batch_max_seconds,
        dlq_topic=None if args.no_dlq else (args.dlq_topic or f"{args.topic}.dlq"),
        group_instance_id=None if instance_id in (None, "none") else instance_id,
        static_membership=instance_id != "none",
        startup_timeout=args.startup_timeout,
        commit_retry_seconds=args.retry_seconds,
        reference_poll_seconds=args.reference_poll_seconds,
        kafka_options=parse_kafka_options(args.kafka_option),
        log_format=args.log_format,
        log_level=args.log_level,
        faults=faults_from_env(),
    )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        fail(PROG, str(exc), exc.exit_code)
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger("consumer")
    try:
        metrics = Metrics()
        warehouse = Warehouse(settings.db_path, settings.faults)
        try:
            if settings.metrics_port is not None:
                metrics.serve(settings.metrics_port)
            Pipeline(settings, warehouse, metrics).run()
        finally:
            warehouse.close()
    except PipelineError as exc:
        log.error("consumer_failed", error=str(exc), error_type=type(exc).__name__)
        fail(PROG, str(exc), exc.exit_code)
    except OSError as exc:
        log.error("consumer_failed", error=str(exc), error_type=type(exc).__name__)
        fail(PROG, f"{exc.strerror or exc}", 1)
    except Exception as exc:
        log.exception("consumer_crashed", error=str(exc))
        fail(PROG, f"unexpected {type(exc).__name__}: {exc}", 1)
    return 0


def _query(args: argparse.Namespace) -> int:
    try:
        rows = run_report(args.db, args.name, args.limit)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    columns = REPORTS[args.name]
    if args.format == "json":
        print(to_json(rows))
    elif args.format == "csv":
        print(to_csv(rows, columns))
    else:
        print(to_table(rows, columns))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
