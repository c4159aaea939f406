"""The composition of one running opsvault: settings and the adapters behind each port.

Built by the composition roots (``cli`` and ``dispatcher.service``) with
``config.build_app``; passed down explicitly, never held in a module global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opsvault.dispatcher.nudges import Nudges

if TYPE_CHECKING:
    from opsvault.config import Settings
    from opsvault.dispatcher.sandbox import SandboxStatus
    from opsvault.git.base import OpsRepo
    from opsvault.ports import Forge, Mainline, Notifier, Runner


def _no_checkpoint(name: str) -> None:
    return None


def _as_is(text: str) -> str:
    return text


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class App:
    settings: Settings
    forge: Forge
    repo: OpsRepo
    mainline: Mainline
    runner: Runner
    notifier: Notifier
    state_dir: Path
    identity: (
        str  # the dispatcher's own forge user: it merges low tier and writes records
    )
    # Called with a name at each step between claim and result ("claimed", "executed",
    # "recorded"); the exactly-once tests kill the process there. A no-op otherwise.
    checkpoint: Callable[[str], None] = field(default=_no_checkpoint)
    # Replaces every known secret value and the forge token in text the dispatcher
    # records (comments, notifications, reports, result records); a
    # secrets.Redactor, refreshed each tick, in a built App.
    redact: Callable[[str], str] = field(default=_as_is)
    # Whether steps run sandboxed, as decided at start (None: not decided, so not).
    sandbox: SandboxStatus | None = None
    # The wall clock. A tick measures how long it has run with it (claim deadlines
    # count from the claim commit, invariant I8); tests replace it to slow a tick down.
    clock: Callable[[], datetime] = field(default=_utcnow)
    # PRs webhooks said changed; the service wakes the tick (docs/forgejo.md "Webhook")
    nudges: Nudges = field(default_factory=Nudges)
