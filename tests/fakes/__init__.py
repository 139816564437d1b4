"""In-memory stand-ins for Kafka, for unit tests of the loop (the warehouse stays real)."""
