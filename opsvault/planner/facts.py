"""Gather the planner's facts: issue states from the forge, vault facts from a snapshot.

The mapping steps (:func:`issue_states`, :func:`vault_facts`,
:func:`proposed_action_ids`) are pure and tested on their own. The rest is
shell: one issue listing per repository per run (``fetch_issue_states``), the
vault directories of a snapshot (``load_vault_facts``), and the actions that
open proposals add (``fetch_proposed_actions``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from opsvault.errors import ForgeNotFound, GitError
from opsvault.forge.types import Issue, ListState, PullRequest, PullState
from opsvault.git.base import OpsRepo
from opsvault.layout import ACTIONS as ACTIONS_DIR
from opsvault.layout import FIRED, REJECTED, RUNNING
from opsvault.layout import RECORD_DIRS as VAULT_DIRS
from opsvault.planner.model import IssueRef, IssueState, VaultFacts
from opsvault.policy.change import ChangeKind
from opsvault.ports import Forge, Mainline
from opsvault.snapshot import Snapshot, has_file

if TYPE_CHECKING:
    from opsvault.forge.client import ForgejoClient

log = logging.getLogger(__name__)


IssueLister = Callable[[str], Sequence[Issue] | None]
"""List every issue (not PR) of ``owner/repo``, open and closed; None if no such repo."""


# -- pure ------------------------------------------------------------------------------


def repo_of(ref: IssueRef, default_repo: str) -> str:
    """Return the ``owner/repo`` *ref* points into: its own, or *default_repo* for ``#N``."""
    return ref.repo if ref.repo is not None else default_repo


def issue_states(
    wanted: Iterable[IssueRef],
    default_repo: str,
    listings: Mapping[str, Sequence[Issue] | None],
) -> dict[IssueRef, IssueState]:
    """Return the state of every reference in *wanted* from per-repo issue *listings*.

    *listings* is keyed by lower-case ``owner/repo`` (forge names ignore case);
    a listing of None means the repository does not exist (or is invisible).
    A number absent from its repository's listing, or listed as a pull
    request, is MISSING. A reference whose repository was not listed at all
    is left out (unknown: it never causes a change).
    """
    by_number = {
        key: {i.number: i for i in listing or () if not i.is_pull}
        for key, listing in listings.items()
    }
    states: dict[IssueRef, IssueState] = {}
    for ref in wanted:
        key = repo_of(ref, default_repo).lower()
        if key not in by_number:
            continue
        issue = by_number[key].get(ref.number)
        if issue is None:
            states[ref] = IssueState.MISSING
        elif issue.state is PullState.CLOSED:
            states[ref] = IssueState.CLOSED
        else:
            states[ref] = IssueState.OPEN
    return states


def _action_id(path: str, directory: str, *, nested: bool) -> str | None:
    pure = PurePosixPath(path)
    parent = PurePosixPath(directory)
    if pure.suffix != ".toml" or parent not in pure.parents:
        return None
    if not nested and pure.parent != parent:
        return None
    return pure.stem


def vault_facts(
    files: Iterable[str],
    existing_paths: Iterable[str] = (),
    proposed: Iterable[str] = (),
) -> VaultFacts:
    """Return the vault facts that the repo-relative *files* of one snapshot show.

    Pending: ``vault/actions/<id>.toml`` plus the *proposed* ids (open
    proposals); running: ``vault/running/<id>.toml``; fired and rejected:
    ``<id>.toml`` at any depth below ``vault/fired`` and ``vault/rejected``.
    """
    listed = tuple(files)

    def ids(directory: str, nested: bool) -> frozenset[str]:
        found = (_action_id(p, directory, nested=nested) for p in listed)
        return frozenset(i for i in found if i is not None)

    return VaultFacts(
        pending=ids(ACTIONS_DIR, False) | frozenset(proposed),
        running=ids(RUNNING, False),
        fired=ids(FIRED, True),
        rejected=ids(REJECTED, True),
        existing_paths=frozenset(existing_paths),
    )


