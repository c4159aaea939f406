"""The answer to a merge mismatch (I1, ADR 0004): refusal records and ``vault/HALT``, nothing fired."""

from __future__ import annotations

from opsvault.changes import change_manifest
from opsvault.dispatcher.fireplan import FireContext, FirePlan, archive
from opsvault.dispatcher.integrity import MergeMismatch
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    Outcome,
    ResultRecord,
    archive_paths,
    render_record,
    sha256,
)
from opsvault.dispatcher.report import Decision
from opsvault.errors import FileTooLargeError
from opsvault.git.base import OpsRepo
from opsvault.layout import ACTIONS, HALT, REJECTED
from opsvault.snapshot import CommitSnapshot, has_file
from opsvault.timefmt import render_iso


def plan_halt(ctx: FireContext, main: str, mismatches: list[MergeMismatch]) -> FirePlan:
    """Return the one commit answering merge mismatches: refusals, ``vault/HALT``, nothing fired.

    Each mismatched merge gets a ``merge-mismatch`` refusal record (filed as
    ``pr<N>-merge-<commit>``, a stem no action id can take), every action it
    added that still waits on main is refused with the same reason (so lifting
    the HALT does not fire it), and ``vault/HALT`` stops every dispatcher until
    an admin has looked (ADR 0004). Nothing is claimed in this commit. A
    mismatch whose record is already on main was dealt with (the HALT was
    lifted): its leftover actions are refused, but it does not halt again.
    """
    snapshot = CommitSnapshot(ctx.repo, main)
    plan = FirePlan(
        exists=lambda path: has_file(snapshot, path),
        mismatches=list(mismatches),
        planned_at=ctx.now,
    )
    lines = []
    for mismatch in mismatches:
        text = mismatch.render()
        _refuse_added_actions(ctx, snapshot, plan, mismatch, text)
        if mismatch_recorded(snapshot, mismatch):
            continue
        lines.append(f"- {text}")
        _, result_path = archive_paths(Outcome.REFUSED, mismatch.stem, ctx.now)
        plan.changes[result_path] = render_record(
            ResultRecord(
                id=mismatch.stem,
                outcome=Outcome.REFUSED,
                reason=ReasonCode.MERGE_MISMATCH,
                detail=text,
                ended_at=render_iso(ctx.now),
                dispatcher=ctx.identity,
                pr=mismatch.pr,
                merge_commit=mismatch.merge_commit,
            )
        )
        plan.decisions.append(Decision(ctx.branch, ReasonCode.MERGE_MISMATCH, text))
        plan.alerts.append((ReasonCode.MERGE_MISMATCH, f"vault halted: {text}"))
    if lines and not plan.exists(HALT):
        plan.changes[HALT] = (
            f"Halted by {ctx.identity} at {render_iso(ctx.now)}: merge-mismatch.\n"
            + "\n".join(lines)
            + f"\nNothing is merged or fired until an admin has checked {ctx.branch} "
            f"and merged a pull request deleting {HALT} (docs/operating.md).\n"
        ).encode()
    if lines:
        plan.decisions.append(
            Decision(
                ctx.branch,
                "halted",
                f"{HALT} written: a merge did not land as classified",
            )
        )
    return plan


def _refuse_added_actions(
    ctx: FireContext,
    snapshot: CommitSnapshot,
    plan: FirePlan,
    mismatch: MergeMismatch,
    text: str,
) -> None:
    for path in _added_actions(ctx.repo, mismatch.merge_commit):
        try:
            content = snapshot.read_file(path)
        except FileTooLargeError:
            content = None  # never read; it stays, and is refused again (I5)
        if content is None or path in plan.changes:
            continue
        action_id = path.rsplit("/", 1)[1].removesuffix(".toml")
        record = ResultRecord(
            id=action_id,
            outcome=Outcome.REFUSED,
            reason=ReasonCode.MERGE_MISMATCH,
            detail=text,
            action_sha256=sha256(content),
            dispatcher=ctx.identity,
            pr=mismatch.pr,
            merge_commit=mismatch.merge_commit,
        )
        archive(plan, path, action_id, content, record, ctx.now)
        plan.decisions.append(
            Decision(f"action:{action_id}", "refused", f"merge-mismatch: {text}")
        )
        plan.alerts.append(("refused", f"{action_id} was refused: merge-mismatch"))


def mismatch_recorded(snapshot: CommitSnapshot, mismatch: MergeMismatch) -> bool:
    """Return whether *snapshot* already holds the ``merge-mismatch`` record of *mismatch*."""
    return any(
        has_file(snapshot, f"{REJECTED}/{year}/{month}/{mismatch.stem}.result.json")
        for year in snapshot.list_dirs(REJECTED)
        for month in snapshot.list_dirs(f"{REJECTED}/{year}")
    )


def _added_actions(repo: OpsRepo, merge_commit: str) -> list[str]:
    parents = repo.commit_info(merge_commit).parents
    if not parents:
        return []
    return [
        path
        for path, _mode, blob in change_manifest(repo, parents[0], merge_commit).entries
        if blob is not None
        and path.startswith(f"{ACTIONS}/")
        and path.endswith(".toml")
        and path.count("/") == 2
    ]
