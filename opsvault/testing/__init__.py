"""Test utilities that other packages' tests and benchmarks import."""

from __future__ import annotations
