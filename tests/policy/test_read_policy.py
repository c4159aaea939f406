"""Every problem of a policy at once: a schema problem hides nothing (issue 12)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.errors import PolicyError
from opsvault.policy.lint import lint_policy
from opsvault.policy.parse import parse_policy, read_policy
from opsvault.snapshot import load_builtin_formulas

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
DEAD_RULE = (
    '\n[[rules]]\nname = "dead"\ntier = "high"\n'
    'when = { params = { env = "production" } }\n'
)
BAD_TIER_RULE = (
    '\n[[rules]]\nname = "sky"\ntier = "sky"\nwhen = { formula_any = ["noop"] }\n'
)


def test_a_default_tier_error_does_not_hide_the_checks_beyond_the_schema() -> None:
    text = TEMPLATE.replace('default_tier = "high"', 'default_tier = "low"').replace(
        'merge = "reviewer"', 'merge = "auto"'
    )
    reading = read_policy(text)
    assert {p.path for p in reading.problems} == {
        "$.default_tier",
        "$.tiers.medium.merge",
    }
    with pytest.raises(PolicyError) as exc:
        parse_policy(text)
    assert {p.path for p in exc.value.problems} == {
        "$.default_tier",
        "$.tiers.medium.merge",
    }


def test_lint_runs_on_what_is_valid_and_names_rules_as_in_the_file() -> None:
    # rule 1 (sky) is invalid and pruned; the dead rule after it is still rule 2.
    reading = read_policy(
        TEMPLATE.replace('default_tier = "high"', 'default_tier = "low"')
        + BAD_TIER_RULE
        + DEAD_RULE
    )
    assert {p.path for p in reading.problems} == {"$.default_tier", "$.rules[1].tier"}
    assert reading.policy is not None
    found = reading.original_problems(
        f.problem for f in lint_policy(reading.policy, load_builtin_formulas())
    )
    assert [(p.path, p.message.split(":")[0]) for p in found] == [
        ("$.rules[2]", "rule 'dead' can never match")
    ]


def test_a_bad_duration_beside_a_schema_error_is_reported_too() -> None:
    text = TEMPLATE.replace('deadline = "7d"', 'deadline = "99999d"').replace(
        "schema = 1", "schema = 2"
    )
    paths = {p.path for p in read_policy(text).problems}
    assert paths == {"$.schema", "$.tiers.high.deadline"}


def test_a_missing_tier_is_reported_and_the_rest_still_checked() -> None:
    text = TEMPLATE.replace("[tiers.low]", "[unused]").replace(
        'http-hook = ["HOOK_TOKEN"]', 'http-hook = ["OTHER"]'
    )
    paths = {p.path for p in read_policy(text).problems}
    assert "$.tiers.low" in paths  # required key is missing
    assert "$.unused" in paths  # unknown key
    assert "$.secrets.formulas['http-hook'][0]" in paths  # beyond the schema


def test_a_valid_policy_reads_without_problems() -> None:
    reading = read_policy(TEMPLATE)
    assert reading.problems == () and reading.policy == parse_policy(TEMPLATE)


LINES = TEMPLATE.splitlines()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(LINES) - 1),
            st.sampled_from(
                [
                    "",
                    'tier = "sky"',
                    'merge = "auto"',
                    'deadline = "0x"',
                    "users = [1]",
                    "[tiers.extra]",
                    'default_tier = "low"',
                    "when = {}",
                    "notify = ['pager']",
                ]
            ),
        ),
        max_size=4,
    )
)
def test_reading_any_edit_is_total_and_agrees_with_parse(
    edits: list[tuple[int, str]],
) -> None:
    lines = list(LINES)
    for index, line in edits:
        lines[index] = line
    text = "\n".join(lines)
    try:
        reading = read_policy(text)
    except PolicyError:  # not TOML at all (a duplicate key, say)
        with pytest.raises(PolicyError):
            parse_policy(text)
        return
    if reading.problems:
        with pytest.raises(PolicyError) as exc:
            parse_policy(text)
        assert exc.value.problems == reading.problems
    else:
        assert parse_policy(text) == reading.policy
