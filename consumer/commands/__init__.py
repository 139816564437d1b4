"""The commands besides ``run``: the reads of ``query`` and ``sql``, ``audit``, ``report
--html`` and ``maintain`` (``consumer.cli`` dispatches to them)."""
