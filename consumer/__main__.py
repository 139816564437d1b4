import sys

if __name__ == "__main__":
    # Imported here, not above: a parsing worker (spawned) imports this module as well, and
    # needs none of the consumer's Kafka, DuckDB or HTTP modules.
    from consumer.cli import main

    sys.exit(main())
