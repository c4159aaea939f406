"""What ``vault audit verify`` found: each break with its commit and record (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class BreakKind(StrEnum):
    """What is wrong with the record (docs/security.md "What the audit proves")."""

    CHAIN = "chain"  # a record does not name the hash of the record before it
    # A record names another commit than its push was based on.
    CHAIN_BASE = "chain-base"
    UNCHAINED = "unchained"  # a record after the chain started carries no link
    TRAILER = "trailer"  # a records commit names another head than its last record
    UNREADABLE = "unreadable"  # a record that is not a record
    MERGED_RECORD = "record-by-merge"  # a record reached the base branch in a merge
    REWRITTEN = "record-rewritten"  # a result record changed after it was written
    DELETED = "record-deleted"  # a result record removed from the base branch
    HISTORY = "history"  # a recorded commit is not where the record says
    TIER = "tier"  # re-classified at the recorded commits, the tier differs
    ACTION = "action"  # the action's bytes are not the ones merged
    FORMULA = "formula"  # the formula at the policy commit hashes differently
    APPROVER = "approver"  # the approver was not eligible under that policy
    MERGE = (
        "merge-integrity"  # the merge's first-parent diff is not the classified change
    )
    DIRECT_PUSH = "direct-push"  # an action reached the base branch without a merge
    NO_CLAIM = "no-claim"  # an executed action has no claim before its result
    NO_OUTCOME = "no-outcome"  # a claim ended without a result
    ANCHOR = "anchor"  # a PR comment anchors another hash than the record's


@dataclass(frozen=True, slots=True)
class Break:
    """One finding: its kind, the commit and record path it is about, and what is wrong."""

    kind: BreakKind
    commit: str
    path: str | None
    detail: str

    def render(self) -> str:
        where = f"{self.commit[:12]}" + (f" {self.path}" if self.path else "")
        return f"{where}: {self.kind}: {self.detail}"

    def data(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "commit": self.commit,
            "path": self.path,
            "detail": self.detail,
        }


@dataclass(slots=True)
class AuditReport:
    """The verdict of one walk over the base branch."""

    branch: str
    main: str
    commits: int = 0
    records: int = 0
    chained: int = 0
    pre_chain: int = 0  # records written before the chain started (ADR 0021)
    chain_start: str | None = None  # the commit of the genesis record
    head: str | None = None  # the hash of the last record
    replayed: int = 0  # records whose decision was replayed
    pending: int = 0  # claims still open on the tip
    anchors: int = 0  # PR comment anchors compared
    since: str | None = None
    breaks: list[Break] = field(default_factory=list)
    warnings: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def data(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "commit": self.main,
            "since": self.since,
            "commits": self.commits,
            "records": self.records,
            "chained": self.chained,
            "pre_chain": self.pre_chain,
            "chain_start": self.chain_start,
            "head": self.head,
            "replayed": self.replayed,
            "pending_claims": self.pending,
            "anchors": self.anchors,
            "breaks": [b.data() for b in self.breaks],
            "warnings": [w.data() for w in self.warnings],
        }
