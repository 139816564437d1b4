"""Poison records never crash the consumer: every reject class of the contract plus
Hypothesis payloads, each loaded or rejected with a reason, never both; the dead letters and
``consumer audit`` agree with the warehouse."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.corpus import Record, malformed
from tests.harness import assert_audit_complete, publish
from tests.reliability.harness import Figures, lives_for, settle

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

Report = Callable[[Figures], None]


payloads = st.one_of(
    st.binary(max_size=64),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"order_id": st.text(min_size=1, max_size=6)},
        optional={
            "items": st.lists(
                st.dictionaries(
                    st.sampled_from(["sku", "quantity", "price"]),
                    st.one_of(st.integers(-3, 3), st.floats(-5, 5), st.text(max_size=3), st.none()),
                ),
                max_size=3,
            ),
            "created_at": st.text(max_size=25),
            "amount": st.floats(-1e12, 1e12),
        },
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.too_slow,
    ],
)
@given(fuzz=st.lists(payloads, min_size=150, max_size=150))
def test_poison_records_never_crash_the_consumer(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
    report: Report,
    fuzz: list[bytes],
) -> None:
    """Over a thousand malformed records of every reject class plus Hypothesis payloads: the
    consumer exits cleanly and each record is loaded or rejected with a reason, never both."""
    topic = topic_factory(3)
    rates = MessRates.none()
    poison: list[Record] = [
        (r.key, r.value)
        for r in generate_records(
            SimSettings(
                seed=12, orders=1_100, rates=MessRates(**{**rates.__dict__, "malformed": 1.0})
            )
        )
    ]
    publish(kafka_bootstrap, topic, poison + malformed() + [(None, value) for value in fuzz])
    lives = lives_for(kafka_bootstrap, topic, tmp_path_factory.mktemp("poison"))
    assert lives.finish().returncode == 0
    figures = Figures("poison corpus + Hypothesis")
    expected = settle(figures, lives.db, kafka_bootstrap, topic)
    assert len(expected.rejected) >= 1_000
    assert not set(expected.loaded) & set(expected.rejected)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)
