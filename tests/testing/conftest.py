from __future__ import annotations

from opsvault.testing.fake_forgejo.pytest_plugin import fake_forgejo

__all__ = ["fake_forgejo"]
