"""The Kafka layer: the source of records (group membership, rebalances, polling, commits)
and the dead-letter producer, behind the protocols in ``protocol``."""
