"""Every reason code the dispatcher records in a result (docs/lifecycle.md lists them).

One enum for all of them, so a record's ``reason`` is one of a known set and
the lifecycle doc is checked against this list (tests/dispatcher/test_lifecycle_doc.py).
The values are what records on main hold: never change one.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # how an execution ended (the runner's answer)
    OK = "ok"
    EXIT_NONZERO = "exit-nonzero"
    TIMEOUT = "timeout"
    SECRET_MISSING = "secret-missing"
    SPAWN_FAILED = "spawn-failed"
    BAD_PLACEHOLDER = "bad-placeholder"
    BAD_REQUEST = "bad-request"

    # an action that is not executed
    CLAIM_EXPIRED = "claim-expired"  # a dead dispatcher's claim, not re-run
    HUMAN_REQUEST_MERGED = "human-request-merged"
    EXPIRES_PASSED = "expires-passed"  # the action's own `expires` passed

    # refusals: an action reached main without the approval its tier needs
    NO_MERGE = "no-merge"  # reached main without a merge commit
    NO_PULL_REQUEST = "no-pull-request"  # a merge no pull request accounts for
    HEAD_MISMATCH = "head-mismatch"  # the merged head is not the PR's head
    # the blob on main differs from the merged one
    CHANGED_AFTER_MERGE = "changed-after-merge"
    INVALID = "invalid"  # the merged change does not validate against the base policy
    # merged together with a floor path, not by an admin
    PROTECTED_CHANGE = "protected-change"
    MERGED_BY_PROPOSER = "merged-by-proposer"
    MERGED_BY_BOT = "merged-by-bot"
    MERGER_NOT_ELIGIBLE = "merger-not-eligible"
    VETO_WINDOW_NOT_PASSED = "veto-window-not-passed"
    # the introducing commit is too far back to check
    PROVENANCE_UNKNOWN = "provenance-unknown"
    # the introducing merge did not add it as a new action (e.g. a merge restoring an old file)
    NOT_ADDED_BY_MERGE = "not-added-by-merge"
    # the dispatcher merged a medium change that a review asked to change (a veto)
    VETOED = "vetoed"
    # a dispatcher merge whose first-parent diff is not what was classified (I1, ADR 0004)
    MERGE_MISMATCH = "merge-mismatch"
    # a medium/high merge whose merger never approved the merged head (ADR 0008):
    # auto-merge, "mark as merged" and auto-detected merges carry no such proof
    MERGE_NOT_VOUCHED = "merge-not-vouched"
    # the dispatcher merged a medium change that was held (I3)
    HELD_AT_MERGE = "held-at-merge"

    # pull requests that never merged
    CLOSED_UNMERGED = "closed-unmerged"
    DEADLINE_PASSED = "deadline-passed"  # past the tier's deadline; closed
