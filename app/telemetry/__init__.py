"""Prometheus telemetry of the service: its metrics, the recorder that counts every request, and
the text exposition served at ``GET /monitoring/prometheus/metrics``."""
