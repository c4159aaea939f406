"""Operator surfaces: the read-only status page, ``/metrics`` and JSON log lines (ADR 0016)."""
