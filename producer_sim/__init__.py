"""Simulator of a messy, reproducible e-commerce order stream published to Kafka.

The Kafka-free API, for tests and benchmarks::

    from producer_sim import Settings, generate_records, generate_reference

    for record in generate_records(Settings(seed=7, orders=1_000)):
        record.key, record.value, record.kind

Publishing lives in ``producer_sim.runner.publish``; the CLI in ``producer_sim.cli``.
"""

from producer_sim.config import ALL_KINDS, MessRates, Settings
from producer_sim.events import generate_records
from producer_sim.records import SimRecord
from producer_sim.reference import Reference, generate_reference, write_rates, write_reference

__all__ = [
    "ALL_KINDS",
    "MessRates",
    "Reference",
    "Settings",
    "SimRecord",
    "generate_records",
    "generate_reference",
    "write_rates",
    "write_reference",
]
