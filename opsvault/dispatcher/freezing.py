"""Which freeze window holds a pull request (pure; the windows and their rule: ``policy/freeze.py``).

A change is exempt from a window only when it is made of new actions alone,
every one of an exempt formula; anything else in it keeps it frozen.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from opsvault.policy.classify import ChangeVerdict
from opsvault.policy.freeze import Frozen, frozen_at, frozen_time
from opsvault.policy.model import Policy


def change_formulas(verdict: ChangeVerdict) -> frozenset[str] | None:
    """Return the formulas of a change's actions; None when it holds anything else."""
    formulas: set[str] = set()
    for file in verdict.files:
        if file.action is None or file.action.formula is None:
            return None
        formulas.add(file.action.formula)
    return frozenset(formulas) or None


def change_freeze(
    verdict: ChangeVerdict, policy: Policy, now: datetime
) -> Frozen | None:
    """Return the freeze that holds this change at *now* (the dispatcher merges it not), or None."""
    return frozen_at(policy.freezes, now, change_formulas(verdict))


def change_frozen_for(
    verdict: ChangeVerdict, policy: Policy, since: datetime, now: datetime
) -> timedelta:
    """Return how long a freeze held this change between *since* and *now*."""
    return frozen_time(policy.freezes, since, now, change_formulas(verdict))
