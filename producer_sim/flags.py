"""The command-line flags: one table, defaults taken from ``Settings``, each read from the env."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, cast

from consumer.clikit import OneLineParser, add_env_flag
from producer_sim.config import MessRates, Settings, check_bootstrap

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


def _number(
    kind: Callable[[str], Any], low: float | None = None, high: float | None = None, what: str = ""
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            message = f"{text!r} is not a valid {what or kind.__name__}"
            raise argparse.ArgumentTypeError(message) from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    # A type, not argparse choices: argparse does not check choices on environment defaults.
    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(options)}, got {text!r}")
        return text

    return parse


def _bootstrap(text: str) -> str:
    try:
        return check_bootstrap(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--bootstrap-servers ")) from None


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


class Flag(NamedTuple):
    name: str
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str = "N"
    env: str | Sequence[str] | None = None  # default: ORDERS_SIM_<NAME>
    default: Any = None  # default: the Settings default of the same name
    required: bool = False
    switch: bool = False  # ``--flag`` alone means true; ``--flag false`` and the env var work too


RATE = _number(float, 0, 1)
STREAM = (
    Flag("--orders", "base orders to produce; re-sends and malformed records come on top; "
         "0 means endless (until SIGTERM or SIGINT), continuing where the last endless run of "
         "the seed into the topic stopped (publish: see --replay)", _number(int, 0)),
    Flag("--seed", "the same seed gives the same stream, byte for byte; order ids carry the "
         "seed (o-s42-0000001), so two seeds never share one; the CSVs are the same for all "
         "seeds", _number(int, what="integer"), "S"),
    Flag("--reference-dir", "write users.csv and products.csv here, consistent with the events "
         "(late-arriving users and skus are left out on purpose)", Path, "DIR"),
    Flag("--late-reference-dir", "write the late-arriving users and products here: the "
         "reference data that arrives later", Path, "DIR"),
)  # fmt: skip
RESUME = (
    Flag("--state-dir", "where runs keep, per topic and seed, the highest order sent and the "
         "point where an endless run stopped [default: $XDG_STATE_HOME/orders-sim or "
         "~/.local/state/orders-sim]", Path, "DIR"),
    Flag("--replay", "endless runs only: start at the first record of the seed's stream, "
         "re-sending every order already sent, instead of continuing where the last run "
         "stopped (a bounded --orders N run always starts at the first order: run it again "
         "and it re-sends the same records)", _boolean, "BOOL", switch=True),
)  # fmt: skip
TRANSACTIONS = (
    Flag("--transactional", "publish in Kafka transactions (read_committed readers see only "
         "committed ones)", _boolean, "BOOL", switch=True),
    Flag("--transaction-size", "records per transaction [default: 100]", _number(int, 1)),
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
        "late_user": "orders by a user not yet in users.csv (late-arriving)",
        "late_sku": "orders with a sku not yet in products.csv (late-arriving)",
        "duplicate_sku": "orders listing the same sku on two lines",
        "extra_fields": "orders with unknown extra fields",
        "resend_identical": "identical re-sends, some at once and some thousands of records later, "
        "often spelled differently (blanks, key order, \\u escapes)",
        "resend_conflicting": "re-sends with the same order_id but another amount or items",
        "malformed": "malformed records, covering every reject reason of CONTRACT §1",
    }
)
MESS = tuple(
    Flag(f"--{name.replace('_', '-')}-rate", text, RATE, "P", default=_RATE_DEFAULTS[name])
    for name, text in RATE_HELP.items()
)
KAFKA = (
    Flag("--bootstrap-servers", "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]", _bootstrap,
         "HOST:PORT", env=("ORDERS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"), required=True),
    Flag("--topic", "topic to publish to (created if missing)", None, "T", env="ORDERS_TOPIC"),
    Flag("--partitions", "partitions of the topic when it has to be created", _number(int, 1)),
    Flag("--rate", "records per second, as a steady trickle; 0 means as fast as possible",
         _number(float, 0), "PER_SEC"),
    Flag("--connect-timeout", "seconds to wait for the broker's first answer",
         _number(float, 0.1), "SECONDS"),
    Flag("--delivery-timeout", "seconds a record may wait for its acknowledgement before it "
         "counts as a delivery error", _number(float, 1), "SECONDS"),
)  # fmt: skip
API = (
    Flag("--page-size", "records per API page; a page is published whole or not at all",
         _number(int, 1)),
    Flag("--api-failure-rate", "probability that a page request fails transiently (HTTP 5xx "
         "or a timeout)", RATE, "P"),
    Flag("--retry-attempts", "attempts per page before the run fails (exit 1)", _number(int, 1)),
    Flag("--retry-base-delay", "first backoff wait in seconds; it doubles on each retry, plus "
         "jitter", _number(float, 0), "SECONDS"),
    Flag("--retry-max-delay", "longest backoff wait in seconds", _number(float, 0), "SECONDS"),
)  # fmt: skip
PROGRESS = Flag("--progress", "progress bar on stderr; auto shows it for bulk runs on a terminal",
                _choice("auto", "always", "never"), "{auto,always,never}")  # fmt: skip
LOGGING = (
    Flag("--log-format", "JSON lines on stdout, or console text; auto is JSON unless stdout is a "
         "terminal", _choice("auto", "json", "console"), "{auto,json,console}", default="auto"),
    Flag("--log-level", "lowest level logged", _choice("debug", "info", "warning", "error"),
         "{debug,info,warning,error}", default="info"),
)  # fmt: skip
OUTPUT = Flag("--output", "file to write, or - for stdout", None, "FILE", default="-")


def _add(parser: argparse.ArgumentParser, title: str, flags: Sequence[Flag]) -> None:
    # add_env_flag only calls add_argument, which argument groups have as well.
    group = cast(argparse.ArgumentParser, parser.add_argument_group(title))
    for flag in flags:
        dest = flag.name.lstrip("-").replace("-", "_")
        env = flag.env or "ORDERS_SIM_" + dest.upper()
        default = flag.default
        if default is None and not flag.required:
            default = _DEFAULTS.get(dest)
        extra: dict[str, Any] = {"type": flag.parse} if flag.parse is not None else {}
        if flag.switch:
            extra.update(nargs="?", const=True)
        add_env_flag(
            group,
            flag.name,
            env=env,
            help=flag.help,
            required=flag.required,
            default=default,
            metavar=flag.metavar,
            **extra,
        )


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Simulate a messy, reproducible e-commerce order stream and publish it to "
        "Kafka. Every flag also reads the environment variable shown in its help.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser(
        "publish",
        help="publish the order stream to Kafka (CONTRACT §5)",
        description="Publish N base orders with the messy cases of CONTRACT §1, read from a "
        "simulated paginated API that fails now and then and is retried with backoff.",
    )
    generate = commands.add_parser(
        "generate",
        help="write the stream as JSON lines, for debugging",
        description='Write the records as JSON lines {"kind", "key", "value"} (value_base64 '
        "when the value is not UTF-8), without Kafka.",
    )
    reference = commands.add_parser(
        "reference",
        help="write only users.csv and products.csv",
        description="Write the reference CSVs that go with --orders and --seed.",
    )
    for command in (publish, generate, reference):
        _add(command, "stream", STREAM)
    for command in (publish, generate):
        _add(command, "messy cases (each a probability per base order)", MESS)
    _add(publish, "kafka", KAFKA)
    _add(publish, "continuing or replaying (--orders 0)", RESUME)
    _add(publish, "transactions", TRANSACTIONS)
    _add(publish, "flaky orders API", API)
    _add(publish, "output", (PROGRESS, *LOGGING))
    _add(generate, "output", (OUTPUT, *LOGGING))
    _add(reference, "output", LOGGING)
    return parser
