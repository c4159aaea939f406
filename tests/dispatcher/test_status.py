from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsvault.cli.init import create_ops_repo, template_files
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    Outcome,
    ResultRecord,
    archive_paths,
    render_record,
)
from opsvault.dispatcher.status import Status, collect_status, recent_records
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import claim_path, running_path
from opsvault.snapshot import CommitSnapshot, DirSnapshot, Snapshot, load_base_state

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOOP = b'formula = "noop"\ncontext = "smoke test"\n'
DELETE_HOOK = (
    b'formula = "http-hook"\ncontext = "drop the cache"\nsecrets = ["HOOK_TOKEN"]\n'
    b'[params]\nurl = "https://deploy.example/hook"\nmethod = "DELETE"\n'
)


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def record_files(
    action_id: str,
    outcome: Outcome,
    when: datetime,
    **fields: object,
) -> dict[str, bytes]:
    action, result = archive_paths(outcome, action_id, when)
    record = ResultRecord(
        id=action_id,
        outcome=outcome,
        reason=fields.pop("reason", "ok"),  # type: ignore[arg-type]
        ended_at=when.isoformat(),
        **fields,  # type: ignore[arg-type]
    )
    return {action: NOOP, result: render_record(record)}


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    root = tmp_path / "ops"
    write(root, template_files())
    return root


def status_of(root: Path, recent: int = 20) -> Status:
    snapshot = DirSnapshot(root)
    return collect_status(snapshot, load_base_state(snapshot), NOW, recent)


def test_empty_vault_is_not_halted_and_idle(ops: Path) -> None:
    status = status_of(ops)
    assert not status.halted
    assert (status.waiting, status.running, status.recent) == ((), (), ())
    assert status.source == str(ops)


def test_halt_is_reported_with_its_first_line(ops: Path) -> None:
    write(ops, {"vault/HALT": b"\nincident 42: stop everything\nmore\n"})
    status = status_of(ops)
    assert status.halted
    assert status.halt_note == "incident 42: stop everything"


def test_waiting_actions_carry_their_tier_from_the_policy(ops: Path) -> None:
    write(
        ops,
        {
            "vault/actions/noop-20260310-1.toml": NOOP,
            "vault/actions/hook-20260310-1.toml": DELETE_HOOK,
            "vault/actions/broken-1.toml": b"formula = 3\n",
            "vault/actions/unknown-1.toml": b'formula = "nope"\ncontext = "x"\n',
        },
    )
    waiting = {w.id: w for w in status_of(ops).waiting}
    assert waiting["noop-20260310-1"].tier == "low"
    assert waiting["noop-20260310-1"].context == "smoke test"
    assert not waiting["noop-20260310-1"].refused
    assert waiting["hook-20260310-1"].tier == "high"  # the destructive-hook rule
    assert waiting["hook-20260310-1"].formula == "http-hook"
    assert waiting["broken-1"].tier is None
    assert waiting["broken-1"].refused
    assert waiting["unknown-1"].tier == "high"  # default_tier, and refused
    assert any("unknown formula" in p for p in waiting["unknown-1"].problems)


def test_running_shows_the_claim_and_marks_stale_claims(ops: Path) -> None:
    def claim(deadline: str) -> bytes:
        return json.dumps(
            {
                "dispatcher": "host-a",
                "claimed_at": "2026-03-10T11:00:00Z",
                "deadline": deadline,
            }
        ).encode()

    write(
        ops,
        {
            running_path("fresh-1"): NOOP,
            claim_path("fresh-1"): claim("2026-03-10T13:00:00Z"),
            running_path("stale-1"): NOOP,
            claim_path("stale-1"): claim("2026-03-10T11:30:00+00:00"),
            running_path("nodeadline-1"): NOOP,
            claim_path("nodeadline-1"): b'{"dispatcher": "host-b"}',
            running_path("lost-1"): NOOP,
        },
    )
    running = {r.id: r for r in status_of(ops).running}
    assert set(running) == {"fresh-1", "stale-1", "nodeadline-1", "lost-1"}
    assert running["fresh-1"].dispatcher == "host-a"
    assert running["fresh-1"].claimed_at == "2026-03-10T11:00:00Z"
    assert running["fresh-1"].deadline == "2026-03-10T13:00:00Z"
    assert not running["fresh-1"].stale
    assert running["stale-1"].stale
    assert running["nodeadline-1"].dispatcher == "host-b"
    assert not running["nodeadline-1"].stale
    assert running["lost-1"].problem == "no claim file"


def test_recent_records_are_newest_first_across_fired_and_rejected(ops: Path) -> None:
    write(
        ops,
        {
            **record_files(
                "a-1",
                Outcome.SUCCEEDED,
                datetime(2026, 3, 1, tzinfo=UTC),
                tier="low",
                approver="opsvault-bot",
                proposer="dev-bot",
                pr=4,
            ),
            **record_files(
                "b-1",
                Outcome.EXPIRED,
                datetime(2026, 3, 5, tzinfo=UTC),
                reason="deadline-passed",
            ),
            **record_files("c-1", Outcome.FAILED, datetime(2026, 2, 20, tzinfo=UTC)),
            **record_files("d-1", Outcome.DONE, datetime(2025, 11, 2, tzinfo=UTC)),
        },
    )
    recent = status_of(ops).recent
    assert [r.id for r in recent] == ["b-1", "a-1", "c-1", "d-1"]
    b, a = recent[0], recent[1]
    assert (b.outcome, b.reason, b.path) == (
        "expired",
        "deadline-passed",
        "vault/rejected/2026/03/b-1.result.json",
    )
    assert (a.outcome, a.tier, a.approver, a.proposer, a.pr) == (
        "succeeded",
        "low",
        "opsvault-bot",
        "dev-bot",
        4,
    )
    assert [r.id for r in status_of(ops, recent=2).recent] == ["b-1", "a-1"]


