"""``vault audit verify``: walk the base branch and check every record (ADR 0021).

The chain and the pairing of claims with outcomes (``checks.py``), each
record's decision replayed at the commits it names (``replay.py``), and, with a
forge, the anchors: the hash each result's PR comment carries.
"""

from __future__ import annotations

import re
from datetime import datetime

from opsvault.audit.breaks import AuditReport, Break, BreakKind
from opsvault.audit.checks import check_accounting, check_chain, result_records
from opsvault.audit.history import History, read_history
from opsvault.audit.memo import remembering
from opsvault.audit.replay import Replayer
from opsvault.dispatcher.chain import CLAIM_SUFFIX, is_hash
from opsvault.dispatcher.records import Outcome, ResultRecord
from opsvault.errors import OpsvaultError
from opsvault.git.base import OpsRepo
from opsvault.layout import RUNNING
from opsvault.ports import Forge

# Results whose PR comment carries their hash (tick: the result and done comments).
ANCHORED = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.DONE})
_ANCHOR = re.compile(r"record `(sha256:[0-9a-f]{64})`")


def result_marker(action_id: str) -> str:
    """Return the hidden marker of the PR comment announcing *action_id*'s result."""
    return f"<!-- opsvault:result:{action_id} -->"


def anchor_text(digest: str) -> str:
    """Return how a result comment names its record's hash (the anchor outside the repo)."""
    return f"record `{digest}`"


def verify(
    repo: OpsRepo,
    branch: str,
    *,
    since: datetime | None = None,
    forge: Forge | None = None,
    identity: str | None = None,
    commit: str | None = None,
) -> AuditReport:
    """Return every break in the records of *branch*; ``report.ok`` when there is none.

    *commit* is the branch's commit when the caller knows it (a fetched remote
    branch), else *branch* is resolved in *repo*. *forge*, when given, answers
    what git cannot (team membership, reviews, the PR comments that anchor
    results); *identity* is the dispatcher's forge user.
    """
    repo = remembering(repo)
    main = commit or repo.resolve(branch)
    history = read_history(repo, main, since)
    report = AuditReport(
        branch,
        main,
        commits=len(history.steps),
        since=since.isoformat() if since else None,
    )
    check_chain(history, report)
    check_accounting(
        history, _open_at_start(repo, history), _claimed(repo, main), report
    )
    replayer = Replayer(repo, history.first_parents, identity, forge)
    for step, w in result_records(history):
        assert w.record is not None
        replayer.replay(step.info.id, w.path, w.record, report)
    if forge is not None:
        check_anchors(history, forge, identity, report)
    return report


def _claimed(repo: OpsRepo, commit: str) -> frozenset[str]:
    return frozenset(
        path.rsplit("/", 1)[1].removesuffix(CLAIM_SUFFIX)
        for path in repo.list_files(commit, RUNNING)
        if path.endswith(CLAIM_SUFFIX)
    )


def _open_at_start(repo: OpsRepo, history: History) -> frozenset[str]:
    if not history.truncated or not history.steps:
        return frozenset()
    first = history.steps[0].info
    return _claimed(repo, first.parents[0]) if first.parents else frozenset()


def check_anchors(
    history: History, forge: Forge, identity: str | None, report: AuditReport
) -> None:
    """Compare each result's hash with the one its PR comment carries (the newest result per PR and id)."""
    newest: dict[tuple[int, str], tuple[str, str, str]] = {}
    for step, w in result_records(history):
        record = w.record
        if (
            isinstance(record, ResultRecord)
            and record.pr is not None
            and record.outcome in ANCHORED
            and record.chain_prev is not None
        ):
            newest[(record.pr, record.id)] = (step.info.id, w.path, w.hash)
    comments: dict[int, list[tuple[str, str]]] = {}
    for (pr, action_id), (commit, path, digest) in sorted(newest.items()):
        if pr not in comments:
            try:
                comments[pr] = [(c.author, c.body) for c in forge.fetch_comments(pr)]
            except OpsvaultError as exc:
                if exc.exit_code == 75:
                    raise
                comments[pr] = []
        anchored = _anchor(comments[pr], result_marker(action_id), identity)
        report.anchors += 1
        if anchored is None:
            report.warnings.append(
                Break(
                    BreakKind.ANCHOR,
                    commit,
                    path,
                    f"PR #{pr} has no result comment naming a record hash",
                )
            )
        elif anchored != digest:
            report.breaks.append(
                Break(
                    BreakKind.ANCHOR,
                    commit,
                    path,
                    f"PR #{pr}'s result comment anchors {anchored}; the record hashes to {digest}",
                )
            )


def _anchor(
    comments: list[tuple[str, str]], marker: str, identity: str | None
) -> str | None:
    found = None
    for author, body in comments:
        if marker not in body:
            continue
        if identity is not None and author.lower() != identity.lower():
            continue  # only the dispatcher's own comment anchors anything
        hashes = _ANCHOR.findall(body)
        if hashes and is_hash(hashes[-1]):
            found = hashes[-1]
    return found
