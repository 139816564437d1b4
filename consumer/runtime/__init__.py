"""The runtime: the loop, the writer thread, retries, stats, metrics and the HTTP server, and
the wiring that builds them from settings."""
