"""Kafka-to-DuckDB consumer: exactly-once-effect micro-batches into a star schema."""