def proposed_action_ids(paths: Iterable[str]) -> frozenset[str]:
    """Return the ids of the action files among the paths a proposal adds or modifies."""
    found = (_action_id(p, ACTIONS_DIR, nested=False) for p in paths)
    return frozenset(i for i in found if i is not None)


def is_safe_path(path: str) -> bool:
    """Return whether *path* is a plain repo-relative path (no ``..``, not absolute)."""
    parts = path.split("/")
    return (
        path != ""
        and not path.startswith("/")
        and "\\" not in path
        and "\0" not in path
        and all(p not in ("", ".", "..") and p.lower() != ".git" for p in parts)
    )


# -- shell -----------------------------------------------------------------------------


def fetch_issue_states(
    wanted: Iterable[IssueRef], default_repo: str, list_issues: IssueLister
) -> dict[IssueRef, IssueState]:
    """Return the states of *wanted*, listing each repository's issues exactly once."""
    refs = tuple(wanted)
    listings: dict[str, Sequence[Issue] | None] = {}
    for ref in refs:
        repo = repo_of(ref, default_repo)
        if repo.lower() not in listings:
            listings[repo.lower()] = list_issues(repo)
    return issue_states(refs, default_repo, listings)


def load_vault_facts(
    snapshot: Snapshot, paths: Iterable[str], proposed: Iterable[str] = ()
) -> VaultFacts:
    """Return the vault facts of *snapshot*; *paths* are the marker paths to test for existence.

    A path exists when it names a file or a non-empty directory. Unsafe paths
    (absolute, ``..``) never exist.
    """
    files = [f for directory in VAULT_DIRS for f in snapshot.list_files(directory)]

    def exists(path: str) -> bool:
        path = path.rstrip("/")
        if not is_safe_path(path):
            return False
        return has_file(snapshot, path) or bool(snapshot.list_files(path))

    return vault_facts(files, (p for p in paths if exists(p)), proposed)


def fetch_proposed_actions(
    pulls: Iterable[PullRequest], mainline: Mainline, repo: OpsRepo, main: str
) -> frozenset[str]:
    """Return the action ids that the open *pulls* against main add or change.

    The diff is computed from git (the PR head is fetched through *mainline*),
    so it never lags behind a push the way the forge's file list can. A PR
    whose head cannot be fetched yet is skipped and logged.
    """
    found: set[str] = set()
    for pr in pulls:
        if pr.state is not PullState.OPEN or pr.base_ref != mainline.branch:
            continue
        if not mainline.fetch_pull_head(pr.number, pr.head_sha):
            log.info("PR #%d: head %s not fetchable yet", pr.number, pr.head_sha[:12])
            continue
        try:
            changed = repo.changed_files(main, pr.head_sha)
        except GitError as exc:  # unrelated history: not a proposal to main
            log.info("PR #%d: %s", pr.number, exc)
            continue
        found |= proposed_action_ids(
            c.path for c in changed if c.kind is not ChangeKind.DELETED
        )
    return frozenset(found)


class ForgeIssues:
    """One :data:`IssueLister` per run: the ops repo through its own forge, others by new clients.

    Clients this opens are closed by :meth:`close` (use it as a context manager).
    """

    def __init__(
        self,
        ops_repo: str,
        ops_forge: Forge,
        open_client: Callable[[str, str], ForgejoClient],
    ) -> None:
        self.ops_repo = ops_repo
        self.ops_forge = ops_forge
        self._open_client = open_client
        self._clients: list[ForgejoClient] = []

    def __call__(self, repo: str) -> list[Issue] | None:
        owner, _, name = repo.partition("/")
        try:
            if repo.lower() == self.ops_repo.lower():
                return self.ops_forge.fetch_issues(ListState.ALL)
            client = self._open_client(owner, name)
            self._clients.append(client)
            return client.fetch_issues(ListState.ALL)
        except ForgeNotFound:
            log.warning("%s: no such repository; its references count as missing", repo)
            return None

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def __enter__(self) -> ForgeIssues:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
