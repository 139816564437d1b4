"""The fault hooks: ORDERS_FAULTS parsing, firing once per listed batch, and doing nothing by
default."""

from __future__ import annotations

import pytest

from consumer.errors import ConfigError, InjectedFaultError
from consumer.faults import NO_FAULTS, Faults


def test_fault_plan_parses_points_and_batches() -> None:
    """ORDERS_FAULTS entries name a point and the batches it fires on; repeats merge."""
    plan = Faults.parse("kill_after_db_commit@3, fail_db_write@2+5,fail_db_write@7")
    assert plan == Faults(
        {"kill_after_db_commit": frozenset({3}), "fail_db_write": frozenset({2, 5, 7})}
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("explode@1", "POINT@BATCH"),
        ("fail_db_write", "POINT@BATCH"),
        ("fail_db_write@two", "whole numbers"),
    ],
)
def test_a_malformed_plan_is_refused(spec: str, words: str) -> None:
    """Unknown points, a missing @ and non-numeric batches are ValueError saying why."""
    with pytest.raises(ValueError, match=words):
        Faults.parse(spec)


def test_a_malformed_plan_in_the_environment_is_a_configuration_error() -> None:
    """From the environment, a bad plan is ConfigError (exit 2) naming ORDERS_FAULTS."""
    with pytest.raises(ConfigError, match="ORDERS_FAULTS") as caught:
        Faults.from_env({"ORDERS_FAULTS": "explode@1"})
    assert caught.value.exit_code == 2


def test_no_plan_does_nothing() -> None:
    """Unset or empty ORDERS_FAULTS gives hooks that never fire."""
    plan = Faults.from_env({})
    assert not plan
    assert plan == NO_FAULTS
    for point in ("fail_db_write", "kill_mid_write", "kill_after_db_commit"):
        plan.hit(point, 1)


def test_fail_db_write_fires_once_per_listed_batch() -> None:
    """A failing write is injected once, so the retry of the same batch succeeds."""
    plan = Faults.parse("fail_db_write@2")
    plan.hit("fail_db_write", 1)
    with pytest.raises(InjectedFaultError, match="injected fault"):
        plan.hit("fail_db_write", 2)
    plan.hit("fail_db_write", 2)


class Recorder(Faults):
    """Every point hit, in order, with its batch."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[tuple[str, int]] = []

    def hit(self, point: str, batch_number: int) -> None:
        self.hits.append((point, batch_number))


def test_a_statement_step_hits_its_point_and_the_write_faults_only_after_dim_order() -> None:
    """Each statement of a batch's transaction is a point of its own; kill_mid_write and
    fail_db_write come right after the dim_order insert (inserts made, nothing committed),
    nowhere else."""
    faults = Recorder()
    step = faults.step(4)
    for name in ("dim_order", "fact_sales", "load_batches"):
        step(name)
    assert faults.hits == [
        ("statement:dim_order", 4),
        ("kill_mid_write", 4),
        ("fail_db_write", 4),
        ("statement:fact_sales", 4),
        ("statement:load_batches", 4),
    ]


def test_fail_db_write_fires_at_the_dim_order_step_of_its_batch() -> None:
    step = Faults.parse("fail_db_write@2").step(2)
    step("fact_sales")
    with pytest.raises(InjectedFaultError, match="fail_db_write at batch 2"):
        step("dim_order")
