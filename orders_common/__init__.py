"""Plumbing shared by the consumer and the simulator: logging, flags, exit codes, Kafka client
settings and broker errors. It imports neither service."""
