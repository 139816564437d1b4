"""The command-line flags: one table, defaults taken from ``Settings``, each read from the env."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orders_common.flags import Flag, OneLineParser, add_flags, boolean, checked, choice, number
from orders_common.kafka import check_bootstrap
from producer_sim.config import MAX_DAYS, MIN_DAYS, MessRates, Settings

PROG = "orders-sim"
_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        f.name: f.default
        for f in dataclasses.fields(Settings)
        if f.default is not dataclasses.MISSING
    }
)
_RATE_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {f.name: f.default for f in dataclasses.fields(MessRates)}
)


RATE = number(float, 0, 1)
STREAM = (
    Flag("--orders", "base orders to produce; re-sends and malformed records come on top; "
         "0 means endless (until SIGTERM or SIGINT), continuing where the last endless run of "
         "the seed into the topic stopped (publish: see --replay)", number(int, 0)),
    Flag("--seed", "the same seed (with the same --orders and --days) gives the same stream, "
         "byte for byte; order ids carry the seed (o-s42-0000001), so two seeds never share "
         "one; the CSVs are the same for all seeds", number(int, what="integer"), "S"),
    Flag("--days", "spread the orders' created_at over this many days from "
         "2025-08-01T00:00Z, while users move, products are renamed and repriced and rates "
         "move daily; an endless run goes at a fixed 2.5 s an order, and --days only says "
         "which day the CSVs show", number(float, MIN_DAYS, MAX_DAYS), "D"),
    Flag("--reference-dir", "write users.csv and products.csv (each key's latest version, "
         "with updated_at) and fx_rates.csv (every rate) here, consistent with the events "
         "(late-arriving users and skus are left out on purpose)", Path, "DIR"),
    Flag("--late-reference-dir", "write the late-arriving users and products here: the "
         "reference data that arrives later", Path, "DIR"),
)  # fmt: skip
CHANGE_TOPICS = tuple(
    Flag(f"--{stream}-topic", f"also publish {what} to this topic (created like --topic; "
         f"never inside --transactional's transactions), keyed by {key}, interleaved with "
         "the orders as a CDC tool would: most just before the orders that need them, some "
         f"late, some repeated{extra} (generate: the \"topic\" of their lines)", None, "T",
         env=f"ORDERS_{stream.upper()}_TOPIC")
    for stream, what, key, extra in (
        ("users", "every version of every user", "user_id", ", some out of order"),
        ("products", "every version of every product", "sku", ", some out of order"),
        ("fx", "every exchange rate", "CURRENCY:YYYY-MM-DD", ""),
    )
)  # fmt: skip
RESUME = (
    Flag("--state-dir", "where runs keep, per topic and seed, the highest order sent and the "
         "point where an endless run stopped [default: $XDG_STATE_HOME/orders-sim or "
         "~/.local/state/orders-sim]", Path, "DIR"),
    Flag("--replay", "endless runs only: start at the first record of the seed's stream, "
         "re-sending every order already sent, instead of continuing where the last run "
         "stopped (a bounded --orders N run always starts at the first order: run it again "
         "and it re-sends the same records)", boolean, "BOOL", switch=True),
)  # fmt: skip
TRANSACTIONS = (
    Flag("--transactional", "publish the orders in Kafka transactions (read_committed readers "
         "see only committed ones); the change topics are published outside them", boolean,
         "BOOL", switch=True),
    Flag("--transaction-size", "records per transaction [default: 100]", number(int, 1)),
    Flag("--abort-rate", "share of transactions aborted on purpose: their records are "
         "written, then aborted, and never published again [default: 0]", RATE, "P"),
)  # fmt: skip
RATE_HELP = MappingProxyType(
    {
        "amount_mismatch": "orders whose amount is not the sum of their lines (shipping added)",
        "created_at_null": "orders with created_at null",
        "created_at_missing": "orders without created_at",
        "items_missing": "orders without items",
        "items_null": "orders with items null",
        "items_empty": "orders with items []",
        "metadata_missing": "orders without metadata",
        "metadata_null": "orders with metadata null",
        "metadata_empty": "orders with metadata {}",
        "user_id_missing": "orders without user_id",
        "currency_missing": "orders without currency",
        "late_user": "orders by a user not in users.csv, whose versions reach the users topic "
        "only after the first order that uses it (late-arriving)",
        "late_sku": "orders with a sku not in products.csv, whose versions reach the products "
        "topic only after the first order that uses it (late-arriving)",
        "duplicate_sku": "orders listing the same sku on two lines",
        "extra_fields": "orders with unknown extra fields",
        "resend_identical": "identical re-sends, some at once and some thousands of records later, "
        "often spelled differently (blanks, key order, \\u escapes)",
        "resend_conflicting": "re-sends with the same order_id but another amount or items",
        "malformed": "malformed records, covering every reject reason of interface §1",
    }
)
MESS = tuple(
    Flag(f"--{name.replace('_', '-')}-rate", text, RATE, "P", default=_RATE_DEFAULTS[name])
    for name, text in RATE_HELP.items()
)
KAFKA = (
    Flag("--bootstrap-servers", "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]",
         checked(check_bootstrap), "HOST:PORT",
         env=("ORDERS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"), required=True),
    Flag("--topic", "topic to publish to (created if missing)", None, "T", env="ORDERS_TOPIC"),
    Flag("--partitions", "partitions of the topic when it has to be created", number(int, 1)),
    Flag("--rate", "records per second, as a steady trickle; 0 means as fast as possible",
         number(float, 0), "PER_SEC"),
    Flag("--connect-timeout", "seconds to wait for the broker's first answer",
         number(float, 0.1), "SECONDS"),
    Flag("--delivery-timeout", "seconds a record may wait for its acknowledgement before it "
         "counts as a delivery error", number(float, 1), "SECONDS"),
)  # fmt: skip
API = (
    Flag("--page-size", "records per API page; a page is published whole or not at all",
         number(int, 1)),
    Flag("--api-failure-rate", "probability that a page request fails transiently (HTTP 5xx "
         "or a timeout)", RATE, "P"),
    Flag("--retry-attempts", "attempts per page before the run fails (exit 1)", number(int, 1)),
    Flag("--retry-base-delay", "first backoff wait in seconds; it doubles on each retry, plus "
         "jitter", number(float, 0), "SECONDS"),
    Flag("--retry-max-delay", "longest backoff wait in seconds", number(float, 0), "SECONDS"),
)  # fmt: skip
PROGRESS = Flag("--progress", "progress bar on stderr; auto shows it for bulk runs on a terminal",
                choice("auto", "always", "never"), "{auto,always,never}")  # fmt: skip
LOGGING = (
    Flag("--log-format", "JSON lines on stdout, or console text; auto is JSON unless stdout is a "
         "terminal", choice("auto", "json", "console"), "{auto,json,console}", default="auto"),
    Flag("--log-level", "lowest level logged", choice("debug", "info", "warning", "error"),
         "{debug,info,warning,error}", default="info"),
)  # fmt: skip
OUTPUT = Flag("--output", "file to write, or - for stdout", None, "FILE", default="-")


def _add(parser: argparse.ArgumentParser, title: str, flags: Sequence[Flag]) -> None:
    add_flags(parser, title, flags, env_prefix="ORDERS_SIM_", defaults=_DEFAULTS)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Simulate a messy, reproducible e-commerce order stream and publish it to "
        "Kafka. Every flag also reads the environment variable shown in its help.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser(
        "publish",
        help="publish the order stream to Kafka (interface §5)",
        description="Publish N base orders with the messy cases of interface §1, read from a "
        "simulated paginated API that fails now and then and is retried with backoff; with "
        "--users-topic, --products-topic and --fx-topic, the history of users, products and "
        "exchange rates too.",
    )
    generate = commands.add_parser(
        "generate",
        help="write the stream as JSON lines, for debugging",
        description='Write the records as JSON lines {"kind", "key", "value"} (value_base64 '
        "when the value is not UTF-8), without Kafka. With --users-topic, --products-topic or "
        "--fx-topic, the records of those topics are in between, each line starting with "
        '"topic".',
    )
    reference = commands.add_parser(
        "reference",
        help="write only users.csv, products.csv and fx_rates.csv",
        description="Write the reference CSVs that go with --orders and --days (the same for "
        "every --seed).",
    )
    for command in (publish, generate, reference):
        _add(command, "stream", STREAM)
    for command in (publish, generate):
        _add(command, "change topics (reference data with history)", CHANGE_TOPICS)
        _add(command, "messy cases (each a probability per base order)", MESS)
    _add(publish, "kafka", KAFKA)
    _add(publish, "continuing or replaying (--orders 0)", RESUME)
    _add(publish, "transactions", TRANSACTIONS)
    _add(publish, "flaky orders API", API)
    _add(publish, "output", (PROGRESS, *LOGGING))
    _add(generate, "output", (OUTPUT, *LOGGING))
    _add(reference, "output", LOGGING)
    return parser
