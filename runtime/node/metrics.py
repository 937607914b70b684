"""Prometheus metrics of a node, served on an optional port."""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

SUBTASKS = Counter("taskapi_subtasks_total", "Subtask state changes on the requestor", ["state"])
VERIFICATIONS = Counter("taskapi_verifications_total", "Verify outcomes", ["outcome"])
FUEL = Counter("taskapi_fuel_total", "Fuel reported by accepted wasm subtasks")
BYTES = Counter("taskapi_bytes_total", "Bytes moved between requestor and providers", ["direction"])


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on `host:port` (a daemon thread)."""
    start_http_server(port, addr=host)
