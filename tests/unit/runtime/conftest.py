"""Fixtures of the loop's in-process tests."""

from __future__ import annotations

import pytest

from tests.fakes.kafka import FakeTopic
from tests.unit.runtime.loopkit import fill, stream


@pytest.fixture
def topic() -> FakeTopic:
    """Three partitions holding the messy simulated stream and the hand-written corpus."""
    topic = FakeTopic("orders", partitions=3)
    fill(topic, stream())
    return topic
