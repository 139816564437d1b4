"""Simulator of a messy, reproducible e-commerce order stream published to Kafka."""
