from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.errors import InvalidRequestError
from opsvault.policy.assess import assess_action
from opsvault.policy.model import Policy
from opsvault.policy.parse import parse_policy
from opsvault.snapshot import load_builtin_formulas
from opsvault.vault.request import parse_action

GOOD = b'formula = "noop"\ncontext = "smoke"\n'


def template_policy() -> Policy:
    return parse_policy(
        (data_dir("ops-template") / "vault" / "policy.toml").read_bytes()
    )


def test_valid_action_parses_with_stem_as_id() -> None:
    action = parse_action(GOOD, "vault/actions/noop-smoke-1.toml")
    assert action.id == "noop-smoke-1"
    assert action.formula == "noop"


@pytest.mark.parametrize(
    "path",
    [
        "vault/actions/A.toml",  # upper case
        "vault/actions/ab.toml",  # too short
        "vault/actions/-abc.toml",  # leading dash
        "vault/actions/..-x.toml",  # dots
        "vault/actions/../x.toml",
        "vault/actions/\u0430bc-1.toml",  # Cyrillic a, looks like Latin a
        "vault/actions/abc\uff11.toml",  # fullwidth digit one
        "vault/actions/abc 1.toml",
        "vault/actions/abc-1\n.toml",
        "vault/actions/" + "a" * 64 + ".toml",
    ],
)
def test_odd_ids_are_rejected(path: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_action(GOOD, path)
    assert any("not a valid action id" in p.message for p in exc.value.problems)


def test_explicit_id_must_equal_stem() -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_action(b'id = "other-1"\n' + GOOD, "vault/actions/noop-smoke-1.toml")
    assert [p.path for p in exc.value.problems] == ["$.id"]


def test_every_schema_problem_is_reported_at_once() -> None:
    text = b'formula = "noop"\ncontext = ""\ncolour = "red"\nblast_radius = "huge"\nunblocks = ["x"]\n[params]\nn = 1.5\n'
    with pytest.raises(InvalidRequestError) as exc:
        parse_action(text, "vault/actions/noop-smoke-1.toml")
    paths = [p.path for p in exc.value.problems]
    assert {
        "$.colour",
        "$.context",
        "$.blast_radius",
        "$.unblocks[0]",
        "$.params.n",
    } <= set(paths)
    assert paths == sorted(paths)
    assert str(exc.value).startswith("vault/actions/noop-smoke-1.toml: $.")


def test_formula_and_action_required_are_exclusive() -> None:
    text = GOOD + b'[action_required]\ndescription = "x"\n'
    with pytest.raises(InvalidRequestError, match="not both"):
        parse_action(text, "vault/actions/noop-smoke-1.toml")


def test_toml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(InvalidRequestError, match="line 2, column"):
        parse_action(b'context = "x"\nformula = \n', "vault/actions/noop-smoke-1.toml")


def test_oversized_file_is_refused() -> None:
    text = GOOD + b"# " + b"x" * 70_000 + b"\n"
    with pytest.raises(InvalidRequestError, match="over the limit"):
        parse_action(text, "vault/actions/noop-smoke-1.toml")


def test_expires_needs_an_offset() -> None:
    with pytest.raises(InvalidRequestError, match="offset"):
        parse_action(
            GOOD + b"expires = 2026-12-01T00:00:00\n", "vault/actions/noop-smoke-1.toml"
        )


def test_expires_must_lie_within_tier_deadline() -> None:
    action = parse_action(
        GOOD + b"expires = 2026-12-01T00:00:00Z\n", "vault/actions/noop-smoke-1.toml"
    )
    now = datetime(2026, 11, 21, tzinfo=UTC)  # low tier deadline in the template: 24h
    problems = assess_action(
        action, load_builtin_formulas(), template_policy(), now
    ).problems
    assert [p.path for p in problems] == ["$.expires"]
    assert "deadline" in problems[0].message
    later = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert not assess_action(
        action, load_builtin_formulas(), template_policy(), later
    ).problems
    past = datetime(2026, 12, 2, tzinfo=UTC)
    assert (
        "passed"
        in assess_action(action, load_builtin_formulas(), template_policy(), past)
        .problems[0]
        .message
    )


def test_secret_not_allowed_for_formula_is_refused() -> None:
    action = parse_action(
        GOOD + b'secrets = ["HOOK_TOKEN"]\n', "vault/actions/noop-smoke-1.toml"
    )
    problems = assess_action(
        action, load_builtin_formulas(), template_policy(), None
    ).problems
    messages = " ".join(p.message for p in problems)
    assert "not declared by formula 'noop'" in messages
    assert "not allowed for formula 'noop' by policy" in messages


def test_params_are_checked_against_the_formula() -> None:
    text = b'formula = "git-make"\ncontext = "x"\n[params]\nrepo = "https://git.example.org/a"\ntarget = "-rf"\nextra = "x"\n'
    action = parse_action(text, "vault/actions/git-make-1.toml")
    problems = assess_action(
        action, load_builtin_formulas(), template_policy(), None
    ).problems
    assert {p.path for p in problems} == {
        "$.params.extra",
        "$.params.ref",
        "$.params.target",
    }


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_parser_raises_only_invalid_request_on_arbitrary_input(
    text: str | bytes,
) -> None:
    with contextlib.suppress(InvalidRequestError):
        parse_action(text, "vault/actions/fuzz-1.toml")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["formula", "context", "secrets", "blast_radius", "params", "id", "zzz"]
        ),
        st.one_of(
            st.text(max_size=8),
            st.integers(),
            st.lists(st.text(max_size=4), max_size=2),
            st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
        ),
        max_size=5,
    )
)
def test_parser_raises_only_invalid_request_on_arbitrary_documents(
    doc: dict[str, Any],
) -> None:
    import tomlkit

    with contextlib.suppress(InvalidRequestError):
        parse_action(tomlkit.dumps(doc), "vault/actions/fuzz-1.toml")
