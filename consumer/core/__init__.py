"""The pure core: records, reason codes, frame schemas, the two parse paths, the transform and
the batch plan. It imports neither Kafka nor DuckDB (``tests/unit/test_layers.py``)."""
