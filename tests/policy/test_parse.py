from __future__ import annotations

import pytest

from opsvault._resources import data_dir
from opsvault.errors import PolicyError
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()


def test_template_policy_parses() -> None:
    policy = parse_policy(TEMPLATE)
    assert policy.default_tier is Tier.HIGH
    assert policy.formula_tier("noop") is Tier.LOW


def test_default_tier_below_medium_is_refused() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(TEMPLATE.replace('default_tier = "high"', 'default_tier = "low"'))
    assert exc.value.problems[0].path == "$.default_tier"
    assert exc.value.exit_code == 78


def test_regex_like_formula_names_are_refused_not_interpreted() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(TEMPLATE.replace('noop = "low"', '"no.*" = "low"'))
    assert exc.value.problems[0].path == "$.formulas"


def test_secrets_scoped_but_not_allowed() -> None:
    with pytest.raises(PolicyError, match=r"not in secrets\.allowed"):
        parse_policy(
            TEMPLATE.replace(
                'http-hook = ["HOOK_TOKEN"]', 'http-hook = ["HOOK_TOKEN", "OTHER"]'
            )
        )


def test_high_tier_must_be_admin_merged() -> None:
    text = TEMPLATE.replace(
        '[tiers.high]\nmerge = "admin"', '[tiers.high]\nmerge = "auto"'
    )
    with pytest.raises(PolicyError) as exc:
        parse_policy(text)
    assert {p.path for p in exc.value.problems} == {"$.tiers.high.merge"}


def test_notify_must_name_a_sink() -> None:
    text = TEMPLATE.replace(
        'merge = "admin"\nnotify = []', 'merge = "admin"\nnotify = ["ops"]'
    )
    assert text != TEMPLATE
    with pytest.raises(PolicyError, match="no sink 'ops'"):
        parse_policy(text)
