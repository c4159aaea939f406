"""The checks that need only the history: the chain, and claims against outcomes (pure).

``check_chain`` follows ADR 0021: after the genesis record, every record must
name the hash of the record before it and the commit its push was based on,
and every records commit must end with the head it leaves. ``check_accounting``
pairs claims with results: every executed action was claimed first, and every
claim ends in a result (or is still open on the tip).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from opsvault.audit.breaks import AuditReport, Break, BreakKind
from opsvault.audit.history import CommitRecords, History, Written
from opsvault.dispatcher.chain import GENESIS, is_result_path
from opsvault.dispatcher.records import ClaimRecord, Outcome, ResultRecord

# Outcomes that only follow a claim: the action was (or may have been) executed.
EXECUTED = frozenset(
    {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED}
)


def check_chain(history: History, report: AuditReport) -> None:
    """Add to *report* every break of the chain over *history*'s records, and its counts."""
    expected = history.head_before
    started = expected is not None
    for step in history.steps:
        merged = len(step.info.parents) > 1
        for w in step.written:
            report.records += 1
            if merged:
                report.breaks.append(_merged(step, w))
                continue
            expected, started = _link(step, w, expected, started, report)
        if step.written and not merged and started and step.trailer != expected:
            report.breaks.append(
                Break(
                    BreakKind.TRAILER,
                    step.info.id,
                    None,
                    f"the commit names {step.trailer or 'no'} chain head; "
                    f"its last record hashes to {expected}",
                )
            )
        for path in step.deleted:
            if is_result_path(path):
                report.breaks.append(
                    Break(
                        BreakKind.DELETED,
                        step.info.id,
                        path,
                        "a result record was removed; records are never deleted",
                    )
                )
    report.head = expected


def _merged(step: CommitRecords, w: Written) -> Break:
    return Break(
        BreakKind.MERGED_RECORD,
        step.info.id,
        w.path,
        "a record reached the base branch in a merge; only the dispatcher "
        "writes records, in commits of its own",
    )


def _link(
    step: CommitRecords,
    w: Written,
    expected: str | None,
    started: bool,
    report: AuditReport,
) -> tuple[str, bool]:
    """Check one record's link; return the head after it and whether the chain has started."""
    commit = step.info.id
    record = w.record
    if record is None:
        report.breaks.append(Break(BreakKind.UNREADABLE, commit, w.path, w.problem))
        return w.hash, started
    if w.modified and is_result_path(w.path):
        report.breaks.append(
            Break(
                BreakKind.REWRITTEN,
                commit,
                w.path,
                "a result record was changed after it was written",
            )
        )
    prev = record.chain_prev
    if prev is None:
        if started:
            report.breaks.append(
                Break(
                    BreakKind.UNCHAINED,
                    commit,
                    w.path,
                    "written after the chain started, but names no record before it",
                )
            )
        else:
            report.pre_chain += 1
        return w.hash, started
    if prev == GENESIS:
        if started:
            report.breaks.append(
                Break(
                    BreakKind.CHAIN,
                    commit,
                    w.path,
                    f"starts the chain again (genesis); the record before it hashes to {expected}",
                )
            )
        else:
            report.chain_start = commit
    elif not started or prev != expected:
        report.breaks.append(
            Break(
                BreakKind.CHAIN,
                commit,
                w.path,
                f"names {prev} as the record before it; "
                + (
                    f"the record before it hashes to {expected}"
                    if started
                    else "no chain started before it"
                ),
            )
        )
    parent = step.info.parents[0] if step.info.parents else None
    if record.chain_base != parent:
        report.breaks.append(
            Break(
                BreakKind.CHAIN_BASE,
                commit,
                w.path,
                f"says it was written on {record.chain_base}; its commit's parent is {parent}",
            )
        )
    report.chained += 1
    return w.hash, True


def check_accounting(
    history: History,
    open_at_start: Collection[str],
    open_at_tip: Collection[str],
    report: AuditReport,
) -> None:
    """Add a break for each executed result without a claim and each claim without an outcome.

    *open_at_start* are the ids claimed on the commit before the walked
    history (``--since``), *open_at_tip* those still claimed on the tip.
    """
    claims: dict[str, Written] = {action_id: _UNKNOWN for action_id in open_at_start}
    for step in history.steps:
        _direct_pushes(step, report)
        for w in step.written:
            record = w.record
            if isinstance(record, ClaimRecord):
                claims[record.id] = w
            elif isinstance(record, ResultRecord) and not _of_unmerged(w.path):
                claim = claims.pop(record.id, None)
                if claim is None and record.outcome in EXECUTED:
                    report.breaks.append(
                        Break(
                            BreakKind.NO_CLAIM,
                            step.info.id,
                            w.path,
                            f"{record.id!r} is recorded {record.outcome} but was never claimed",
                        )
                    )
    for action_id, w in sorted(claims.items()):
        if action_id in open_at_tip:
            report.pending += 1
        elif w is not _UNKNOWN:
            report.breaks.append(
                Break(
                    BreakKind.NO_OUTCOME,
                    w.commit,
                    w.path,
                    f"{action_id!r} was claimed, and its claim is gone without a result",
                )
            )


_UNKNOWN = Written("", "", "", None)


def _of_unmerged(path: str) -> bool:
    """Return whether a result is the record of an unmerged PR (``pr-<N>/``): never claimed."""
    return "/pr-" in path


def _direct_pushes(step: CommitRecords, report: AuditReport) -> None:
    if len(step.info.parents) != 1:
        return  # merges bring actions; the root commit is where the repo began
    report.breaks.extend(
        Break(
            BreakKind.DIRECT_PUSH,
            step.info.id,
            path,
            "an action was added to the base branch by a commit that merges no pull request",
        )
        for path in step.actions_added
    )


def result_records(history: History) -> Iterable[tuple[CommitRecords, Written]]:
    """Yield every readable record of *history* written by a commit of its own, oldest first."""
    for step in history.steps:
        if len(step.info.parents) > 1:
            continue
        for w in step.written:
            if w.record is not None:
                yield step, w
