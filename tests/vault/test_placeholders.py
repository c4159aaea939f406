from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault.errors import InvalidFormulaError, Problem
from opsvault.vault.placeholders import KNOWN_NAMES, placeholders_in, render_argv

VALUES = {
    "workspace": "/w",
    "action.id": "a-1",
    "python": "/py",
    "params.site": "ex.org",
}


def test_placeholders_fill_inside_one_argument() -> None:
    argv = render_argv(
        ["rsync", "{workspace}/public/", "deploy@{params.site}:/srv", "{action.id}"],
        VALUES,
        "f",
    )
    assert argv == ("rsync", "/w/public/", "deploy@ex.org:/srv", "a-1")


def test_double_braces_are_literal() -> None:
    assert render_argv(["{{x}}", "a{{{workspace}}}b"], VALUES, "f") == ("{x}", "a{/w}b")


def test_value_with_spaces_is_never_split() -> None:
    assert render_argv(["x", "{params.site}"], {"params.site": "a b  c"}, "f") == (
        "x",
        "a b  c",
    )


def test_value_is_never_rescanned() -> None:
    values = {"params.site": "{workspace}}{", "workspace": "/w"}
    assert render_argv(["{params.site}"], values, "f") == ("{workspace}}{",)


def test_array_param_expands_only_as_a_whole_argument() -> None:
    lists = {"params.hosts": ["web-1", "web 2"]}
    argv = render_argv(["ping", "{params.hosts}", "end"], {}, "f", lists=lists)
    assert argv == ("ping", "web-1", "web 2", "end")
    assert render_argv(["{params.hosts}"], {}, "f", lists={"params.hosts": []}) == ()


def test_array_param_inside_an_argument_is_an_error() -> None:
    with pytest.raises(InvalidFormulaError) as info:
        render_argv(["--host={params.hosts}"], {}, "f", lists={"params.hosts": ["a"]})
    assert "must be a whole argument" in info.value.problems[0].message


def test_secret_placeholders_do_not_exist() -> None:
    with pytest.raises(InvalidFormulaError) as info:
        render_argv(["curl", "-H", "{secrets.TOKEN}"], VALUES, "formulas/x.toml")
    assert info.value.where == "formulas/x.toml"
    assert info.value.problems == (
        Problem(
            "$.run[2]",
            "unknown placeholder {secrets.TOKEN}; secrets reach steps only as "
            "environment variables, never in argv",
        ),
    )


def test_secret_placeholders_are_refused_even_when_given_a_value() -> None:
    with pytest.raises(InvalidFormulaError) as info:
        render_argv(["{secrets.TOKEN}"], {"secrets.TOKEN": "s3cret"}, "f")
    assert "environment" in info.value.problems[0].message


@pytest.mark.parametrize(
    "element", ["{", "}", "a{b", "{}", "{a b}", "{.x}", "x}y", "{a}}"]
)
def test_malformed_braces_are_errors(element: str) -> None:
    with pytest.raises(InvalidFormulaError) as info:
        render_argv(["ok", element], VALUES, "f", path="$.steps[0].run")
    assert info.value.problems[0].path == "$.steps[0].run[1]"


def test_every_problem_is_reported() -> None:
    with pytest.raises(InvalidFormulaError) as info:
        render_argv(["{nope}", "{", "{params.other}"], VALUES, "f")
    assert [p.path for p in info.value.problems] == ["$.run[0]", "$.run[1]", "$.run[2]"]


def test_placeholders_in_lists_names() -> None:
    template = [
        "{python}",
        "-m",
        "x",
        "--url={params.url}",
        "{{literal}}",
        "{workspace}/a",
    ]
    assert placeholders_in(template) == {"python", "params.url", "workspace"}
    assert {"python", "workspace"} <= KNOWN_NAMES
    with pytest.raises(InvalidFormulaError):
        placeholders_in(["{oops"])


# -- properties ---------------------------------------------------------------

NAMES = ["workspace", "action.id", "params.a", "params.b"]
names = st.sampled_from(NAMES)
plain = st.text(alphabet="ab {}$/.-", max_size=6)
values_st = st.fixed_dictionaries({name: plain for name in NAMES})


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


elements = st.lists(
    st.one_of(plain.map(lambda t: ("lit", t)), names.map(lambda n: ("ph", n))),
    max_size=5,
)


@given(st.lists(elements, max_size=5), values_st)
def test_render_never_splits_nor_rescans(
    template_parts: list[list[tuple[str, str]]], values: dict[str, str]
) -> None:
    template = [
        "".join(_escape(t) if kind == "lit" else "{" + t + "}" for kind, t in parts)
        for parts in template_parts
    ]
    expected = tuple(
        "".join(t if kind == "lit" else values[t] for kind, t in parts)
        for parts in template_parts
    )
    argv = render_argv(template, values, "f")
    # One element per template element, values inserted verbatim.
    assert argv == expected
    assert render_argv(template, values, "f") == argv  # deterministic
    assert placeholders_in(template) == {
        t for parts in template_parts for k, t in parts if k == "ph"
    }


@given(st.lists(st.text(alphabet="ab{}.", max_size=8), max_size=4))
def test_arbitrary_text_renders_or_raises_invalid_formula(template: list[str]) -> None:
    try:
        argv = render_argv(template, {"a": "X", "b": "Y"}, "f")
    except InvalidFormulaError:
        return
    assert len(argv) == len(template)
