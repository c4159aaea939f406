"""A stateful fake Forgejo server for tests and benchmarks (see ``server.FakeForgejo``)."""

from __future__ import annotations
