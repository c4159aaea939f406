from __future__ import annotations

from pathlib import Path

from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.snapshot import CommitSnapshot, DirSnapshot, UsedIds, used_ids
from tests.conftest import init_repo

FILES = {
    "vault/policy.toml": "x",
    "vault/actions/waiting-1.toml": "x",
    "vault/running/running-1.toml": "x",
    "vault/fired/2025/12/old-1.toml": "x",
    "vault/fired/2025/12/old-1.result.json": "{}",
    "vault/fired/2026/11/new-1.toml": "x",
    "vault/rejected/2026/10/no-1.toml": "x",
}


def test_used_ids_membership_without_listing_history(tmp_path: Path) -> None:
    init_repo(tmp_path / "ops", FILES)
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    snapshot = CommitSnapshot(repo, repo.resolve("main"))
    used = UsedIds(snapshot)
    for known in ("waiting-1", "running-1", "old-1", "new-1", "no-1"):
        assert known in used
    assert "fresh-1" not in used
    assert "../x" not in used and "" not in used
    assert (
        set(used)
        == set(used_ids(snapshot))
        == {"waiting-1", "running-1", "old-1", "new-1", "no-1"}
    )
    assert repo.list_dirs(repo.resolve("main"), "vault/fired") == ("2025", "2026")


def test_used_ids_on_a_directory(tmp_path: Path) -> None:
    for name, content in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    used = UsedIds(DirSnapshot(tmp_path))
    assert "old-1" in used and "fresh-1" not in used
