"""Logs and metrics: structlog configuration, counters, CloudWatch EMF."""
