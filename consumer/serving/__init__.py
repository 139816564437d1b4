"""What a running consumer serves: the Prometheus metrics, the HTTP server with its probes,
reports API and dashboard, and the local channel (a Unix socket) for ``query`` and ``sql``."""
