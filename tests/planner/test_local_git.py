"""Local mode, end to end: `vault plan --ops DIR` on a git repo reads main and commits to it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from opsvault.cli.plan import plan, run_plan
from opsvault.forge.local import LocalForge
from opsvault.git.base import Identity
from opsvault.git.mainline import LocalMainline
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.planner.job import PlannerSetup, run_planner
from tests.conftest import init_repo

TREE = (
    "# Prerequisite Tree\n"
    "<!-- Last updated: 2026-04-15 -->\n"
    "\n"
    "## Objective: Publish\n"
    "- [x] site builds (#1 — closed)\n"
    "- [ ] deploy key blocked-on-vault (vault/actions/deploy-key.toml)\n"
    "Status: BLOCKED — waits on the vault\n"
    "\n"
    "## Objective: Announce\n"
    "- [ ] post blocked-on-vault: announce-1\n"
    "- [ ] mail blocked-on-vault: mail-1\n"
    "Status: BLOCKED\n"
)
AFTER = (
    TREE.replace(" blocked-on-vault (vault/actions/deploy-key.toml)", "")
    .replace("2026-04-15", "2026-05-02")
    .replace("Status: BLOCKED — waits on the vault", "Status: IN PROGRESS")
)
WHO = Identity("dev-agent", "dev-agent@localhost")


def make_repo(tmp_path: Path) -> tuple[Path, Pygit2OpsRepo]:
    ops = tmp_path / "ops"
    init_repo(
        ops,
        {
            "vault/policy.toml": "",
            "vault/fired/2026/04/deploy-key.toml": "",
            "prerequisites.md": TREE,
        },
    )
    repo = Pygit2OpsRepo.open(ops)
    # announce-1 is only proposed (an open branch), mail-1 is nowhere
    tip = repo.commit_files(
        repo.resolve("main"),
        {"vault/actions/announce-1.toml": b'formula = "noop"\n'},
        "propose announce-1",
        WHO,
    )
    repo.update_ref("refs/heads/vault/announce-1", tip, None)
    return ops, repo


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(plan, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_plan_commits_to_main_and_the_work_tree_follows(tmp_path: Path) -> None:
    ops, repo = make_repo(tmp_path)
    before = repo.resolve("main")
    code, out = invoke("--ops", str(ops), "--today", "2026-05-02")
    # Written, and still exit 1: mail-1 is a marker at nothing (issue 12).
    assert code == 1, out
    assert "prerequisites.md:11: error: blocked-on-vault 'mail-1'" in out
    main = repo.resolve("main")
    assert main != before
    assert f"committed {main[:12]} to main (3 change(s))" in out
    assert (
        f"{ops}/prerequisites.md:6: cleared blocked-on-vault: vault action 'deploy-key' fired"
        in out
    )
    assert repo.read_file(main, "prerequisites.md") == AFTER.encode()
    assert (ops / "prerequisites.md").read_text(encoding="utf-8") == AFTER
    info = repo.commit_info(main)
    assert info.parents == (before,)
    assert info.author.name == "opsvault-planner"
    assert info.message.startswith("planner: update prerequisites.md (3 change(s))")
    assert (
        "- line 7: status BLOCKED → IN PROGRESS: last vault marker cleared"
        in info.message
    )

    code, out = invoke("--ops", str(ops), "--today", "2026-05-03")
    assert (code, out.splitlines()[-1]) == (
        1,
        f"{ops}/prerequisites.md: nothing to update, but 1 error(s) above need a person",
    )
    assert repo.resolve("main") == main


def test_a_proposed_action_is_pending_and_an_unknown_one_is_reported(
    tmp_path: Path,
) -> None:
    ops, _ = make_repo(tmp_path)
    code, out = invoke("--ops", str(ops), "--check")
    assert code == 1
    assert "announce-1" not in out  # pending through its open proposal
    assert (
        f"{ops}/prerequisites.md:11: error: blocked-on-vault 'mail-1': no vault action 'mail-1'"
        in out
    )


def test_dry_run_and_json_write_nothing(tmp_path: Path) -> None:
    ops, repo = make_repo(tmp_path)
    before = repo.resolve("main")
    code, out = invoke(
        "--ops", str(ops), "--dry-run", "--json", "--today", "2026-05-02"
    )
    report = json.loads(out)
    assert code == 1  # the unknown mail-1 marker is an error
    assert (report["ok"], report["errors"]) == (False, 1)
    assert (report["written"], report["commit"], report["base"]) == (
        False,
        None,
        before,
    )
    assert report["issues_checked"] is False
    assert repo.resolve("main") == before
    assert (ops / "prerequisites.md").read_text(encoding="utf-8") == TREE


def test_local_edits_in_the_work_tree_are_kept_and_noted(tmp_path: Path) -> None:
    ops, repo = make_repo(tmp_path)
    edited = TREE + "\nA note not committed yet.\n"
    (ops / "prerequisites.md").write_text(edited, encoding="utf-8")
    report = run_plan(ops, date(2026, 5, 2))
    assert report.commit == repo.resolve("main")
    assert repo.read_file(report.commit, "prerequisites.md") == AFTER.encode()
    assert (ops / "prerequisites.md").read_text(encoding="utf-8") == edited
    assert any("differs from main" in note for note in report.notes)


class RacingMainline(LocalMainline):
    """Moves main (someone fires mail-1) just before the planner's first publish."""

    raced = False

    def publish(self, new: str, expected_old: str) -> None:
        if not self.raced:
            self.raced = True
            theirs = self.repo.commit_files(
                expected_old,
                {"vault/fired/2026/05/mail-1.toml": b""},
                "fire mail-1",
                WHO,
            )
            super().publish(theirs, expected_old)
        super().publish(new, expected_old)


def test_main_moving_meanwhile_replans_on_the_new_main(tmp_path: Path) -> None:
    _, repo = make_repo(tmp_path)
    mainline = RacingMainline(repo)
    setup = PlannerSetup(
        repo=repo,
        mainline=mainline,
        forge=LocalForge(repo, acting_user="vault-bot"),
        identity=Identity("vault-bot", "vault-bot@opsvault.invalid"),
        propose=False,
    )
    report = run_planner(setup, date(2026, 5, 2))
    assert mainline.raced
    assert report.commit == repo.resolve("main")
    (theirs,) = repo.commit_info(report.commit).parents
    assert repo.commit_info(theirs).message == "fire mail-1"
    text = repo.read_file(report.commit, "prerequisites.md")
    assert text is not None
    assert "- [ ] mail\n" in text.decode()  # the second plan saw mail-1 fire
    assert any("mail-1" in change.reason for change in report.changes)
