"""Further tests of the 2026-12 I4/I5 review fixes (see docs/security-review-2026-12-input.md).

The attacks of the findings themselves are in test_review_input.py; these pin
the edges of each fix: other spellings, both forges, the bounds themselves.
"""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from opsvault.changes import classify_ref_change
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.git.treediff import MAX_CHANGED_FILES
from opsvault.policy.change import tree_path_problem
from opsvault.vault.formula import backtracking_problem, parse_formula
from tests.dispatcher.harness import NOOP, REPO, Harness
from tests.security.test_review_input import (
    TREE_MODE,
    commit_tree,
    local_tick,
    main_id,
    ops,  # noqa: F401 (fixture)
    push_branch,
    raw_proposal,
    tree_bomb,
    tree_entries,
    with_entry,
    write_raw_tree,
)

# -- the tick's clock reaches classification: expires is checked before a merge ----------


def test_an_action_expiring_past_its_tier_deadline_is_never_merged(
    vault: Harness,
) -> None:
    action = NOOP.format(msg="hi") + "expires = 9999-12-31T00:00:00Z\n"
    number = vault.propose("noop-far", action)
    vault.tick()
    pr = vault.pull(number)
    assert not pr.merged
    assert "vault/tier/refused" in pr.labels
    assert isinstance(vault.runner, RecordingRunner)
    assert not vault.runner.requests
    body = next(
        c.body
        for c in vault.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    )
    assert "$.expires" in body and "deadline" in body


def test_an_action_expiring_within_its_deadline_still_merges(
    vault: Harness,
) -> None:
    soon = vault.now[0].strftime("%Y-%m-%dT23:59:59Z")
    number = vault.propose("noop-soon", NOOP.format(msg="hi") + f"expires = {soon}\n")
    vault.tick()
    assert vault.pull(number).merged


# -- through the fake Forgejo as well ---------------------------------------------


def test_a_tree_bomb_is_refused_on_forgejo_without_a_merge(vault: Harness) -> None:
    store = vault.forge.repo(REPO).git
    main = store.tip("main")
    assert main is not None
    with store.lock:
        base = store.repo[pygit2.Oid(hex=main)].peel(pygit2.Commit).tree
        bomb = tree_bomb(store.repo, 101, 2)  # 10,201 files: just over the budget
        tree = with_entry(store.repo, base, "knowledge/bomb", TREE_MODE, bomb)
        store.set_ref("refs/heads/bomb", commit_tree(store.repo, main, tree))
    number = vault.forge.open_pull(REPO, head="bomb", title="bomb", author="dev-bot")
    vault.tick()
    pr = vault.pull(number)
    assert not pr.merged and "vault/tier/refused" in pr.labels
    body = next(
        c.body
        for c in vault.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    )
    assert "too-many-files" in body


def test_a_change_at_the_file_budget_is_classified_past_it_refused(ops: Path) -> None:  # noqa: F811
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    for name, width in (("fits", 100), ("over", 101)):  # 100*100 = the budget exactly
        bomb = tree_bomb(repo, width, 2)
        tree = with_entry(repo, base, "knowledge/many", TREE_MODE, bomb)
        push_branch(ops, name, commit_tree(repo, parent, tree))
    opsrepo = Pygit2OpsRepo.open(ops)
    fits = classify_ref_change(opsrepo, "main", "vault/fits").verdict
    assert not fits.refused and len(fits.files) == MAX_CHANGED_FILES
    over = classify_ref_change(opsrepo, "main", "vault/over").verdict
    assert over.refused
    assert "too-many-files" in over.files[0].problems[0].message


def test_a_blob_at_the_size_limit_is_low_one_byte_more_is_refused(ops: Path) -> None:  # noqa: F811
    repo = pygit2.Repository(str(ops))
    opsrepo = Pygit2OpsRepo.open(ops)
    for name, size in (("fits", 1 << 20), ("over", (1 << 20) + 1)):
        head = raw_proposal(
            repo, main_id(ops), "knowledge/big.bin", 0o100644, bytes(size)
        )
        push_branch(ops, name, head)
    assert not classify_ref_change(opsrepo, "main", "vault/fits").verdict.refused
    over = classify_ref_change(opsrepo, "main", "vault/over").verdict
    assert (
        over.refused
        and "over the limit of 1048576" in over.files[0].problems[0].message
    )


# -- every odd mode is a floor, a canonical file mode is not --------------------------


@pytest.mark.parametrize("mode", [0o100664, 0o100600, 0o160755, 0o040644])
def test_a_mode_git_never_writes_is_floor_protected(ops: Path, mode: int) -> None:  # noqa: F811
    repo = pygit2.Repository(str(ops))
    head = raw_proposal(repo, main_id(ops), "knowledge/odd", mode, b"x\n")
    push_branch(ops, "odd", head)
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/odd").verdict
    assert verdict.protected or verdict.refused, [f.path for f in verdict.files]


