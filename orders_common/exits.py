"""Exit codes of both commands (interface §5)."""

EXIT_OK = 0
EXIT_FAILURE = 1  # a run-time failure: broker unreachable, database locked or unwritable
EXIT_USAGE = 2  # bad usage or configuration: nothing was started
