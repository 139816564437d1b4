"""The engine: the consume loop, the writer thread, the parsing workers, retries, stats,
one-writer-per-file coverage, the reference files it follows and the lake maintainer thread.
It serves nothing (``consumer.serving``) and builds nothing (``consumer.wiring``)."""
