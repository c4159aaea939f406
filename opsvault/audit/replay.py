"""Replay each record's decision at the commits it names (ADR 0021).

For a record of a merged action: its merge commit is on the base branch's
first-parent history, with the recorded policy commit as first parent and the
classified head as second; a dispatcher merge lands exactly its
``Vault-Classified`` change (``integrity.check_merge``); re-classified with the
policy and formulas at the policy commit (``changes.classify_landed``, as the
fire phase does), the change has the recorded tier; the action's bytes are
the merged ones; the formula hashes as recorded; and for what was claimed or
done, the merger was eligible: with a forge, the fire phase's own judgement
(``provenance.establish`` then ``state.verify_merge``); without one, the
policy's roles alone (``provenance.roles_of``, ``state.may_merge``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from opsvault.audit.breaks import AuditReport, Break, BreakKind
from opsvault.changes import classify_landed
from opsvault.dispatcher.chain import is_claim_path
from opsvault.dispatcher.claims import builtin_formula_sha
from opsvault.dispatcher.integrity import MergeMismatch, check_merge, parse_mark
from opsvault.dispatcher.provenance import Provenance, contributors, establish, roles_of
from opsvault.dispatcher.records import ClaimRecord, Outcome, ResultRecord
from opsvault.dispatcher.state import MergeFacts, approval_rule, verify_merge
from opsvault.errors import GitError, OpsvaultError
from opsvault.git.base import OpsRepo
from opsvault.layout import FORMULAS, POLICY, action_path, formula_path
from opsvault.policy.classify import BaseState, ChangeVerdict
from opsvault.ports import Forge
from opsvault.snapshot import CommitSnapshot, UsedIds, load_base_state

_Found = Callable[[BreakKind, str], None]

# Records whose action was claimed or recorded done: its merger approved it.
APPROVED = frozenset(
    {
        Outcome.SUCCEEDED,
        Outcome.FAILED,
        Outcome.TIMEOUT,
        Outcome.INTERRUPTED,
        Outcome.DONE,
    }
)


@dataclass(slots=True)
class _Merge:
    """A merge commit, replayed once for all the records that name it."""

    problems: list[tuple[BreakKind, str]]
    verdict: ChangeVerdict | None = None
    base: BaseState | None = None
    eligible: dict[tuple[str, str | None], str | None] = field(default_factory=dict)


@dataclass(slots=True)
class Replayer:
    """Replays records against *repo*; *forge* (optional) answers what git cannot."""

    repo: OpsRepo
    first_parents: frozenset[str]
    identity: str | None = None
    forge: Forge | None = None
    _merges: dict[tuple[str, str | None, str | None], _Merge] = field(
        default_factory=dict
    )
    _bases: dict[object, BaseState] = field(default_factory=dict)
    _known: dict[str, int] = field(default_factory=dict)

    def replay(
        self,
        commit: str,
        path: str,
        record: ClaimRecord | ResultRecord,
        report: AuditReport,
    ) -> None:
        """Add to *report* every way *record* (written by *commit* at *path*) does not replay."""
        if record.merge_commit is None or record.pr is None:
            return  # nothing was merged: an unmerged PR's record, or no provenance
        report.replayed += 1
        merge = self._merge(record)

        def found(kind: BreakKind, detail: str) -> None:
            report.breaks.append(Break(kind, commit, path, detail))

        for kind, detail in merge.problems:
            found(kind, detail)
        if merge.verdict is None or merge.base is None:
            return
        if merge.verdict.tier.label != record.tier:
            found(
                BreakKind.TIER,
                f"recorded {record.tier} tier; re-classified at "
                f"{record.policy_commit}, the merge is {merge.verdict.tier.label}",
            )
        self._action(record, found)
        self._formula(record, found)
        if is_claim_path(path) or (
            isinstance(record, ResultRecord) and record.outcome in APPROVED
        ):
            refusal = self._eligible(record, merge)
            if refusal is not None:
                found(
                    BreakKind.APPROVER,
                    f"{record.approver!r} was not eligible to approve it under the "
                    f"policy at {record.policy_commit}: {refusal}",
                )

    def _merge(self, record: ClaimRecord | ResultRecord) -> _Merge:
        assert record.merge_commit is not None
        key = (record.merge_commit, record.policy_commit, record.head_commit)
        if key not in self._merges:
            self._merges[key] = self._replay_merge(record)
        return self._merges[key]

    def _replay_merge(self, record: ClaimRecord | ResultRecord) -> _Merge:
        merge = record.merge_commit
        assert merge is not None
        if merge not in self.first_parents:
            return _Merge(
                [
                    (
                        BreakKind.HISTORY,
                        f"its merge commit {merge} is not on the base branch's "
                        "first-parent history",
                    )
                ]
            )
        info = self.repo.commit_info(merge)
        if len(info.parents) != 2 or (record.policy_commit, record.head_commit) != (
            info.parents[0],
            info.parents[1],
        ):
            return _Merge(
                [
                    (
                        BreakKind.HISTORY,
                        f"its merge commit {merge[:12]} has parents {list(info.parents)!r}, "
                        f"not (policy {record.policy_commit}, head {record.head_commit})",
                    )
                ]
            )
        problems: list[tuple[BreakKind, str]] = []
        mark = parse_mark(info.message)
        if mark is not None:
            mismatch = check_merge(self.repo, merge, info.parents[1], mark.pr)
            if mismatch is not None:
                problems.append((BreakKind.MERGE, mismatch.render()))
        base = self._base(info.parents[0])
        verdict = classify_landed(self.repo, info.parents[0], merge, base)
        return _Merge(problems, verdict, base)

    def _base(self, commit: str) -> BaseState:
        """Return the base state at *commit*, parsing a policy and formulas only once per content."""
        snapshot = CommitSnapshot(self.repo, commit)
        key = (
            self.repo.blob_id(commit, POLICY),
            tuple(
                (path, self.repo.blob_id(commit, path))
                for path in self.repo.list_files(commit, FORMULAS)
            ),
        )
        if key not in self._bases:
            self._bases[key] = load_base_state(snapshot)
        known = self._bases[key]
        return BaseState(known.policy, known.formulas, UsedIds(snapshot))

    def _action(self, record: ClaimRecord | ResultRecord, found: _Found) -> None:
        assert record.merge_commit is not None
        try:
            content = self.repo.read_file(record.merge_commit, action_path(record.id))
        except OpsvaultError as exc:
            found(BreakKind.ACTION, f"its action cannot be read at the merge: {exc}")
            return
        if content is None:
            found(
                BreakKind.ACTION, f"its merge commit holds no {action_path(record.id)}"
            )
        elif _sha256(content) != record.action_sha256:
            found(
                BreakKind.ACTION,
                f"the action merged hashes to {_sha256(content)}, "
                f"the record says {record.action_sha256}",
            )

    def _formula(self, record: ClaimRecord | ResultRecord, found: _Found) -> None:
        if record.formula is None or record.formula_sha256 is None:
            return
        assert record.policy_commit is not None
        try:
            source = self.repo.read_file(
                record.policy_commit, formula_path(record.formula)
            )
        except OpsvaultError as exc:
            found(BreakKind.FORMULA, f"its formula cannot be read: {exc}")
            return
        actual = (
            _sha256(source)
            if source is not None
            else builtin_formula_sha(record.formula)
        )
        if actual != record.formula_sha256:
            found(
                BreakKind.FORMULA,
                f"formula {record.formula!r} at {record.policy_commit[:12]} hashes to "
                f"{actual}, the record says {record.formula_sha256}",
            )

    def _eligible(
        self, record: ClaimRecord | ResultRecord, merge: _Merge
    ) -> str | None:
        """Return why the recorded merger was not eligible, or None when they were."""
        key = (record.approver or "", record.id)
        if key not in merge.eligible:
            merge.eligible[key] = (
                self._judge_with_forge(record)
                if self.forge is not None
                else self._judge_offline(record, merge)
            )
        return merge.eligible[key]

    def _judge_with_forge(self, record: ClaimRecord | ResultRecord) -> str | None:
        assert self.forge is not None and record.merge_commit and record.pr
        self._known[record.merge_commit] = record.pr
        identity = self.identity or record.dispatcher or ""
        try:
            found = establish(
                self.repo,
                self.forge,
                record.merge_commit,
                action_path(record.id),
                identity,
                self._known,
                {action_path(record.id): record.merge_commit},
            )
        except (GitError, OpsvaultError) as exc:
            if exc.exit_code == 75:
                raise
            return f"its provenance cannot be established: {exc}"
        if not isinstance(found, Provenance):
            why = "merge mismatch" if isinstance(found, MergeMismatch) else found
            return f"no eligible merge accounts for it ({why})"
        if record.approver is not None and found.pull.merged_by != record.approver:
            return f"the forge says {found.pull.merged_by!r} merged it"
        reason = verify_merge(found.facts, found.base.policy)
        if reason is not None:
            return str(reason)
        return _same_rule(record, approval_rule(found.facts, found.base.policy))

    def _judge_offline(
        self, record: ClaimRecord | ResultRecord, merge: _Merge
    ) -> str | None:
        assert merge.verdict is not None and merge.base is not None
        approver = record.approver
        if approver is None:
            return "the record names no approver"
        policy = merge.base.policy
        verdict = merge.verdict
        roles = roles_of(
            approver,
            record.proposer or "",
            self.identity or record.dispatcher or "",
            policy,
            _NO_TEAMS,
            contributors(
                self.repo, record.policy_commit or "", record.head_commit or ""
            ),
        )
        facts = MergeFacts(
            tier=verdict.tier,
            protected=verdict.protected,
            refused=verdict.refused,
            merger=approver,
            merger_roles=roles,
            proposer=record.proposer or "",
            pr_created_at=None,
            merged_at=None,
            head_matches=True,
            blob_matches=True,
        )
        rule = approval_rule(facts, policy)
        if rule is None:
            return f"roles {sorted(roles)} may not merge a {verdict.tier.label} change"
        return _same_rule(record, rule)


def _same_rule(record: ClaimRecord | ResultRecord, rule: str | None) -> str | None:
    """Return how the recorded rule differs from the replayed one (None: the same, or none recorded)."""
    if record.approver_rule is None or record.approver_rule == rule:
        return None
    return f"the record says {record.approver_rule!r}; replayed, the rule is {rule!r}"


class _NoTeams:
    """Offline: nobody is known to be in any team (team-based roles need the forge)."""

    def is_team_member(self, team: str, user: str) -> bool:
        return False


_NO_TEAMS: Forge = _NoTeams()  # type: ignore[assignment]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
