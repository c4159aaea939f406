"""`vault audit verify` at 1,000 and 10,000 records: time per record, and the ratio.

Builds, with real git objects, the history a dispatcher leaves: batches of ten
low-tier actions, each proposed on a branch and merged with its
``Vault-Classified`` mark, then one commit claiming the ten and one recording
their results, every record rendered and chained as the tick does
(``dispatcher.chain.seal_commit``). Then times ``audit.verify.verify`` over the
whole history (offline: no forge), which re-reads every record, checks the
chain, pairs claims with results, re-classifies each merge at its recorded
policy commit and checks its integrity and approver.

Goal (issue 14): 10,000 records verified in under 10 s, and linear: the time
per record at 10,000 close to the time per record at 1,000. The history has
ten actions a day (about 300 records a month folder): a results commit's diff
reads its month folder, so the cost of a record grows with how many records
its month holds, not with the length of the history. The numbers are
printed, never asserted.

Run: .venv/bin/python benchmarks/audit.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsvault.audit.verify import verify  # noqa: E402
from opsvault.changes import change_manifest  # noqa: E402
from opsvault.dispatcher.chain import seal_commit  # noqa: E402
from opsvault.dispatcher.integrity import merge_message  # noqa: E402
from opsvault.dispatcher.reasons import ReasonCode  # noqa: E402
from opsvault.dispatcher.records import (  # noqa: E402
    ClaimRecord,
    Outcome,
    ResultRecord,
    archive_paths,
    render_claim,
    render_record,
)
from opsvault.git.base import Identity  # noqa: E402
from opsvault.git.pygit2_repo import Pygit2OpsRepo  # noqa: E402
from opsvault.layout import action_path, claim_path, running_path  # noqa: E402
from tests.conftest import init_repo  # noqa: E402
from tests.dispatcher.harness import NOOP, template_files  # noqa: E402

SIZES = tuple(int(a) for a in sys.argv[1:]) or (1_000, 10_000)
BATCH = 10  # actions per tick
BOT = Identity("vault-bot", "vault-bot@opsvault.invalid")
DEV = Identity("dev-bot", "dev-bot@example.invalid")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(root: Path, records: int) -> Pygit2OpsRepo:
    """Return an ops repo whose main holds *records* records (claims and results, half each)."""
    init_repo(root, template_files())
    repo = Pygit2OpsRepo.open(root)
    main = repo.resolve("refs/heads/main")
    number = 0
    for batch in range(records // (2 * BATCH)):
        when = T0 + timedelta(days=batch)  # ten actions a day: ~300 records a month
        merged: list[tuple[str, bytes, str, str, str, int]] = []
        # Commit times grow as they do on a real main: git's merge-base walk
        # (is_ancestor, merge) stops early only on dated history.
        stamp = int(when.timestamp())
        for n in range(BATCH):
            number += 1
            action_id = f"noop-bench-{number}"
            content = NOOP.format(msg=f"run {number}").encode()
            head = repo.commit_files(
                main,
                {action_path(action_id): content},
                f"propose {action_id}",
                DEV,
                when=stamp + 2 * n,
            )
            trial = repo.merge(main, head, "trial", BOT, when=stamp + 2 * n + 1)
            manifest = change_manifest(repo, main, trial)
            merge = repo.merge(
                main,
                head,
                merge_message(number, "low", main, manifest),
                BOT,
                when=stamp + 2 * n + 1,
            )
            merged.append((action_id, content, main, head, merge, number))
            main = merge
        claims: dict[str, bytes | None] = {}
        for action_id, content, base, head, merge, pr in merged:
            claims[action_path(action_id)] = None
            claims[running_path(action_id)] = content
            claims[claim_path(action_id)] = render_claim(
                ClaimRecord(
                    id=action_id,
                    action_sha256=sha256(content),
                    dispatcher=BOT.name,
                    tier="low",
                    policy_commit=base,
                    pr=pr,
                    proposer=DEV.name,
                    approver=BOT.name,
                    head_commit=head,
                    merge_commit=merge,
                    formula="noop",
                    claimed_by="vault-bot/bench",
                    claimed_at=when.isoformat(),
                    deadline=(when + timedelta(minutes=10)).isoformat(),
                )
            )
        main = _commit(repo, main, claims, f"vault: {BATCH} claimed", stamp + 100)
        results: dict[str, bytes | None] = {}
        for action_id, content, base, head, merge, pr in merged:
            record = ResultRecord(
                id=action_id,
                outcome=Outcome.SUCCEEDED,
                reason=ReasonCode.OK,
                tier="low",
                action_sha256=sha256(content),
                policy_commit=base,
                formula="noop",
                pr=pr,
                proposer=DEV.name,
                approver=BOT.name,
                head_commit=head,
                merge_commit=merge,
                dispatcher=BOT.name,
            )
            toml_path, result_path = archive_paths(record.outcome, action_id, when)
            results[running_path(action_id)] = None
            results[claim_path(action_id)] = None
            results[toml_path] = content
            results[result_path] = render_record(record)
        main = _commit(
            repo, main, results, f"vault: record {BATCH} result(s)", stamp + 200
        )
    repo.update_ref("refs/heads/main", main, repo.resolve("refs/heads/main"))
    return repo


def _commit(
    repo: Pygit2OpsRepo,
    main: str,
    changes: dict[str, bytes | None],
    message: str,
    when: int,
) -> str:
    changes, message, _ = seal_commit(repo, main, changes, message)
    return repo.commit_files(main, changes, message, BOT, when=when)


def _memory_dir() -> str | None:
    """Return a RAM-backed directory when there is one: the history is ~150,000 loose objects."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def measure(records: int) -> tuple[float, float, int]:
    """Return (wall seconds, CPU seconds, commits) of one verify over *records* records."""
    with tempfile.TemporaryDirectory(dir=_memory_dir()) as tmp:
        repo = build(Path(tmp) / "ops", records)
        start, cpu = time.perf_counter(), time.process_time()
        report = verify(repo, "main", identity=BOT.name)
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        assert report.ok, [b.render() for b in report.breaks[:5]]
        assert report.records == records and report.replayed == records
        return elapsed, used, report.commits


def main() -> None:
    print("vault audit verify (offline), real git history built like the tick's")
    print(
        "(CPU time beside wall time: on a shared machine the wall clock includes others' work)"
    )
    figures = {}
    for size in SIZES:
        elapsed, used, commits = measure(size)
        figures[size] = used
        print(
            f"  {size:>6} records, {commits:>5} commits: {elapsed:6.2f} s wall, "
            f"{used:6.2f} s CPU ({used / size * 1000:.2f} ms CPU per record)"
        )
    if len(SIZES) >= 2:
        small, large = SIZES[0], SIZES[-1]
        ratio = (figures[large] / large) / (figures[small] / small)
        print(
            f"  per-record ratio {large:,} / {small:,}: {ratio:.2f} "
            f"(1.0 is linear); goal: {large:,} records under 10 s"
        )


if __name__ == "__main__":
    main()
