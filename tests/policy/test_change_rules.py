"""A lowering is impossible: a change never gets a lower tier than its parts or a floor.

``classify_change`` is pure, so the rule the flow tests rely on ("a proposal
that also edits the policy, a workflow or a record is high and protected,
whatever else it holds") is tried here over arbitrary mixes of changed files
of the template ops repo: no forge, no git.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.policy.change import ChangedFile, ChangeKind
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    classify_change,
    floor_reason,
)
from opsvault.policy.parse import parse_policy
from opsvault.vault.formula import parse_formula
from opsvault.vault.tier import Tier

POLICY = parse_policy((data_dir("ops-template") / "vault" / "policy.toml").read_text())
FORMULAS = {
    path.stem: parse_formula(path.read_bytes(), f"formulas/{path.name}")
    for path in data_dir("formulas").glob("*.toml")
}
BASE = BaseState(POLICY, FORMULAS, frozenset({"used-1"}))
SYMLINK = 0o120000

ACTIONS = {
    "vault/actions/noop-1.toml": b'formula = "noop"\ncontext = "c"\n',  # low
    "vault/actions/hook-1.toml": (  # medium
        b'formula = "http-hook"\ncontext = "c"\n'
        b'params = { url = "https://deploy.example.org/1" }\n'
    ),
    "vault/actions/hand-1.toml": (  # a request for a human: high
        b'context = "c"\n[action_required]\ndescription = "by hand"\n'
    ),
    "vault/actions/bad-1.toml": b'formula = "noop"\n',  # no context: refused
    "vault/actions/used-1.toml": b'formula = "noop"\ncontext = "c"\n',  # reused id
}
OTHER_PATHS = [
    "knowledge/runbook.md",  # [[paths]] low
    "sprints/s1.md",  # [[paths]] medium
    "README.md",  # default_tier (high)
    "vault/policy.toml",  # floors from here on
    "formulas/noop.toml",
    "vault/fired/2026/11/x-1.toml",
    "vault/HALT",
    ".forgejo/workflows/ci.yml",
    ".gitmodules",
]


@st.composite
def changed_files(draw: st.DrawFn) -> ChangedFile:
    if draw(st.booleans()):
        path = draw(st.sampled_from(sorted(ACTIONS)))
        kind = draw(st.sampled_from([ChangeKind.ADDED, ChangeKind.ADDED, *ChangeKind]))
    else:
        path = draw(st.sampled_from(OTHER_PATHS))
        kind = draw(st.sampled_from(list(ChangeKind)))
    old_path = (
        draw(st.sampled_from([*sorted(ACTIONS), *OTHER_PATHS]))
        if kind is ChangeKind.RENAMED
        else None
    )
    link = kind is not ChangeKind.DELETED and draw(
        st.sampled_from([False, False, False, True])
    )
    return ChangedFile(path, kind, old_path, mode=SYMLINK if link else 0o100644)


changes = st.lists(changed_files(), min_size=1, max_size=4, unique_by=lambda c: c.path)


def classify(files: list[ChangedFile]) -> ChangeVerdict:
    return classify_change(files, ACTIONS, BASE)


@given(changes)
def test_the_tier_of_a_change_is_the_highest_of_its_files(
    files: list[ChangedFile],
) -> None:
    verdict = classify(files)
    assert verdict.tier == max(f.classification.tier for f in verdict.files)
    for one in files:
        alone = classify([one])
        assert verdict.tier >= alone.tier
        assert verdict.protected or not alone.protected
        assert verdict.refused or not alone.refused


@given(changes, changes)
def test_adding_files_to_a_change_never_lowers_it(
    first: list[ChangedFile], more: list[ChangedFile]
) -> None:
    paths = {c.path for c in first}
    both = first + [c for c in more if c.path not in paths]
    before, after = classify(first), classify(both)
    assert after.tier >= before.tier
    assert after.protected >= before.protected
    assert after.refused >= before.refused


@given(changes)
def test_a_floor_anywhere_makes_the_change_high_and_protected(
    files: list[ChangedFile],
) -> None:
    touched = {c.path for c in files} | {c.old_path for c in files if c.old_path}
    floors = [p for p in touched if floor_reason(p) is not None]
    links = [c for c in files if c.mode == SYMLINK]  # never on a deletion
    # Modifying, renaming or deleting an existing action file (renaming another
    # file into vault/actions adds a new one, a proposal like any other).
    existing = [
        c
        for c in files
        if c.old_path in ACTIONS
        or (c.path in ACTIONS and c.kind in (ChangeKind.MODIFIED, ChangeKind.DELETED))
    ]
    verdict = classify(files)
    if floors or links or existing:
        assert verdict.tier is Tier.HIGH
        assert verdict.protected, verdict


def test_the_pool_covers_every_tier_and_outcome() -> None:
    """The strategy above reaches low, medium and high, refused and protected changes."""
    one = {
        path: classify([ChangedFile(path, ChangeKind.ADDED)])
        for path in [*ACTIONS, *OTHER_PATHS]
    }
    assert {v.tier for v in one.values()} == set(Tier)
    assert one["vault/actions/noop-1.toml"].tier is Tier.LOW
    assert one["vault/actions/hook-1.toml"].tier is Tier.MEDIUM
    assert one["knowledge/runbook.md"].tier is Tier.LOW
    assert one["vault/actions/bad-1.toml"].refused
    assert one["vault/actions/used-1.toml"].refused
    assert one["vault/policy.toml"].protected and not one["README.md"].protected
    mixed = classify(
        [
            ChangedFile("vault/actions/noop-1.toml", ChangeKind.ADDED),
            ChangedFile("vault/policy.toml", ChangeKind.MODIFIED),
        ]
    )
    assert (mixed.tier, mixed.protected) == (Tier.HIGH, True)
