"""Local mode: what `vault approve` merges fires, whatever its tier (ADR 0008).

Medium and high merges count only with the merger's approval of the merged
head on record; `vault approve` records that approval before it merges.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo

AGENT = Identity("dev-agent", "dev-agent@localhost")
HUMAN = b'context = "rotate"\n[action_required]\ndescription = "rotate it by hand"\n'


def test_a_high_change_approved_locally_is_recorded_done(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    create_ops_repo(ops, when=0)
    repo = Pygit2OpsRepo.open(ops)
    commit = repo.commit_files(
        repo.resolve("main"),
        {"vault/actions/human-1.toml": HUMAN},
        "propose human-1",
        AGENT,
        when=0,
    )
    repo.update_ref("refs/heads/vault/human-1", commit, None)
    runner = CliRunner()
    approved = runner.invoke(
        cli, ["approve", "human-1", "--as", "alice", "--ops", str(ops)]
    )
    assert approved.exit_code == 0, approved.output
    (tmp_path / "secrets").mkdir()
    env = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(tmp_path / "secrets"),
        "OPSVAULT_STATE_DIR": str(tmp_path / "state"),
    }
    ticked = runner.invoke(cli, ["dispatcher", "run", "--once"], env=env)
    assert "done" in ticked.output and "merge-not-vouched" not in ticked.output, (
        ticked.output
    )
