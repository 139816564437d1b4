"""The orders-sim command line: usage errors, environment, help, and the Kafka-free commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from producer_sim.cli import main, settings_from_args
from producer_sim.config import Settings
from producer_sim.events import generate_records
from producer_sim.flags import build_parser
from producer_sim.reference import generate_reference, write_rates, write_reference

GOOD = ["publish", "--bootstrap-servers", "127.0.0.1:9092"]
ENV_NAMES = ("ORDERS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS", "ORDERS_TOPIC")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ORDERS_SIM_") or name in ENV_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def run_sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_SIM_")}
    return subprocess.run(
        [sys.executable, "-m", "producer_sim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("extra", "mentions"),
    [
        (["--orders", "-1"], "--orders"),
        (["--orders", "many"], "--orders"),
        (["--seed", "abc"], "--seed"),
        (["--api-failure-rate", "1.5"], "--api-failure-rate"),
        (["--resend-identical-rate", "-0.1"], "--resend-identical-rate"),
        (["--malformed-rate", "nan?"], "--malformed-rate"),
        (["--rate", "-5"], "--rate"),
        (["--retry-attempts", "0"], "--retry-attempts"),
        (["--partitions", "0"], "--partitions"),
        (["--progress", "sometimes"], "--progress"),
        (["--bootstrap-servers", "localhost"], "--bootstrap-servers"),
        (["--bootstrap-servers", "localhost:99999"], "--bootstrap-servers"),
        (["--bootstrap-servers", "a:1,,b:2"], "--bootstrap-servers"),
        (["--amount-mismatch-rate", "0.9", "--extra-fields-rate", "0.5"], "add up"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    extra: list[str], mentions: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad option exits 2 with a single stderr line that names what is wrong."""
    assert mentions in usage_error(GOOD + extra, capsys)


def test_unwritable_reference_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --reference-dir that is a file (so cannot be a directory) exits 2 with one line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = usage_error([*GOOD, "--reference-dir", str(blocker / "sub")], capsys)
    assert "--reference-dir" in err


def test_missing_bootstrap_and_missing_command_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --bootstrap-servers (and no env), or without a command, the CLI exits 2."""
    assert "--bootstrap-servers" in usage_error(["publish"], capsys)
    usage_error([], capsys)


def test_bad_environment_value_is_reported_like_a_bad_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ORDERS_SIM_ORDERS=-3 exits 2, naming --orders."""
    monkeypatch.setenv("ORDERS_SIM_ORDERS", "-3")
    assert "--orders" in usage_error(GOOD, capsys)


def test_flags_read_their_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bootstrap servers, topic, seed, orders, rate and messy rates come from the environment."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-fallback:9092")
    args = build_parser().parse_args(["publish"])
    assert settings_from_args(args).bootstrap_servers == "kafka-fallback:9092"
    monkeypatch.setenv("ORDERS_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9093")
    for name, value in {
        "ORDERS_TOPIC": "demo-orders",
        "ORDERS_SIM_SEED": "7",
        "ORDERS_SIM_ORDERS": "0",
        "ORDERS_SIM_RATE": "25",
        "ORDERS_SIM_MALFORMED_RATE": "0.2",
        "ORDERS_SIM_API_FAILURE_RATE": "0.5",
        "ORDERS_SIM_RETRY_ATTEMPTS": "6",
    }.items():
        monkeypatch.setenv(name, value)
    settings = settings_from_args(build_parser().parse_args(["publish"]))
    assert settings.bootstrap_servers == "kafka-a:9092,kafka-b:9093"
    assert (settings.topic, settings.seed, settings.orders, settings.rate) == (
        "demo-orders",
        7,
        0,
        25.0,
    )
    assert settings.rates.malformed == 0.2 and settings.api_failure_rate == 0.5
    assert settings.retry_attempts == 6
    flag_wins = build_parser().parse_args(["publish", "--seed", "8", "--topic", "x"])
    assert (settings_from_args(flag_wins).seed, settings_from_args(flag_wins).topic) == (8, "x")


def test_defaults_match_the_documented_ones() -> None:
    """Without flags or environment the CLI builds the library's default Settings."""
    settings = settings_from_args(build_parser().parse_args(GOOD))
    state_dir = Path(os.environ["XDG_STATE_HOME"]) / "orders-sim"
    assert settings == Settings(bootstrap_servers="127.0.0.1:9092", state_dir=state_dir)
    assert (settings.retry_attempts, settings.partitions, settings.topic) == (4, 3, "orders")


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """publish --help lists every option with its environment variable."""
    with pytest.raises(SystemExit) as caught:
        main(["publish", "--help"])
    assert caught.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    parser = build_parser()
    publish = parser._subparsers._group_actions[0].choices["publish"]  # type: ignore[union-attr]
    flags = [a.option_strings[0] for a in publish._actions if a.option_strings[0] != "-h"]
    assert len(flags) >= 30
    for flag in flags:
        assert flag in out
        assert "$ORDERS_" in out or "$KAFKA_" in out
    assert "$ORDERS_SIM_RESEND_IDENTICAL_RATE" in out and "$ORDERS_BOOTSTRAP_SERVERS" in out


def test_generate_writes_the_stream_as_json_lines(tmp_path: Path) -> None:
    """`generate` writes one JSON line a record, matching the library stream, with CSVs."""
    out_file = tmp_path / "stream.jsonl"
    done = run_sim(
        "generate",
        "--orders",
        "300",
        "--seed",
        "4",
        "--output",
        str(out_file),
        "--reference-dir",
        str(tmp_path / "ref"),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    records = list(generate_records(Settings(seed=4, orders=300)))
    assert [line["kind"] for line in lines] == [r.kind for r in records]
    for line, record in zip(lines, records, strict=True):
        assert line["key"] == (record.key.decode() if record.key else None)
        if "value_base64" not in line:
            assert line["value"] == (record.value.decode() if record.value is not None else None)
    assert (tmp_path / "ref" / "users.csv").exists()


def test_reference_command_writes_the_same_csvs_as_the_library(tmp_path: Path) -> None:
    """`reference --days 14` writes users.csv, products.csv and fx_rates.csv byte-identical to
    write_reference and write_rates for 14 days."""
    done = run_sim(
        "reference", "--orders", "2000", "--seed", "3", "--days", "14", "--reference-dir",
        str(tmp_path / "cli"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "as of 2025-08-15T00:00:00Z" in done.stderr
    write_reference(generate_reference(2000), tmp_path / "lib", days=14)
    write_rates(tmp_path / "lib", days=14)
    assert (tmp_path / "lib" / "fx_rates.csv").read_bytes().count(b"\r\n") == 1 + 4 * 15
    for name in ("users.csv", "products.csv", "fx_rates.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "lib" / name).read_bytes()


def test_unreachable_broker_fails_fast_with_one_clear_line() -> None:
    """A broker that never answers gives exit 1 and one 'cannot reach Kafka' line, no traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_sim(
        "publish",
        "--bootstrap-servers",
        f"127.0.0.1:{port}",
        "--orders",
        "10",
        "--connect-timeout",
        "1",
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Kafka" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