# -- git's own refusals, every spelling -----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "a/.git/x",
        "a/.GiT/x",
        "a/.git./x",
        "a/.git . ./x",
        "a/git~1/x",
        "a/GIT~1/x",
        "a/.git::$INDEX_ALLOCATION/x",
        "a/.g\u200cit/x",
        "a/\ufeff.git/x",
        "a/" + "n" * 256,
        "a/" + "/".join(["d" * 200] * 6),
    ],
)
def test_paths_git_refuses_or_over_the_bounds_have_a_problem(path: str) -> None:
    assert tree_path_problem(path)


@pytest.mark.parametrize(
    "path", ["a/.gitignore", "a/.github/x", "a/git/x", "a/" + "n" * 255, "é/" * 300]
)
def test_ordinary_paths_have_no_problem(path: str) -> None:
    assert tree_path_problem(path.rstrip("/")) == ""


def test_a_tree_entry_with_invalid_utf8_is_refused(ops: Path) -> None:  # noqa: F811
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    entries = tree_entries(repo, base["knowledge"].peel(pygit2.Tree))
    entries.append((0o100644, b"bad\xff", repo.create_blob(b"x").raw))
    knowledge = write_raw_tree(repo, entries)
    tree = with_entry(repo, base, "knowledge", TREE_MODE, knowledge)
    push_branch(ops, "bad", commit_tree(repo, parent, tree))
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/bad").verdict
    assert verdict.refused


# -- the shape check and the length cap -------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["^([a-z0-9]+)+$", "^(a|aa)*$", "^(\\w*)*x$", "^(.)\\1+$", "(x+x+)+y"]
)
def test_a_pattern_that_can_backtrack_exponentially_is_refused(pattern: str) -> None:
    assert backtracking_problem(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "^[a-z0-9.-]+$",
        "^(GET|POST)$",
        "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+-]*)?$",
        "^(?:[0-9a-f]{2})+$",
    ],
)
def test_ordinary_patterns_pass_the_shape_check(pattern: str) -> None:
    assert backtracking_problem(pattern) == ""


def test_a_string_param_over_1_kib_is_refused() -> None:
    from opsvault.vault.formula import param_value_problems

    spec = parse_formula(
        b'name = "f"\ndescription = "d"\n[params.p]\ntype = "string"\n'
        b'[[steps]]\nname = "s"\nrun = ["true"]\n',
        "vault/formulas/f.toml",
    ).params[0]
    assert param_value_problems(spec, "a" * 1024) == []
    assert param_value_problems(spec, "a" * 1025)


# -- a message under the commit bound is still kept short ---------------------------


def test_a_long_commit_message_is_truncated_in_local_forge_state(
    ops: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from opsvault.forge.local import LocalForge
    from opsvault.forge.local_branches import MAX_BODY_CHARS

    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    tree = with_entry(repo, base, "knowledge/a.md", 0o100644, repo.create_blob(b"a\n"))
    sig = pygit2.Signature("dev-agent", "dev-agent@example.invalid", 0, 0)
    message = "t" * 1000 + "\n\n" + "b" * 500_000
    head = repo.create_commit(None, sig, sig, message, tree, [pygit2.Oid(hex=parent)])
    push_branch(ops, "msg", str(head))
    (pr,) = LocalForge(Pygit2OpsRepo.open(ops), "alice").fetch_pull_requests()
    assert len(pr.title) <= 256 and len(pr.body) <= MAX_BODY_CHARS
    assert (ops / ".git" / "opsvault" / "forge.json").stat().st_size < 200_000
    local_tick(ops, tmp_path)


def test_provenance_behind_a_commit_too_big_to_diff_is_unknown_not_an_error(
    ops: Path,  # noqa: F811
) -> None:
    from opsvault.dispatcher.provenance import introducing_commits
    from opsvault.git.base import Identity

    opsrepo = Pygit2OpsRepo.open(ops)
    admin = Identity("alice", "alice@example.invalid")
    action = "vault/actions/noop-1.toml"
    first = opsrepo.commit_files(
        opsrepo.resolve("main"), {action: NOOP.format(msg="x").encode()}, "a", admin
    )
    assert introducing_commits(opsrepo, first, [action]) == {action: first}
    repo = pygit2.Repository(str(ops))
    base = repo[pygit2.Oid(hex=first)].peel(pygit2.Commit).tree
    bomb = tree_bomb(repo, 101, 2)  # 10,201 files: over the diff's budget
    tree = with_entry(repo, base, "knowledge/bulk", TREE_MODE, bomb)
    second = commit_tree(repo, first, tree, author="alice")
    assert introducing_commits(opsrepo, second, [action]) == {}
