"""``python -m consumer`` and the ``orders-consumer`` script.

Nothing is imported at the top: a parsing worker (spawned by ``runtime.parsing``) imports the
module or script the consumer was started from, and needs none of the consumer's Kafka, DuckDB
or HTTP modules.
"""

import sys


def main() -> int:
    from consumer.cli import main as run_cli  # noqa: PLC0415 (see the docstring)

    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
