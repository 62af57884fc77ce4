"""Prometheus telemetry of the service: its metrics, the middleware that counts requests, and
the text exposition served at ``GET /monitoring/prometheus/metrics``."""
