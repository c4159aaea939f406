"""Execution: what a claimed action runs (pure), its lock keys, and running a batch of claims.

``execution_request`` and ``lock_keys`` are pure; ``execute_claims`` hands the
requests to the ``Runner`` in a bounded pool once the claims are on main.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from opsvault.dispatcher.fireplan import Claimed
from opsvault.messages import ExecutionRequest, RunResult, StepSpec
from opsvault.policy.action import effective_params
from opsvault.ports import Runner
from opsvault.vault.formula import Formula
from opsvault.vault.placeholders import render_argv
from opsvault.vault.request import Action

log = logging.getLogger(__name__)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def execution_request(
    action: Action, formula: Formula, metadata: tuple[tuple[str, str], ...] = ()
) -> ExecutionRequest:
    """Return what the runner needs to execute *action* with *formula* (defaults applied)."""
    params = effective_params(action, formula)
    return ExecutionRequest(
        action_id=action.id,
        formula=formula.name,
        steps=tuple(StepSpec(step.name, step.run) for step in formula.steps),
        params=tuple(
            (k, _text(v)) for k, v in sorted(params.items()) if not isinstance(v, tuple)
        ),
        list_params=tuple(
            (k, v) for k, v in sorted(params.items()) if isinstance(v, tuple)
        ),
        secrets=tuple(sorted(set(formula.secrets))),
        timeout_seconds=formula.timeout.total_seconds(),
        metadata=metadata,
    )


def lock_keys(action: Action, formula: Formula) -> tuple[str, ...]:
    """Return the formula's locks rendered for *action* (actions sharing a key never overlap)."""
    if not formula.locks:
        return ()
    params = effective_params(action, formula)
    values = {
        f"params.{k}": _text(v) for k, v in params.items() if not isinstance(v, tuple)
    }
    values["action.id"] = action.id
    return render_argv(
        formula.locks, values, f"formulas/{formula.name}.toml", path="$.locks"
    )


def execute_claims(
    runner: Runner,
    claims: list[Claimed],
    max_concurrency: int,
    checkpoint: Callable[[str], None],
) -> list[RunResult | None]:
    """Run *claims* in a bounded pool, first claimed first started; results in claim order.

    A claim whose execution raised (a runner that broke its contract) has no
    result (None): it stays claimed on main and is recovered after its
    deadline like a crash, while the other claims' results are recorded (I5).
    """

    def run(claim: Claimed) -> RunResult:
        metadata = (("VAULT_PR", str(claim.pr)),) if claim.pr is not None else ()
        return runner.execute(execution_request(claim.action, claim.formula, metadata))

    def isolated(claim: Claimed) -> RunResult | None:
        try:
            return run(claim)
        except Exception:
            log.exception("%s: execution raised; it stays claimed", claim.action.id)
            return None

    if not claims:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, max_concurrency), thread_name_prefix="vault-run"
    ) as pool:
        results = list(pool.map(isolated, claims))
    checkpoint("executed")
    return results
