"""Read the records the base branch's first-parent history wrote, oldest first (ADR 0021).

One pass over the history: for each first-parent commit, what it did to the
record files (``dispatcher/chain.py``: claims and results) and to
``vault/actions/``, against its first parent. Everything ``verify`` judges is
read here; nothing is trusted yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsvault.dispatcher.chain import (
    chain_head,
    is_claim_path,
    is_record_path,
    parse_chain_trailer,
    record_hash,
)
from opsvault.dispatcher.records import (
    ClaimRecord,
    ResultRecord,
    parse_claim,
    parse_record,
)
from opsvault.errors import InvalidFileError
from opsvault.git.base import CommitInfo, OpsRepo
from opsvault.layout import ACTIONS
from opsvault.policy.change import ChangeKind

MAX_HISTORY = 10_000_000  # first-parent commits: the whole history, in practice


@dataclass(frozen=True, slots=True)
class Written:
    """One record as a commit wrote it: where, its bytes' hash, and the record (None: unreadable)."""

    commit: str
    path: str
    hash: str
    record: ClaimRecord | ResultRecord | None
    problem: str = ""  # why it is unreadable
    modified: bool = False  # the path held another record before

    @property
    def is_claim(self) -> bool:
        return is_claim_path(self.path)

    @property
    def action_id(self) -> str | None:
        return self.record.id if self.record is not None else None


@dataclass(frozen=True, slots=True)
class CommitRecords:
    """One first-parent commit and what it did to records and actions."""

    info: CommitInfo
    written: tuple[Written, ...]  # in path order: the chain's order
    deleted: tuple[str, ...]  # record paths removed
    actions_added: tuple[str, ...]  # vault/actions/*.toml added
    trailer: str | None  # its Vault-Chain head, if it names one


@dataclass(slots=True)
class History:
    """The steps of the walked history (oldest first), and the commit the chain continues from."""

    main: str
    steps: list[CommitRecords] = field(default_factory=list)
    # With --since: the head named by the newest records commit before the window.
    head_before: str | None = None
    truncated: bool = False  # the walk stopped at --since
    first_parents: frozenset[str] = frozenset()


def _read(repo: OpsRepo, commit: str, path: str, modified: bool) -> Written:
    content = repo.read_file(commit, path) or b""
    digest = record_hash(content)
    try:
        record: ClaimRecord | ResultRecord = (
            parse_claim(content, path)
            if is_claim_path(path)
            else parse_record(content, path)
        )
    except InvalidFileError as exc:
        return Written(commit, path, digest, None, str(exc), modified)
    return Written(commit, path, digest, record, "", modified)


def _step(repo: OpsRepo, info: CommitInfo) -> CommitRecords:
    if not info.parents:
        return CommitRecords(info, (), (), (), parse_chain_trailer(info.message))
    written: list[Written] = []
    deleted: list[str] = []
    actions: list[str] = []
    for change in repo.changed_files(info.parents[0], info.id):
        renamed = change.kind is ChangeKind.RENAMED and change.old_path is not None
        if renamed and is_record_path(change.old_path or ""):
            deleted.append(change.old_path or "")
        path = change.path
        if change.kind is ChangeKind.DELETED:
            if is_record_path(path):
                deleted.append(path)
            continue
        if is_record_path(path):
            written.append(
                _read(repo, info.id, path, change.kind is ChangeKind.MODIFIED)
            )
        elif (
            path.startswith(f"{ACTIONS}/")
            and path.endswith(".toml")
            and change.kind is not ChangeKind.MODIFIED
        ):
            actions.append(path)
    written.sort(key=lambda w: w.path)
    return CommitRecords(
        info,
        tuple(written),
        tuple(sorted(deleted)),
        tuple(sorted(actions)),
        parse_chain_trailer(info.message),
    )


def read_history(repo: OpsRepo, main: str, since: datetime | None = None) -> History:
    """Return the first-parent history of *main*, oldest first; with *since*, only from then on.

    With *since*, commits older than it are not read, and the chain continues
    from the head the newest older records commit names (its ``Vault-Chain``
    line): what came before the window is taken as it says.
    """
    ids = repo.log_first_parent(main, MAX_HISTORY)
    history = History(main, first_parents=frozenset(ids))
    infos: list[CommitInfo] = []
    limit = since.timestamp() if since is not None else None
    for commit in ids:
        info = repo.commit_info(commit)
        if limit is not None and info.time < limit:
            history.truncated = True
            history.head_before = chain_head(repo, info.id)
            break
        infos.append(info)
    history.steps = [_step(repo, info) for info in reversed(infos)]
    return history
