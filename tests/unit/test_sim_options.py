"""Options of `orders-sim publish` for transactions, replays and the state directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from producer_sim.cli import main, settings_from_args
from producer_sim.flags import build_parser

GOOD = ["publish", "--bootstrap-servers", "127.0.0.1:9092"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ORDERS_SIM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


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
        (["--transaction-size", "10"], "need --transactional"),
        (["--abort-rate", "0.2"], "need --transactional"),
        (["--transactional", "--transaction-size", "0"], "--transaction-size"),
        (["--transactional", "--transaction-size", "ten"], "--transaction-size"),
        (["--transactional", "--abort-rate", "1.5"], "--abort-rate"),
        (["--transactional", "--abort-rate", "-0.1"], "--abort-rate"),
        (["--transactional", "maybe"], "--transactional"),
        (["--orders", "100", "--replay"], "--replay applies to endless runs"),
    ],
)
def test_bad_transaction_and_replay_options_exit_2(
    extra: list[str], mentions: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each inconsistent option exits 2 with one stderr line that names it."""
    assert mentions in usage_error(GOOD + extra, capsys)


def test_transaction_options_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags and environment set transactional mode, size and abort rate; `false` turns it off."""
    args = [*GOOD, "--transactional", "--transaction-size", "25", "--abort-rate", "0.3"]
    settings = settings_from_args(build_parser().parse_args(args))
    assert (settings.transactional, settings.transaction_size, settings.abort_rate) == (
        True,
        25,
        0.3,
    )
    monkeypatch.setenv("ORDERS_SIM_TRANSACTIONAL", "yes")
    monkeypatch.setenv("ORDERS_SIM_ABORT_RATE", "0.1")
    from_env = settings_from_args(build_parser().parse_args(GOOD))
    assert from_env.transactional and from_env.abort_rate == 0.1
    monkeypatch.delenv("ORDERS_SIM_ABORT_RATE")
    off = settings_from_args(build_parser().parse_args([*GOOD, "--transactional", "false"]))
    assert off.transactional is False


def test_replay_and_state_dir_reach_the_settings(tmp_path: Path) -> None:
    """--replay with --orders 0 is accepted; --state-dir is used as given."""
    args = [*GOOD, "--orders", "0", "--replay", "--state-dir", str(tmp_path / "st")]
    settings = settings_from_args(build_parser().parse_args(args))
    assert settings.replay and settings.orders == 0 and settings.state_dir == tmp_path / "st"
    assert (tmp_path / "st").is_dir()


def test_unwritable_state_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --state-dir below a file exits 2 naming --state-dir."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--state-dir" in usage_error([*GOOD, "--state-dir", str(blocker / "s")], capsys)


def test_help_says_which_runs_continue_and_which_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """publish --help tells that endless runs continue, --replay starts over, N-runs re-send."""
    with pytest.raises(SystemExit):
        main(["publish", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "continuing where the last endless run" in text
    assert "--replay" in text and "start at the first record" in text
    assert "a bounded --orders N run always starts at the first order" in text
    for flag in ("--transactional", "--transaction-size", "--abort-rate", "--state-dir"):
        assert flag in text
