"""Questions to the cluster, asked through the admin API: a topic's id and size, and who
else is in a consumer group. Each answers None (or nothing) rather than failing: callers use
them to identify and to explain, and go on without."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicCollection

from orders_common import kafka
from orders_common.logs import get_logger

log = get_logger(__name__)


def topic_id(admin: Any, topic: str, timeout: float = 10.0) -> str | None:
    """The topic's Kafka id (a re-created topic has another), or None without an answer."""
    try:
        future = admin.describe_topics(TopicCollection([topic]))[topic]
        return str(future.result(timeout=timeout).topic_id)
    except Exception as exc:  # a broker without topic ids, or no describe permission
        log.warning("topic_id_unavailable", topic=topic, error=kafka.error_text(exc))
        return None


def partition_count(client: Any, topic: str, timeout: float = 10.0) -> int | None:
    """Partitions of the topic, from a metadata request; None when it is missing."""
    try:
        found = client.list_topics(topic, timeout=timeout).topics.get(topic)
    except Exception as exc:
        log.warning("metadata_unavailable", topic=topic, error=kafka.error_text(exc))
        return None
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def other_members(admin: Any, group: str, mine: str | None, timeout: float = 10.0) -> list[str]:
    """The group's members other than ``mine``, as ``client_id@host`` (best effort)."""
    try:
        described = admin.describe_consumer_groups([group])[group].result(timeout=timeout)
    except Exception as exc:
        log.warning("group_describe_failed", group=group, error=kafka.error_text(exc))
        return []
    return sorted(
        f"{m.client_id}@{m.host.lstrip('/')}" for m in described.members if m.member_id != mine
    )
