"""The trusted inputs of a classification, read from the base side of a change.

Its own module so that classifying one action file (``vault classify FILE``)
does not import the change classifier (``policy.classify``) for it (issue 11).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from opsvault.policy.model import Policy
from opsvault.vault.formula import Formula


@dataclass(frozen=True, slots=True)
class BaseState:
    """What the base side of a change provides: trusted inputs only."""

    policy: Policy
    formulas: Mapping[str, Formula] = field(hash=False)
    # Every id ever used at base.
    known_ids: Collection[str] = field(default=frozenset(), hash=False)
