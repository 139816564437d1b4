"""One Kafka record of the simulated stream."""

from __future__ import annotations

from typing import NamedTuple


class SimRecord(NamedTuple):
    """One Kafka record of the stream, and the case it stands for (``config.ALL_KINDS``, or
    ``config.REFERENCE_KINDS`` for the change topics)."""

    key: bytes | None
    value: bytes | None
    kind: str
