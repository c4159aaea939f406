"""The ports: what the product needs from the world, as protocols only.

Adapters live apart from them: ``Forge`` in ``opsvault/forge/`` (``ForgejoClient``
over HTTP, ``LocalForge`` over a local ops repo), ``Mainline`` in
``opsvault/git/mainline.py``, ``Runner`` in ``opsvault/dispatcher/runner.py``,
``Notifier`` in ``opsvault/dispatcher/notify.py``, ``SecretSource`` in
``opsvault/dispatcher/secrets.py``. The value types the ports speak are in
``opsvault/forge/types.py`` and ``opsvault/messages.py`` (and
``policy.model.Sink``); this module imports nothing else, so no adapter is
reachable from it.
``tests/forge/test_forge_conformance.py`` runs one suite against both forges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from opsvault.forge.types import (
    BranchProtection,
    Comment,
    CommitStatus,
    Issue,
    Label,
    ListState,
    MergeResult,
    MergeStyle,
    Proposal,
    PullRequest,
    Review,
    TimelineEvent,
)
from opsvault.messages import ExecutionRequest, Notification, RunResult
from opsvault.policy.model import Sink


class Forge(Protocol):
    """The forge calls opsvault makes; one instance serves one ops repository.

    Exactly the calls the product makes (adapters may offer more, for their own
    tests and tools). Every method raises only :class:`opsvault.errors.ForgeError`
    subclasses for expected failures: ``ForgeAuthError`` (credentials or
    privilege), ``ForgeNotFound``, ``ForgeConflict`` (the state moved under us,
    e.g. a head that no longer matches), ``ForgeUnavailable`` (try again on the
    next tick).
    """

    def whoami(self) -> str:
        """Return the user this forge acts as (the token's login, locally the acting user)."""
        ...

    @property
    def requests_made(self) -> int:
        """How many requests this forge has sent so far (the tick reports the difference).

        An adapter that sends none (local mode) returns 0.
        """
        ...

    def close(self) -> None:
        """Release what the adapter holds (connection pool); the forge is unusable after."""
        ...

    def fetch_pull_requests(
        self,
        state: ListState = ListState.OPEN,
        *,
        updated_since: datetime | None = None,
    ) -> list[PullRequest]:
        """Return PRs in *state*, most recently updated first.

        With *updated_since*, stop at the first PR updated before it (a
        watermark), so an idle tick costs a constant number of requests.
        """
        ...

    def fetch_pull_request(self, number: int) -> PullRequest:
        """Return PR *number*; raise ``ForgeNotFound`` if there is none."""
        ...

    def fetch_file(self, path: str, ref: str) -> bytes:
        """Return the bytes of *path* at *ref* (branch or commit SHA).

        Raise ``ForgeNotFound`` if *ref* has no such file.
        """
        ...

    def fetch_reviews(self, number: int) -> list[Review]:
        """Return every visible review of PR *number*, oldest first."""
        ...

    def fetch_comments(self, number: int) -> list[Comment]:
        """Return every comment on the conversation of PR/issue *number*, oldest first."""
        ...

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        """Return the comments and label events of PR/issue *number*, oldest first.

        Other kinds of timeline entries are left out. Label events name the
        user who added or removed the label (the hold of docs/lifecycle.md is
        derived from them, never from the label's presence alone).
        """
        ...

    def create_comment(self, number: int, body: str) -> Comment:
        """Post a new comment on PR/issue *number*."""
        ...

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        """Keep exactly one comment of ours carrying *marker* on *number*.

        Edit our comment whose body contains *marker* (only if its body differs),
        else post *body*. *marker* is a hidden HTML comment like
        ``<!-- opsvault:tier -->`` and is added to *body* if missing.
        Comments by other users never match, even if they carry the marker.
        """
        ...

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        """Return the repository label *name*, creating it if it is missing."""
        ...

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        """Add existing labels *names* to *number*; return the resulting labels."""
        ...

    def remove_label(self, number: int, name: str) -> None:
        """Remove label *name* from *number*; absent labels are ignored."""
        ...

    def set_commit_status(self, sha: str, status: CommitStatus) -> None:
        """Publish *status* on commit *sha*; the latest status per context wins."""
        ...

    def approve(self, number: int, head_sha: str, body: str = "") -> Review:
        """Approve PR *number* at *head_sha*."""
        ...

    def merge(
        self,
        number: int,
        head_sha: str,
        *,
        style: MergeStyle = MergeStyle.MERGE,
        message: str = "",
    ) -> MergeResult:
        """Merge PR *number* only if its head is still *head_sha*.

        Never merges twice: if an earlier, ambiguous attempt already merged the PR
        at *head_sha*, return ``already_merged=True``. Raise ``ForgeConflict``
        when the head moved, the PR is closed, or the forge refuses the merge.
        """
        ...

    def close_pull_request(self, number: int) -> PullRequest:
        """Close PR *number* without merging; closing a closed PR is a no-op."""
        ...

    def open_proposal(self, proposal: Proposal) -> PullRequest:
        """Create the branch and commit of *proposal* and open its PR.

        Safe to call again after a failure: an existing branch with the same
        content, or an existing open PR for the branch, is reused.
        """
        ...

    def is_team_member(self, team: str, username: str) -> bool:
        """Return whether *username* is in *team*, written ``org/team``."""
        ...

    def fetch_issues(
        self, state: ListState = ListState.ALL, *, updated_since: datetime | None = None
    ) -> list[Issue]:
        """Return issues (not PRs) in *state*, optionally only those updated since."""
        ...

    def fetch_branch_protection(self, branch: str) -> BranchProtection | None:
        """Return the protection rule named *branch*, or None if there is none."""
        ...


class Mainline(Protocol):
    """The ops repo's base branch: read it, and move it by compare-and-swap."""

    @property
    def branch(self) -> str: ...

    def refresh(self) -> str:
        """Bring main up to date (fetch) and return its commit id."""
        ...

    def publish(self, new: str, expected_old: str) -> None:
        """Move main from *expected_old* to *new*; raise PushRejected if it was elsewhere."""
        ...

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        """Make commit *sha* (the head of PR *number*) available locally; return whether it is."""
        ...


class Runner(Protocol):
    """Execute one action's formula steps."""

    def execute(self, request: ExecutionRequest) -> RunResult:
        """Run *request* to completion and return what happened.

        Never raises for anything a step or the request does: failures,
        timeouts, missing secrets and bad placeholders are RunResults (see
        Reason). Secret values never appear in the returned output_tail.
        """
        ...


class Notifier(Protocol):
    """Deliver notifications to policy sinks."""

    def notify(self, sinks: Sequence[Sink], notification: Notification) -> list[str]:
        """Deliver *notification* to every sink; return the names of sinks that failed.

        Never raises for a delivery problem (unreachable sink, error status,
        missing token secret, unknown kind): those sinks are logged and returned.
        """
        ...

    def close(self) -> None:
        """Release what the notifier holds (its HTTP connection pool)."""
        ...


class SecretSource(Protocol):
    """Look up secret values by name."""

    def get(self, name: str) -> str | None:
        """Return the value of secret *name*, or None if this source does not have it.

        Raise RunnerError if *name* is not ``^[A-Z][A-Z0-9_]*$`` or the source
        refuses to read it (e.g. a file that resolves outside the directory).
        """
        ...

    def known(self) -> Mapping[str, str]:
        """Return every secret this source holds (name -> value), for redaction only.

        Entries that cannot be read or are not valid secret names are left out.
        """
        ...
