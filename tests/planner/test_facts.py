"""Issue states from the forge and vault facts from a snapshot: the mapping and the shell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from opsvault.forge.client import ForgejoClient
from opsvault.forge.local import LocalForge
from opsvault.forge.token import ForgeToken
from opsvault.forge.types import Issue, ListState, PullState
from opsvault.git.base import Identity
from opsvault.git.mainline import LocalMainline
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.planner.facts import (
    ForgeIssues,
    fetch_issue_states,
    fetch_proposed_actions,
    issue_states,
    load_vault_facts,
    proposed_action_ids,
    vault_facts,
)
from opsvault.planner.model import IssueRef, IssueState, VaultFacts
from opsvault.snapshot import CommitSnapshot, DirSnapshot
from testing.fake_forgejo.server import FakeForgejo
from tests.conftest import init_repo

OPEN, CLOSED = PullState.OPEN, PullState.CLOSED
WHO = Identity("dev-agent", "dev-agent@localhost")


def issue(number: int, state: PullState = OPEN, *, pull: bool = False) -> Issue:
    return Issue(number, f"issue {number}", state, is_pull=pull)


def test_short_refs_resolve_in_the_default_repo_and_long_ones_in_their_own() -> None:
    listings: dict[str, Sequence[Issue] | None] = {
        "acme/issues": [issue(1, CLOSED), issue(2)],
        "acme/app": [issue(1), issue(3, CLOSED)],
    }
    wanted = [
        IssueRef(None, 1),
        IssueRef(None, 2),
        IssueRef("acme/app", 1),
        IssueRef("Acme/App", 3),  # forge names ignore case
    ]
    assert issue_states(wanted, "acme/issues", listings) == {
        IssueRef(None, 1): IssueState.CLOSED,
        IssueRef(None, 2): IssueState.OPEN,
        IssueRef("acme/app", 1): IssueState.OPEN,
        IssueRef("Acme/App", 3): IssueState.CLOSED,
    }


def test_absent_numbers_pull_requests_and_missing_repos_are_missing() -> None:
    listings: dict[str, Sequence[Issue] | None] = {
        "acme/ops": [issue(1), issue(2, CLOSED, pull=True)],
        "acme/gone": None,
    }
    wanted = [
        IssueRef(None, 2),  # a PR number is not an issue
        IssueRef(None, 9),
        IssueRef("acme/gone", 1),
        IssueRef("acme/unlisted", 1),  # never listed: unknown, left out
    ]
    assert issue_states(wanted, "acme/ops", listings) == {
        IssueRef(None, 2): IssueState.MISSING,
        IssueRef(None, 9): IssueState.MISSING,
        IssueRef("acme/gone", 1): IssueState.MISSING,
    }


def test_each_repository_is_listed_once_per_run() -> None:
    calls: list[str] = []

    def lister(repo: str) -> list[Issue]:
        calls.append(repo)
        return [issue(1, CLOSED), issue(2)]

    wanted = [
        IssueRef(None, 1),
        IssueRef(None, 2),
        IssueRef("acme/ops", 3),
        IssueRef("acme/app", 1),
        IssueRef("ACME/app", 2),
    ]
    states = fetch_issue_states(wanted, "acme/ops", lister)
    assert sorted(calls) == ["acme/app", "acme/ops"]
    assert states[IssueRef("acme/ops", 3)] is IssueState.MISSING
    assert states[IssueRef("ACME/app", 2)] is IssueState.OPEN


def test_vault_facts_from_paths() -> None:
    files = [
        "vault/actions/a.toml",
        "vault/actions/README.md",
        "vault/actions/sub/deep.toml",  # not a pending action: only the top level
        "vault/running/b.toml",
        "vault/fired/2026/04/c.toml",
        "vault/fired/2026/04/c.result.json",
        "vault/rejected/d.toml",
    ]
    assert vault_facts(files, ["vault/x"], ["p"]) == VaultFacts(
        pending=frozenset({"a", "p"}),
        running=frozenset({"b"}),
        fired=frozenset({"c"}),
        rejected=frozenset({"d"}),
        existing_paths=frozenset({"vault/x"}),
    )
    assert proposed_action_ids(
        ["vault/actions/n.toml", "prerequisites.md", "vault/fired/2026/x.toml"]
    ) == frozenset({"n"})


def test_vault_facts_at_a_commit_ignore_the_work_tree(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    init_repo(
        ops,
        {
            "vault/actions/a.toml": "",
            "vault/fired/2026/04/b.toml": "",
            "vault/pending/notes/x.md": "",
        },
    )
    (ops / "vault" / "actions" / "uncommitted.toml").write_text("")
    repo = Pygit2OpsRepo.open(ops)
    paths = ["vault/pending/notes", "vault/pending/y.md", "../outside", "/etc/passwd"]
    at_main = load_vault_facts(CommitSnapshot(repo, repo.resolve("main")), paths)
    assert at_main.pending == frozenset({"a"})
    assert at_main.fired == frozenset({"b"})
    assert at_main.existing_paths == frozenset({"vault/pending/notes"})
    in_tree = load_vault_facts(DirSnapshot(ops), paths)
    assert in_tree.pending == frozenset({"a", "uncommitted"})
    assert in_tree.existing_paths == frozenset({"vault/pending/notes"})


def test_open_proposals_count_as_pending_and_closed_ones_do_not(
    tmp_path: Path,
) -> None:
    ops = tmp_path / "ops"
    init_repo(ops, {"vault/policy.toml": "", "prerequisites.md": "# Tree\n"})
    repo = Pygit2OpsRepo.open(ops)
    main = repo.resolve("main")
    for name in ("proposed", "dropped"):
        tip = repo.commit_files(
            main, {f"vault/actions/{name}.toml": b"x = 1\n"}, f"propose {name}", WHO
        )
        repo.update_ref(f"refs/heads/vault/{name}", tip, None)
    forge = LocalForge(repo, acting_user="vault-bot")
    dropped = next(
        p for p in forge.fetch_pull_requests() if p.head_ref == "vault/dropped"
    )
    forge.reject(dropped.number, "not now")
    pulls = forge.fetch_pull_requests(ListState.OPEN)
    found = fetch_proposed_actions(pulls, LocalMainline(repo), repo, main)
    assert found == frozenset({"proposed"})


def test_forge_issues_reads_other_repos_with_their_own_clients(tmp_path: Path) -> None:
    with FakeForgejo(tmp_path / "forge") as fake:
        token = ForgeToken(fake.add_user("vault-bot"))
        fake.add_org("acme")
        fake.create_repo("acme", "ops", {"README.md": "ops\n"})
        fake.create_repo("acme", "app", {"README.md": "app\n"})
        fake.add_issue("acme/ops", "one", author="vault-bot", state="closed")
        fake.add_issue("acme/app", "two", author="vault-bot")
        opened: list[ForgejoClient] = []

        def open_client(owner: str, name: str) -> ForgejoClient:
            client = ForgejoClient(fake.url, owner, name, token, sleep=lambda s: None)
            opened.append(client)
            return client

        ops_client = ForgejoClient(fake.url, "acme", "ops", token)
        try:
            with ForgeIssues("acme/ops", ops_client, open_client) as lister:
                states = fetch_issue_states(
                    [
                        IssueRef(None, 1),
                        IssueRef("acme/app", 1),
                        IssueRef("acme/app", 7),
                        IssueRef("acme/nope", 1),
                    ],
                    "acme/ops",
                    lister,
                )
        finally:
            ops_client.close()
        assert states == {
            IssueRef(None, 1): IssueState.CLOSED,
            IssueRef("acme/app", 1): IssueState.OPEN,
            IssueRef("acme/app", 7): IssueState.MISSING,
            IssueRef("acme/nope", 1): IssueState.MISSING,
        }
        assert [(c.owner, c.repo) for c in opened] == [
            ("acme", "app"),
            ("acme", "nope"),
        ]
        assert not fake.violations
