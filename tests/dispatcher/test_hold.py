"""The hold and ``/vault`` commands as pure decisions over a timeline (I3)."""

from __future__ import annotations

import pytest

from opsvault.dispatcher.hold import (
    HOLD_LABEL,
    CommandRequest,
    derive_hold,
    parse_command,
    refusal,
)
from opsvault.forge.types import TimelineEvent, TimelineKind

ADD, REMOVE, SAY = (
    TimelineKind.LABEL_ADDED,
    TimelineKind.LABEL_REMOVED,
    TimelineKind.COMMENT,
)
ELIGIBLE = frozenset({"bob", "alice"})


def timeline(*steps: tuple[TimelineKind, str, str]) -> list[TimelineEvent]:
    events = []
    for n, (kind, actor, text) in enumerate(steps, start=1):
        if kind is SAY:
            events.append(TimelineEvent(n, kind, actor, body=text))
        else:
            events.append(TimelineEvent(n, kind, actor, label=text))
    return events


@pytest.mark.parametrize(
    ("steps", "present", "held"),
    [
        ([(ADD, "bob", HOLD_LABEL), (REMOVE, "mallory", HOLD_LABEL)], False, True),
        ([(ADD, "bob", HOLD_LABEL), (REMOVE, "alice", HOLD_LABEL)], False, False),
        ([(ADD, "mallory", HOLD_LABEL), (REMOVE, "mallory", HOLD_LABEL)], False, True),
        ([(ADD, "mallory", HOLD_LABEL), (REMOVE, "bob", HOLD_LABEL)], False, False),
        ([(ADD, "bob", HOLD_LABEL), (REMOVE, "vault-bot", HOLD_LABEL)], False, True),
        ([(SAY, "bob", "/vault hold")], False, True),
        ([(SAY, "mallory", "/vault hold")], False, False),  # refused command
        (
            [(SAY, "bob", "/vault hold"), (SAY, "mallory", "/vault release")],
            False,
            True,
        ),
        ([(SAY, "bob", "/vault hold"), (SAY, "alice", "/vault release")], False, False),
        (
            [(ADD, "bob", "vault/tier-medium"), (REMOVE, "mallory", "other")],
            False,
            False,
        ),
        ([(SAY, "bob", "please /vault hold")], False, False),  # not on the first line
        ([], True, True),  # the label present holds, whatever the timeline says
        ([(SAY, "vault-bot", "/vault hold")], False, False),  # never our own comments
    ],
)
def test_hold_follows_who_placed_and_lifted_it(
    steps: list[tuple[TimelineKind, str, str]], present: bool, held: bool
) -> None:
    state = derive_hold(
        timeline(*steps), ELIGIBLE, identity="vault-bot", label_present=present
    )
    assert state.held is held


def test_an_edited_release_does_not_lift() -> None:
    events = [
        TimelineEvent(1, ADD, "bob", label=HOLD_LABEL),
        TimelineEvent(2, SAY, "alice", body="/vault release", edited=True),
    ]
    assert derive_hold(events, ELIGIBLE, identity="v", label_present=False).held


def test_ignored_lifts_are_reported() -> None:
    state = derive_hold(
        timeline((ADD, "bob", HOLD_LABEL), (REMOVE, "mallory", HOLD_LABEL)),
        ELIGIBLE,
        identity="v",
        label_present=False,
    )
    assert state.placed_by == "bob"
    assert state.ignored == (
        "@mallory removed the label, which does not lift the hold",
    )


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("/vault hold", "hold"),
        ("\n  /vault  Release  now\n", "release"),
        ("/vault", ""),
        ("/vaults hold", None),
        ("text\n/vault hold", None),
        ("", None),
    ],
)
def test_parse_command(body: str, word: str | None) -> None:
    assert parse_command(body) == word


@pytest.mark.parametrize(
    ("user", "word", "edited", "refused"),
    [
        ("bob", "hold", False, None),
        ("mallory", "hold", False, "@mallory may not hold this change"),
        ("mallory", "explain", False, None),
        ("bob", "frobnicate", False, "unknown command"),
        ("bob", "release", True, "edited after it was posted"),
    ],
)
def test_refusal_names_the_reason(
    user: str, word: str, edited: bool, refused: str | None
) -> None:
    why = refusal(CommandRequest(1, user, word, edited), ELIGIBLE)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_verify_merge_refuses_a_dispatcher_merge_that_was_held() -> None:
    from datetime import UTC, datetime, timedelta

    from opsvault.dispatcher.reasons import ReasonCode
    from opsvault.dispatcher.state import MergeFacts, Role, verify_merge
    from opsvault.policy.parse import parse_policy
    from opsvault.vault.tier import Tier
    from tests.dispatcher.harness import template_files, veto_policy

    policy_text = template_files(veto_policy)["vault/policy.toml"]
    assert isinstance(policy_text, str)
    policy = parse_policy(policy_text)
    created = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    facts = MergeFacts(
        tier=Tier.MEDIUM,
        protected=False,
        refused=False,
        merger="vault-bot",
        merger_roles=frozenset({Role.DISPATCHER}),
        proposer="mallory",
        pr_created_at=created,
        merged_at=created + timedelta(hours=3),
        head_matches=True,
        blob_matches=True,
    )
    assert verify_merge(facts, policy) is None
    from dataclasses import replace

    held = replace(facts, held_at_merge=True)
    assert verify_merge(held, policy) is ReasonCode.HELD_AT_MERGE
    as_reviewer = replace(
        held, merger_roles=frozenset({Role.DISPATCHER, Role.REVIEWER})
    )
    assert verify_merge(as_reviewer, policy) is ReasonCode.HELD_AT_MERGE
