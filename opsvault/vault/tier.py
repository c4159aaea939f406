"""The blast-radius tier, shared by the file formats and the policy.

A formula's and an action's ``blast_radius`` are tiers, and so is what the
classifier returns: the type lives with the formats so that ``vault`` never
imports ``policy`` (``policy`` builds on ``vault``).
"""

from __future__ import annotations

from enum import IntEnum


class Tier(IntEnum):
    """Blast-radius tier; ordered so that ``max`` is the escalation lattice."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Tier:
        """Return the tier named *text* (``low``, ``medium``, ``high``); raise ValueError otherwise."""
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"{text!r} is not a tier (low, medium, high)") from None

    def __str__(self) -> str:
        return self.label
