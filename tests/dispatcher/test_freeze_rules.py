"""Freeze windows in the dispatcher's pure rules (dispatcher/state.py), with an injected now.

The window here is 2026-11-21 11:00Z to 14:00Z, exempting the noop formula.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsvault._resources import data_dir
from opsvault.dispatcher.freezing import change_formulas
from opsvault.dispatcher.state import (
    Act,
    ActionFacts,
    Claim,
    Defer,
    Done,
    Expire,
    MergeFacts,
    PullFacts,
    Role,
    decide_action,
    decide_pull,
    next_timer,
)
from opsvault.policy.action import Classification
from opsvault.policy.change import ChangeKind
from opsvault.policy.classify import ChangeVerdict, FileVerdict
from opsvault.policy.parse import parse_policy
from opsvault.vault.request import parse_action
from opsvault.vault.tier import Tier

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
FREEZE = """
[[freeze]]
name = "quiet"
start = 2026-11-21T11:00:00Z
end = 2026-11-21T14:00:00Z
exempt = ["noop"]
"""
POLICY = parse_policy(
    TEMPLATE.replace('# veto_window = "2h"', 'veto_window = "2h"', 1) + FREEZE
)
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
END = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
UNTIL = "frozen until 2026-11-21T14:00:00Z (quiet)"


def action_file(formula: str, tier: Tier) -> FileVerdict:
    text = f'formula = "{formula}"\ncontext = "x"\n'
    path = f"vault/actions/{formula}-1.toml"
    return FileVerdict(
        path,
        ChangeKind.ADDED,
        Classification(tier, ()),
        action=parse_action(text, path),
    )


def facts(*files: FileVerdict, at: datetime = T0, seen: datetime = T0) -> PullFacts:
    tier = max(f.classification.tier for f in files)
    return PullFacts(
        number=1,
        head_sha="a" * 40,
        created_at=T0,
        head_seen_at=seen,
        labels=frozenset(),
        verdict=ChangeVerdict(tier, files),
        request_changes=False,
        notified_head=None,
        approvals_needed=0,
        approved_head=None,
        now=at,
    )


def acts(pull: PullFacts) -> list[Act]:
    return [e.act for e in decide_pull(pull, POLICY)]


HOOK_LOW = action_file("http-hook", Tier.LOW)  # as if policy made it low
NOOP = action_file("noop", Tier.LOW)
NOTE = FileVerdict("knowledge/a.md", ChangeKind.ADDED, Classification(Tier.LOW, ()))


def test_change_formulas_is_none_unless_every_file_is_an_action() -> None:
    assert change_formulas(ChangeVerdict(Tier.LOW, (NOOP, HOOK_LOW))) == frozenset(
        {"noop", "http-hook"}
    )
    assert change_formulas(ChangeVerdict(Tier.LOW, (NOOP, NOTE))) is None
    assert change_formulas(ChangeVerdict(Tier.LOW, ())) is None


def test_a_low_merge_is_frozen_not_made_and_not_refused() -> None:
    effects = decide_pull(facts(HOOK_LOW), POLICY)
    assert [e.act for e in effects] == [Act.PUBLISH, Act.FROZEN]
    assert effects[1].detail == UNTIL
    assert acts(facts(HOOK_LOW, at=END - timedelta(microseconds=1)))[-1] is Act.FROZEN
    assert acts(facts(HOOK_LOW, at=END)) == [Act.PUBLISH, Act.MERGE]
    before = datetime(2026, 11, 21, 10, 59, tzinfo=UTC)
    early = facts(HOOK_LOW, at=before)
    assert acts(early) == [Act.PUBLISH, Act.MERGE]


def test_an_exempt_change_merges_but_not_with_anything_else() -> None:
    assert acts(facts(NOOP)) == [Act.PUBLISH, Act.MERGE]
    assert acts(facts(NOOP, NOTE))[-1] is Act.FROZEN
    assert acts(facts(NOOP, HOOK_LOW))[-1] is Act.FROZEN


def test_a_medium_veto_window_merge_waits_for_the_freeze() -> None:
    medium = action_file("http-hook", Tier.MEDIUM)
    seen = T0 - timedelta(hours=3)  # the 2h window passed before now
    early = facts(medium, seen=seen)
    assert acts(early) == [Act.PUBLISH, Act.NOTIFY, Act.FROZEN]
    assert acts(facts(medium, at=END, seen=seen))[-1] is Act.MERGE


def test_frozen_time_does_not_count_toward_the_deadline() -> None:
    # Low's deadline is 24h; two hours after the PR was opened (12:00 to 14:00) were frozen.
    day = timedelta(hours=24)
    assert acts(facts(HOOK_LOW, at=T0 + day + timedelta(hours=1)))[-1] is Act.MERGE
    assert (
        acts(facts(HOOK_LOW, at=T0 + day + timedelta(hours=2, seconds=1)))[-1]
        is Act.EXPIRE
    )


def test_next_timer_is_the_end_of_the_freeze_while_frozen() -> None:
    assert next_timer(facts(HOOK_LOW), POLICY) == END
    after = facts(HOOK_LOW, at=END + timedelta(minutes=1))
    assert next_timer(after, POLICY) == T0 + timedelta(hours=24 + 2)


def merged() -> MergeFacts:
    return MergeFacts(
        tier=Tier.MEDIUM,
        protected=False,
        refused=False,
        merger="bob",
        merger_roles=frozenset({Role.REVIEWER}),
        proposer="dev-bot",
        pr_created_at=T0,
        merged_at=T0,
        head_matches=True,
        blob_matches=True,
        merger_approved_head=True,
    )


def action_facts(**kw: object) -> ActionFacts:
    base = ActionFacts(
        now=T0,
        queued=0,
        queue_limit=10,
        merge=merged(),
        policy=POLICY,
        merger="bob",
    )
    from dataclasses import replace

    return replace(base, **kw)  # type: ignore[arg-type]


def test_an_action_is_deferred_while_frozen_and_claimed_after() -> None:
    from opsvault.policy.freeze import frozen_at

    freeze = frozen_at(POLICY.freezes, T0, {"http-hook"})
    assert freeze is not None
    assert decide_action(action_facts(freeze=freeze)) == Defer(UNTIL)
    assert isinstance(decide_action(action_facts()), Claim)


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        ({"expires": T0 - timedelta(minutes=1)}, Expire),
        ({"human_request": True}, Done),
    ],
    ids=["expires-still-counts", "a-human-request-is-recorded"],
)
def test_a_freeze_does_not_keep_what_is_not_a_firing(
    kw: dict[str, object], kind: type
) -> None:
    from opsvault.policy.freeze import frozen_at

    freeze = frozen_at(POLICY.freezes, T0)
    assert isinstance(decide_action(action_facts(freeze=freeze, **kw)), kind)
