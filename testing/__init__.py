"""Test doubles for opsvault's tests and benchmarks (the fake Forgejo).

This package lives beside ``opsvault``, not inside it: it ships in the sdist and
is type-checked with the product, but it is not in the wheel, and no ``opsvault``
module imports it (docs/adr/0012-test-doubles-outside-the-wheel.md).
"""

from __future__ import annotations
