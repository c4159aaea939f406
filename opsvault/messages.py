"""What the dispatcher hands its own ports and gets back (``opsvault.ports``).

``Runner.execute`` takes an ``ExecutionRequest`` and returns a ``RunResult``;
``Notifier.notify`` delivers a ``Notification``. Plain values: this module
imports nothing of opsvault, so the ports module can name them without
reaching into the dispatcher (the forge port's values are in forge/types.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    run: tuple[str, ...]  # argv template, see opsvault.vault.placeholders


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    action_id: str
    formula: str
    steps: tuple[StepSpec, ...]
    params: tuple[tuple[str, str], ...]  # scalar params rendered to strings
    list_params: tuple[tuple[str, tuple[str, ...]], ...]
    # Names declared by the formula; values come from a SecretSource.
    secrets: tuple[str, ...]
    timeout_seconds: float
    output_limit: int = 64 * 1024  # bytes of output tail kept
    # Extra VAULT_* env, e.g. ("VAULT_PR", "12").
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RunResult:
    # how the execution ended: a records.Outcome value (succeeded, failed, timeout)
    outcome: str
    reason: str  # a ReasonCode value (the runner section of it)
    exit_code: int | None  # of the last step run; negative: killed by that signal
    failed_step: str | None
    started_at: float  # wall time, unix seconds, from the runner's clock
    ended_at: float
    output_tail: str  # redacted, capped, decoded with errors="replace"
    sandbox: str = ""  # "bwrap" or "none" when steps were started; "" otherwise


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing people should hear about; ``event`` is one of EVENTS."""

    event: str
    title: str
    body: str
    tier: str | None = None
    url: str = ""  # link to the PR, if any
    action_ids: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()  # eligible approvers (users, org/team)
