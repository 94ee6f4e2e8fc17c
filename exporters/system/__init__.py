"""System exporter: service /health probes and direct dependency probes."""