def test_malformed_records_are_shown_not_raised(ops: Path) -> None:
    write(
        ops,
        {
            "vault/fired/2026/03/x-1.toml": NOOP,
            "vault/fired/2026/03/x-1.result.json": b"{not json",
            "vault/fired/2026/03/y-1.toml": NOOP,
            running_path("r-1"): NOOP,
            claim_path("r-1"): b"[]",
        },
    )
    status = status_of(ops)
    problems = {r.id: r.problem for r in status.recent}
    assert problems == {"x-1": "unreadable result record", "y-1": "no result record"}
    assert status.running[0].problem == "unreadable claim file"


@pytest.mark.parametrize(
    "claim",
    [
        b'{"deadline": "2026-03-10T13:00:00"}',  # naive: not comparable with now
        b'{"deadline": "soon"}',
        b'{"attempt": "2"}',  # a field of the wrong type
        b'{"dispatcher": "host-a", "surprise": 1}',  # an unknown field
    ],
)
def test_status_reads_a_claim_as_the_dispatcher_does(ops: Path, claim: bytes) -> None:
    """A claim the dispatcher cannot read (claims.read_claim) is unreadable in status too."""
    from opsvault.dispatcher.claims import read_claim

    write(ops, {running_path("r-1"): NOOP, claim_path("r-1"): claim})
    assert read_claim(claim) is None
    assert status_of(ops).running[0].problem == "unreadable claim file"


@dataclass
class CountingSnapshot:
    inner: Snapshot
    listed: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.inner.label

    def read_file(self, path: str) -> bytes | None:
        return self.inner.read_file(path)

    def list_files(self, prefix: str) -> tuple[str, ...]:
        self.listed.append(prefix)
        return self.inner.list_files(prefix)

    def list_dirs(self, prefix: str) -> tuple[str, ...]:
        return self.inner.list_dirs(prefix)


def test_history_is_read_newest_month_first_and_never_walked_whole(ops: Path) -> None:
    files: dict[str, bytes] = {}
    for month in range(1, 4):
        for n in range(3):
            when = datetime(2026, month, 1 + n, tzinfo=UTC)
            files.update(record_files(f"m{month}-{n}", Outcome.SUCCEEDED, when))
    write(ops, files)
    snapshot = CountingSnapshot(DirSnapshot(ops))
    recent = recent_records(snapshot, NOW, limit=4)
    assert [r.id for r in recent] == ["m3-2", "m3-1", "m3-0", "m2-2"]
    assert "vault/fired" not in snapshot.listed
    assert "vault/fired/2026/02" in snapshot.listed
    assert "vault/fired/2026/01" not in snapshot.listed  # stopped once 4 were found
    assert "vault/fired/2026/04" in snapshot.listed  # one month ahead, for clock skew


def test_history_probe_is_bounded(ops: Path) -> None:
    snapshot = CountingSnapshot(DirSnapshot(ops))
    assert recent_records(snapshot, NOW, limit=5, history_months=12) == []
    assert len(snapshot.listed) == 2 * 13
    assert recent_records(snapshot, NOW, limit=0) == []


def test_commit_snapshot_reads_main_not_the_worktree(tmp_path: Path) -> None:
    root = tmp_path / "ops"
    create_ops_repo(root)
    repo = Pygit2OpsRepo.open(root)
    main = repo.resolve("main")
    who = Identity("t", "t@example.invalid")
    commit = repo.commit_files(
        main,
        {
            "vault/actions/noop-20260310-1.toml": NOOP,
            **record_files("a-1", Outcome.SUCCEEDED, datetime(2026, 3, 1, tzinfo=UTC)),
        },
        "add",
        who,
        when=0,
    )
    repo.update_ref("refs/heads/main", commit, main)
    write(root, {"vault/HALT": b"only in the worktree\n"})
    snapshot = CommitSnapshot(repo, commit)
    status = collect_status(snapshot, load_base_state(snapshot), NOW)
    assert not status.halted
    assert [w.id for w in status.waiting] == ["noop-20260310-1"]
    assert [r.id for r in status.recent] == ["a-1"]
    assert status.source == commit[:12]


def test_records_of_unmerged_prs_are_shown_with_who_rejected(ops: Path) -> None:
    from opsvault.layout import pull_record_stem

    when = datetime(2026, 3, 6, tzinfo=UTC)
    action, result = archive_paths(Outcome.REJECTED, pull_record_stem(7, "e-1"), when)
    record = ResultRecord(
        id="e-1",
        outcome=Outcome.REJECTED,
        reason=ReasonCode.CLOSED_UNMERGED,
        approver="alice",
        pr=7,
        ended_at=when.isoformat(),
    )
    write(ops, {action: NOOP, result: render_record(record)})
    [shown] = status_of(ops).recent
    assert (shown.id, shown.outcome, shown.approver, shown.pr, shown.path) == (
        "e-1",
        "rejected",
        "alice",
        7,
        "vault/rejected/2026/03/pr-7/e-1.result.json",
    )
