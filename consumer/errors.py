"""The consumer's error hierarchy.

Foreign exceptions (confluent-kafka, DuckDB, OS) are translated into these at the module
boundary that meets them, with ``raise ... from exc``. The loop retries ``TransientError`` with
backoff and stops on anything else without committing offsets: it fails closed.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class. ``str(exc)`` is one readable line for the operator."""

    exit_code = 1


class ConfigError(PipelineError):
    """Bad flags, environment or input files: nothing was started."""

    exit_code = 2


class TransientError(PipelineError):
    """May succeed if retried: broker unavailable, DuckDB busy or I/O error."""


class TerminalError(PipelineError):
    """Retrying will not help; stop without committing."""


class DatabaseLockedError(TerminalError):
    """Another process holds the DuckDB file: one writer per database."""


class DatabaseError(TerminalError):
    """The database cannot be opened, created or written."""


class BrokerUnavailableError(TerminalError):
    """The Kafka cluster did not answer within the start-up timeout."""


class GroupConflictError(TerminalError):
    """A consumer writing a DuckDB file found another member in its group."""


class FencedError(TerminalError):
    """Another consumer took over this group instance id; this one must stop."""


class InjectedFaultError(TransientError):
    """Raised by the test-only fault plan to simulate a failing DuckDB write."""
