"""Turn a verified action and its formula into an ExecutionRequest, and its lock keys (pure)."""

from __future__ import annotations

from opsvault.messages import ExecutionRequest, StepSpec
from opsvault.policy.action import effective_params
from opsvault.vault.formula import Formula
from opsvault.vault.placeholders import render_argv
from opsvault.vault.request import Action


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
