"""What the pull-request phase carries: its context, and what it hands the tick.

``PullContext`` is what every step of the phase reads (and the cache it
updates); ``PullsOutcome`` collects its decisions, the records of PRs that
never merged (``RecordIntent``) and the merges it made (``Landed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsvault.changes import (
    ChangeManifest,
)
from opsvault.dispatcher.cache import Cache
from opsvault.dispatcher.integrity import (
    MergeMismatch,
)
from opsvault.dispatcher.records import ResultRecord
from opsvault.dispatcher.report import Decision
from opsvault.git.base import OpsRepo
from opsvault.ports import Forge, Mainline, Notifier


@dataclass(frozen=True, slots=True)
class RecordIntent:
    """An archive record for an action that never reached main (closed or expired PR).

    It is filed under ``stem`` = ``pr-<N>/<id>`` (``records.pull_record_stem``),
    a namespace no action id reaches. Only a rejection by someone eligible to
    approve the change (*reserves*) also files it under the id itself, which
    then can never be used again; a PR its proposer closed or that expired
    reserves nothing, so opening and closing a PR cannot squat another
    proposal's id (security review SR-4, ADR 0005). ``content`` is None when
    the file was not a valid action: only its hash is recorded then.
    """

    stem: str
    content: bytes | None
    record: ResultRecord
    reserves: bool = False


@dataclass(frozen=True, slots=True)
class Landed:
    """A merge the dispatcher just made, and the change it classified for it."""

    pr: int
    merge_commit: str
    head_commit: str
    manifest: ChangeManifest


@dataclass(slots=True)
class PullsOutcome:
    decisions: list[Decision] = field(default_factory=list)
    records: list[RecordIntent] = field(default_factory=list)
    merged: int = 0
    landed: list[Landed] = field(default_factory=list)
    mismatches: list[MergeMismatch] = field(default_factory=list)
    main: str | None = None  # main as the phase left it (re-read after each merge)


@dataclass(slots=True)
class PullContext:
    forge: Forge
    repo: OpsRepo
    mainline: Mainline
    notifier: Notifier
    identity: str
    now: datetime
    dry_run: bool
    cache: Cache
    labels_ready: bool = False
    approvals_needed: int | None = None
    nudged: frozenset[int] = frozenset()  # PRs a webhook said changed
