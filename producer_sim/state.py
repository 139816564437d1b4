"""Where a seed's stream stands in a topic, so that an endless run started again continues.

One small JSON file per (topic, seed) in the state directory. It names the topic by its Kafka
topic id as well, so a topic deleted and created again under the same name starts afresh. It
records the highest base order number ever handed to the topic (what later runs count as
re-sent rather than new), and the point of the stream where the last endless run stopped.

A SIGKILLed run leaves the point of its last checkpoint (every few seconds): the next run then
sends the records since that checkpoint again. They are the same bytes, so the consumer drops
the orders among them as identical duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from producer_sim.config import Settings
from producer_sim.events import Resume
from producer_sim.orders import seed_scope

CHECKPOINT_SECONDS = 5.0
_VERSION = 1


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/orders-sim``, else ``~/.local/state/orders-sim``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orders-sim"


def stream_fingerprint(settings: Settings) -> str:
    """The mess rates and the change topics published shape an endless stream: a resume point
    is only exact under the same ones (a stream without change topics keeps its old print)."""
    text = json.dumps(dataclasses.asdict(settings.rates), sort_keys=True)
    if settings.reference_streams:
        text += json.dumps(settings.reference_streams)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StateError(Exception):
    """The state file exists but is not a simulator state (bad configuration: exit 2)."""


@dataclass(frozen=True)
class StreamState:
    """``orders``: the highest base order number handed to the topic (committed or aborted).

    ``after_order`` and ``records``: the stream resumes after that base order, then skips that
    many records (``events.Resume``); valid for the stream whose fingerprint is ``rates`` (the
    mess rates and the change topics published, ``stream_fingerprint``).
    """

    orders: int = 0
    after_order: int = 0
    records: int = 0
    rates: str = ""


def resume_point(state: StreamState, settings: Settings, replay: bool) -> Resume | None:
    """Where this run starts: None is the first record (every bounded run, or a replay)."""
    if settings.orders != 0 or replay or state == StreamState():
        return None
    if state.rates == stream_fingerprint(settings):
        return Resume(state.after_order, state.records)
    # Other rates or topics make another stream: continue after the last order, without its
    # re-sends (the change topics start with a snapshot).
    return Resume(state.orders, 0)


def advance(
    state: StreamState, settings: Settings, start: Resume | None, top_order: int, sent: int
) -> StreamState:
    """The state after a run that started at ``start``, went up to base order ``top_order``
    (or none, 0) and took ``sent`` records from its stream."""
    fingerprint = stream_fingerprint(settings)
    if settings.orders != 0:  # bounded: it sent its pending re-sends at the end
        if top_order <= state.orders:
            return state
        return StreamState(top_order, top_order, 0, fingerprint)
    if start is None:  # from the first record: a first run, or a replay
        if top_order < state.orders or (state.orders and top_order == 0):
            return state  # a replay that stayed within what the topic had: keep the old point
        return StreamState(top_order, 0, sent, fingerprint)
    return StreamState(
        max(state.orders, top_order), start.after_order, (start.records or 0) + sent, fingerprint
    )


class StateFile:
    """The state of one seed's stream in one topic (``topic_key`` is the Kafka topic id)."""

    def __init__(self, directory: Path, topic: str, topic_key: str, seed: int) -> None:
        self.path = directory / f"{topic}.{topic_key}.{seed_scope(seed)}.json"
        self._topic = topic
        self._topic_key = topic_key
        self._seed = seed

    def load(self) -> StreamState:
        """The saved state, or a fresh one; raises StateError on a file that is not ours."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return StreamState()
        try:
            doc = json.loads(text)
            fields = {f.name: doc[f.name] for f in dataclasses.fields(StreamState)}
            state = StreamState(**fields)
        except (ValueError, KeyError, TypeError) as error:
            raise StateError(
                f"state file {str(self.path)!r} is not a simulator state ({error}); "
                "remove it or use another --state-dir"
            ) from None
        return state

    def save(self, state: StreamState) -> None:
        """Replace the file atomically: a crash leaves the old state or the new one."""
        doc = {
            "version": _VERSION,
            "topic": self._topic,
            "topic_id": self._topic_key,
            "seed": self._seed,
            **dataclasses.asdict(state),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, indent=1)
                out.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
