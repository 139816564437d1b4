"""The consumer's command-line flags: tables like the simulator's, every flag also read from
an environment variable, defaults taken from the settings objects, and the one function that
turns parsed flags into ``Settings``."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from consumer.core.reporting import DEFAULT_CURRENCY, DEFAULT_GRAIN, GRAINS, ReportOptions
from consumer.errors import ConfigError
from consumer.settings import (
    GUARANTEED_OPTIONS,
    MAX_PARSE_WORKERS,
    BatchSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    ReferenceSettings,
    Settings,
    WarehouseSettings,
    parse_kafka_options,
)
from consumer.warehouse.maintenance import duration
from orders_common.flags import Flag, add_flags, checked, choice, number
from orders_common.kafka import check_bootstrap, check_topic


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"{text} does not exist or is not a file")
    return path


ENV_PREFIX = "ORDERS_"


def _defaults(*classes: type, prefix: dict[type, str] | None = None) -> dict[str, Any]:
    """Settings defaults by flag destination (``BatchSettings.max_records`` is
    ``batch_max_records``)."""
    names = prefix or {}
    out: dict[str, Any] = {}
    for cls in classes:
        for item in dataclasses.fields(cls):
            if item.default is not dataclasses.MISSING:
                out[names.get(cls, "") + item.name] = item.default
    return out


DEFAULTS = _defaults(
    KafkaSettings,
    BatchSettings,
    ReferenceSettings,
    LogSettings,
    prefix={BatchSettings: "batch_", ReferenceSettings: "reference_", LogSettings: "log_"},
)
DEFAULTS["retry_seconds"] = BatchSettings.retry_seconds
DEFAULTS["parse_workers"] = BatchSettings.parse_workers
SECONDS = number(float, 0, above=True)

BOOTSTRAP = Flag(
    "--bootstrap-servers", "Kafka bootstrap servers", checked(check_bootstrap), "HOST:PORT[,...]",
    env=("ORDERS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"), required=True,
)  # fmt: skip
TOPIC = Flag("--topic", "topic to consume", checked(check_topic), "T")
DB = Flag("--db", "DuckDB file (created if missing; one consumer process per file)", Path, "PATH")
CATALOG = Flag(
    "--catalog",
    "DuckLake catalog, postgres:CONNINFO (e.g. 'postgres:host=127.0.0.1 "
    "user=postgres dbname=lake'); excludes --db",
    None,
    "postgres:CONNINFO",
)
DATA_PATH = Flag(
    "--data-path",
    "where the lake keeps its Parquet files: a directory or "
    "s3://bucket/prefix (S3 credentials from AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY, ORDERS_S3_ENDPOINT...)",
    None,
    "DIR|s3://...",
)
WAREHOUSE = (DB, CATALOG, DATA_PATH)
KAFKA = (
    BOOTSTRAP,
    TOPIC,
    Flag("--group-id", "consumer group id", None, "G", required=True),
    Flag("--dlq-topic", "dead-letter topic (default: <topic>.dlq)", checked(check_topic), "T"),
    Flag("--group-instance-id", "static group membership id (default: derived from the "
         "database, so a restart gets its partitions back at once); 'none' disables it",
         None, "ID"),
    Flag("--startup-timeout", "how long to wait for the broker at start", SECONDS, "S"),
)  # fmt: skip
BATCH = (
    Flag("--batch-max-records", "records per micro-batch, at most", number(int, 1)),
    Flag("--batch-max-seconds", "seconds a micro-batch may wait for records after its first one",
         SECONDS, "S"),
    Flag("--until-idle", "exit 0 once every assigned partition is read to its end and nothing "
         "new arrived for SECONDS (default: run until signalled)", number(float, 0), "SECONDS"),
    Flag("--retry-seconds", "give up a failing write or commit after retrying this long",
         SECONDS, "S"),
    Flag("--parse-workers", "processes that parse batches beside the polling one (0: parse "
         "on the polling thread)", number(int, 0, MAX_PARSE_WORKERS), "N"),
)  # fmt: skip
REFERENCE = (
    Flag("--users-csv", "users.csv (user_id,name,email,country,signup_date[,updated_at]): "
         "versions of users, read at start and whenever it changes", checked(existing_file),
         "F"),
    Flag("--products-csv", "products.csv (sku,name,category,list_price[,updated_at]): "
         "versions of products, read at start and whenever it changes",
         checked(existing_file), "F"),
    Flag("--fx-csv", "fx_rates.csv (date,currency,rate: one unit of currency is worth rate "
         "USD on that date), read at start and whenever it changes", checked(existing_file),
         "F"),
    Flag("--users-topic", "change topic of users (JSON with updated_at), read whole and "
         "followed", checked(check_topic), "T"),
    Flag("--products-topic", "change topic of products (JSON with updated_at), read whole "
         "and followed", checked(check_topic), "T"),
    Flag("--fx-topic", "change topic of exchange rates ({date, currency, rate}), read whole "
         "and followed", checked(check_topic), "T"),
    Flag("--reference-poll-seconds", "how often to check the reference CSVs for changes",
         SECONDS, "S"),
)  # fmt: skip
HTTP = (
    Flag("--metrics-port", "serve /metrics, /healthz and /readyz on this port",
         number(int, 1, 65535), "PORT"),
    Flag("--metrics-host", "address the HTTP server binds", None, "HOST",
         default=HttpSettings.host),
)  # fmt: skip


def duration_seconds(text: str) -> float:
    """``--maintain-older-than``: a duration (90s, 30m, 1h, 2d) in seconds."""
    try:
        return duration(text).total_seconds()
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


MAINTENANCE = (
    Flag("--maintain-every", "lake only: run maintenance (merge files, expire snapshots, "
         "clean up) every SECONDS, on the member that owns partition 0", SECONDS, "SECONDS"),
    Flag("--maintain-older-than", "lake only: snapshots older than this are expired by "
         "maintenance (90s, 30m, 1h, 2d; keep it above the longest report)", duration_seconds,
         "DURATION", default=3600.0),
)  # fmt: skip


def currency_code(text: str) -> str:
    """A reporting currency: three capital letters (USD, EUR ...)."""
    return ReportOptions(currency=text).currency


REPORTING = (
    Flag("--currency", "reporting currency: every money figure is converted into it at the "
         "rates of the order's date (docs/interface.md §5)", checked(currency_code), "CODE",
         env="ORDERS_REPORT_CURRENCY", default=DEFAULT_CURRENCY),
    Flag("--as-is", "group by the current version of a dimension (top-countries: the user's "
         "country now) instead of the one in effect when the order was placed", switch=True,
         default=False),
    Flag("--grain", "sales-over-time: one row per hour, day, week (from Monday) or month",
         choice(*GRAINS), "{hour,day,week,month}", default=DEFAULT_GRAIN),
)  # fmt: skip
LOGGING = (
    Flag("--log-format", "log rendering: JSON lines, or readable text when stdout is a terminal",
         choice("auto", "json", "console"), "{auto,json,console}"),
    Flag("--log-level", "log level", choice("debug", "info", "warning", "error"),
         "{debug,info,warning,error}"),
)  # fmt: skip


def add(parser: argparse.ArgumentParser, title: str, flags: tuple[Flag, ...]) -> None:
    add_flags(parser, title, flags, env_prefix=ENV_PREFIX, defaults=DEFAULTS)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    add(parser, "kafka", KAFKA)
    parser.add_argument(
        "--no-dlq",
        action="store_true",
        help="keep rejects only in rejected_events, without a dead-letter topic",
    )
    parser.add_argument(
        "--kafka-option",
        action="append",
        default=[pair for pair in os.environ.get("ORDERS_KAFKA_OPTIONS", "").split(";") if pair],
        metavar="KEY=VALUE",
        help="extra librdkafka setting, e.g. security.protocol=SASL_SSL (repeatable); settings "
        "the delivery guarantee depends on are refused [env: $ORDERS_KAFKA_OPTIONS, KEY=VALUE "
        "pairs separated by ';']",
    )
    add(parser, "warehouse", WAREHOUSE)
    add(parser, "batches", BATCH)
    add(parser, "reference data", REFERENCE)
    add(parser, "http", HTTP)
    add(parser, "lake maintenance", MAINTENANCE)
    add(parser, "logging", LOGGING)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The one Settings of a run; raises ConfigError naming the flag."""
    instance_id = args.group_instance_id
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=args.bootstrap_servers,
            group_id=args.group_id,
            topic=args.topic,
            dlq_topic=None if args.no_dlq else (args.dlq_topic or f"{args.topic}.dlq"),
            group_instance_id=None if instance_id in (None, "none") else instance_id,
            static_membership=instance_id != "none",
            startup_timeout=args.startup_timeout,
            options=kafka_options(args.kafka_option),
        ),
        warehouse=warehouse_from_args(args),
        batch=BatchSettings(
            max_records=args.batch_max_records,
            max_seconds=args.batch_max_seconds,
            until_idle=args.until_idle,
            retry_seconds=args.retry_seconds,
            parse_workers=args.parse_workers,
        ),
        reference=ReferenceSettings(
            users_csv=args.users_csv,
            products_csv=args.products_csv,
            fx_csv=args.fx_csv,
            users_topic=args.users_topic,
            products_topic=args.products_topic,
            fx_topic=args.fx_topic,
            poll_seconds=args.reference_poll_seconds,
        ),
        http=HttpSettings(port=args.metrics_port, host=args.metrics_host),
        logging=LogSettings(format=args.log_format, level=args.log_level),
    )


def warehouse_from_args(args: argparse.Namespace) -> WarehouseSettings:
    maintenance = {
        "maintain_every": args.maintain_every,
        "maintain_older_than": args.maintain_older_than,
    } if hasattr(args, "maintain_every") else {}  # fmt: skip
    return WarehouseSettings(
        db_path=args.db, catalog=args.catalog, data_path=args.data_path, **maintenance
    )


def kafka_options(pairs: list[str]) -> dict[str, str]:
    """``--kafka-option`` pairs; a refused one from the environment names its variable."""
    options = parse_kafka_options(pairs)
    refused = sorted(set(options) & GUARANTEED_OPTIONS)
    if refused:
        from_env = os.environ.get("ORDERS_KAFKA_OPTIONS", "")
        where = " (from $ORDERS_KAFKA_OPTIONS)" if refused[0] in from_env else ""
        raise ConfigError(
            f"--kafka-option {refused[0]} is refused{where}: the delivery guarantee depends on "
            "it (docs/interface.md)"
        )
    return options


def report_options(args: argparse.Namespace) -> ReportOptions:
    return ReportOptions(currency=args.currency, as_is=bool(args.as_is), grain=args.grain)
